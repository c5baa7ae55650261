//! The DynamoDB Streams poller: the local stand-in for Lambda's event source mapping.
//!
//! For each table it finds the stream, lists the shards, and reads every shard in order
//! (a parent shard is finished before its children), handing each `GetRecords` page to the
//! same handler the Lambda runs, as the same `DynamoDbEvent` JSON. A shard's checkpoint is
//! written only after the handler reports the batch durable; after a partial failure it
//! points just before the failed record, which is read again on the next pass. Expired
//! iterators are renewed from the checkpoint; throttling is backed off.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, Shard, ShardIteratorType};
use cloudpf_cdc::{Batch, BatchReport, Pipeline, handle_products, handle_purchases};
use serde_json::{Value, json};

use crate::checkpoint::{CheckpointStore, TableCheckpoint};

/// Which handler a table's records go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Products,
    Purchases,
}

#[derive(Debug, Clone)]
pub struct PollerConfig {
    pub products_table: String,
    pub purchases_table: String,
    /// Where shard checkpoints live.
    pub checkpoint_dir: PathBuf,
    /// Records per `GetRecords` call (DynamoDB allows up to 1000).
    pub batch_size: i32,
    /// Pause between passes when every shard is caught up.
    pub idle_sleep: Duration,
    /// Throttling retries before a pass gives up (the next pass tries again).
    pub max_throttle_retries: u32,
}

impl PollerConfig {
    pub fn new(products_table: &str, purchases_table: &str, checkpoint_dir: PathBuf) -> Self {
        Self {
            products_table: products_table.to_owned(),
            purchases_table: purchases_table.to_owned(),
            checkpoint_dir,
            batch_size: 100,
            idle_sleep: Duration::from_millis(500),
            max_throttle_retries: 8,
        }
    }
}

/// Passes in a row with failed batches after which `run_until_idle` gives up.
pub const MAX_FAILING_PASSES: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(
        "batches still failed after {0} passes; the log says why, the checkpoints keep what was applied"
    )]
    StillFailing(u32),
    #[error("table {0} has no stream; enable NEW_AND_OLD_IMAGES streams on it")]
    NoStream(String),
    #[error("{0}")]
    Aws(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] std::io::Error),
}

fn aws<E: std::error::Error>(e: E) -> PollError {
    PollError::Aws(DisplayErrorContext(e).to_string())
}

/// Totals of one or more passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub records: usize,
    pub applied: usize,
    pub stale: usize,
    pub dead_lettered: usize,
    /// Batches that reported a batch item failure and will be read again.
    pub failed_batches: usize,
}

impl PollReport {
    fn add(&mut self, r: &BatchReport) {
        self.records += r.records;
        self.applied += r.applied;
        self.stale += r.stale;
        self.dead_lettered += r.dead_lettered;
        self.failed_batches += usize::from(r.failed_from.is_some());
    }

    fn merge(&mut self, other: &PollReport) {
        self.records += other.records;
        self.applied += other.applied;
        self.stale += other.stale;
        self.dead_lettered += other.dead_lettered;
        self.failed_batches += other.failed_batches;
    }
}

#[derive(Debug)]
pub struct Poller {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    pipeline: Pipeline,
    config: PollerConfig,
    store: CheckpointStore,
}

/// The Lambda `DynamoDbEvent` record for a stream record: the JSON Lambda would deliver.
pub fn lambda_record(record: &Record, stream_arn: &str) -> Value {
    let image = |m: Option<&HashMap<String, AttributeValue>>| {
        m.map(|m| serde_json::to_value(serde_dynamo::Item::from(m.clone())).unwrap_or(Value::Null))
    };
    let mut change = json!({});
    if let Some(d) = record.dynamodb() {
        change = json!({
            "SequenceNumber": d.sequence_number(),
            "SizeBytes": d.size_bytes().unwrap_or(0),
            "StreamViewType": d.stream_view_type().map(|v| v.as_str()),
            "Keys": image(d.keys()),
        });
        if let Some(t) = d.approximate_creation_date_time() {
            change["ApproximateCreationDateTime"] = json!(t.as_secs_f64());
        }
        if let Some(new) = image(d.new_image()) {
            change["NewImage"] = new;
        }
        if let Some(old) = image(d.old_image()) {
            change["OldImage"] = old;
        }
    }
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source().unwrap_or("aws:dynamodb"),
        "awsRegion": record.aws_region(),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    })
}

enum ShardEnd {
    /// Closed and fully applied.
    Finished,
    /// Open, nothing more to read now.
    CaughtUp,
    /// A batch failed; read again from the checkpoint next pass.
    Failed,
}

impl Poller {
    pub fn new(shared: &aws_config::SdkConfig, pipeline: Pipeline, config: PollerConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            streams: aws_sdk_dynamodbstreams::Client::new(shared),
            store: CheckpointStore::new(config.checkpoint_dir.clone()),
            pipeline,
            config,
        }
    }

    /// Polls until a whole pass finds nothing new (for scripts and tests). Gives up after
    /// [`MAX_FAILING_PASSES`] passes in a row with failed batches, so a sink that stays down
    /// ends the run with an error instead of hanging it; checkpoints keep what was done.
    pub async fn run_until_idle(&self) -> Result<PollReport, PollError> {
        let mut total = PollReport::default();
        let mut failing = 0;
        loop {
            let pass = self.pass().await?;
            total.merge(&pass);
            if pass.records == 0 && pass.failed_batches == 0 {
                return Ok(total);
            }
            if pass.failed_batches > 0 {
                failing += 1;
                if failing >= MAX_FAILING_PASSES {
                    return Err(PollError::StillFailing(failing));
                }
                tokio::time::sleep(self.config.idle_sleep).await;
            } else {
                failing = 0;
            }
        }
    }

    /// Polls until `shutdown` resolves, pausing when caught up.
    pub async fn run(
        &self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<PollReport, PollError> {
        let mut total = PollReport::default();
        tokio::pin!(shutdown);
        loop {
            let pass = tokio::select! {
                () = &mut shutdown => return Ok(total),
                pass = self.pass() => pass,
            };
            match pass {
                Ok(pass) => {
                    total.merge(&pass);
                    // New records: read on at once. Failures wait, so a sink that is down is not hammered.
                    if pass.records > 0 && pass.failed_batches == 0 {
                        continue;
                    }
                }
                Err(e) => tracing::error!(error = %e, "poll pass failed; retrying"),
            }
            tokio::select! {
                () = &mut shutdown => return Ok(total),
                () = tokio::time::sleep(self.config.idle_sleep) => {}
            }
        }
    }

    /// One pass over both tables.
    pub async fn pass(&self) -> Result<PollReport, PollError> {
        let mut report = PollReport::default();
        for (table, kind) in [
            (self.config.products_table.clone(), TableKind::Products),
            (self.config.purchases_table.clone(), TableKind::Purchases),
        ] {
            report.merge(&self.poll_table(&table, kind).await?);
        }
        Ok(report)
    }

    async fn stream_arn(&self, table: &str) -> Result<String, PollError> {
        let out = self
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(aws)?;
        out.table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_owned)
            .ok_or_else(|| PollError::NoStream(table.to_owned()))
    }

    async fn shards(&self, arn: &str) -> Result<Vec<Shard>, PollError> {
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .map_err(aws)?;
            let Some(desc) = out.stream_description() else {
                break;
            };
            shards.extend(desc.shards().iter().cloned());
            match desc.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        Ok(shards)
    }

    async fn poll_table(&self, table: &str, kind: TableKind) -> Result<PollReport, PollError> {
        let arn = self.stream_arn(table).await?;
        let shards = self.shards(&arn).await?;
        let mut cp = self.store.load(table, &arn)?;
        let known: HashSet<&str> = shards.iter().filter_map(|s| s.shard_id()).collect();
        let mut report = PollReport::default();
        let mut done: HashSet<String> = HashSet::new();
        // Parents before children: keep sweeping until no shard becomes eligible.
        loop {
            let mut progressed = false;
            for shard in &shards {
                let Some(id) = shard.shard_id() else { continue };
                if done.contains(id) || cp.shards.get(id).is_some_and(|c| c.finished) {
                    continue;
                }
                let parent_done = match shard.parent_shard_id() {
                    None => true,
                    // A parent past the stream's retention is gone; nothing to wait for.
                    Some(p) if !known.contains(p) => true,
                    Some(p) => cp.shards.get(p).is_some_and(|c| c.finished),
                };
                if !parent_done {
                    continue;
                }
                done.insert(id.to_owned());
                progressed = true;
                let end = self
                    .poll_shard(table, kind, &arn, id, &mut cp, &mut report)
                    .await?;
                if matches!(end, ShardEnd::Failed | ShardEnd::CaughtUp) {
                    // Children of an unfinished shard wait for the next pass.
                    continue;
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(report)
    }

    async fn iterator(
        &self,
        arn: &str,
        shard: &str,
        after: Option<&str>,
    ) -> Result<Option<String>, PollError> {
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard);
        let request = match after {
            Some(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let out = request.send().await.map_err(aws)?;
        Ok(out.shard_iterator().map(str::to_owned))
    }

    async fn poll_shard(
        &self,
        table: &str,
        kind: TableKind,
        arn: &str,
        shard: &str,
        cp: &mut TableCheckpoint,
        report: &mut PollReport,
    ) -> Result<ShardEnd, PollError> {
        let state = cp.shards.entry(shard.to_owned()).or_default().clone();
        let mut iterator = self.iterator(arn, shard, state.last_seq.as_deref()).await?;
        let mut throttled = 0u32;
        while let Some(it) = iterator.take() {
            let out = match self
                .streams
                .get_records()
                .shard_iterator(&it)
                .limit(self.config.batch_size)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    let service = e.as_service_error();
                    if service.is_some_and(|s| s.is_expired_iterator_exception()) {
                        let last = cp.shards.get(shard).and_then(|c| c.last_seq.clone());
                        iterator = self.iterator(arn, shard, last.as_deref()).await?;
                        continue;
                    }
                    if service.is_some_and(|s| s.is_limit_exceeded_exception())
                        && throttled < self.config.max_throttle_retries
                    {
                        throttled += 1;
                        let backoff = Duration::from_millis(100 * (1u64 << throttled.min(6)));
                        tracing::warn!(table, shard, ?backoff, "throttled; backing off");
                        tokio::time::sleep(backoff).await;
                        iterator = Some(it);
                        continue;
                    }
                    return Err(aws(e));
                }
            };
            throttled = 0;
            let records = out.records();
            let next = out.next_shard_iterator().map(str::to_owned);
            if records.is_empty() {
                return match next {
                    None => {
                        cp.shards.entry(shard.to_owned()).or_default().finished = true;
                        self.store.save(table, cp)?;
                        Ok(ShardEnd::Finished)
                    }
                    Some(_) => Ok(ShardEnd::CaughtUp),
                };
            }
            let event = json!({ "Records": records.iter().map(|r| lambda_record(r, arn)).collect::<Vec<_>>() });
            let batch = Batch::from_json(event).map_err(|e| PollError::Aws(e.to_string()))?;
            let batch_report = match kind {
                TableKind::Products => handle_products(batch, &self.pipeline).await,
                TableKind::Purchases => handle_purchases(batch, &self.pipeline).await,
            };
            report.add(&batch_report);
            let seqs: Vec<&str> = records
                .iter()
                .filter_map(|r| r.dynamodb().and_then(|d| d.sequence_number()))
                .collect();
            let entry = cp.shards.entry(shard.to_owned()).or_default();
            if let Some(failed) = &batch_report.failed_from {
                // Everything before the failed record is durable; resume right at it.
                if let Some(i) = seqs.iter().position(|s| s == failed)
                    && i > 0
                {
                    entry.last_seq = Some(seqs[i - 1].to_owned());
                }
                self.store.save(table, cp)?;
                return Ok(ShardEnd::Failed);
            }
            entry.last_seq = seqs
                .last()
                .map(|s| (*s).to_owned())
                .or(entry.last_seq.take());
            if next.is_none() {
                entry.finished = true;
            }
            self.store.save(table, cp)?;
            iterator = next;
        }
        Ok(ShardEnd::Finished)
    }
}
