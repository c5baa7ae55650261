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
    /// The tenant's pointer file (`<entity>.current`) as it was when the index opened: a
    /// rebuild that switches it makes this process reopen the rebuilt index.
    pointer: PointerStamp,
}

/// When the pointer file was last replaced, if there is one.
type PointerStamp = Option<std::time::SystemTime>;

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

/// The generation of an index directory name of this schema version (`first` is the
/// first generation's name, `<entity>-v<version>`): 0 for `first`, N for `first-gN`.
fn generation_of(name: &str, first: &str) -> Option<u64> {
    match name.strip_prefix(first)? {
        "" => Some(0),
        rest => rest.strip_prefix("-g")?.parse().ok().filter(|n| *n > 0),
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reindexed {
    pub tenant: String,
    pub entity: Entity,
    /// The directories (under `index/<tenant>/`) the index was copied from and to.
    pub from: String,
    pub to: String,
    /// Documents (live and tombstones) in the old index when the copy began.
    pub documents: u64,
    /// Changes copied after the first pass: written to the old index while it ran.
    pub caught_up: u64,
}

/// Replaces `path` with `bytes` atomically (a synced temporary file renamed over it,
/// then the directory synced): readers see the old content or the new one.
fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), SearchError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    (|| {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })()
    .map_err(unavailable)
}

/// How many documents a rebuild copies per commit.
const REBUILD_CHUNK: usize = 5_000;

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
            inner.follow_switches();
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
    ///
    /// It first upgrades indexes left by an older schema version (see
    /// [`TantivyEngine::upgrade_schemas`]): every writing command flushes when it starts.
    pub async fn flush(&self) -> Result<(), SearchError> {
        self.blocking(|inner| {
            inner.upgrade_schemas()?;
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

    /// Rebuilds the tenant's `entity` index into a new directory while searches keep
    /// answering from the old one, then switches to it (see [`Inner::reindex`]). `settle`
    /// is how long writers get to notice the switch freeze; other processes check it per
    /// batch, so a second is plenty.
    pub async fn reindex(
        &self,
        tenant: &TenantId,
        entity: Entity,
        settle: Duration,
    ) -> Result<Reindexed, SearchError> {
        let tenant = tenant.clone();
        self.blocking(move |inner| match entity {
            Entity::Products => inner.reindex::<Product>(&tenant, settle),
            Entity::Purchases => inner.reindex::<Purchase>(&tenant, settle),
        })
        .await
    }

    /// Rebuilds, into this schema version, every index that exists only in an older one
    /// (after an upgrade of cloudpf changed the schema): the same copy as
    /// [`TantivyEngine::reindex`]. Writing commands run it at start; until it is done the
    /// tenant's index of that entity is empty for this version.
    pub async fn upgrade_schemas(&self) -> Result<Vec<Reindexed>, SearchError> {
        self.blocking(|inner| inner.upgrade_schemas()).await
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
            inner.writable(&tenant, T::ENTITY)?;
            if !inner.is_open(&tenant, T::ENTITY) {
                inner.upgrade(&tenant, T::ENTITY)?;
            }
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

    fn is_open(&self, tenant: &TenantId, entity: Entity) -> bool {
        lock(&self.open).contains_key(&(tenant.clone(), entity))
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
            .join(self.current_name(tenant, entity))
    }

    /// `index/<tenant>/<entity>.current`: the name of the directory that holds the
    /// tenant's index of `entity`, replaced (atomically) by a rebuild. Without it, the
    /// directory of the first generation, `<entity>-v<schema version>`.
    fn pointer_path(&self, tenant: &TenantId, entity: Entity) -> PathBuf {
        self.root
            .join(tenant.as_str())
            .join(format!("{entity}.current"))
    }

    /// `index/<tenant>/<entity>.next`: present while a rebuild copies its last changes
    /// and switches; writes wait (fail as retryable) meanwhile.
    fn freeze_path(&self, tenant: &TenantId, entity: Entity) -> PathBuf {
        self.root
            .join(tenant.as_str())
            .join(format!("{entity}.next"))
    }

    fn pointer_stamp(&self, tenant: &TenantId, entity: Entity) -> PointerStamp {
        std::fs::metadata(self.pointer_path(tenant, entity))
            .and_then(|m| m.modified())
            .ok()
    }

    /// The current directory name of the tenant's `entity` index: the pointer's, if it
    /// names a generation of this schema version, else the first generation's.
    fn current_name(&self, tenant: &TenantId, entity: Entity) -> String {
        let first = format!("{entity}-v{SCHEMA_VERSION}");
        let Ok(text) = std::fs::read_to_string(self.pointer_path(tenant, entity)) else {
            return first;
        };
        let name = text.trim();
        match generation_of(name, &first) {
            Some(_) => name.to_owned(),
            None => {
                tracing::warn!(%tenant, %entity, pointer = name, "index pointer names no index of this schema version; using {first}");
                first
            }
        }
    }

    /// Refuses a write while a rebuild switches the index (retryable: the batch comes
    /// again), and makes this process follow a switch that happened since it opened the
    /// index. Two `stat`s per batch.
    fn writable(&self, tenant: &TenantId, entity: Entity) -> Result<(), SearchError> {
        if self.freeze_path(tenant, entity).exists() {
            return Err(SearchError::Unavailable(format!(
                "the {entity} index of {tenant} is switching to a rebuilt one; retry shortly"
            )));
        }
        self.follow_switch(tenant, entity);
        Ok(())
    }

    /// Closes the tenant's open index if its pointer changed since it was opened, so the
    /// next request opens the rebuilt one. Whether it closed one.
    fn follow_switch(&self, tenant: &TenantId, entity: Entity) -> bool {
        let stamp = self.pointer_stamp(tenant, entity);
        let mut open = lock(&self.open);
        let key = (tenant.clone(), entity);
        if open.get(&key).is_none_or(|slot| slot.pointer == stamp) {
            return false;
        }
        let closed: Vec<_> = self.close(&mut open, &key).into_iter().collect();
        lock(&self.writers).retain(|w| !closed.iter().any(|c| Arc::ptr_eq(c, w)));
        drop(open);
        tracing::info!(%tenant, %entity, "index switched by a rebuild; reopening");
        self.commit_closed(closed);
        true
    }

    /// Every open index whose pointer changed is closed (the refresher's check).
    fn follow_switches(&self) {
        let keys: Vec<(TenantId, Entity)> = lock(&self.open).keys().cloned().collect();
        for (tenant, entity) in keys {
            self.follow_switch(&tenant, entity);
        }
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
        let pointer = self.pointer_stamp(tenant, entity);
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
                pointer,
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

    /// The rebuild: searches keep answering from the old index the whole time.
    ///
    /// 1. The old index's committed documents (live and tombstones, with their sequence
    ///    numbers) are copied into a new directory, `<entity>-v<schema>-g<N+1>`; then
    ///    again, applying only what changed meanwhile (the copy is versioned like any
    ///    write), until a pass finds nothing new (at most three passes).
    /// 2. `<entity>.next` freezes writes: every writer checks it per batch and fails the
    ///    batch as retryable (the poller and Lambda deliver it again). After `settle`, a
    ///    last pass copies what batches in flight wrote to the old index.
    /// 3. `<entity>.current` is replaced atomically by one naming the new directory, the
    ///    freeze is lifted, and every process reopens the new index at its next request
    ///    or refresh. The old directory is removed.
    ///
    /// A rebuild interrupted before step 3 leaves the old index current (its partial new
    /// directory is removed by the next rebuild); the freeze file, if left, is removed by
    /// running the rebuild again.
    fn reindex<T: Indexable>(
        &self,
        tenant: &TenantId,
        settle: Duration,
    ) -> Result<Reindexed, SearchError> {
        let entity = T::ENTITY;
        let first = format!("{entity}-v{SCHEMA_VERSION}");
        let from = self.current_name(tenant, entity);
        let tenant_dir = self.root.join(tenant.as_str());
        let old_dir = tenant_dir.join(&from);
        if !old_dir.join("meta.json").exists() {
            return Err(SearchError::NotConfigured(format!(
                "{tenant} (no {entity} index to rebuild)"
            )));
        }
        let generation = generation_of(&from, &first).unwrap_or(0) + 1;
        self.copy_and_switch::<T>(tenant, &from, &format!("{first}-g{generation}"), settle)
    }

    /// Copies `index/<tenant>/<from>` into `index/<tenant>/<to>` and makes `to` current
    /// (see [`Inner::reindex`]).
    fn copy_and_switch<T: Indexable>(
        &self,
        tenant: &TenantId,
        from: &str,
        to: &str,
        settle: Duration,
    ) -> Result<Reindexed, SearchError> {
        let entity = T::ENTITY;
        let tenant_dir = self.root.join(tenant.as_str());
        let old_dir = &tenant_dir.join(from);
        let new_dir = tenant_dir.join(to);
        let freeze = self.freeze_path(tenant, entity);
        if new_dir.exists() {
            // Left by an interrupted rebuild; the pointer never named it.
            std::fs::remove_dir_all(&new_dir).map_err(unavailable)?;
        }
        let _ = std::fs::remove_file(index::wal_path(&new_dir));
        let new = TenantIndex::open(new_dir.clone(), entity, Durability::EachBatch)?;
        let copy = |new: &TenantIndex| -> Result<(u64, u64), SearchError> {
            let mut applied = 0;
            let total = index::committed_changes::<T>(old_dir, REBUILD_CHUNK, |chunk| {
                applied += new.apply(chunk)?.applied as u64;
                Ok(())
            })?;
            Ok((total, applied))
        };
        let (documents, _) = copy(&new)?;
        let mut caught_up = 0;
        for _ in 0..2 {
            let (_, applied) = copy(&new)?;
            caught_up += applied;
            if applied == 0 {
                break;
            }
        }
        // Freeze, let batches in flight land in the old index, copy them, switch.
        write_file_atomically(&freeze, to.as_bytes())?;
        let switched = (|| {
            std::thread::sleep(settle);
            let (_, applied) = copy(&new)?;
            caught_up += applied;
            new.close_writer()?;
            write_file_atomically(&self.pointer_path(tenant, entity), to.as_bytes())
        })();
        let _ = std::fs::remove_file(&freeze);
        switched?;
        drop(new);
        self.follow_switch(tenant, entity);
        tracing::info!(%tenant, %entity, from = %old_dir.display(), to, documents, caught_up, "index rebuilt and switched");
        if let Err(e) = std::fs::remove_dir_all(old_dir) {
            tracing::warn!(%tenant, %entity, dir = %old_dir.display(), error = %e, "the old index directory was not removed");
        }
        let _ = std::fs::remove_file(index::wal_path(old_dir));
        Ok(Reindexed {
            tenant: tenant.to_string(),
            entity,
            from: from.to_owned(),
            to: to.to_owned(),
            documents,
            caught_up,
        })
    }

    /// See [`TantivyEngine::upgrade_schemas`].
    fn upgrade_schemas(&self) -> Result<Vec<Reindexed>, SearchError> {
        let mut done = Vec::new();
        let tenants = match std::fs::read_dir(&self.root) {
            Ok(dirs) => dirs,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
            Err(e) => return Err(unavailable(e)),
        };
        for dir in tenants {
            let dir = dir.map_err(unavailable)?;
            let Ok(tenant) = TenantId::parse(&dir.file_name().to_string_lossy()) else {
                continue;
            };
            for entity in Entity::ALL {
                done.extend(self.upgrade(&tenant, entity)?);
            }
        }
        Ok(done)
    }

    /// Rebuilds the tenant's `entity` index into this schema version when only an older
    /// version's exists (cloudpf was upgraded; a CDC Lambda's first batch after a deploy
    /// lands here). The copy goes to a new generation and the pointer switches to it, so
    /// nobody writes to or reads a half-copied index. One process copies at a time (a lock
    /// file of the tenant); a batch of another process meanwhile is refused as retryable.
    fn upgrade(&self, tenant: &TenantId, entity: Entity) -> Result<Option<Reindexed>, SearchError> {
        if self.dir(tenant, entity).join("meta.json").exists() {
            return Ok(None);
        }
        let tenant_dir = self.root.join(tenant.as_str());
        // The newest generation of the newest older version that holds an index.
        let older = (0..SCHEMA_VERSION).rev().find_map(|v| {
            let first = format!("{entity}-v{v}");
            let mut names: Vec<(u64, String)> = std::fs::read_dir(&tenant_dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter_map(|n| Some((generation_of(&n, &first)?, n)))
                .filter(|(_, n)| tenant_dir.join(n).join("meta.json").exists())
                .collect();
            names.sort();
            names.pop().map(|(_, n)| n)
        });
        let Some(from) = older else {
            return Ok(None);
        };
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(tenant_dir.join(format!("{entity}.upgrading")))
            .map_err(unavailable)?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(SearchError::Unavailable(format!(
                    "the {entity} index of {tenant} is being upgraded to schema version {SCHEMA_VERSION} by another process; retry shortly"
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(unavailable(e)),
        }
        // Another process may have finished it (and removed `from`) before this one got
        // the lock.
        if self.dir(tenant, entity).join("meta.json").exists() {
            return Ok(None);
        }
        let to = format!("{entity}-v{SCHEMA_VERSION}-g1");
        let done = match entity {
            Entity::Products => {
                self.copy_and_switch::<Product>(tenant, &from, &to, Duration::ZERO)?
            }
            Entity::Purchases => {
                self.copy_and_switch::<Purchase>(tenant, &from, &to, Duration::ZERO)?
            }
        };
        tracing::info!(%tenant, %entity, from = %done.from, to = %done.to, documents = done.documents, "index upgraded to this schema version");
        Ok(Some(done))
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
