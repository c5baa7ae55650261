//! Backfill: the items a table already held before its stream was read, fed through the
//! same handlers as the stream (issue #13).
//!
//! DynamoDB Streams carry changes only from the moment a stream is enabled, so a shop that
//! adopts cloudpf with a catalog and an order history gets them here: from a parallel
//! `Scan` of the table (a `Query` per tenant with `--tenant`), or from a point-in-time
//! export in S3 (`DYNAMODB_JSON`, as `ExportTableToPointInTime` writes it). Each item
//! becomes a synthetic `INSERT` stream record and goes through [`cloudpf_cdc::handle`]:
//! the same decoding, dead letters, index and lake as a stream record.
//!
//! **Versions.** DynamoDB stream sequence numbers are 21 to 40 digits long, so every one
//! is at least 10^20. A backfilled item's version has 20 digits: the minute the run
//! started (since 2020), the part it was read in and its position in that part. So a
//! stream record always wins over a backfilled copy of the same item, whichever reaches
//! the index or the lake first (a backfill racing the live stream never overwrites a
//! newer change, nor resurrects a removed item: both engines keep tombstones), and a
//! later run's copy wins over an earlier run's.
//!
//! **Resuming.** A run is split in parts (scan segments, tenants, export files); after
//! each page is durable the part's position (`LastEvaluatedKey`, or the line reached in
//! an export file) is checkpointed in `<checkpoint dir>/backfill-<table>.json`. The same
//! command resumes an interrupted run where each part stopped, with the same versions;
//! a page read again is written under the same lake keys and is stale in the index, so
//! nothing is duplicated. Running a finished backfill again reads everything again with
//! the same versions: the index does not change and the lake objects are rewritten in
//! place.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use cloudpf_cdc::{Batch, Entity, Incoming, Pipeline};
use cloudpf_lake::{ObjectKey, ObjectSink};
use cloudpf_model::{Document, Product, Purchase, SeqNo, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{Mutex, watch};

use crate::checkpoint::write_atomically;

/// Pages a part retries after a batch item failure (an index or a lake that is down)
/// before the part gives up; the checkpoint keeps what was done.
const PAGE_ATTEMPTS: u32 = 6;
/// The first pause before a page is retried; doubled on each attempt.
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(250);
/// Parts of one run: the part number has four digits of a version.
pub const MAX_PARTS: usize = 9_999;
/// Items of one part: the position has eight digits of a version.
pub const MAX_ITEMS_PER_PART: u64 = 99_999_999;
/// The longest line of an export data file read: a DynamoDB item is at most 400 KB, and
/// its DynamoDB JSON a few times that.
pub const MAX_EXPORT_LINE_BYTES: u64 = 4 << 20;
/// The largest export data file read (compressed); DynamoDB writes many smaller ones.
pub const MAX_EXPORT_FILE_BYTES: usize = 1 << 30;

/// 2020-01-01T00:00:00Z: versions count minutes from here (eight digits last until 2210).
const VERSION_EPOCH_SECS: i64 = 1_577_836_800;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("dynamodb table {table}: {reason}")]
    Table { table: String, reason: String },
    #[error("export: {0}")]
    Export(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("backfill checkpoint: {0}")]
    Checkpoint(#[from] std::io::Error),
}

impl BackfillError {
    /// Whether the same command may succeed later unchanged (throttling, a store that is
    /// down); the checkpoint keeps what was done either way.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            BackfillError::Table { .. } | BackfillError::Checkpoint(_)
        )
    }
}

/// Where the items come from.
#[derive(Debug, Clone)]
pub enum BackfillFrom {
    /// The table itself: `segments` parallel `Scan` segments, or one `Query` per tenant
    /// when tenants are given.
    Table { segments: u32 },
    /// A point-in-time export (`DYNAMODB_JSON`): `dir` is the key prefix of the export's
    /// own directory (`<export prefix>/AWSDynamoDB/<export id>/`, holding
    /// `manifest-summary.json`) in `store` (the export bucket, or a local copy).
    Export {
        store: Arc<dyn ObjectSink>,
        dir: String,
        /// Where the export is, as the operator named it (`s3://…` or a directory): it
        /// identifies the run in the checkpoint.
        location: String,
    },
}

#[derive(Debug, Clone)]
pub struct BackfillConfig {
    /// The DynamoDB table (its name; also names the checkpoint file).
    pub table: String,
    pub entity: Entity,
    pub from: BackfillFrom,
    /// Only these tenants (all when empty).
    pub tenants: Vec<TenantId>,
    /// Items per page: per `Scan`/`Query` call, per handler batch and per checkpoint.
    pub page_size: i32,
    /// Parts read at once.
    pub parallel: usize,
    pub checkpoint_dir: PathBuf,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackfillReport {
    pub parts: usize,
    /// Parts found finished in the checkpoint of an interrupted run, and skipped.
    pub parts_already_done: usize,
    /// Parts that continued from an interrupted run's position.
    pub parts_resumed: usize,
    pub pages: u64,
    /// Items (export lines) handed to the handler by this run.
    pub items: u64,
    pub applied: u64,
    /// Items the index already held at the same or a newer version.
    pub stale: u64,
    pub dead_lettered: u64,
    /// Export lines of other tenants than the ones asked for.
    pub skipped: u64,
    /// Parts that stopped on an error, with it; the checkpoint keeps their position.
    pub failed_parts: Vec<String>,
    /// The run was asked to stop; the checkpoint keeps each part's position.
    pub stopped: bool,
}

/// Where a run is, persisted after every durable page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillCheckpoint {
    /// What the run reads, as asked; a different ask starts a new run.
    pub source: String,
    /// The minute (since 2020) the run started: the first digits of its versions.
    pub run: u64,
    pub parts: BTreeMap<String, PartCheckpoint>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartCheckpoint {
    /// Items (export lines) of the part done; the next one's position.
    pub items: u64,
    /// Where the next page starts: the `LastEvaluatedKey` (DynamoDB JSON) of a scan or query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<serde_json::Value>,
    pub done: bool,
}

/// One unit of work, read in order and checkpointed on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Segment { segment: u32, of: u32 },
    Tenant(TenantId),
    ExportFile { key: String, items: u64 },
}

impl Part {
    /// The part's name in the checkpoint and in its records' stream label.
    fn label(&self) -> String {
        match self {
            Part::Segment { segment, of } => format!("segment-{segment}-of-{of}"),
            Part::Tenant(t) => format!("tenant-{t}"),
            Part::ExportFile { key, .. } => {
                let name = key.rsplit('/').next().unwrap_or(key);
                format!("export-{}", name.split('.').next().unwrap_or(name))
            }
        }
    }
}

/// The version of the item at `position` of part `part` in run `run`: 20 digits, below
/// every DynamoDB stream sequence number (21 digits or more).
pub fn backfill_version(run: u64, part: usize, position: u64) -> Result<SeqNo, BackfillError> {
    if run > 99_999_999 || part > MAX_PARTS || position > MAX_ITEMS_PER_PART {
        return Err(BackfillError::TooLarge(format!(
            "a backfill version needs a run minute below 10^8, at most {MAX_PARTS} parts and \
             {MAX_ITEMS_PER_PART} items per part (got minute {run}, part {part}, item {position}); \
             use more segments or back up fewer tenants at once"
        )));
    }
    SeqNo::parse(&format!("{run:08}{part:04}{position:08}")).map_err(BackfillError::TooLarge)
}

/// The run minute of `now`.
fn run_minute(now: DateTime<Utc>) -> u64 {
    u64::try_from((now.timestamp() - VERSION_EPOCH_SECS).max(0) / 60).unwrap_or(0)
}

#[derive(Serialize)]
struct StreamImage<'a> {
    #[serde(rename = "ApproximateCreationDateTime")]
    time: i64,
    #[serde(rename = "Keys")]
    keys: BTreeMap<&'a str, &'a RawValue>,
    #[serde(rename = "NewImage")]
    new_image: &'a RawValue,
    #[serde(rename = "SequenceNumber")]
    sequence_number: &'a str,
    #[serde(rename = "StreamViewType")]
    view: &'static str,
}

#[derive(Serialize)]
struct SyntheticRecord<'a> {
    #[serde(rename = "eventName")]
    event_name: &'static str,
    #[serde(rename = "eventSource")]
    event_source: &'static str,
    #[serde(rename = "eventSourceARN")]
    source: &'a str,
    dynamodb: StreamImage<'a>,
}

/// The `INSERT` stream record of `item` (DynamoDB JSON), as Lambda would deliver it, with
/// the backfill version `seq`. The keys are taken from the item; one without them is
/// refused by the handler's decoding like any stream record without keys.
fn synthetic_insert(
    item: &RawValue,
    key_name: &str,
    source: &str,
    seq: &SeqNo,
    time: i64,
) -> Incoming {
    let undecodable = |reason: String| Incoming::Undecodable {
        raw: serde_json::value::to_raw_value(item.get())
            .unwrap_or_else(|_| RawValue::NULL.to_owned()),
        reason,
        source: Some(source.to_owned()),
        sequence_number: Some(seq.as_str().to_owned()),
    };
    let attributes: HashMap<String, &RawValue> = match serde_json::from_str(item.get()) {
        Ok(map) => map,
        Err(e) => return undecodable(format!("backfilled item is not a DynamoDB JSON item: {e}")),
    };
    let keys = ["tenant_id", key_name]
        .into_iter()
        .filter_map(|k| attributes.get(k).map(|v| (k, *v)))
        .collect();
    let record = SyntheticRecord {
        event_name: "INSERT",
        event_source: "aws:dynamodb",
        source,
        dynamodb: StreamImage {
            time,
            keys,
            new_image: item,
            sequence_number: seq.as_str(),
            view: "NEW_AND_OLD_IMAGES",
        },
    };
    match serde_json::value::to_raw_value(&record) {
        Ok(raw) => Incoming::from_raw(raw),
        Err(e) => undecodable(format!(
            "backfilled item cannot be written as a record: {e}"
        )),
    }
}

/// The key attribute of `entity`'s table besides `tenant_id`.
fn key_name(entity: Entity) -> &'static str {
    match entity {
        Entity::Products => Product::KEY,
        Entity::Purchases => Purchase::KEY,
    }
}

/// A line of an export data file.
#[derive(Deserialize)]
struct ExportLine<'a> {
    #[serde(rename = "Item", borrow)]
    item: &'a RawValue,
}

/// A line of `manifest-files.json`.
#[derive(Deserialize)]
struct ManifestFile {
    #[serde(rename = "dataFileS3Key")]
    data_file_s3_key: String,
    #[serde(rename = "itemCount", default)]
    item_count: u64,
}

#[derive(Deserialize)]
struct ManifestSummary {
    #[serde(rename = "exportTime", default)]
    export_time: Option<DateTime<Utc>>,
    #[serde(rename = "outputFormat", default)]
    output_format: Option<String>,
    #[serde(rename = "itemCount", default)]
    item_count: Option<u64>,
}

/// One page read from a part: the items (DynamoDB JSON), where the next page starts, and
/// how many positions it used (export lines of other tenants use one and are skipped).
struct Page {
    items: Vec<(u64, Box<RawValue>)>,
    next: Option<serde_json::Value>,
    positions: u64,
    skipped: u64,
    last: bool,
}

/// A backfill run (see the module documentation).
#[derive(Debug)]
pub struct Backfill {
    dynamodb: aws_sdk_dynamodb::Client,
    pipeline: Pipeline,
    config: BackfillConfig,
    stop: watch::Sender<bool>,
}

/// The state parts share while a run goes.
struct Shared<'a> {
    checkpoint: Mutex<BackfillCheckpoint>,
    queue: std::sync::Mutex<VecDeque<(usize, Part)>>,
    report: Mutex<BackfillReport>,
    done_items: AtomicU64,
    total: Option<u64>,
    progress: &'a (dyn Fn(u64, Option<u64>) + Sync),
    event_time: i64,
}

impl Backfill {
    pub fn new(shared: &aws_config::SdkConfig, pipeline: Pipeline, config: BackfillConfig) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(shared),
            pipeline,
            config,
            stop: watch::Sender::new(false),
        }
    }

    /// Asks a running backfill to stop once each part's page in flight is durable and
    /// checkpointed.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.config
            .checkpoint_dir
            .join(format!("backfill-{}.json", self.config.table))
    }

    /// What this run reads, as asked (the checkpoint belongs to this ask).
    fn source_description(&self) -> String {
        let mut tenants: Vec<&str> = self.config.tenants.iter().map(TenantId::as_str).collect();
        tenants.sort_unstable();
        let tenants = tenants.join(",");
        match &self.config.from {
            BackfillFrom::Table { segments } if tenants.is_empty() => {
                format!("scan {} segments={segments}", self.config.table)
            }
            BackfillFrom::Table { .. } => format!("query {} tenants={tenants}", self.config.table),
            BackfillFrom::Export { location, .. } => {
                format!("export {location} tenants={tenants}")
            }
        }
    }

    fn table_error(&self, e: impl std::fmt::Display) -> BackfillError {
        BackfillError::Table {
            table: self.config.table.clone(),
            reason: e.to_string(),
        }
    }

    /// The parts of the run, an estimate of the items in all (when one is known) and the
    /// time the synthetic records carry.
    async fn plan(&self) -> Result<(Vec<Part>, Option<u64>, Option<i64>), BackfillError> {
        match &self.config.from {
            BackfillFrom::Table { segments } if self.config.tenants.is_empty() => {
                let of = (*segments).clamp(1, u32::try_from(MAX_PARTS).unwrap_or(u32::MAX));
                let described = self
                    .dynamodb
                    .describe_table()
                    .table_name(&self.config.table)
                    .send()
                    .await
                    .map_err(|e| self.table_error(DisplayErrorContext(e)))?;
                // DynamoDB refreshes ItemCount about every six hours: an estimate for the ETA.
                let total = described
                    .table()
                    .and_then(|t| t.item_count())
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|n| *n > 0);
                let parts = (0..of)
                    .map(|segment| Part::Segment { segment, of })
                    .collect();
                Ok((parts, total, None))
            }
            BackfillFrom::Table { .. } => {
                if self.config.tenants.len() > MAX_PARTS {
                    return Err(BackfillError::TooLarge(format!(
                        "at most {MAX_PARTS} tenants per backfill run"
                    )));
                }
                let mut seen = HashSet::new();
                let parts = self
                    .config
                    .tenants
                    .iter()
                    .filter(|t| seen.insert(t.as_str()))
                    .map(|t| Part::Tenant(t.clone()))
                    .collect();
                Ok((parts, None, None))
            }
            BackfillFrom::Export { store, dir, .. } => self.plan_export(store.as_ref(), dir).await,
        }
    }

    async fn plan_export(
        &self,
        store: &dyn ObjectSink,
        dir: &str,
    ) -> Result<(Vec<Part>, Option<u64>, Option<i64>), BackfillError> {
        let read = |name: &str| {
            let key = format!("{dir}{name}");
            async move {
                let key = ObjectKey::parse(&key)
                    .map_err(|e| BackfillError::Export(format!("{key}: {e}")))?;
                store
                    .get(&key)
                    .await
                    .map_err(|e| BackfillError::Export(format!("{key}: {e}")))?
                    .ok_or_else(|| {
                        BackfillError::Export(format!(
                            "{key} not found: is this the export's directory (…/AWSDynamoDB/<export id>/), and has the export completed?"
                        ))
                    })
            }
        };
        let summary: ManifestSummary =
            serde_json::from_slice(&read("manifest-summary.json").await?)
                .map_err(|e| BackfillError::Export(format!("manifest-summary.json: {e}")))?;
        if let Some(format) = summary.output_format.as_deref()
            && format != "DYNAMODB_JSON"
        {
            return Err(BackfillError::Export(format!(
                "the export is {format}; export the table as DYNAMODB_JSON"
            )));
        }
        let manifest = read("manifest-files.json").await?;
        let mut parts = Vec::new();
        for (n, line) in manifest.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let file: ManifestFile = serde_json::from_slice(line).map_err(|e| {
                BackfillError::Export(format!("manifest-files.json line {}: {e}", n + 1))
            })?;
            // Data files sit in the export's own `data/` directory; the manifest names them
            // by their key in the bucket, which a local copy of the export does not share.
            let name = file.data_file_s3_key.rsplit('/').next().unwrap_or_default();
            parts.push(Part::ExportFile {
                key: format!("{dir}data/{name}"),
                items: file.item_count,
            });
        }
        if parts.len() > MAX_PARTS {
            return Err(BackfillError::TooLarge(format!(
                "the export has {} data files; at most {MAX_PARTS} per run",
                parts.len()
            )));
        }
        let total = summary.item_count.or_else(|| {
            Some(
                parts
                    .iter()
                    .map(|p| match p {
                        Part::ExportFile { items, .. } => *items,
                        _ => 0,
                    })
                    .sum(),
            )
        });
        Ok((parts, total, summary.export_time.map(|t| t.timestamp())))
    }

    fn load_checkpoint(
        &self,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(BackfillCheckpoint, bool), BackfillError> {
        let fresh = || BackfillCheckpoint {
            source: source.to_owned(),
            run: run_minute(now),
            parts: BTreeMap::new(),
        };
        let found: Option<BackfillCheckpoint> = match std::fs::read(self.checkpoint_path()) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        Ok(match found {
            Some(cp) if cp.source == source => {
                let finished = !cp.parts.is_empty() && cp.parts.values().all(|p| p.done);
                if finished {
                    // Read everything again with the same versions: an unchanged table
                    // changes nothing, and the lake objects are rewritten in place.
                    (
                        BackfillCheckpoint {
                            parts: BTreeMap::new(),
                            ..cp
                        },
                        false,
                    )
                } else {
                    (cp, true)
                }
            }
            Some(cp) => {
                tracing::warn!(previous = %cp.source, now = %source, "the checkpoint belongs to another backfill; starting a new run");
                (fresh(), false)
            }
            None => (fresh(), false),
        })
    }

    async fn save(&self, checkpoint: &BackfillCheckpoint) -> Result<(), BackfillError> {
        let bytes = serde_json::to_vec_pretty(checkpoint).map_err(std::io::Error::other)?;
        write_atomically(&self.checkpoint_path(), &bytes)?;
        Ok(())
    }

    /// Runs (or resumes) the backfill. `progress` is called after each page with the items
    /// done (including those of an interrupted run) and the estimated total.
    pub async fn run(
        &self,
        progress: &(dyn Fn(u64, Option<u64>) + Sync),
    ) -> Result<BackfillReport, BackfillError> {
        let now = Utc::now();
        let source = self.source_description();
        let (parts, total, export_time) = self.plan().await?;
        let (checkpoint, resuming) = self.load_checkpoint(&source, now)?;
        let event_time = export_time
            .unwrap_or(VERSION_EPOCH_SECS + i64::try_from(checkpoint.run).unwrap_or(0) * 60);
        let mut report = BackfillReport {
            parts: parts.len(),
            ..BackfillReport::default()
        };
        let mut done_items = 0;
        let mut queue = VecDeque::new();
        for (index, part) in parts.into_iter().enumerate() {
            let position = checkpoint.parts.get(&part.label());
            done_items += position.map_or(0, |p| p.items);
            match position {
                Some(p) if p.done => report.parts_already_done += 1,
                Some(p) if p.items > 0 => {
                    report.parts_resumed += 1;
                    queue.push_back((index, part));
                }
                _ => queue.push_back((index, part)),
            }
        }
        if resuming {
            tracing::info!(table = %self.config.table, done = report.parts_already_done, resumed = report.parts_resumed, "resuming an interrupted backfill");
        }
        self.save(&checkpoint).await?;
        let shared = Shared {
            checkpoint: Mutex::new(checkpoint),
            queue: std::sync::Mutex::new(queue),
            report: Mutex::new(report),
            done_items: AtomicU64::new(done_items),
            total,
            progress,
            event_time,
        };
        progress(done_items, total);
        let workers = (0..self.config.parallel.max(1)).map(|_| self.worker(&shared));
        futures_util::future::join_all(workers).await;
        let mut report = shared.report.into_inner();
        report.stopped = self.stopping();
        Ok(report)
    }

    /// Takes parts off the queue until it is empty (or the run stops).
    async fn worker(&self, shared: &Shared<'_>) {
        loop {
            if self.stopping() {
                return;
            }
            let next = shared
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop_front();
            let Some((index, part)) = next else { return };
            if let Err(e) = self.run_part(index, &part, shared).await {
                tracing::error!(table = %self.config.table, part = %part.label(), error = %e, "backfill part stopped; its checkpoint keeps its position");
                shared
                    .report
                    .lock()
                    .await
                    .failed_parts
                    .push(format!("{}: {e}", part.label()));
            }
        }
    }

    async fn run_part(
        &self,
        index: usize,
        part: &Part,
        shared: &Shared<'_>,
    ) -> Result<(), BackfillError> {
        let label = part.label();
        let source = format!("cloudpf-backfill/{}/{label}", self.config.table);
        let (run, start) = {
            let cp = shared.checkpoint.lock().await;
            (cp.run, cp.parts.get(&label).cloned().unwrap_or_default())
        };
        let mut position = start.items;
        let mut next = start.next;
        // An export file is read once per run of this part, then paged from memory.
        let mut export = match part {
            Part::ExportFile { key, .. } => Some(self.open_export_file(key, position).await?),
            _ => None,
        };
        loop {
            if self.stopping() {
                return Ok(());
            }
            let page = match (part, &mut export) {
                (Part::Segment { segment, of }, _) => {
                    self.scan_page(*segment, *of, next.take()).await?
                }
                (Part::Tenant(t), _) => self.query_page(t, next.take()).await?,
                (Part::ExportFile { .. }, Some(lines)) => self.export_page(lines)?,
                (Part::ExportFile { .. }, None) => return internal("an export file not opened"),
            };
            let mut records = Vec::with_capacity(page.items.len());
            for (offset, item) in &page.items {
                let seq = backfill_version(run, index, position + offset)?;
                records.push(synthetic_insert(
                    item,
                    key_name(self.config.entity),
                    &source,
                    &seq,
                    shared.event_time,
                ));
            }
            let (applied, stale, dead) = if records.is_empty() {
                (0, 0, 0)
            } else {
                self.apply_page(Batch { records }).await?
            };
            position += page.positions;
            let items = page.items.len() as u64;
            {
                let mut cp = shared.checkpoint.lock().await;
                cp.parts.insert(
                    label.clone(),
                    PartCheckpoint {
                        items: position,
                        next: page.next.clone(),
                        done: page.last,
                    },
                );
                self.save(&cp).await?;
            }
            {
                let mut report = shared.report.lock().await;
                report.pages += 1;
                report.items += items;
                report.applied += applied;
                report.stale += stale;
                report.dead_lettered += dead;
                report.skipped += page.skipped;
            }
            let done = shared
                .done_items
                .fetch_add(page.positions, Ordering::Relaxed)
                + page.positions;
            (shared.progress)(done, shared.total);
            if page.last {
                return Ok(());
            }
            next = page.next;
        }
    }

    /// Hands one page to the handler, again (with a growing pause) while it reports a
    /// record to redeliver: a page is idempotent. Returns applied, stale, dead-lettered.
    async fn apply_page(&self, batch: Batch) -> Result<(u64, u64, u64), BackfillError> {
        let mut pause = FIRST_RETRY_PAUSE;
        for attempt in 1..=PAGE_ATTEMPTS {
            let report =
                cloudpf_cdc::handle(self.config.entity, batch.clone(), &self.pipeline).await;
            if report.failed_from.is_none() {
                return Ok((
                    report.applied as u64,
                    report.stale as u64,
                    report.dead_lettered as u64,
                ));
            }
            if attempt < PAGE_ATTEMPTS {
                tracing::warn!(table = %self.config.table, attempt, "a backfill page failed; retrying it");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Err(BackfillError::Table {
            table: self.config.table.clone(),
            reason: format!(
                "a page still failed after {PAGE_ATTEMPTS} attempts (the index or the lake is unavailable; the log says why)"
            ),
        })
    }

    fn page_size(&self) -> i32 {
        self.config.page_size.clamp(1, 1000)
    }

    async fn scan_page(
        &self,
        segment: u32,
        of: u32,
        start: Option<serde_json::Value>,
    ) -> Result<Page, BackfillError> {
        let out = self
            .dynamodb
            .scan()
            .table_name(&self.config.table)
            .segment(i32::try_from(segment).unwrap_or(0))
            .total_segments(i32::try_from(of).unwrap_or(1))
            .limit(self.page_size())
            .set_exclusive_start_key(start.map(key_from_json).transpose()?)
            .send()
            .await
            .map_err(|e| self.table_error(DisplayErrorContext(e)))?;
        page_of(out.items(), out.last_evaluated_key())
    }

    async fn query_page(
        &self,
        tenant: &TenantId,
        start: Option<serde_json::Value>,
    ) -> Result<Page, BackfillError> {
        let out = self
            .dynamodb
            .query()
            .table_name(&self.config.table)
            .key_condition_expression("tenant_id = :t")
            .expression_attribute_values(":t", AttributeValue::S(tenant.to_string()))
            .limit(self.page_size())
            .set_exclusive_start_key(start.map(key_from_json).transpose()?)
            .send()
            .await
            .map_err(|e| self.table_error(DisplayErrorContext(e)))?;
        page_of(out.items(), out.last_evaluated_key())
    }

    /// The lines of an export data file from `skip` on (those before it are done).
    async fn open_export_file(&self, key: &str, skip: u64) -> Result<ExportLines, BackfillError> {
        let BackfillFrom::Export { store, .. } = &self.config.from else {
            return internal("an export file in a table backfill");
        };
        let object =
            ObjectKey::parse(key).map_err(|e| BackfillError::Export(format!("{key}: {e}")))?;
        let bytes = store
            .get(&object)
            .await
            .map_err(|e| BackfillError::Export(format!("{key}: {e}")))?
            .ok_or_else(|| {
                BackfillError::Export(format!("{key}: listed in the manifest but not found"))
            })?;
        if bytes.len() > MAX_EXPORT_FILE_BYTES {
            return Err(BackfillError::TooLarge(format!(
                "{key} is {} bytes; at most {MAX_EXPORT_FILE_BYTES} per export data file",
                bytes.len()
            )));
        }
        let mut lines = ExportLines {
            key: key.to_owned(),
            reader: Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
                std::io::Cursor::new(bytes),
            ))),
            line: 0,
            tenants: self
                .config
                .tenants
                .iter()
                .map(|t| t.as_str().to_owned())
                .collect(),
            page_size: u64::try_from(self.page_size()).unwrap_or(100),
        };
        while lines.line < skip {
            if lines.next_line()?.is_none() {
                break;
            }
        }
        Ok(lines)
    }

    fn export_page(&self, lines: &mut ExportLines) -> Result<Page, BackfillError> {
        let mut page = Page {
            items: Vec::new(),
            next: None,
            positions: 0,
            skipped: 0,
            last: false,
        };
        while page.positions < lines.page_size {
            let Some(text) = lines.next_line()? else {
                page.last = true;
                break;
            };
            let offset = page.positions;
            page.positions += 1;
            if text.trim().is_empty() {
                continue;
            }
            let item: Box<RawValue> = match serde_json::from_str::<ExportLine<'_>>(&text) {
                Ok(line) => line.item.to_owned(),
                // Kept whole: the handler dead-letters it with the reason.
                Err(_) => serde_json::value::to_raw_value(&text)
                    .unwrap_or_else(|_| RawValue::NULL.to_owned()),
            };
            if !lines.tenants.is_empty() && !lines.wanted(&item) {
                page.skipped += 1;
                continue;
            }
            page.items.push((offset, item));
        }
        Ok(page)
    }
}

/// A state the planner never creates: a bug, reported instead of a panic.
fn internal<T>(what: &str) -> Result<T, BackfillError> {
    Err(BackfillError::Export(format!("internal error: {what}")))
}

/// An export data file being read line by line.
struct ExportLines {
    key: String,
    reader: Box<dyn BufRead + Send>,
    line: u64,
    tenants: HashSet<String>,
    page_size: u64,
}

impl ExportLines {
    /// The next line, at most [`MAX_EXPORT_LINE_BYTES`] long.
    fn next_line(&mut self) -> Result<Option<String>, BackfillError> {
        let mut buf = Vec::new();
        let read = (&mut self.reader)
            .take(MAX_EXPORT_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                BackfillError::Export(format!("{} line {}: {e}", self.key, self.line + 1))
            })?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        if buf.len() as u64 > MAX_EXPORT_LINE_BYTES {
            return Err(BackfillError::TooLarge(format!(
                "{} line {} is longer than {MAX_EXPORT_LINE_BYTES} bytes",
                self.key, self.line
            )));
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Whether an exported item belongs to one of the tenants asked for.
    fn wanted(&self, item: &RawValue) -> bool {
        #[derive(Deserialize)]
        struct TenantAttr {
            tenant_id: Option<HashMap<String, serde_json::Value>>,
        }
        serde_json::from_str::<TenantAttr>(item.get())
            .ok()
            .and_then(|a| a.tenant_id)
            .and_then(|v| v.get("S").and_then(|s| s.as_str().map(str::to_owned)))
            .is_some_and(|t| self.tenants.contains(&t))
    }
}

/// A `Scan`/`Query` page as items in DynamoDB JSON.
fn page_of(
    items: &[HashMap<String, AttributeValue>],
    last_key: Option<&HashMap<String, AttributeValue>>,
) -> Result<Page, BackfillError> {
    // Through a JSON tree, whose maps are sorted: the SDK's are hash maps, and a page read
    // again must give the same record text (its dead letters are rewritten in place).
    let json = |item: &HashMap<String, AttributeValue>| {
        serde_json::to_value(serde_dynamo::Item::from(item.clone()))
            .and_then(|tree| serde_json::value::to_raw_value(&tree))
            .map_err(|e| BackfillError::Export(format!("item to DynamoDB JSON: {e}")))
    };
    let items = items
        .iter()
        .enumerate()
        .map(|(n, item)| Ok((n as u64, json(item)?)))
        .collect::<Result<Vec<_>, BackfillError>>()?;
    let next = last_key
        .map(|k| serde_json::to_value(serde_dynamo::Item::from(k.clone())))
        .transpose()
        .map_err(|e| BackfillError::Export(format!("LastEvaluatedKey: {e}")))?;
    Ok(Page {
        positions: items.len() as u64,
        last: next.is_none(),
        items,
        next,
        skipped: 0,
    })
}

fn key_from_json(
    value: serde_json::Value,
) -> Result<HashMap<String, AttributeValue>, BackfillError> {
    let item: serde_dynamo::Item = serde_json::from_value(value).map_err(|e| {
        BackfillError::Checkpoint(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a checkpointed LastEvaluatedKey: {e}"),
        ))
    })?;
    Ok(item.into())
}

/// An `s3://bucket/prefix/` location split into bucket and key prefix (ending in `/`).
pub fn parse_s3_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return None;
    }
    Some((bucket.to_owned(), cloudpf_lake::key_prefix(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backfill_version_sorts_below_the_smallest_stream_sequence_number() {
        let smallest_stream = SeqNo::parse(&format!("1{}", "0".repeat(20))).unwrap();
        let largest = backfill_version(99_999_999, MAX_PARTS, MAX_ITEMS_PER_PART).unwrap();
        assert!(largest < smallest_stream);
        let earlier = backfill_version(1000, 9, 5).unwrap();
        let later_run = backfill_version(1001, 0, 0).unwrap();
        assert!(
            earlier < later_run,
            "a later run's copy wins over an earlier run's"
        );
        assert!(backfill_version(1000, MAX_PARTS + 1, 0).is_err());
        assert!(backfill_version(1000, 0, MAX_ITEMS_PER_PART + 1).is_err());
    }

    #[test]
    fn a_synthetic_insert_decodes_like_a_stream_record_with_the_items_keys() {
        let item = RawValue::from_string(
            r#"{"tenant_id":{"S":"acme"},"product_id":{"S":"p-1"},"name":{"S":"Lamp"}}"#.to_owned(),
        )
        .unwrap();
        let seq = backfill_version(3, 1, 2).unwrap();
        let Incoming::Record(record) = synthetic_insert(
            &item,
            "product_id",
            "cloudpf-backfill/t/segment-0-of-1",
            &seq,
            1_700_000_000,
        ) else {
            panic!("not a record")
        };
        let view = record.view().unwrap();
        assert_eq!(view.event_name, "INSERT");
        assert_eq!(view.dynamodb.sequence_number.as_deref(), Some(seq.as_str()));
        assert!(
            view.dynamodb
                .keys
                .unwrap()
                .get()
                .contains(r#""product_id":{"S":"p-1"}"#)
        );

        let not_json = serde_json::value::to_raw_value("{oops").unwrap();
        assert!(matches!(
            synthetic_insert(&not_json, "product_id", "s", &seq, 0),
            Incoming::Undecodable { reason, .. } if reason.contains("not a DynamoDB JSON item")
        ));
    }

    #[test]
    fn s3_urls_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_s3_url("s3://exports/shop/AWSDynamoDB/0123-ab"),
            Some(("exports".to_owned(), "shop/AWSDynamoDB/0123-ab/".to_owned()))
        );
        assert_eq!(
            parse_s3_url("s3://exports"),
            Some(("exports".to_owned(), String::new()))
        );
        assert_eq!(parse_s3_url("exports/x"), None);
    }
}
