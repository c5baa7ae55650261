//! The embedded search engine: one Tantivy index per tenant per entity, on disk under
//! `<data-dir>/index/<tenant>/<entity>-v<schema version>/`.
//!
//! Writes: one commit per applied batch, after which this process's reader is reloaded
//! at once; readers in other processes pick the commit up when [`TantivyEngine::refresh`]
//! sees `meta.json` change (serving processes call it every 250 ms). Tantivy's own file
//! watcher is not used: it is a thread per open index, polling for ever.
//!
//! Open indexes are a cache, not a registry: [`EngineOptions`] caps how many are open and
//! closes those unused for a while, so a server's memory and threads follow its busy
//! tenants, not all of them. Tantivy work is blocking, so it runs on the blocking thread
//! pool, never on the async workers.

pub mod collect;
mod index;
pub mod schema;
mod search;
pub mod suggest;
mod text;
mod wal;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cloudpf_model::{Product, Purchase, TenantId};
use tantivy::Searcher;

use crate::engine::{ApplyOutcome, Entity, SearchEngine, SearchError, Stored, Versioned};
use crate::query::{ProductQuery, ProductResults, PurchaseQuery, PurchaseResults, Suggestion};
pub use index::Durability;
use index::{Fields, Indexable, TenantIndex, meta_stamp};
use schema::SCHEMA_VERSION;
use suggest::Suggester;
use text::Automata;

/// How old a logged change may get before it is committed ([`Durability::Logged`]) in the
/// commands that write for long (`poll`, `replay`, `demo`). With the poller's 250 ms tick
/// a change is committed within 0.65 s, and a reading process's 250 ms refresher leaves
/// it searchable within the service's promise of a second.
pub const COMMIT_WITHIN: Duration = Duration::from_millis(400);

/// A request rebuilds a stale autocomplete itself only when the last build was this
/// quick; larger ones are rebuilt by [`TantivyEngine::refresh`].
pub const SYNC_REBUILD_BUDGET: Duration = Duration::from_millis(50);

/// The refresher rebuilds a stale autocomplete at most once per this many build times
/// (and at most once per [`MIN_REBUILD_GAP`]): a large catalog under a steady stream of
/// small changes must not keep a core busy rebuilding it.
pub const REBUILD_GAP_FACTOR: u32 = 4;
pub const MIN_REBUILD_GAP: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
struct Built {
    suggester: Arc<Suggester>,
    build_time: Duration,
    finished: Instant,
}

/// What autocomplete can answer from.
enum Completion {
    /// The tenant has no products index.
    Missing,
    Ready(Arc<Suggester>),
    /// The first build of a large catalog runs in the background: answer from the index.
    Building,
}

/// Who opens an index: a request (it counts as use, and opens a closed index) or the
/// refresher (it neither keeps an index open nor reopens one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Request,
    Maintenance,
}

/// What opening a tenant's index does when it does not exist yet: a write creates it, a
/// read finds nothing (and creates no directories for unknown tenants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IfMissing {
    Create,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    /// Rebuild whenever stale (the refresher).
    Always,
    /// Rebuild on the request path only when that is cheap.
    Cheap,
}

/// How many indexes the engine keeps open, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineOptions {
    /// An index unused for this long is closed by the next [`TantivyEngine::refresh`],
    /// with its tenant's autocomplete; the next request opens it again.
    pub idle_close: Duration,
    /// Most indexes open at once (a tenant has two: products and purchases); opening one
    /// more closes the least recently used.
    pub max_open: usize,
    /// A tenant's first autocomplete request builds its suggester on the spot only up to
    /// this many products; a larger catalog is built in the background, and requests
    /// are answered from the index meanwhile (a 100k catalog took seconds: issue #11).
    pub sync_build_max_products: u64,
    /// Queries (searches, autocomplete, reads) that run at once; more wait their turn.
    /// They are CPU-bound, so more than one per core adds no throughput, and each thread
    /// that runs one keeps its allocator's working set: 8 query threads held 130 MB where
    /// 2 held 74 MB for the same load (issue #11). Writes and maintenance are not counted.
    pub query_concurrency: usize,
    /// When an applied batch is durable: committed at once (the default, and what a
    /// Lambda needs), or logged and committed within a bound (long-running writers).
    pub durability: Durability,
    /// A writer with nothing uncommitted and no batch for this long is closed by
    /// [`TantivyEngine::refresh`]; its index stays open for reading.
    pub writer_idle_close: Duration,
    /// Index writers open at once; opening one more commits and closes the least
    /// recently written. A writer holds three threads and its indexing memory, which its
    /// threads keep after a commit (about 11-18 MB measured): a demo of 1,000 shops held
    /// 18 GB with logged durability, and still 11 GB with at most 32 of them uncommitted.
    pub max_writers: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            idle_close: Duration::from_secs(600),
            max_open: 4000,
            sync_build_max_products: 20_000,
            query_concurrency: std::thread::available_parallelism().map_or(2, usize::from),
            durability: Durability::EachBatch,
            writer_idle_close: Duration::from_secs(30),
            max_writers: 32,
        }
    }
}

/// The embedded Tantivy engine over a data directory. Cheap to clone; clones share
/// open indexes and autocomplete state.
#[derive(Debug, Clone)]
pub struct TantivyEngine {
    inner: Arc<Inner>,
}

/// An open index and when a request last used it.
#[derive(Debug)]
struct Slot {
    index: Arc<TenantIndex>,
    used: Instant,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    options: EngineOptions,
    open: Mutex<HashMap<(TenantId, Entity), Slot>>,
    automata: Automata,
    suggesters: Mutex<HashMap<TenantId, Built>>,
    /// One lock per tenant whose suggester is being built, so a burst of requests builds
    /// once, and a large tenant's build never holds up a small tenant's.
    building: Mutex<HashMap<TenantId, Arc<Mutex<()>>>>,
    /// Tenants whose suggester is being built in the background.
    background: Mutex<std::collections::HashSet<TenantId>>,
    /// This engine, for background builds.
    me: std::sync::Weak<Inner>,
    /// Work the refresher did, counted so that tests can check it does none when nothing
    /// changed (an idle server must cost nothing).
    work: WorkCounts,
    /// The threads that run queries ([`EngineOptions::query_concurrency`]), started by
    /// the first query: an engine that only writes (a Lambda) never starts them.
    queries: std::sync::OnceLock<rayon_core::ThreadPool>,
    /// Indexes with an open writer, least recently written first
    /// ([`EngineOptions::max_writers`]).
    writers: Mutex<Vec<Arc<TenantIndex>>>,
}

/// How often the engine reloaded a reader and rebuilt an autocomplete since it started.
#[derive(Debug, Default)]
struct WorkCounts {
    reloads: AtomicU64,
    suggester_builds: AtomicU64,
    opens: AtomicU64,
    closes: AtomicU64,
    segments_read: AtomicU64,
    commits: AtomicU64,
    writer_closes: AtomicU64,
}

/// A snapshot of [`TantivyEngine::work_done`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkDone {
    pub reloads: u64,
    pub suggester_builds: u64,
    /// Indexes opened, and closed again (idle or least recently used).
    pub opens: u64,
    pub closes: u64,
    /// Index segments autocomplete builds read (a rebuild reads only new ones).
    pub suggester_segments_read: u64,
    /// Logged changes committed in the background (refresh, close, flush).
    pub background_commits: u64,
    /// Writers closed because their tenant went quiet.
    pub writers_closed: u64,
}

/// What a searcher sees, whatever its generation: a reload makes a new generation even
/// when nothing was committed, so a generation cannot tell "unchanged" (issue #11: the
/// refresher rebuilt every suggester on every tick, burning a core with no writes).
fn commit_id(searcher: &Searcher) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in searcher.segment_readers() {
        r.segment_id().hash(&mut h);
        r.delete_opstamp().hash(&mut h);
        r.num_deleted_docs().hash(&mut h);
    }
    h.finish()
}

fn unavailable(e: impl std::fmt::Display) -> SearchError {
    SearchError::Unavailable(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TantivyEngine {
    /// An engine over `<data_dir>/index` with the default [`EngineOptions`]. Nothing is
    /// opened or created until used.
    pub fn new(data_dir: &Path) -> Self {
        Self::with_options(data_dir, EngineOptions::default())
    }

    pub fn with_options(data_dir: &Path, options: EngineOptions) -> Self {
        Self {
            inner: Arc::new_cyclic(|me| Inner {
                root: data_dir.join("index"),
                options: EngineOptions {
                    max_open: options.max_open.max(1),
                    ..options
                },
                open: Mutex::new(HashMap::new()),
                automata: Automata::default(),
                suggesters: Mutex::new(HashMap::new()),
                building: Mutex::new(HashMap::new()),
                background: Mutex::new(std::collections::HashSet::new()),
                me: me.clone(),
                work: WorkCounts::default(),
                queries: std::sync::OnceLock::new(),
                writers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Reloads and rebuilds done so far (for tests and diagnostics).
    pub fn work_done(&self) -> WorkDone {
        let w = &self.inner.work;
        WorkDone {
            reloads: w.reloads.load(Ordering::Relaxed),
            suggester_builds: w.suggester_builds.load(Ordering::Relaxed),
            opens: w.opens.load(Ordering::Relaxed),
            closes: w.closes.load(Ordering::Relaxed),
            suggester_segments_read: w.segments_read.load(Ordering::Relaxed),
            background_commits: w.commits.load(Ordering::Relaxed),
            writers_closed: w.writer_closes.load(Ordering::Relaxed),
        }
    }

    /// Indexes open now.
    pub fn open_indexes(&self) -> usize {
        lock(&self.inner.open).len()
    }

    /// Index writers open now.
    pub fn open_writers(&self) -> usize {
        self.inner
            .open_now()
            .iter()
            .filter(|ix| ix.has_writer())
            .count()
    }

    /// Closes indexes unused for [`EngineOptions::idle_close`], commits logged changes
    /// that are due ([`Durability::Logged`]), closes writers of tenants that went quiet
    /// ([`EngineOptions::writer_idle_close`]), picks up commits made by other processes and
    /// rebuilds the autocomplete of every tenant whose indexes changed. Serving and
    /// writing processes call this every few hundred milliseconds: it bounds how stale a
    /// reader can be, and requests rarely pay for a rebuild. With no new commit and
    /// nothing logged it does no more than one `stat` per open index.
    pub async fn refresh(&self) -> Result<(), SearchError> {
        self.blocking(|inner| {
            inner.close_idle();
            let open = inner.open_now();
            // One index's failure must not hold up the others' commits: each is tried, the
            // first error is returned (and the next tick tries again).
            let mut first_error = None;
            for ix in &open {
                inner.tally(ix.commit_pending(false), &mut first_error);
                if ix.close_idle_writer(inner.options.writer_idle_close) {
                    inner.work.writer_closes.fetch_add(1, Ordering::Relaxed);
                }
            }
            for ix in open {
                let stamp = meta_stamp(&ix.dir);
                let mut seen = lock(&ix.reloaded_at);
                if stamp.is_some() && *seen == stamp {
                    continue;
                }
                ix.reader.reload().map_err(unavailable)?;
                inner.work.reloads.fetch_add(1, Ordering::Relaxed);
                *seen = stamp;
            }
            let tenants: Vec<TenantId> = lock(&inner.suggesters).keys().cloned().collect();
            for tenant in tenants {
                inner.suggester(&tenant, Freshness::Always, Use::Maintenance)?;
            }
            first_error.map_or(Ok(()), Err)
        })
        .await
    }

    /// Commits every logged change now, including the logs of indexes a process stopped
    /// writing before it committed them (they are replayed first). Writers call this
    /// before they exit; after it, everything acknowledged is searchable.
    pub async fn flush(&self) -> Result<(), SearchError> {
        self.blocking(|inner| {
            // Each index on its own: one that fails (another process holds its writer, a
            // disk error) is reported after the others are done.
            let mut first_error = None;
            for ix in inner.open_now() {
                inner.tally(ix.commit_pending(true), &mut first_error);
            }
            // Logs of indexes not open, whatever this engine's durability: a logged run
            // that stopped early may be followed by one that commits each batch.
            for (tenant, entity) in inner.left_logs()? {
                let recovered = inner
                    .index_for(&tenant, entity, IfMissing::Skip, Use::Request)
                    .and_then(|ix| ix.map_or(Ok(()), |ix| ix.recover()));
                if let Err(e) = &recovered {
                    tracing::warn!(%tenant, %entity, error = %e, "replaying a write-ahead log failed");
                }
                inner.tally(recovered.map(|()| true), &mut first_error);
            }
            first_error.map_or(Ok(()), Err)
        })
        .await
    }

    async fn apply<T: Indexable>(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<T>>,
    ) -> Result<ApplyOutcome, SearchError> {
        if changes.is_empty() {
            return Ok(ApplyOutcome::default());
        }
        let tenant = tenant.clone();
        self.blocking(move |inner| {
            let Some(ix) = inner.index_for(&tenant, T::ENTITY, IfMissing::Create, Use::Request)?
            else {
                return Err(unavailable("index could not be created"));
            };
            let outcome = ix.apply(changes)?;
            inner.bound_writers(&ix);
            Ok(outcome)
        })
        .await
    }

    async fn blocking<R, F>(&self, f: F) -> Result<R, SearchError>
    where
        R: Send + 'static,
        F: FnOnce(&Inner) -> Result<R, SearchError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(unavailable)?
    }

    /// Runs a query on the engine's query threads. A fixed pool instead of the blocking
    /// pool with a semaphore: a released turn was handed to the next query through an
    /// async wake-up and a thread hand-off, which left the cores idle in between (a third
    /// of the throughput), and the blocking pool spread the queries over all its threads.
    async fn query<R, F>(&self, f: F) -> Result<R, SearchError>
    where
        R: Send + 'static,
        F: FnOnce(&Inner) -> Result<R, SearchError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let inner = self.inner.clone();
        // A query may start work in the background (an autocomplete build) on this runtime.
        let runtime = tokio::runtime::Handle::current();
        self.inner.query_pool()?.spawn(move || {
            let _runtime = runtime.enter();
            // A panic must fail this request, not take the process down with it.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&inner)))
                .unwrap_or_else(|_| Err(SearchError::Unavailable("the query failed".into())));
            // Let go of the engine before the caller wakes: a caller that drops its engine
            // next must find it gone (its index writers closed, their locks released).
            drop(inner);
            let _ = tx.send(result);
        });
        rx.await.map_err(unavailable)?
    }
}

impl Inner {
    /// Keeps at most [`EngineOptions::max_writers`] writers open after `ix` took a batch:
    /// the least recently written beyond that commit and close.
    fn bound_writers(&self, ix: &Arc<TenantIndex>) {
        let over: Vec<Arc<TenantIndex>> = {
            let mut list = lock(&self.writers);
            list.retain(|i| !Arc::ptr_eq(i, ix) && i.has_writer());
            if ix.has_writer() {
                list.push(ix.clone());
            }
            let excess = list.len().saturating_sub(self.options.max_writers.max(1));
            list.drain(..excess).collect()
        };
        for old in over {
            match old.close_writer() {
                Ok(committed) => {
                    if committed {
                        self.work.commits.fetch_add(1, Ordering::Relaxed);
                    }
                    self.work.writer_closes.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(index = %old.dir.display(), error = %e, "closing an index writer failed; its write-ahead log keeps the changes");
                }
            }
        }
    }

    /// Counts a background commit (`Ok(true)`) and keeps the first error of a pass over
    /// many indexes, so that one index's failure does not stop the others'.
    fn tally(&self, result: Result<bool, SearchError>, first_error: &mut Option<SearchError>) {
        match result {
            Ok(true) => {
                self.work.commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }

    /// The indexes open now (the lock of open indexes is not held while working on them).
    fn open_now(&self) -> Vec<Arc<TenantIndex>> {
        lock(&self.open).values().map(|s| s.index.clone()).collect()
    }

    fn query_pool(&self) -> Result<&rayon_core::ThreadPool, SearchError> {
        if let Some(pool) = self.queries.get() {
            return Ok(pool);
        }
        let pool = rayon_core::ThreadPoolBuilder::new()
            .num_threads(self.options.query_concurrency.max(1))
            .thread_name(|i| format!("cloudpf-query-{i}"))
            .build()
            .map_err(unavailable)?;
        // Two first queries at once: one pool wins, the other is dropped unused.
        Ok(self.queries.get_or_init(|| pool))
    }

    fn dir(&self, tenant: &TenantId, entity: Entity) -> PathBuf {
        self.root
            .join(tenant.as_str())
            .join(format!("{entity}-v{SCHEMA_VERSION}"))
    }

    /// The tenant's index for a request that reads; `None` when it does not exist, so
    /// that reading an unknown tenant never creates directories.
    fn index(
        &self,
        tenant: &TenantId,
        entity: Entity,
    ) -> Result<Option<Arc<TenantIndex>>, SearchError> {
        self.index_for(tenant, entity, IfMissing::Skip, Use::Request)
    }

    fn index_for(
        &self,
        tenant: &TenantId,
        entity: Entity,
        missing: IfMissing,
        usage: Use,
    ) -> Result<Option<Arc<TenantIndex>>, SearchError> {
        let mut open = lock(&self.open);
        if let Some(slot) = open.get_mut(&(tenant.clone(), entity)) {
            if usage == Use::Request {
                slot.used = Instant::now();
            }
            return Ok(Some(slot.index.clone()));
        }
        if usage == Use::Maintenance {
            // Maintenance never reopens what was closed: it would keep idle tenants open.
            return Ok(None);
        }
        let dir = self.dir(tenant, entity);
        if missing == IfMissing::Skip && !dir.join("meta.json").exists() {
            return Ok(None);
        }
        let ix = Arc::new(TenantIndex::open(dir, entity, self.options.durability)?);
        let mut evicted = Vec::new();
        while open.len() >= self.options.max_open {
            let Some(oldest) = open
                .iter()
                .min_by_key(|(_, slot)| slot.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            evicted.extend(self.close(&mut open, &oldest));
        }
        open.insert(
            (tenant.clone(), entity),
            Slot {
                index: ix.clone(),
                used: Instant::now(),
            },
        );
        self.work.opens.fetch_add(1, Ordering::Relaxed);
        drop(open);
        self.commit_closed(evicted);
        Ok(Some(ix))
    }

    /// Commits what closed indexes still hold logged and closes their writers, outside
    /// the lock of open indexes (a commit must not hold up other tenants). A failure loses
    /// nothing: the log is replayed by the next writer of that index.
    fn commit_closed(&self, closed: Vec<Arc<TenantIndex>>) {
        for ix in closed {
            // The writer closes with its index, so that reopening the index finds the
            // directory lock free.
            match ix.close_writer() {
                Ok(true) => {
                    self.work.commits.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(index = %ix.dir.display(), error = %e, "committing a closed index failed; its write-ahead log keeps the changes");
                }
            }
        }
    }

    /// Indexes whose write-ahead log holds changes that no open writer owns: a process
    /// stopped before committing them.
    fn left_logs(&self) -> Result<Vec<(TenantId, Entity)>, SearchError> {
        let mut found = Vec::new();
        let tenants = match std::fs::read_dir(&self.root) {
            Ok(dirs) => dirs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
            Err(e) => return Err(unavailable(e)),
        };
        let open = lock(&self.open);
        for dir in tenants {
            let dir = dir.map_err(unavailable)?;
            // Directories that are not a valid tenant id were not made by this engine.
            let Ok(tenant) = TenantId::parse(&dir.file_name().to_string_lossy()) else {
                continue;
            };
            for entity in [Entity::Products, Entity::Purchases] {
                let log = index::wal_path(&self.dir(&tenant, entity));
                if wal::has_entries(&log) && !open.contains_key(&(tenant.clone(), entity)) {
                    found.push((tenant.clone(), entity));
                }
            }
        }
        Ok(found)
    }

    /// Closes `key`'s index and, with the products index, the tenant's autocomplete (it
    /// is rebuilt from the index when next asked). Requests in flight keep their `Arc`
    /// and finish on it; a writer is dropped (waiting for its merges) with the last one.
    fn close(
        &self,
        open: &mut HashMap<(TenantId, Entity), Slot>,
        key: &(TenantId, Entity),
    ) -> Option<Arc<TenantIndex>> {
        let slot = open.remove(key)?;
        self.work.closes.fetch_add(1, Ordering::Relaxed);
        if key.1 == Entity::Products {
            lock(&self.suggesters).remove(&key.0);
            lock(&self.building).remove(&key.0);
        }
        tracing::debug!(tenant = %key.0, entity = %key.1, "index closed");
        Some(slot.index)
    }

    /// Closes the tenant's indexes without committing them (their writers are dropped,
    /// which releases the directory lock) and removes `index/<tenant>/`: every entity and
    /// schema version, with the write-ahead logs. Requests in flight finish on the files
    /// they have open.
    fn purge(&self, tenant: &TenantId) -> Result<Vec<String>, SearchError> {
        let closed: Vec<Arc<TenantIndex>> = {
            let mut open = lock(&self.open);
            Entity::ALL
                .iter()
                .filter_map(|e| self.close(&mut open, &(tenant.clone(), *e)))
                .collect()
        };
        lock(&self.writers).retain(|w| !closed.iter().any(|c| Arc::ptr_eq(c, w)));
        for ix in &closed {
            ix.discard_writer();
        }
        drop(closed);
        lock(&self.background).remove(tenant);
        let dir = self.root.join(tenant.as_str());
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(unavailable(e)),
        };
        let mut removed: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| format!("index/{tenant}/{}", e.file_name().to_string_lossy()))
            .collect();
        removed.sort();
        std::fs::remove_dir_all(&dir).map_err(unavailable)?;
        Ok(removed)
    }

    fn close_idle(&self) {
        let mut open = lock(&self.open);
        let idle: Vec<_> = open
            .iter()
            .filter(|(_, slot)| slot.used.elapsed() >= self.options.idle_close)
            .map(|(k, _)| k.clone())
            .collect();
        let closed = idle
            .iter()
            .filter_map(|key| self.close(&mut open, key))
            .collect();
        drop(open);
        self.commit_closed(closed);
    }

    /// The tenant's autocomplete, rebuilt first if either index changed since it was
    /// built. With `Freshness::Cheap` (a request), a stale suggester whose last build took
    /// longer than [`SYNC_REBUILD_BUDGET`] is served as it is and rebuilt off the request
    /// path, and a large catalog without one is built in the background
    /// ([`Completion::Building`]); a cheap one is rebuilt at once, so small shops see every
    /// change immediately. With `Freshness::Always` (the refresher), a stale suggester is
    /// rebuilt unless it was rebuilt less than [`REBUILD_GAP_FACTOR`] build times ago.
    fn suggester(
        &self,
        tenant: &TenantId,
        freshness: Freshness,
        usage: Use,
    ) -> Result<Completion, SearchError> {
        let Some(products) = self.index_for(tenant, Entity::Products, IfMissing::Skip, usage)?
        else {
            return Ok(Completion::Missing);
        };
        let purchases = self.index_for(tenant, Entity::Purchases, IfMissing::Skip, usage)?;
        let product_searcher = products.reader.searcher();
        let purchase_searcher = purchases.as_ref().map(|p| p.reader.searcher());
        let built_from = (
            commit_id(&product_searcher),
            purchase_searcher.as_ref().map_or(0, commit_id),
        );
        let current = || lock(&self.suggesters).get(tenant).cloned();
        let existing = current();
        if let Some(s) = &existing {
            if s.suggester.built_from() == built_from {
                return Ok(Completion::Ready(s.suggester.clone()));
            }
            let gap = (s.build_time * REBUILD_GAP_FACTOR).max(MIN_REBUILD_GAP);
            if freshness == Freshness::Always && s.finished.elapsed() < gap {
                return Ok(Completion::Ready(s.suggester.clone()));
            }
        }
        if freshness == Freshness::Cheap {
            let expensive = match &existing {
                Some(s) => s.build_time > SYNC_REBUILD_BUDGET,
                None => product_searcher.num_docs() > self.options.sync_build_max_products,
            };
            if expensive {
                return Ok(match existing {
                    // The refresher rebuilds a stale one within its gap.
                    Some(s) => Completion::Ready(s.suggester),
                    None => {
                        self.build_in_background(tenant);
                        Completion::Building
                    }
                });
            }
        }
        let tenant_lock = lock(&self.building)
            .entry(tenant.clone())
            .or_default()
            .clone();
        let _building = lock(&tenant_lock);
        if let Some(s) = current().filter(|s| s.suggester.built_from() == built_from) {
            return Ok(Completion::Ready(s.suggester));
        }
        let started = Instant::now();
        let analyzer = products.analyzer()?;
        let previous = existing.as_ref().map(|s| s.suggester.extracts());
        let suggester = Arc::new(Suggester::build(
            &suggest::Sources {
                analyzer: &analyzer,
                products: &product_searcher,
                product_fields: products.fields.common(),
                purchases: purchases
                    .as_ref()
                    .zip(purchase_searcher.as_ref())
                    .map(|(ix, searcher)| (searcher, ix.fields.common())),
                previous,
            },
            built_from,
        )?);
        let build_time = started.elapsed();
        self.work.suggester_builds.fetch_add(1, Ordering::Relaxed);
        self.work
            .segments_read
            .fetch_add(suggester.segments_read(), Ordering::Relaxed);
        tracing::debug!(%tenant, entries = suggester.len(), ?build_time, footprint = ?suggester.footprint(), "autocomplete rebuilt");
        // A tenant closed meanwhile keeps no suggester: it would never be dropped.
        if lock(&self.open).contains_key(&(tenant.clone(), Entity::Products)) {
            lock(&self.suggesters).insert(
                tenant.clone(),
                Built {
                    suggester: suggester.clone(),
                    build_time,
                    finished: Instant::now(),
                },
            );
        }
        Ok(Completion::Ready(suggester))
    }

    /// Builds `tenant`'s suggester on the blocking pool, once at a time per tenant.
    fn build_in_background(&self, tenant: &TenantId) {
        let Some(me) = self.me.upgrade() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !lock(&self.background).insert(tenant.clone()) {
            return;
        }
        let tenant = tenant.clone();
        runtime.spawn_blocking(move || {
            if let Err(e) = me.suggester(&tenant, Freshness::Always, Use::Maintenance) {
                tracing::warn!(%tenant, error = %e, "building autocomplete failed");
            }
            lock(&me.background).remove(&tenant);
        });
    }
}

#[async_trait]
impl SearchEngine for TantivyEngine {
    async fn apply_products(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Product>>,
    ) -> Result<ApplyOutcome, SearchError> {
        self.apply(tenant, changes).await
    }

    async fn apply_purchases(
        &self,
        tenant: &TenantId,
        changes: Vec<Versioned<Purchase>>,
    ) -> Result<ApplyOutcome, SearchError> {
        self.apply(tenant, changes).await
    }

    async fn get_product(
        &self,
        tenant: &TenantId,
        product_id: &str,
    ) -> Result<Option<Stored<Product>>, SearchError> {
        let (tenant, key) = (tenant.clone(), product_id.to_owned());
        self.query(move |inner| match inner.index(&tenant, Entity::Products)? {
            Some(ix) => ix.get(&key),
            None => Ok(None),
        })
        .await
    }

    async fn get_purchase(
        &self,
        tenant: &TenantId,
        purchase_id: &str,
    ) -> Result<Option<Stored<Purchase>>, SearchError> {
        let (tenant, key) = (tenant.clone(), purchase_id.to_owned());
        self.query(
            move |inner| match inner.index(&tenant, Entity::Purchases)? {
                Some(ix) => ix.get(&key),
                None => Ok(None),
            },
        )
        .await
    }

    async fn count(&self, tenant: &TenantId, entity: Entity) -> Result<u64, SearchError> {
        let tenant = tenant.clone();
        self.query(move |inner| match inner.index(&tenant, entity)? {
            Some(ix) => ix.count_live(),
            None => Ok(0),
        })
        .await
    }

    async fn search_products(
        &self,
        tenant: &TenantId,
        query: &ProductQuery,
    ) -> Result<ProductResults, SearchError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.query(move |inner| match inner.index(&tenant, Entity::Products)? {
            Some(ix) => ix.search_products(&inner.automata, &query),
            None => Ok(ProductResults::default()),
        })
        .await
    }

    async fn autocomplete(
        &self,
        tenant: &TenantId,
        prefix: &str,
        size: usize,
    ) -> Result<Vec<Suggestion>, SearchError> {
        let (tenant, prefix) = (tenant.clone(), prefix.to_owned());
        self.query(move |inner| {
            let Some(products) = inner.index(&tenant, Entity::Products)? else {
                return Ok(Vec::new());
            };
            match inner.suggester(&tenant, Freshness::Cheap, Use::Request)? {
                Completion::Missing => Ok(Vec::new()),
                Completion::Ready(s) => {
                    Ok(s.suggest(&products.analyzer()?, &inner.automata, &prefix, size))
                }
                Completion::Building => products.suggest_from_index(&inner.automata, &prefix, size),
            }
        })
        .await
    }

    async fn refresh(&self) -> Result<(), SearchError> {
        TantivyEngine::refresh(self).await
    }

    async fn purge_tenant(&self, tenant: &TenantId) -> Result<Vec<String>, SearchError> {
        let tenant = tenant.clone();
        self.blocking(move |inner| inner.purge(&tenant)).await
    }

    async fn flush(&self) -> Result<(), SearchError> {
        TantivyEngine::flush(self).await
    }

    /// Every tenant's committed index metadata can be read; nothing is opened, so that a
    /// readiness probe neither costs an index open per tenant nor keeps idle tenants open.
    async fn ready(&self, tenants: &[TenantId]) -> Result<(), SearchError> {
        let tenants = tenants.to_vec();
        self.blocking(move |inner| {
            for tenant in &tenants {
                for entity in [Entity::Products, Entity::Purchases] {
                    let meta = inner.dir(tenant, entity).join("meta.json");
                    match std::fs::File::open(&meta) {
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(unavailable(format!("{tenant} {entity} index: {e}")));
                        }
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn search_purchases(
        &self,
        tenant: &TenantId,
        query: &PurchaseQuery,
    ) -> Result<PurchaseResults, SearchError> {
        let (tenant, query) = (tenant.clone(), query.clone());
        self.query(
            move |inner| match inner.index(&tenant, Entity::Purchases)? {
                Some(ix) => ix.search_purchases(&inner.automata, &query),
                None => Ok(PurchaseResults::default()),
            },
        )
        .await
    }
}
