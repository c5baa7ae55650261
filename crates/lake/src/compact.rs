//! Compaction: a partition's many small objects (one per handler batch) rewritten as one,
//! so Athena and the embedded engine open one object per tenant-day instead of thousands.
//!
//! It is safe next to running handlers and after an interruption because:
//! - only the objects listed before the compacted object was written are removed, and only
//!   after it was written. A handler write landing meanwhile is a new key (or a retried
//!   batch rewriting its own key with the same rows), so nothing written is lost;
//! - rows are copied byte for byte, exact duplicates dropped. Readers already collapse
//!   identical rows (the views' `DISTINCT`, as for a batch delivered twice), so while the
//!   old objects and the new one both exist (during a run, or after a run was killed
//!   between writing and removing) every report is the same;
//! - the compacted object's name derives from the keys it replaces, so a run repeated
//!   after an interruption writes the same bytes under the same name, or folds the
//!   leftovers into a new one.
//!
//! Memory is bounded by the size of one compacted object: a partition larger than
//! [`CompactOptions::max_object_bytes`] (uncompressed) becomes several objects, the full
//! ones *sealed* (never compacted again).

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;

use chrono::NaiveDate;
use cloudpf_model::TenantId;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use futures_util::{StreamExt, TryStreamExt, stream};
use sha2::{Digest, Sha256};

use crate::encode::COMPACTED_GZIP_LEVEL;
use crate::layout::{Dataset, ObjectName};
use crate::sink::{ObjectKey, ObjectSink, SinkError};

/// Objects read at once while compacting one partition.
const GET_CONCURRENCY: usize = 16;
/// Partitions compacted at once.
const PARTITION_CONCURRENCY: usize = 4;

/// What to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Only these tenants; empty for every tenant in the lake.
    pub tenants: Vec<TenantId>,
    /// Only date partitions strictly before this date (today's partitions are still being
    /// written to); `None` for every date. The undated tombstones are always compacted.
    pub before: Option<NaiveDate>,
    /// Uncompressed bytes of one compacted object at most (a single larger row still
    /// gets an object of its own).
    pub max_object_bytes: usize,
    /// No partition is started after this instant (a Lambda's time limit); the next run
    /// goes on where this one stopped, since compacted partitions are skipped.
    pub deadline: Option<std::time::Instant>,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            tenants: Vec::new(),
            before: None,
            max_object_bytes: 512 << 20,
            deadline: None,
        }
    }
}

/// The objects of one partition of one dataset, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub dataset: Dataset,
    pub tenant: TenantId,
    /// `None` for the undated tombstones.
    pub dt: Option<NaiveDate>,
    /// Every object written by cloudpf in the partition, in key (stream) order.
    pub keys: Vec<ObjectKey>,
}

/// What compacting one partition did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Compacted {
    pub dataset: &'static str,
    pub tenant: String,
    pub dt: Option<NaiveDate>,
    /// Objects read and then removed.
    pub inputs: usize,
    /// Objects written.
    pub outputs: Vec<String>,
    /// Rows written (header rows not counted).
    pub rows: u64,
    /// Rows dropped because an identical row was already written.
    pub duplicates: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    /// The object store failed; running the compaction again may succeed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// An object cannot be read as this dataset's format; its partition is left as it is.
    #[error("{key}: {reason}")]
    Unreadable { key: ObjectKey, reason: String },
}

impl CompactError {
    pub fn is_retryable(&self) -> bool {
        match self {
            CompactError::Sink(e) => e.is_retryable(),
            CompactError::Unreadable { .. } => false,
        }
    }
}

/// The result of a compaction run.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Partitions looked at.
    pub partitions: usize,
    pub compacted: Vec<Compacted>,
    /// Partitions that were left as they are, and why.
    pub failed: Vec<(String, String)>,
    /// Partitions not looked at because the deadline passed.
    pub unfinished: usize,
}

impl Summary {
    pub fn objects_removed(&self) -> usize {
        self.compacted.iter().map(|c| c.inputs).sum()
    }

    pub fn objects_written(&self) -> usize {
        self.compacted.iter().map(|c| c.outputs.len()).sum()
    }
}

/// Compacts the lake behind an [`ObjectSink`].
#[derive(Debug, Clone)]
pub struct Compactor {
    sink: Arc<dyn ObjectSink>,
    options: CompactOptions,
}

/// `(tenant, dt)` of a key of `dataset`, when the key is in the documented layout and its
/// name is one cloudpf writes; other objects are never touched.
fn locate(dataset: Dataset, key: &ObjectKey) -> Option<(TenantId, Option<NaiveDate>)> {
    let rest = key
        .as_str()
        .strip_prefix(dataset.prefix())?
        .strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let (tenant, dt, file) = match (dataset, parts.as_slice()) {
        (Dataset::PurchaseTombstones, [tenant, file]) => (*tenant, None, *file),
        (Dataset::PurchaseTombstones, _) => return None,
        (_, [tenant, dt, file]) => {
            let dt = NaiveDate::parse_from_str(dt.strip_prefix("dt=")?, "%Y-%m-%d").ok()?;
            (*tenant, Some(dt), *file)
        }
        _ => return None,
    };
    let tenant = TenantId::parse(tenant.strip_prefix("tenant_id=")?).ok()?;
    let stem = file.strip_suffix(&format!(".{}", dataset.extension()))?;
    ObjectName::parse(stem)?;
    Some((tenant, dt))
}

fn stem(dataset: Dataset, key: &ObjectKey) -> &str {
    let file = key.as_str().rsplit('/').next().unwrap_or_default();
    file.strip_suffix(&format!(".{}", dataset.extension()))
        .unwrap_or(file)
}

fn unreadable(key: &ObjectKey, reason: impl std::fmt::Display) -> CompactError {
    CompactError::Unreadable {
        key: key.clone(),
        reason: reason.to_string(),
    }
}

/// The compacted objects of one partition, written as rows arrive.
struct Output {
    dataset: Dataset,
    max_bytes: usize,
    header: Option<Vec<u8>>,
    current: GzEncoder<Vec<u8>>,
    current_bytes: usize,
    current_rows: u64,
    /// Full objects, sealed.
    done: Vec<Vec<u8>>,
    seen: HashSet<u128>,
    rows: u64,
    duplicates: u64,
}

impl Output {
    fn new(dataset: Dataset, max_bytes: usize) -> Self {
        Self {
            dataset,
            max_bytes,
            header: None,
            current: GzEncoder::new(Vec::new(), Compression::new(COMPACTED_GZIP_LEVEL)),
            current_bytes: 0,
            current_rows: 0,
            done: Vec::new(),
            seen: HashSet::new(),
            rows: 0,
            duplicates: 0,
        }
    }

    fn has_header(&self) -> bool {
        matches!(
            self.dataset,
            Dataset::PurchasesCsv | Dataset::PurchaseTombstones
        )
    }

    fn start(&mut self) -> std::io::Result<()> {
        if let Some(header) = &self.header {
            self.current.write_all(header)?;
            self.current_bytes = header.len();
        }
        Ok(())
    }

    /// Adds one object's rows.
    fn add(&mut self, key: &ObjectKey, gz: &[u8]) -> Result<(), CompactError> {
        let mut text = Vec::with_capacity(gz.len() * 6);
        MultiGzDecoder::new(gz)
            .read_to_end(&mut text)
            .map_err(|e| unreadable(key, format!("not gzip: {e}")))?;
        let mut lines = text.split_inclusive(|&b| b == b'\n');
        if self.has_header() {
            let header = lines.next().unwrap_or_default();
            match &self.header {
                None => {
                    self.header = Some(header.to_vec());
                    self.start().map_err(|e| unreadable(key, e))?;
                }
                Some(h) if h.as_slice() == header => {}
                Some(_) => return Err(unreadable(key, "its CSV header differs")),
            }
            // Every row is one line in the lake's CSV dialect (the encoder turns line
            // breaks into spaces); an object where that does not hold is not ours.
            let records = csv::ReaderBuilder::new()
                .has_headers(true)
                .double_quote(false)
                .escape(Some(b'\\'))
                .from_reader(text.as_slice())
                .byte_records()
                .try_fold(0usize, |n, r| r.map(|_| n + 1))
                .map_err(|e| unreadable(key, format!("not CSV: {e}")))?;
            if records
                != text
                    .split_inclusive(|&b| b == b'\n')
                    .count()
                    .saturating_sub(1)
            {
                return Err(unreadable(key, "a CSV row spans lines"));
            }
        }
        for line in lines {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let digest = Sha256::new()
                .chain_update(line.strip_suffix(b"\n").unwrap_or(line))
                .finalize();
            let mut first = [0u8; 16];
            first.copy_from_slice(&digest[..16]);
            if !self.seen.insert(u128::from_le_bytes(first)) {
                self.duplicates += 1;
                continue;
            }
            let len = line.len() + usize::from(!line.ends_with(b"\n"));
            if self.current_rows > 0 && self.current_bytes + len > self.max_bytes {
                self.seal().map_err(|e| unreadable(key, e))?;
            }
            let write = |enc: &mut GzEncoder<Vec<u8>>| -> std::io::Result<()> {
                enc.write_all(line)?;
                if !line.ends_with(b"\n") {
                    enc.write_all(b"\n")?;
                }
                Ok(())
            };
            write(&mut self.current).map_err(|e| unreadable(key, e))?;
            self.current_bytes += len;
            self.current_rows += 1;
            self.rows += 1;
        }
        Ok(())
    }

    fn seal(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(
            &mut self.current,
            GzEncoder::new(Vec::new(), Compression::new(COMPACTED_GZIP_LEVEL)),
        );
        self.done.push(full.finish()?);
        // Duplicates across sealed objects are possible (readers collapse them); keeping
        // the digests of a sealed object's rows would let memory grow with the partition.
        self.seen.clear();
        self.current_rows = 0;
        self.current_bytes = 0;
        self.start()
    }

    /// The sealed objects, then the last one.
    fn finish(mut self) -> std::io::Result<(Vec<Vec<u8>>, u64, u64)> {
        let last = self.current.finish()?;
        self.done.push(last);
        Ok((self.done, self.rows, self.duplicates))
    }
}

impl Compactor {
    pub fn new(sink: Arc<dyn ObjectSink>, options: CompactOptions) -> Self {
        Self { sink, options }
    }

    /// Every partition of the lake (or of the chosen tenants) the options select.
    pub async fn partitions(&self) -> Result<Vec<Partition>, SinkError> {
        let mut out = Vec::new();
        for dataset in Dataset::ALL {
            let prefixes = if self.options.tenants.is_empty() {
                vec![format!("{}/", dataset.prefix())]
            } else {
                self.options
                    .tenants
                    .iter()
                    .map(|t| dataset.tenant_prefix(t))
                    .collect()
            };
            let mut groups: BTreeMap<(TenantId, Option<NaiveDate>), Vec<ObjectKey>> =
                BTreeMap::new();
            for prefix in prefixes {
                for key in self.sink.list(&prefix).await? {
                    let Some((tenant, dt)) = locate(dataset, &key) else {
                        continue;
                    };
                    if let (Some(dt), Some(before)) = (dt, self.options.before)
                        && dt >= before
                    {
                        continue;
                    }
                    groups.entry((tenant, dt)).or_default().push(key);
                }
            }
            out.extend(groups.into_iter().map(|((tenant, dt), keys)| Partition {
                dataset,
                tenant,
                dt,
                keys,
            }));
        }
        Ok(out)
    }

    /// Compacts one partition: `None` when there is nothing to do (fewer than two
    /// objects that are not sealed).
    pub async fn compact_partition(
        &self,
        partition: &Partition,
    ) -> Result<Option<Compacted>, CompactError> {
        let dataset = partition.dataset;
        // Each name parsed once: sealed objects are left out, the rest name the result.
        let (inputs, names): (Vec<&ObjectKey>, Vec<ObjectName>) = partition
            .keys
            .iter()
            .filter_map(|k| ObjectName::parse(stem(dataset, k)).map(|n| (k, n)))
            .filter(|(_, n)| !n.is_sealed())
            .unzip();
        if inputs.len() < 2 {
            return Ok(None);
        }
        let keys: Vec<&str> = inputs.iter().map(|k| k.as_str()).collect();

        let mut output = Output::new(dataset, self.options.max_object_bytes);
        let mut bytes_before = 0u64;
        let mut bodies = stream::iter(inputs.iter().map(|key| async move {
            let body = self.sink.get(key).await?;
            Ok::<_, SinkError>((*key, body))
        }))
        .buffered(GET_CONCURRENCY);
        while let Some((key, body)) = bodies.try_next().await? {
            // Removed since the listing: another compaction is at this partition and its
            // object holds these rows. Writing ours now could replace its object (same
            // inputs, same name) with one missing them; leave the partition to it.
            let Some(body) = body else {
                tracing::info!(%key, "another compaction is at this partition; left to it");
                return Ok(None);
            };
            bytes_before += body.len() as u64;
            output.add(key, &body)?;
        }
        drop(bodies);
        let (objects, rows, duplicates) = output.finish().map_err(|e| unreadable(inputs[0], e))?;

        let sealed = objects.len() - 1;
        let mut written = Vec::new();
        let mut bytes_after = 0u64;
        for (n, body) in objects.into_iter().enumerate() {
            let name = ObjectName::compacted(&names, &keys, (n < sealed).then_some(n));
            let key = dataset
                .object_key(&partition.tenant, partition.dt, &name)
                .map_err(SinkError::from)?;
            bytes_after += body.len() as u64;
            self.sink.put(&key, body).await?;
            written.push(key);
        }
        // Only now, and only what was listed: rows written since are in other keys.
        for key in &inputs {
            if !written.contains(key) {
                self.sink.delete(key).await?;
            }
        }
        Ok(Some(Compacted {
            dataset: dataset.prefix(),
            tenant: partition.tenant.to_string(),
            dt: partition.dt,
            inputs: inputs.len(),
            outputs: written.iter().map(|k| k.to_string()).collect(),
            rows,
            duplicates,
            bytes_before,
            bytes_after,
        }))
    }

    /// Compacts every selected partition, a few at a time, calling `progress` after each.
    /// A partition that fails is reported in the summary and left as it was; the others
    /// go on. Fails only when the lake cannot be listed.
    pub async fn run(&self, mut progress: impl FnMut(usize, usize)) -> Result<Summary, SinkError> {
        let partitions = self.partitions().await?;
        let total = partitions.len();
        let mut summary = Summary {
            partitions: total,
            ..Summary::default()
        };
        let deadline = self.options.deadline;
        let mut results = stream::iter(&partitions)
            .take_while(|_| {
                std::future::ready(deadline.is_none_or(|d| std::time::Instant::now() < d))
            })
            .map(|p| async move { (p, self.compact_partition(p).await) })
            .buffer_unordered(PARTITION_CONCURRENCY);
        let mut done = 0;
        while let Some((partition, result)) = results.next().await {
            done += 1;
            match result {
                Ok(Some(compacted)) => summary.compacted.push(compacted),
                Ok(None) => {}
                Err(e) => {
                    let at = match partition.dt {
                        Some(dt) => partition.dataset.partition_prefix(&partition.tenant, dt),
                        None => partition.dataset.tenant_prefix(&partition.tenant),
                    };
                    tracing::warn!(partition = %at, error = %e, retryable = e.is_retryable(),
                        "partition not compacted");
                    summary.failed.push((at, e.to_string()));
                }
            }
            progress(done, total);
        }
        summary.unfinished = total - done;
        summary
            .compacted
            .sort_by(|a, b| (a.dataset, &a.tenant, a.dt).cmp(&(b.dataset, &b.tenant, b.dt)));
        summary.failed.sort();
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use cloudpf_model::SeqNo;

    use super::*;
    use crate::LocalDirSink;
    use crate::encode::gzip;

    const HEADER: &str = "\"purchase_id\",\"sequence_number\"\n";

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn name(first: u64, last: u64) -> ObjectName {
        ObjectName::new(
            "arn:stream",
            &SeqNo::parse(&first.to_string()).unwrap(),
            &SeqNo::parse(&last.to_string()).unwrap(),
        )
    }

    fn csv_rows(rows: &[&str]) -> Vec<u8> {
        let mut text = HEADER.to_owned();
        for r in rows {
            text.push_str(&format!("\"{r}\",\"1\"\n"));
        }
        gzip(text.as_bytes()).unwrap()
    }

    async fn put_csv(sink: &dyn ObjectSink, d: u32, first: u64, rows: &[&str]) -> ObjectKey {
        let key = Dataset::PurchasesCsv
            .object_key(&tenant(), Some(day(d)), &name(first, first + 1))
            .unwrap();
        sink.put(&key, csv_rows(rows)).await.unwrap();
        key
    }

    /// Every row of a partition's objects, header rows removed, as a sorted list (with
    /// repeats) and the number of objects.
    async fn rows_of(sink: &dyn ObjectSink, prefix: &str) -> (Vec<String>, usize) {
        let keys = sink.list(prefix).await.unwrap();
        let mut rows = Vec::new();
        for key in &keys {
            let gz = sink.get(key).await.unwrap().unwrap();
            let mut text = String::new();
            MultiGzDecoder::new(gz.as_slice())
                .read_to_string(&mut text)
                .unwrap();
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(HEADER.trim_end()), "{key}");
            rows.extend(lines.map(str::to_owned));
        }
        rows.sort();
        (rows, keys.len())
    }

    fn distinct(mut rows: Vec<String>) -> Vec<String> {
        rows.dedup();
        rows
    }

    fn local() -> (tempfile::TempDir, Arc<LocalDirSink>) {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LocalDirSink::new(dir.path()));
        (dir, sink)
    }

    fn partition_prefix(d: u32) -> String {
        Dataset::PurchasesCsv.partition_prefix(&tenant(), day(d))
    }

    #[tokio::test]
    async fn a_partition_of_many_objects_becomes_one_with_every_distinct_row() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1", "o-2"]).await;
        // The same batch delivered twice under another name, and a row repeated.
        put_csv(sink.as_ref(), 1, 20, &["o-1", "o-2"]).await;
        put_csv(sink.as_ref(), 1, 30, &["o-3", "o-3", "o-4"]).await;
        let (before, n) = rows_of(sink.as_ref(), &partition_prefix(1)).await;
        assert_eq!(n, 3);

        let compactor = Compactor::new(sink.clone(), CompactOptions::default());
        let summary = compactor.run(|_, _| {}).await.unwrap();
        assert_eq!(summary.failed, vec![]);
        assert_eq!(summary.objects_removed(), 3);
        assert_eq!(summary.objects_written(), 1);
        assert_eq!(summary.compacted[0].rows, 4);
        assert_eq!(summary.compacted[0].duplicates, 3);

        let (after, n) = rows_of(sink.as_ref(), &partition_prefix(1)).await;
        assert_eq!(n, 1, "one object per tenant-day");
        assert_eq!(after, distinct(before));
        let key = &sink.list(&partition_prefix(1)).await.unwrap()[0];
        assert!(
            key.as_str().contains(&format!(
                "/{}-{}-c",
                SeqNo::parse("10").unwrap().padded(),
                SeqNo::parse("31").unwrap().padded()
            )),
            "{key}"
        );
    }

    #[tokio::test]
    async fn a_second_run_with_nothing_new_writes_and_removes_nothing() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1"]).await;
        put_csv(sink.as_ref(), 1, 20, &["o-2"]).await;
        put_csv(sink.as_ref(), 2, 30, &["o-3"]).await;
        let compactor = Compactor::new(sink.clone(), CompactOptions::default());
        compactor.run(|_, _| {}).await.unwrap();
        let listed = sink.list("lake/").await.unwrap();

        let counting = Arc::new(Counting::new(sink.clone()));
        let again = Compactor::new(counting.clone(), CompactOptions::default());
        let summary = again.run(|_, _| {}).await.unwrap();
        assert_eq!(summary.partitions, 2);
        assert!(summary.compacted.is_empty(), "{summary:?}");
        assert_eq!(counting.writes.load(Ordering::SeqCst), 0);
        assert_eq!(sink.list("lake/").await.unwrap(), listed);
    }

    #[tokio::test]
    async fn partitions_on_or_after_the_before_date_and_other_tenants_are_left_alone() {
        let (_dir, sink) = local();
        for d in [1, 2, 3] {
            put_csv(sink.as_ref(), d, 10, &["o-1"]).await;
            put_csv(sink.as_ref(), d, 20, &["o-2"]).await;
        }
        let other = TenantId::parse("other").unwrap();
        let key = Dataset::PurchasesCsv
            .object_key(&other, Some(day(1)), &name(10, 11))
            .unwrap();
        sink.put(&key, csv_rows(&["x"])).await.unwrap();
        let key = Dataset::PurchasesCsv
            .object_key(&other, Some(day(1)), &name(20, 21))
            .unwrap();
        sink.put(&key, csv_rows(&["y"])).await.unwrap();

        let options = CompactOptions {
            tenants: vec![tenant()],
            before: Some(day(2)),
            ..CompactOptions::default()
        };
        Compactor::new(sink.clone(), options)
            .run(|_, _| {})
            .await
            .unwrap();
        assert_eq!(rows_of(sink.as_ref(), &partition_prefix(1)).await.1, 1);
        assert_eq!(rows_of(sink.as_ref(), &partition_prefix(2)).await.1, 2);
        assert_eq!(rows_of(sink.as_ref(), &partition_prefix(3)).await.1, 2);
        let others = Dataset::PurchasesCsv.tenant_prefix(&other);
        assert_eq!(sink.list(&others).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_run_past_its_deadline_starts_nothing_and_the_next_run_does_the_work() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1"]).await;
        put_csv(sink.as_ref(), 1, 20, &["o-2"]).await;
        let late = CompactOptions {
            deadline: Some(std::time::Instant::now()),
            ..CompactOptions::default()
        };
        let summary = Compactor::new(sink.clone(), late)
            .run(|_, _| {})
            .await
            .unwrap();
        assert_eq!((summary.partitions, summary.unfinished), (1, 1));
        assert_eq!(sink.list(&partition_prefix(1)).await.unwrap().len(), 2);
        let summary = Compactor::new(sink.clone(), CompactOptions::default())
            .run(|_, _| {})
            .await
            .unwrap();
        assert_eq!((summary.compacted.len(), summary.unfinished), (1, 0));
    }

    #[tokio::test]
    async fn objects_not_in_the_layout_are_never_touched() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1"]).await;
        put_csv(sink.as_ref(), 1, 20, &["o-2"]).await;
        let foreign = ObjectKey::parse(&format!("{}notes.csv.gz", partition_prefix(1))).unwrap();
        sink.put(&foreign, b"not gzip".to_vec()).await.unwrap();
        let summary = Compactor::new(sink.clone(), CompactOptions::default())
            .run(|_, _| {})
            .await
            .unwrap();
        assert_eq!(summary.failed, vec![]);
        assert_eq!(sink.get(&foreign).await.unwrap().unwrap(), b"not gzip");
        assert_eq!(sink.list(&partition_prefix(1)).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_damaged_object_leaves_its_partition_as_it_is_and_the_others_are_compacted() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1"]).await;
        let damaged = Dataset::PurchasesCsv
            .object_key(&tenant(), Some(day(1)), &name(20, 21))
            .unwrap();
        sink.put(&damaged, b"\x1f\x8b broken".to_vec())
            .await
            .unwrap();
        put_csv(sink.as_ref(), 2, 10, &["o-2"]).await;
        put_csv(sink.as_ref(), 2, 20, &["o-3"]).await;
        let summary = Compactor::new(sink.clone(), CompactOptions::default())
            .run(|_, _| {})
            .await
            .unwrap();
        assert_eq!(summary.failed.len(), 1, "{summary:?}");
        assert!(summary.failed[0].1.contains("not gzip"), "{summary:?}");
        assert_eq!(sink.list(&partition_prefix(1)).await.unwrap().len(), 2);
        assert_eq!(sink.list(&partition_prefix(2)).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_compaction_killed_after_writing_is_finished_by_the_next_run_with_the_same_rows() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1", "o-2"]).await;
        put_csv(sink.as_ref(), 1, 20, &["o-3"]).await;
        put_csv(sink.as_ref(), 1, 30, &["o-4"]).await;
        let (before, _) = rows_of(sink.as_ref(), &partition_prefix(1)).await;
        for removed_before_the_kill in 0..3 {
            let (_dir, fresh) = local();
            for key in sink.list("lake/").await.unwrap() {
                fresh
                    .put(&key, sink.get(&key).await.unwrap().unwrap())
                    .await
                    .unwrap();
            }
            let dying =
                Arc::new(Counting::new(fresh.clone()).deleting_at_most(removed_before_the_kill));
            let summary = Compactor::new(dying, CompactOptions::default())
                .run(|_, _| {})
                .await
                .unwrap();
            assert_eq!(summary.failed.len(), 1, "the kill stops the partition");
            let (rows, objects) = rows_of(fresh.as_ref(), &partition_prefix(1)).await;
            assert_eq!(objects, 4 - removed_before_the_kill);
            assert_eq!(
                distinct(rows),
                distinct(before.clone()),
                "readers see the same rows"
            );

            let summary = Compactor::new(fresh.clone(), CompactOptions::default())
                .run(|_, _| {})
                .await
                .unwrap();
            assert_eq!(summary.failed, vec![]);
            let (rows, objects) = rows_of(fresh.as_ref(), &partition_prefix(1)).await;
            assert_eq!((rows, objects), (distinct(before.clone()), 1));
        }
    }

    #[tokio::test]
    async fn an_object_written_while_compacting_is_kept() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1"]).await;
        put_csv(sink.as_ref(), 1, 20, &["o-2"]).await;
        // A handler writes into the partition after the compactor listed it, just before
        // the compacted object is written, and a retried batch rewrites a listed key.
        let racing = Arc::new(Counting::new(sink.clone()).racing_with(vec![
            (
                Dataset::PurchasesCsv
                    .object_key(&tenant(), Some(day(1)), &name(30, 31))
                    .unwrap(),
                csv_rows(&["o-3"]),
            ),
            (
                Dataset::PurchasesCsv
                    .object_key(&tenant(), Some(day(1)), &name(10, 11))
                    .unwrap(),
                csv_rows(&["o-1"]),
            ),
        ]));
        Compactor::new(racing, CompactOptions::default())
            .run(|_, _| {})
            .await
            .unwrap();
        let (rows, objects) = rows_of(sink.as_ref(), &partition_prefix(1)).await;
        assert_eq!(objects, 2, "the compacted object and the new one");
        assert_eq!(
            rows,
            vec!["\"o-1\",\"1\"", "\"o-2\",\"1\"", "\"o-3\",\"1\""]
        );
    }

    #[tokio::test]
    async fn a_partition_another_compaction_is_rewriting_is_left_to_it() {
        let (_dir, sink) = local();
        put_csv(sink.as_ref(), 1, 10, &["o-1"]).await;
        put_csv(sink.as_ref(), 1, 20, &["o-2"]).await;
        // Two runs listed the same objects; the other one finished first.
        let compactor = Compactor::new(sink.clone(), CompactOptions::default());
        let listed = compactor.partitions().await.unwrap();
        compactor.run(|_, _| {}).await.unwrap();
        let (rows, objects) = rows_of(sink.as_ref(), &partition_prefix(1)).await;
        assert_eq!((rows.len(), objects), (2, 1));

        let late = compactor.compact_partition(&listed[0]).await.unwrap();
        assert_eq!(late, None, "the late run writes nothing");
        assert_eq!(
            rows_of(sink.as_ref(), &partition_prefix(1)).await,
            (rows, 1),
            "the first run's object keeps every row"
        );
    }

    #[tokio::test]
    async fn a_partition_larger_than_the_bound_becomes_sealed_objects_that_stay_sealed() {
        let (_dir, sink) = local();
        let rows: Vec<String> = (0..40).map(|i| format!("o-{i:03}")).collect();
        for (n, chunk) in rows.chunks(4).enumerate() {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            put_csv(sink.as_ref(), 1, 10 * (n as u64 + 1), &chunk).await;
        }
        let (before, _) = rows_of(sink.as_ref(), &partition_prefix(1)).await;
        let options = CompactOptions {
            max_object_bytes: 200,
            ..CompactOptions::default()
        };
        Compactor::new(sink.clone(), options.clone())
            .run(|_, _| {})
            .await
            .unwrap();
        let keys = sink.list(&partition_prefix(1)).await.unwrap();
        assert!(keys.len() > 2, "{keys:?}");
        let sealed = keys
            .iter()
            .filter(|k| {
                ObjectName::parse(stem(Dataset::PurchasesCsv, k)).is_some_and(|n| n.is_sealed())
            })
            .count();
        assert_eq!(sealed, keys.len() - 1);
        for key in &keys {
            let gz = sink.get(key).await.unwrap().unwrap();
            let mut text = Vec::new();
            MultiGzDecoder::new(gz.as_slice())
                .read_to_end(&mut text)
                .unwrap();
            assert!(text.len() <= 200, "{key}: {} bytes", text.len());
        }
        assert_eq!(rows_of(sink.as_ref(), &partition_prefix(1)).await.0, before);
        // Nothing new: the sealed objects and the single last one stay as they are.
        let summary = Compactor::new(sink.clone(), options)
            .run(|_, _| {})
            .await
            .unwrap();
        assert!(summary.compacted.is_empty());
        assert_eq!(sink.list(&partition_prefix(1)).await.unwrap(), keys);
    }

    #[tokio::test]
    async fn json_logs_and_undated_tombstones_are_compacted_too() {
        let (_dir, sink) = local();
        for (n, line) in ["{\"a\":1}\n", "{\"a\":2}\n{\"a\":1}\n"].iter().enumerate() {
            let key = Dataset::ProductsJson
                .object_key(&tenant(), Some(day(1)), &name(10 * (n as u64 + 1), 99))
                .unwrap();
            sink.put(&key, gzip(line.as_bytes()).unwrap())
                .await
                .unwrap();
            let key = Dataset::PurchaseTombstones
                .object_key(&tenant(), None, &name(10 * (n as u64 + 1), 99))
                .unwrap();
            sink.put(&key, csv_rows(&[&format!("t-{n}")]))
                .await
                .unwrap();
        }
        let summary = Compactor::new(sink.clone(), CompactOptions::default())
            .run(|_, _| {})
            .await
            .unwrap();
        assert_eq!(summary.compacted.len(), 2, "{summary:?}");
        let products = sink
            .list(&Dataset::ProductsJson.partition_prefix(&tenant(), day(1)))
            .await
            .unwrap();
        assert_eq!(products.len(), 1);
        let mut text = String::new();
        MultiGzDecoder::new(sink.get(&products[0]).await.unwrap().unwrap().as_slice())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n");
        let (rows, objects) = rows_of(
            sink.as_ref(),
            &Dataset::PurchaseTombstones.tenant_prefix(&tenant()),
        )
        .await;
        assert_eq!((rows.len(), objects), (2, 1));
    }

    /// A sink that counts writes and removals, can stop removing (a killed compaction),
    /// and can write other objects just before the first compacted object (a handler).
    #[derive(Debug)]
    struct Counting {
        inner: Arc<LocalDirSink>,
        writes: AtomicUsize,
        deletes_left: Option<AtomicUsize>,
        racing: Mutex<Vec<(ObjectKey, Vec<u8>)>>,
    }

    impl Counting {
        fn new(inner: Arc<LocalDirSink>) -> Self {
            Self {
                inner,
                writes: AtomicUsize::new(0),
                deletes_left: None,
                racing: Mutex::new(Vec::new()),
            }
        }

        fn deleting_at_most(mut self, n: usize) -> Self {
            self.deletes_left = Some(AtomicUsize::new(n));
            self
        }

        fn racing_with(self, writes: Vec<(ObjectKey, Vec<u8>)>) -> Self {
            *self.racing.lock().unwrap() = writes;
            self
        }
    }

    #[async_trait]
    impl ObjectSink for Counting {
        async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError> {
            let racing = std::mem::take(&mut *self.racing.lock().unwrap());
            for (k, b) in racing {
                self.inner.put(&k, b).await?;
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.inner.put(key, body).await
        }
        async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>, SinkError> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, SinkError> {
            self.inner.list(prefix).await
        }
        async fn delete(&self, key: &ObjectKey) -> Result<(), SinkError> {
            if let Some(left) = &self.deletes_left
                && left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_err()
            {
                return Err(SinkError::Unavailable("killed".into()));
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.inner.delete(key).await
        }
    }
}
