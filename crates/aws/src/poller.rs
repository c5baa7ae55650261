//! The DynamoDB Streams poller: the local stand-in for Lambda's event source mapping.
//!
//! For each table it finds the stream, lists the shards, and reads every shard in order
//! (a parent shard is finished before its children), handing each `GetRecords` page to the
//! same handler the Lambda runs, as the same `DynamoDbEvent` JSON. A shard's checkpoint is
//! written only after the handler reports the batch durable; after a partial failure it
//! points just before the failed record, which is read again on the next pass. Expired
//! iterators are renewed from the checkpoint; throttling is backed off.
//!
//! A pass never stalls on one place: an error on one table or shard is logged and counted
//! and the others are still read; a checkpoint past the stream's 24 h retention resumes at
//! `TRIM_HORIZON` with the gap logged and counted (those changes are lost to the sinks);
//! empty pages of an open shard are read on, a bounded number of times, because DynamoDB
//! Streams may return empty pages before a shard's records. Every loop has a bound.
//! On shutdown the batch in flight is finished and checkpointed before `run` returns.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, Shard, ShardIteratorType};
use cloudpf_cdc::{Batch, BatchReport, Entity, Pipeline};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::checkpoint::{CheckpointStore, TableCheckpoint, TrimmedGap};

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
    /// Empty pages in a row that an open shard may return, each followed by a pause of
    /// `empty_page_backoff` (doubled each time), before the pass calls it caught up.
    /// DynamoDB Streams may return empty pages while records follow in the shard.
    pub max_empty_pages: u32,
    pub empty_page_backoff: Duration,
    /// Pages read from one shard in one pass before the pass moves on, so a busy shard
    /// cannot starve the other shards and the other table; the next pass reads on.
    pub max_pages_per_shard: u32,
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
            max_empty_pages: 4,
            empty_page_backoff: Duration::from_millis(50),
            max_pages_per_shard: 100,
        }
    }
}

/// Passes in a row with failed batches or errors after which `run_until_idle` gives up.
pub const MAX_FAILING_PASSES: u32 = 10;

/// Expired iterators renewed in a row on one shard before its pass gives up.
const MAX_ITERATOR_RENEWALS: u32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(
        "still failing after {passes} passes (last: {last}); the log says more, the checkpoints keep what was applied"
    )]
    StillFailing { passes: u32, last: String },
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
    /// Tables or shards whose pass ended in an error (AWS, checkpoint); the others were
    /// still read, and the next pass tries these again.
    pub errors: usize,
    /// The last of those errors.
    pub last_error: Option<String>,
    /// Checkpoints found past the stream's retention: the records between the checkpoint
    /// and the shard's trim horizon were never applied (see the README on recovery).
    pub trimmed_gaps: usize,
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
        self.errors += other.errors;
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
        self.trimmed_gaps += other.trimmed_gaps;
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        self.last_error = Some(message);
    }

    /// Nothing new was read and nothing failed.
    fn idle(&self) -> bool {
        self.records == 0 && self.failed_batches == 0 && self.errors == 0
    }

    fn failing(&self) -> bool {
        self.failed_batches > 0 || self.errors > 0
    }
}

#[derive(Debug)]
pub struct Poller {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    pipeline: Pipeline,
    config: PollerConfig,
    store: CheckpointStore,
    /// Set once shutdown is asked for: no new batch is started after it.
    stop: watch::Sender<bool>,
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
    /// Open, nothing more to read now (or this pass's page budget is spent).
    CaughtUp,
    /// A batch failed; read again from the checkpoint next pass.
    Failed,
    /// Shutdown was asked for; the last batch read is applied and checkpointed.
    Stopped,
}

impl Poller {
    pub fn new(shared: &aws_config::SdkConfig, pipeline: Pipeline, config: PollerConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            streams: aws_sdk_dynamodbstreams::Client::new(shared),
            store: CheckpointStore::new(config.checkpoint_dir.clone()),
            pipeline,
            config,
            stop: watch::Sender::new(false),
        }
    }

    /// Asks a running `run` or `run_until_idle` to stop once the batch in flight is
    /// applied and checkpointed.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps for `pause`, or less when shutdown is asked for meanwhile.
    async fn pause(&self, pause: Duration) {
        let mut stop = self.stop.subscribe();
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }

    /// Polls until a whole pass finds nothing new (for scripts and tests). Gives up after
    /// [`MAX_FAILING_PASSES`] passes in a row with failed batches or errors, so a sink or
    /// table that stays broken ends the run with an error instead of hanging it;
    /// checkpoints keep what was done. After [`Poller::stop`] it returns once the batch in
    /// flight is checkpointed.
    pub async fn run_until_idle(&self) -> Result<PollReport, PollError> {
        let mut total = PollReport::default();
        let mut failing = 0;
        loop {
            let pass = self.pass().await;
            total.merge(&pass);
            if pass.idle() || self.stopping() {
                return Ok(total);
            }
            if pass.failing() {
                failing += 1;
                if failing >= MAX_FAILING_PASSES {
                    return Err(PollError::StillFailing {
                        passes: failing,
                        last: pass
                            .last_error
                            .unwrap_or_else(|| "a batch item failure".to_owned()),
                    });
                }
                tokio::time::sleep(self.config.idle_sleep).await;
            } else {
                failing = 0;
            }
        }
    }

    /// Polls until `shutdown` resolves, pausing when caught up. A batch in flight when
    /// shutdown comes is finished and checkpointed first: nothing handed to the sinks is
    /// abandoned halfway, and nothing acknowledged is lost.
    pub async fn run(&self, shutdown: impl std::future::Future<Output = ()>) -> PollReport {
        let mut total = PollReport::default();
        tokio::pin!(shutdown);
        loop {
            let pass = {
                let pass = self.pass();
                tokio::pin!(pass);
                loop {
                    tokio::select! {
                        report = &mut pass => break report,
                        () = &mut shutdown, if !self.stopping() => {
                            tracing::info!("shutdown asked for; finishing the batch in flight");
                            self.stop();
                        }
                    }
                }
            };
            total.merge(&pass);
            if self.stopping() {
                return total;
            }
            // New records: read on at once. Failures wait, so a sink that is down is not hammered.
            if pass.records > 0 && !pass.failing() {
                continue;
            }
            tokio::select! {
                () = &mut shutdown => return total,
                () = tokio::time::sleep(self.config.idle_sleep) => {}
            }
        }
    }

    /// One pass over both tables. An error on one table is logged and counted in the
    /// report, and the other table is still read: one broken table never starves the other.
    pub async fn pass(&self) -> PollReport {
        let mut report = PollReport::default();
        for (table, entity) in [
            (self.config.products_table.clone(), Entity::Products),
            (self.config.purchases_table.clone(), Entity::Purchases),
        ] {
            if self.stopping() {
                break;
            }
            if let Err(e) = self.poll_table(&table, entity, &mut report).await {
                tracing::error!(table, error = %e, "table not polled this pass; the next pass tries again");
                report.error(format!("table {table}: {e}"));
            }
        }
        report
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
                // A page that names no new shard would loop forever.
                Some(last) if start.as_deref() != Some(last) => start = Some(last.to_owned()),
                _ => break,
            }
        }
        Ok(shards)
    }

    async fn poll_table(
        &self,
        table: &str,
        entity: Entity,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let arn = self.stream_arn(table).await?;
        let shards = self.shards(&arn).await?;
        let mut cp = self.store.load(table, &arn)?;
        let known: HashSet<&str> = shards.iter().filter_map(|s| s.shard_id()).collect();
        self.note_vanished_shards(table, &known, &mut cp, report)?;
        let mut done: HashSet<String> = HashSet::new();
        // Parents before children: keep sweeping until no shard becomes eligible.
        loop {
            let mut progressed = false;
            for shard in &shards {
                if self.stopping() {
                    return Ok(());
                }
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
                // An error ends this shard's pass only; its children wait for a later pass
                // (it is not finished), the other shards are still read.
                if let Err(e) = self
                    .poll_shard(table, entity, &arn, id, &mut cp, report)
                    .await
                {
                    tracing::error!(table, shard = id, error = %e, "shard not polled further this pass; the next pass tries again");
                    report.error(format!("table {table}, shard {id}: {e}"));
                }
            }
            if !progressed {
                break;
            }
        }
        Ok(())
    }

    /// A checkpointed shard that is unfinished but no longer in the stream was trimmed
    /// (past the 24 h retention) before the poller read it to its end: a gap.
    fn note_vanished_shards(
        &self,
        table: &str,
        known: &HashSet<&str>,
        cp: &mut TableCheckpoint,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        // A stream always has an open shard; an empty listing says nothing about gaps.
        if known.is_empty() {
            return Ok(());
        }
        let vanished: Vec<String> = cp
            .shards
            .iter()
            .filter(|(id, c)| !c.finished && !known.contains(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect();
        for shard in &vanished {
            let entry = cp.shards.entry(shard.clone()).or_default();
            log_gap(
                table,
                shard,
                entry.last_seq.as_deref(),
                "the shard is gone from the stream",
            );
            entry.trimmed_gap = Some(TrimmedGap {
                after: entry.last_seq.clone(),
            });
            // Nothing of it can be read any more; its children may go on.
            entry.finished = true;
            report.trimmed_gaps += 1;
        }
        if !vanished.is_empty() {
            self.store.save(table, cp)?;
        }
        Ok(())
    }

    /// Records a trimmed gap at `shard`'s checkpoint and moves it to the trim horizon,
    /// saved at once so the gap is counted and logged once, not on every pass.
    fn take_gap(
        &self,
        table: &str,
        shard: &str,
        cp: &mut TableCheckpoint,
        report: &mut PollReport,
    ) -> Result<(), PollError> {
        let entry = cp.shards.entry(shard.to_owned()).or_default();
        let after = entry.last_seq.take();
        log_gap(
            table,
            shard,
            after.as_deref(),
            "the records after the checkpoint were trimmed",
        );
        entry.trimmed_gap = Some(TrimmedGap { after });
        report.trimmed_gaps += 1;
        self.store.save(table, cp)?;
        Ok(())
    }

    /// An iterator right after the shard's checkpoint (at its trim horizon without one).
    /// A checkpoint past the stream's retention is a gap: it is recorded once per shard
    /// and pass, and reading resumes at the trim horizon.
    async fn iterator(
        &self,
        table: &str,
        arn: &str,
        shard: &str,
        cp: &mut TableCheckpoint,
        report: &mut PollReport,
        gap_taken: &mut bool,
    ) -> Result<Option<String>, PollError> {
        let last = cp.shards.get(shard).and_then(|c| c.last_seq.clone());
        let request = self
            .streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard);
        let request = match last.as_deref() {
            Some(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        match request.send().await {
            Ok(out) => Ok(out.shard_iterator().map(str::to_owned)),
            Err(e)
                if !*gap_taken
                    && e.as_service_error()
                        .is_some_and(|s| s.is_trimmed_data_access_exception()) =>
            {
                *gap_taken = true;
                self.take_gap(table, shard, cp, report)?;
                let out = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(arn)
                    .shard_id(shard)
                    .shard_iterator_type(ShardIteratorType::TrimHorizon)
                    .send()
                    .await
                    .map_err(aws)?;
                Ok(out.shard_iterator().map(str::to_owned))
            }
            Err(e) => Err(aws(e)),
        }
    }

    async fn poll_shard(
        &self,
        table: &str,
        entity: Entity,
        arn: &str,
        shard: &str,
        cp: &mut TableCheckpoint,
        report: &mut PollReport,
    ) -> Result<ShardEnd, PollError> {
        cp.shards.entry(shard.to_owned()).or_default();
        let mut gap_taken = false;
        let mut iterator = self
            .iterator(table, arn, shard, cp, report, &mut gap_taken)
            .await?;
        let (mut throttled, mut renewed, mut empty, mut pages) = (0u32, 0u32, 0u32, 0u32);
        while let Some(it) = iterator.take() {
            if self.stopping() {
                return Ok(ShardEnd::Stopped);
            }
            if pages >= self.config.max_pages_per_shard {
                return Ok(ShardEnd::CaughtUp);
            }
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
                    if service.is_some_and(|s| s.is_expired_iterator_exception())
                        && renewed < MAX_ITERATOR_RENEWALS
                    {
                        renewed += 1;
                        iterator = self
                            .iterator(table, arn, shard, cp, report, &mut gap_taken)
                            .await?;
                        continue;
                    }
                    if service.is_some_and(|s| s.is_trimmed_data_access_exception()) && !gap_taken {
                        // The iterator's position was trimmed before it was used.
                        gap_taken = true;
                        self.take_gap(table, shard, cp, report)?;
                        iterator = self
                            .iterator(table, arn, shard, cp, report, &mut gap_taken)
                            .await?;
                        continue;
                    }
                    if service.is_some_and(|s| s.is_limit_exceeded_exception())
                        && throttled < self.config.max_throttle_retries
                    {
                        throttled += 1;
                        let backoff = Duration::from_millis(100 * (1u64 << throttled.min(6)));
                        tracing::warn!(table, shard, ?backoff, "throttled; backing off");
                        self.pause(backoff).await;
                        iterator = Some(it);
                        continue;
                    }
                    return Err(aws(e));
                }
            };
            pages += 1;
            throttled = 0;
            renewed = 0;
            let records = out.records();
            let next = out.next_shard_iterator().map(str::to_owned);
            if records.is_empty() {
                let Some(next) = next else {
                    cp.shards.entry(shard.to_owned()).or_default().finished = true;
                    self.store.save(table, cp)?;
                    return Ok(ShardEnd::Finished);
                };
                // An empty page is not the end: records may follow it in the shard.
                empty += 1;
                if empty >= self.config.max_empty_pages {
                    return Ok(ShardEnd::CaughtUp);
                }
                let factor = 1u32 << (empty - 1).min(5);
                self.pause(self.config.empty_page_backoff.saturating_mul(factor))
                    .await;
                iterator = Some(next);
                continue;
            }
            empty = 0;
            let event = json!({ "Records": records.iter().map(|r| lambda_record(r, arn)).collect::<Vec<_>>() });
            let batch = Batch::from_json(event).map_err(|e| PollError::Aws(e.to_string()))?;
            let batch_report = cloudpf_cdc::handle(entity, batch, &self.pipeline).await;
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

/// A trimmed gap, loudly: changes were lost to the index and the lake.
fn log_gap(table: &str, shard: &str, last_checkpoint: Option<&str>, what: &str) {
    tracing::error!(
        table,
        shard,
        last_checkpoint = last_checkpoint.unwrap_or("(none: the shard's start)"),
        "TRIMMED GAP: {what} (older than the stream's 24 h retention) before they were read; \
         those changes never reached the index or the lake. Resuming at the trim horizon. \
         Recover by re-seeding or replaying the table's current items (see the README)"
    );
}
