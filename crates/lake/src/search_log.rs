//! The search log (issue #12): searches, autocompletes and clicks, buffered in memory and
//! written to the lake as gzipped JSON Lines, one object per tenant and day per flush,
//! under `lake/search_events/json/tenant_id=<t>/dt=<d>/` (Athena: `athena/tables/
//! search_events.sql`; compaction folds the small objects like any other partition).
//!
//! - A search never waits for the log or fails because of it: [`SearchLog::record`] only
//!   appends to a bounded buffer. Past [`MAX_BUFFERED`] waiting events new ones are
//!   dropped and counted (analytics is best effort; the searches themselves are not).
//! - Idle costs nothing: the flusher ([`SearchLog::run`]) sleeps on a notification until
//!   the first event after a flush, waits [`SearchLog::flush_after`] so events gather
//!   into one object, then writes everything.
//! - A failed write keeps the events for the next flush (within the bound). Events of
//!   the last seconds are lost if the process dies without a graceful shutdown, which
//!   flushes.
//! - Where no task may run between requests (Lambda), the caller flushes when
//!   [`SearchLog::due`] says the oldest event has waited long enough.
//!
//! Object names follow [`ObjectName`]: the first and last event time in microseconds in
//! place of sequence numbers, and a digest of this process's random id and flush number,
//! so two API processes, or two flushes of one, never write the same key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use cloudpf_model::{SearchEvent, SeqNo, TenantId};
use tokio::sync::Notify;

use crate::encode::gzip;
use crate::layout::{Dataset, ObjectName};
use crate::sink::{ObjectSink, SinkError};

/// Events waiting for a flush, at most.
pub const MAX_BUFFERED: usize = 50_000;
/// How long the first event of a flush waits for others by default.
pub const FLUSH_AFTER: Duration = Duration::from_secs(5);

/// Counters of a log, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Flushes that had something to write.
    pub flushes: u64,
    /// Events written to the lake.
    pub written: u64,
    /// Events dropped because the buffer was full.
    pub dropped: u64,
    /// Events waiting now.
    pub waiting: u64,
    /// Events of purged shops, left out (issue #13: a purge must not be undone by the
    /// searches that were under way).
    pub of_purged: u64,
}

#[derive(Debug, Default)]
struct Buffer {
    events: Vec<(TenantId, SearchEvent)>,
    /// When the oldest waiting event arrived.
    since: Option<Instant>,
}

/// The search log of one process.
#[derive(Debug)]
pub struct SearchLog {
    sink: Arc<dyn ObjectSink>,
    /// This process's random id: part of every object name.
    source: String,
    buffer: Mutex<Buffer>,
    wake: Notify,
    flush_after: Duration,
    flushes: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    of_purged: AtomicU64,
    purged: crate::purge::PurgedTenants,
}

impl SearchLog {
    pub fn new(sink: Arc<dyn ObjectSink>) -> Self {
        Self::with_flush_after(sink, FLUSH_AFTER)
    }

    pub fn with_flush_after(sink: Arc<dyn ObjectSink>, flush_after: Duration) -> Self {
        Self {
            sink,
            source: format!("search-log-{:016x}", fastrand::u64(..)),
            buffer: Mutex::new(Buffer::default()),
            wake: Notify::new(),
            flush_after,
            flushes: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            of_purged: AtomicU64::new(0),
            purged: crate::purge::PurgedTenants::default(),
        }
    }

    pub fn flush_after(&self) -> Duration {
        self.flush_after
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        // A panic while holding the lock cannot leave the Vec inconsistent.
        self.buffer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds an event for the next flush; never blocks on I/O.
    pub fn record(&self, tenant: &TenantId, event: SearchEvent) {
        let first = {
            let mut buffer = self.lock();
            if buffer.events.len() >= MAX_BUFFERED {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            buffer.events.push((tenant.clone(), event));
            buffer.since.get_or_insert_with(Instant::now);
            buffer.events.len() == 1
        };
        if first {
            self.wake.notify_one();
        }
    }

    pub fn stats(&self) -> LogStats {
        LogStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            written: self.written.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            waiting: self.lock().events.len() as u64,
            of_purged: self.of_purged.load(Ordering::Relaxed),
        }
    }

    /// Flushes that had something to write: read without the buffer's lock, for callers
    /// on a request path (popular searches ask on every autocomplete).
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Whether the oldest waiting event has waited [`Self::flush_after`]: where no
    /// background task may run (a Lambda is frozen between requests), the caller
    /// flushes when this says so.
    pub fn due(&self) -> bool {
        self.lock()
            .since
            .is_some_and(|since| since.elapsed() >= self.flush_after)
    }

    /// Writes every waiting event: one object per tenant and day. Returns how many were
    /// written. Events of a partition whose write failed wait for the next flush; events
    /// of a purged shop are left out.
    pub async fn flush(&self) -> Result<usize, SinkError> {
        let events = std::mem::take(&mut *self.lock()).events;
        if events.is_empty() {
            return Ok(0);
        }
        let purged = match self.purged.current(self.sink.as_ref()).await {
            Ok(purged) => purged,
            Err(e) => {
                self.put_back(events);
                return Err(e);
            }
        };
        let flush = self.flushes.fetch_add(1, Ordering::Relaxed);
        let mut partitions: BTreeMap<(TenantId, NaiveDate), Vec<SearchEvent>> = BTreeMap::new();
        for (tenant, event) in events {
            if purged.contains(tenant.as_str()) {
                self.of_purged.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            partitions
                .entry((tenant, event.at.date()))
                .or_default()
                .push(event);
        }
        let mut written = 0;
        let mut failure = None;
        let mut retry = Vec::new();
        for ((tenant, dt), events) in partitions {
            match self.write(flush, &tenant, dt, &events).await {
                Ok(()) => written += events.len(),
                Err(e) => {
                    failure = Some(e);
                    retry.extend(events.into_iter().map(|e| (tenant.clone(), e)));
                }
            }
        }
        self.written.fetch_add(written as u64, Ordering::Relaxed);
        if let Some(e) = failure {
            self.put_back(retry);
            return Err(e);
        }
        Ok(written)
    }

    /// Events that could not be written, back into the buffer for the next flush (as
    /// many as fit).
    fn put_back(&self, events: Vec<(TenantId, SearchEvent)>) {
        let mut buffer = self.lock();
        let room = MAX_BUFFERED.saturating_sub(buffer.events.len());
        let kept = events.len().min(room);
        self.dropped
            .fetch_add((events.len() - kept) as u64, Ordering::Relaxed);
        buffer.events.extend(events.into_iter().take(kept));
        buffer.since.get_or_insert_with(Instant::now);
    }

    async fn write(
        &self,
        flush: u64,
        tenant: &TenantId,
        dt: NaiveDate,
        events: &[SearchEvent],
    ) -> Result<(), SinkError> {
        let mut lines = Vec::with_capacity(events.len() * 128);
        for e in events {
            serde_json::to_writer(&mut lines, e)
                .map_err(|e| SinkError::Unavailable(format!("encoding a search event: {e}")))?;
            lines.push(b'\n');
        }
        let body = gzip(&lines).map_err(|e| SinkError::Unavailable(e.to_string()))?;
        let micros = events.iter().map(|e| e.at.utc().timestamp_micros().max(1));
        let seq = |t: Option<i64>| {
            SeqNo::parse(&t.unwrap_or(1).to_string())
                .map_err(|e| SinkError::Unavailable(format!("search log object name: {e}")))
        };
        let first = seq(micros.clone().min())?;
        let last = seq(micros.max())?;
        let name = ObjectName::new(&format!("{}-{flush}", self.source), &first, &last);
        let key = Dataset::SearchEvents.object_key(tenant, Some(dt), &name)?;
        self.sink.put(&key, body).await
    }

    /// The flusher: waits for an event, lets others gather for [`Self::flush_after`],
    /// writes them, and waits again. Nothing runs while nothing is recorded.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.wake.notified().await;
            tokio::time::sleep(self.flush_after).await;
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "writing the search log failed; kept for the next flush");
                // The events went back to the buffer: come round again.
                self.wake.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::LocalDirSink;
    use cloudpf_model::{SearchEventKind, Timestamp};

    fn event(at: &str, query: &str) -> SearchEvent {
        SearchEvent {
            kind: SearchEventKind::Search,
            query: query.into(),
            query_id: format!("q-{query}-{at}"),
            results: Some(3),
            product_id: None,
            position: None,
            at: Timestamp::parse(at).unwrap(),
        }
    }

    fn read(dir: &std::path::Path, tenant: &str, dt: &str) -> Vec<SearchEvent> {
        let part = dir.join(format!(
            "lake/search_events/json/tenant_id={tenant}/dt={dt}"
        ));
        let mut out = Vec::new();
        for entry in std::fs::read_dir(part).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut flate2::read::MultiGzDecoder::new(&bytes[..]),
                &mut text,
            )
            .unwrap();
            out.extend(text.lines().map(|l| serde_json::from_str(l).unwrap()));
        }
        out.sort_by_key(|e: &SearchEvent| e.at);
        out
    }

    #[tokio::test]
    async fn issue_13_searches_of_a_purged_shop_do_not_bring_its_search_events_back() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LocalDirSink::new(dir.path()));
        let log = SearchLog::new(sink.clone());
        let (kept, gone) = (
            TenantId::parse("kept").unwrap(),
            TenantId::parse("gone").unwrap(),
        );
        crate::purge::mark_purged(sink.as_ref(), &gone, chrono::Utc::now(), None)
            .await
            .unwrap();
        log.record(&kept, event("2026-12-01T10:00:00Z", "boots"));
        log.record(&gone, event("2026-12-01T10:00:01Z", "tent"));
        assert_eq!(log.flush().await.unwrap(), 1);
        assert_eq!(read(dir.path(), "kept", "2026-12-01").len(), 1);
        assert!(
            !dir.path()
                .join("lake/search_events/json/tenant_id=gone")
                .exists()
        );
        assert_eq!(log.stats().of_purged, 1);
        assert_eq!(log.stats().waiting, 0);
    }

    #[tokio::test]
    async fn a_flush_writes_one_object_per_tenant_and_day_with_every_event() {
        let dir = tempfile::tempdir().unwrap();
        let log = SearchLog::new(Arc::new(LocalDirSink::new(dir.path())));
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        log.record(&a, event("2026-12-01T10:00:00Z", "boots"));
        log.record(&a, event("2026-12-01T11:00:00Z", "tent"));
        log.record(&a, event("2026-12-02T09:00:00Z", "boots"));
        log.record(&b, event("2026-12-01T10:00:00Z", "lamp"));
        assert_eq!(log.flush().await.unwrap(), 4);
        let day1 = read(dir.path(), "a", "2026-12-01");
        assert_eq!(
            day1.iter().map(|e| e.query.as_str()).collect::<Vec<_>>(),
            ["boots", "tent"]
        );
        assert_eq!(read(dir.path(), "a", "2026-12-02").len(), 1);
        assert_eq!(read(dir.path(), "b", "2026-12-01")[0].query, "lamp");
        let stats = log.stats();
        assert_eq!((stats.flushes, stats.written, stats.waiting), (1, 4, 0));

        // A second flush of the same partition adds an object, never overwrites one.
        log.record(&a, event("2026-12-01T10:00:00Z", "boots"));
        assert_eq!(log.flush().await.unwrap(), 1);
        assert_eq!(read(dir.path(), "a", "2026-12-01").len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_flusher_does_nothing_while_nothing_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(SearchLog::new(Arc::new(LocalDirSink::new(dir.path()))));
        let flusher = tokio::spawn(log.clone().run());
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(log.stats(), LogStats::default());
        assert!(!dir.path().join("lake").exists());

        // One event: written once, after the gathering wait, and then quiet again.
        let a = TenantId::parse("a").unwrap();
        log.record(&a, event("2026-12-01T10:00:00Z", "boots"));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while log.stats().written < 1 {
            assert!(tokio::time::Instant::now() < deadline, "not flushed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(log.stats().flushes, 1);
        flusher.abort();
    }

    #[tokio::test]
    async fn a_log_is_due_once_its_oldest_event_has_waited_and_not_after_a_flush() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(LocalDirSink::new(dir.path()));
        let a = TenantId::parse("a").unwrap();
        let patient = SearchLog::with_flush_after(sink.clone(), Duration::from_secs(3600));
        assert!(!patient.due(), "nothing waits");
        patient.record(&a, event("2026-12-01T10:00:00Z", "boots"));
        assert!(!patient.due(), "the event has not waited an hour");
        let eager = SearchLog::with_flush_after(sink, Duration::ZERO);
        eager.record(&a, event("2026-12-01T10:00:00Z", "boots"));
        assert!(eager.due());
        eager.flush().await.unwrap();
        assert!(!eager.due(), "nothing waits after a flush");
    }

    #[test]
    fn a_full_buffer_drops_and_counts_instead_of_growing() {
        let dir = tempfile::tempdir().unwrap();
        let log = SearchLog::new(Arc::new(LocalDirSink::new(dir.path())));
        let a = TenantId::parse("a").unwrap();
        for _ in 0..MAX_BUFFERED + 10 {
            log.record(&a, event("2026-12-01T10:00:00Z", "boots"));
        }
        let stats = log.stats();
        assert_eq!((stats.waiting, stats.dropped), (MAX_BUFFERED as u64, 10));
    }
}
