//! One tenant's index of one entity, as the embedded engine keeps it open: opening it
//! (schema checked), applying a batch of versioned changes in one commit, looking a
//! document up by key, and turning model types into Tantivy documents
//! ([`Indexable`]). Which indexes are open, and for how long, is the engine's business
//! (`mod.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cloudpf_model::{Document, Product, Purchase, SeqNo, dynamo};
use serde::de::DeserializeOwned;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::{IndexWriterOptions, LogMergePolicy};
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Schema, Value};
use tantivy::{
    Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use super::schema::{self, CommonFields, LIVE, ProductFields, PurchaseFields, SCHEMA_VERSION};
use super::{lock, text, unavailable, wal};
use crate::engine::{ApplyOutcome, DocChange, Entity, SearchError, Stored, Versioned};

/// Memory for one index writer. Tantivy's floor is 15 MB per indexing thread; one thread
/// per index keeps a many-tenant process small, and CDC batches are small anyway.
const WRITER_MEMORY: usize = 32_000_000;

/// How many documents of one key a lookup reads (see [`TenantIndex::lookup`]).
const LOOKUP_COPIES: usize = 8;

/// Segments of about one size that a writer merges into one.
const MERGE_AT_SEGMENTS: usize = 4;

/// A logged writer commits at once when this many changes wait uncommitted, whatever
/// their age: they are held in the writer's memory and replayed from the log after a crash.
const COMMIT_AT_PENDING: usize = 10_000;

/// How a batch becomes durable before [`TenantIndex::apply`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A Tantivy commit per batch: searchable when acknowledged, and nothing is left to
    /// do in the background (a Lambda container is frozen between invocations).
    EachBatch,
    /// An fsynced append to the index's write-ahead log per batch; the index commits when
    /// the oldest uncommitted change is `commit_within` old (on the next batch or the
    /// engine's refresh), when many wait, when the index closes, or on a flush. Far
    /// cheaper per batch; changes become searchable within `commit_within`.
    Logged { commit_within: Duration },
}

/// A change that passed the sequence guard, as the document it writes.
struct Staged {
    key: String,
    seq: SeqNo,
    padded: String,
    doc: TantivyDocument,
}

/// An index writer and what it holds that is not committed yet.
struct Writer {
    writer: IndexWriter,
    /// The write-ahead log, in logged mode.
    wal: Option<wal::Wal>,
    /// Keys written since the last commit, with their sequence numbers: the searcher does
    /// not show them yet, and the sequence guard must.
    pending: HashMap<String, SeqNo>,
    /// When the oldest uncommitted change was acknowledged.
    since: Option<Instant>,
    /// When a batch last came through (see [`TenantIndex::close_idle_writer`]).
    last_write: Instant,
}

/// What `meta.json` looked like when a reader was last reloaded: a commit rewrites it.
pub(super) type MetaStamp = Option<(std::time::SystemTime, u64)>;

pub(super) fn meta_stamp(dir: &Path) -> MetaStamp {
    let m = std::fs::metadata(dir.join("meta.json")).ok()?;
    Some((m.modified().ok()?, m.len()))
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Fields {
    Products(ProductFields),
    Purchases(PurchaseFields),
}

impl Fields {
    pub(super) fn common(&self) -> &CommonFields {
        match self {
            Fields::Products(f) => &f.common,
            Fields::Purchases(f) => &f.common,
        }
    }
}

/// One tenant's index of one entity: its reader, its writer once something was written
/// through this process, and the per-commit vocabularies of its text fields.
pub(crate) struct TenantIndex {
    pub(super) index: Index,
    pub(super) dir: PathBuf,
    /// `meta.json` as of the last reload, so the refresher reloads only after a commit.
    pub(super) reloaded_at: Mutex<MetaStamp>,
    pub(super) reader: IndexReader,
    writer: Mutex<Option<Writer>>,
    /// A writer was dropped by an error with changes in the log.
    orphaned_log: AtomicBool,
    durability: Durability,
    /// The write-ahead log beside the index directory (logged mode).
    pub(super) wal_path: PathBuf,
    pub(super) fields: Fields,
    pub(super) vocabularies: Mutex<text::Vocabularies>,
}

impl std::fmt::Debug for TenantIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantIndex")
            .field("fields", &self.fields)
            .finish_non_exhaustive()
    }
}

impl TenantIndex {
    /// Opens (or creates) the index in `dir` with `entity`'s schema; a schema from another
    /// version is [`SearchError::Corrupt`].
    pub(super) fn open(
        dir: PathBuf,
        entity: Entity,
        durability: Durability,
    ) -> Result<Self, SearchError> {
        std::fs::create_dir_all(&dir).map_err(unavailable)?;
        let (schema, fields) = match entity {
            Entity::Products => {
                let (s, f) = ProductFields::build();
                (s, Fields::Products(f))
            }
            Entity::Purchases => {
                let (s, f) = PurchaseFields::build();
                (s, Fields::Purchases(f))
            }
        };
        let index = open_index(&dir, schema)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(unavailable)?;
        Ok(TenantIndex {
            index,
            reloaded_at: Mutex::new(meta_stamp(&dir)),
            wal_path: wal_path(&dir),
            dir,
            reader,
            writer: Mutex::new(None),
            orphaned_log: AtomicBool::new(false),
            durability,
            fields,
            vocabularies: Mutex::new(text::Vocabularies::default()),
        })
    }
}

/// Where the write-ahead log of the index in `dir` lives: beside it, so that Tantivy's
/// file management never sees it (`products-v3` → `products-v3.wal`).
/// Every committed document of the index in `dir` (live or tombstone) as the versioned
/// change that wrote it, `chunk` at a time: what a rebuild copies. The index is opened
/// with the schema it was written with, and only the fields every schema version has
/// (`key`, `seq`, `source`) are read, so an index of an older schema version can be
/// copied into the current one.
pub(super) fn committed_changes<T: Document>(
    dir: &Path,
    chunk: usize,
    mut sink: impl FnMut(Vec<Versioned<T>>) -> Result<(), SearchError>,
) -> Result<u64, SearchError> {
    let index = Index::open(MmapDirectory::open(dir).map_err(unavailable)?).map_err(unavailable)?;
    let schema = index.schema();
    let field = |name: &str| {
        schema
            .get_field(name)
            .map_err(|_| SearchError::Corrupt(format!("{} has no {name} field", dir.display())))
    };
    let (key_field, seq_field, source_field) = (field("key")?, field("seq")?, field("source")?);
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
        .map_err(unavailable)?;
    let searcher = reader.searcher();
    let mut batch = Vec::with_capacity(chunk);
    let mut total = 0;
    for segment in searcher.segment_readers() {
        let store = segment.get_store_reader(64).map_err(unavailable)?;
        for doc_id in segment.doc_ids_alive() {
            let doc: TantivyDocument = store.get(doc_id).map_err(unavailable)?;
            let text = |f| doc.get_first(f).and_then(|v| v.as_str());
            let (Some(key), Some(seq)) = (text(key_field), text(seq_field)) else {
                return Err(SearchError::Corrupt(format!(
                    "{}: a document without key or sequence number",
                    dir.display()
                )));
            };
            let change = match text(source_field) {
                Some(source) => DocChange::Upsert(
                    dynamo::from_item_json(source)
                        .map_err(|e| SearchError::Corrupt(e.to_string()))?,
                ),
                None => DocChange::Delete,
            };
            batch.push(Versioned {
                key: key.to_owned(),
                seq: SeqNo::parse(seq).map_err(SearchError::Corrupt)?,
                change,
            });
            total += 1;
            if batch.len() >= chunk {
                sink(std::mem::take(&mut batch))?;
            }
        }
    }
    if !batch.is_empty() {
        sink(batch)?;
    }
    Ok(total)
}

pub(super) fn wal_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".wal");
    dir.with_file_name(name)
}

/// An item type the embedded engine indexes.
pub(super) trait Indexable: Document {
    fn document(&self, fields: &Fields, seq: &str) -> Result<TantivyDocument, SearchError>;
}

fn doc_error(e: serde_json::Error) -> SearchError {
    SearchError::Corrupt(format!("document does not serialize: {e}"))
}

fn wrong_index(entity: Entity) -> SearchError {
    SearchError::Corrupt(format!("{entity} index expected"))
}

impl Indexable for Product {
    fn document(&self, fields: &Fields, seq: &str) -> Result<TantivyDocument, SearchError> {
        match fields {
            Fields::Products(f) => f.document(self, seq).map_err(doc_error),
            Fields::Purchases(_) => Err(wrong_index(Self::ENTITY)),
        }
    }
}

impl Indexable for Purchase {
    fn document(&self, fields: &Fields, seq: &str) -> Result<TantivyDocument, SearchError> {
        match fields {
            Fields::Purchases(f) => f.document(self, seq).map_err(doc_error),
            Fields::Products(_) => Err(wrong_index(Self::ENTITY)),
        }
    }
}

fn open_index(dir: &Path, schema: Schema) -> Result<Index, SearchError> {
    let directory = MmapDirectory::open(dir).map_err(unavailable)?;
    // Small doc store blocks: a page of hits reads ten documents from random blocks, and
    // each read decompresses a whole block (16 KB by default). No compression thread per
    // writer: a process with a writer per busy tenant must not pay a thread for each.
    let settings = IndexSettings {
        docstore_blocksize: 4096,
        docstore_compress_dedicated_thread: false,
        ..IndexSettings::default()
    };
    let index = Index::builder()
        .schema(schema.clone())
        .settings(settings)
        .open_or_create(directory)
        .map_err(|e| match e {
            tantivy::TantivyError::SchemaError(_) => SearchError::Corrupt(format!(
                "{} holds a different schema than version {SCHEMA_VERSION}",
                dir.display()
            )),
            e => unavailable(e),
        })?;
    if index.schema() != schema {
        return Err(SearchError::Corrupt(format!(
            "{} holds a different schema than version {SCHEMA_VERSION}",
            dir.display()
        )));
    }
    schema::register_analyzers(&index);
    Ok(index)
}

impl TenantIndex {
    /// The analyzer of the full-text fields, to treat query text like indexed text.
    pub(super) fn analyzer(&self) -> Result<tantivy::tokenizer::TextAnalyzer, SearchError> {
        self.index
            .tokenizers()
            .get(schema::TEXT_ANALYZER)
            .ok_or_else(|| unavailable("analyzer missing"))
    }

    /// The stored sequence number and document of `key`, live or tombstone. A key has
    /// one document; should an index hold more (written before the fix of issue #10's
    /// resurrected deletes), the newest wins, so that reads and the sequence guard never
    /// go back to an older version, and the key's next change replaces them all.
    pub(super) fn lookup(
        &self,
        searcher: &Searcher,
        key: &str,
    ) -> Result<Option<TantivyDocument>, SearchError> {
        let common = self.fields.common();
        let query = TermQuery::new(
            Term::from_field_text(common.key, key),
            IndexRecordOption::Basic,
        );
        let top = searcher
            .search(&query, &TopDocs::with_limit(LOOKUP_COPIES).order_by_score())
            .map_err(unavailable)?;
        let mut newest: Option<(SeqNo, TantivyDocument)> = None;
        for (_, addr) in &top {
            let doc: TantivyDocument = searcher.doc(*addr).map_err(unavailable)?;
            let seq = self.stored_seq(&doc)?;
            if newest.as_ref().is_none_or(|(best, _)| seq > *best) {
                newest = Some((seq, doc));
            }
        }
        if top.len() > 1 {
            tracing::warn!(index = %self.dir.display(), key, copies = top.len(), "a key has more than one document; the newest is used (reindex rewrites the index)");
        }
        Ok(newest.map(|(_, doc)| doc))
    }

    pub(super) fn stored_seq(&self, doc: &TantivyDocument) -> Result<SeqNo, SearchError> {
        let text = doc
            .get_first(self.fields.common().seq)
            .and_then(|v| v.as_str())
            .ok_or_else(|| SearchError::Corrupt("document without a sequence number".into()))?;
        SeqNo::parse(text).map_err(SearchError::Corrupt)
    }

    /// Applies a batch: each change newer than what the index (or this writer's
    /// uncommitted work) holds for its key is staged, the rest count as stale. With
    /// [`Durability::EachBatch`] the batch is committed before this returns; with
    /// [`Durability::Logged`] it is appended to the write-ahead log and fsynced, and
    /// committed once the oldest uncommitted change is `commit_within` old (here or by
    /// [`Self::commit_due`]). Either way the batch survives a crash once this returns.
    pub(super) fn apply<T: Indexable>(
        &self,
        changes: Vec<Versioned<T>>,
    ) -> Result<ApplyOutcome, SearchError> {
        let mut slot = lock(&self.writer);
        let w = self.writer_in(&mut slot)?;
        w.last_write = Instant::now();
        let (outcome, staged) = self.stage(w, changes)?;
        if staged.is_empty() {
            return Ok(outcome);
        }
        let due = match self.log_and_add(w, staged) {
            Ok(()) => match self.durability {
                Durability::EachBatch => true,
                Durability::Logged { commit_within } => {
                    w.pending.len() >= COMMIT_AT_PENDING
                        || w.since.is_some_and(|t| t.elapsed() >= commit_within)
                }
            },
            Err(e) => {
                // What this writer staged goes with it; the log keeps what was acknowledged,
                // and the next refresh or batch replays it.
                *slot = None;
                self.orphaned_log.store(self.is_logged(), Ordering::Relaxed);
                return Err(e);
            }
        };
        if due {
            self.commit_in(&mut slot)?;
        }
        Ok(outcome)
    }

    /// The documents `changes` would write, after the sequence guard, and what it did.
    /// Nothing is written yet, so a change that cannot become a document leaves the
    /// writer as it was.
    fn stage<T: Indexable>(
        &self,
        w: &Writer,
        changes: Vec<Versioned<T>>,
    ) -> Result<(ApplyOutcome, Vec<Staged>), SearchError> {
        // The reader of this process is reloaded after each of its commits, and only this
        // writer (it holds the directory lock) commits, so the searcher and the writer's
        // uncommitted keys together show every sequence number acknowledged so far.
        let searcher = self.reader.searcher();
        let common = self.fields.common();
        let mut batch: HashMap<String, SeqNo> = HashMap::new();
        let mut outcome = ApplyOutcome::default();
        let mut staged = Vec::new();
        for change in changes {
            let uncommitted = batch.get(&change.key).or(w.pending.get(&change.key));
            if !self.is_newer(&searcher, uncommitted, &change.key, &change.seq)? {
                outcome.stale += 1;
                continue;
            }
            let padded = change.seq.padded();
            let doc = match &change.change {
                DocChange::Upsert(value) => value.document(&self.fields, &padded)?,
                DocChange::Delete => common.tombstone(&change.key, &padded),
            };
            batch.insert(change.key.clone(), change.seq.clone());
            staged.push(Staged {
                key: change.key,
                seq: change.seq,
                padded,
                doc,
            });
            outcome.applied += 1;
        }
        Ok((outcome, staged))
    }

    /// This index's writer, created (and the log left by an earlier writer replayed and
    /// committed) on first use.
    fn writer_in<'s>(&self, slot: &'s mut Option<Writer>) -> Result<&'s mut Writer, SearchError> {
        if slot.is_none() {
            let writer = new_writer(&self.index, self.fields.common().key)?;
            // Another writer (one this process closed, or another process) may have
            // committed since this reader was last reloaded: the guard must see that.
            self.reader.reload().map_err(unavailable)?;
            // A log left behind is replayed whatever this writer's mode (a logged run that
            // stopped early, then a run that commits each batch).
            let logged = self.is_logged();
            let (wal, left) = if logged || wal::has_entries(&self.wal_path) {
                let (wal, batches) = wal::Wal::open(&self.wal_path).map_err(unavailable)?;
                (Some(wal), batches)
            } else {
                (None, Vec::new())
            };
            let mut w = Writer {
                writer,
                wal,
                pending: HashMap::new(),
                since: None,
                last_write: Instant::now(),
            };
            if !left.is_empty() {
                self.replay_left(&mut w, left)?;
                *slot = Some(w);
                self.commit_in(slot)?;
            } else {
                *slot = Some(w);
            }
            if !logged && let Some(w) = slot.as_mut() {
                w.wal = None;
            }
            self.orphaned_log.store(false, Ordering::Relaxed);
        }
        slot.as_mut()
            .ok_or_else(|| unavailable("index writer missing"))
    }

    fn is_logged(&self) -> bool {
        matches!(self.durability, Durability::Logged { .. })
    }

    /// Replays what an earlier writer logged. A log whose frames are whole but whose
    /// entries no longer decode (written by another version) cannot be replayed and must
    /// not stop this index for good: it is set aside under a name that says so, with an
    /// error in the log, and the index goes on without it (the lake holds the changes).
    fn replay_left(&self, w: &mut Writer, left: Vec<Vec<wal::Entry>>) -> Result<(), SearchError> {
        match self.replay(w, left) {
            Ok(replayed) => {
                tracing::info!(index = %self.dir.display(), replayed, "write-ahead log replayed");
                Ok(())
            }
            Err(SearchError::Corrupt(reason)) => {
                w.writer.rollback().map_err(unavailable)?;
                pass_committed_stamp(&w.writer, self.fields.common().key);
                w.pending.clear();
                let aside = self.wal_path.with_extension(format!(
                    "wal.corrupt-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs())
                ));
                std::fs::rename(&self.wal_path, &aside).map_err(unavailable)?;
                tracing::error!(
                    index = %self.dir.display(),
                    set_aside = %aside.display(),
                    %reason,
                    "a write-ahead log could not be replayed and was set aside; its changes are in the lake"
                );
                let (wal, _) = wal::Wal::open(&self.wal_path).map_err(unavailable)?;
                w.wal = Some(wal);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Stages the logged batches again, through the sequence guard: changes the index
    /// committed before the log was emptied are stale and change nothing.
    fn replay(&self, w: &mut Writer, batches: Vec<Vec<wal::Entry>>) -> Result<usize, SearchError> {
        let common = *self.fields.common();
        let mut replayed = 0;
        for entries in batches {
            let mut staged = Vec::with_capacity(entries.len());
            let searcher = self.reader.searcher();
            for e in entries {
                let seq = SeqNo::parse(&e.s).map_err(SearchError::Corrupt)?;
                if !self.is_newer(&searcher, w.pending.get(&e.k), &e.k, &seq)? {
                    continue;
                }
                let doc = match &e.d {
                    None => common.tombstone(&e.k, &e.s),
                    Some(source) => self.document_from_source(source, &e.s)?,
                };
                staged.push(Staged {
                    key: e.k,
                    seq,
                    padded: e.s,
                    doc,
                });
            }
            replayed += staged.len();
            self.add_staged(w, staged)?;
        }
        Ok(replayed)
    }

    /// The index document of a stored item, as [`Indexable::document`] made it.
    fn document_from_source(
        &self,
        source: &str,
        seq: &str,
    ) -> Result<TantivyDocument, SearchError> {
        let corrupt = |e: cloudpf_model::dynamo::DecodeError| {
            SearchError::Corrupt(format!("write-ahead log entry does not decode: {e}"))
        };
        match &self.fields {
            Fields::Products(f) => {
                let p: Product = dynamo::from_item_json(source).map_err(corrupt)?;
                f.document(&p, seq).map_err(doc_error)
            }
            Fields::Purchases(f) => {
                let p: Purchase = dynamo::from_item_json(source).map_err(corrupt)?;
                f.document(&p, seq).map_err(doc_error)
            }
        }
    }

    /// Commits what the writer holds, reloads this process's reader and empties the log.
    /// A failed commit drops the writer with what it staged; the log keeps every
    /// acknowledged change for the next writer.
    fn commit_in(&self, slot: &mut Option<Writer>) -> Result<(), SearchError> {
        let Some(w) = slot.as_mut() else {
            return Ok(());
        };
        if let Err(e) = w.writer.commit() {
            *slot = None;
            self.orphaned_log.store(self.is_logged(), Ordering::Relaxed);
            return Err(unavailable(e));
        }
        w.pending.clear();
        w.since = None;
        if let Some(wal) = &mut w.wal {
            // Committed already: a log left behind replays as stale changes.
            if let Err(e) = wal.clear() {
                tracing::warn!(path = %wal.path().display(), error = %e, "emptying the write-ahead log failed");
            }
        }
        if let Err(e) = self.reader.reload() {
            // The guard reads this reader: a writer must not go on with a stale one (the
            // next writer reloads it first).
            *slot = None;
            return Err(unavailable(e));
        }
        Ok(())
    }

    /// Commits the writer's uncommitted changes if the oldest is due (`all`: any). Whether
    /// it committed: with nothing uncommitted it does nothing at all. A log whose writer
    /// was dropped by an error is replayed and committed here; with `all`, so is any log
    /// this index holds without a writer (one a closed writer of this process left).
    pub(super) fn commit_pending(&self, all: bool) -> Result<bool, SearchError> {
        let mut slot = lock(&self.writer);
        if slot.is_none() {
            let left = self.orphaned_log.load(Ordering::Relaxed)
                || (all && wal::has_entries(&self.wal_path));
            if !left {
                return Ok(false);
            }
            self.writer_in(&mut slot)?;
            return Ok(true);
        }
        let due = match (slot.as_ref(), self.durability) {
            (Some(w), Durability::Logged { commit_within }) => {
                !w.pending.is_empty()
                    && (all || w.since.is_some_and(|t| t.elapsed() >= commit_within))
            }
            _ => false,
        };
        if due {
            self.commit_in(&mut slot)?;
        }
        Ok(due)
    }

    /// Closes the writer when it holds nothing uncommitted and no batch came for `idle`;
    /// the index stays open for reading and the next batch opens a writer again. A writer
    /// holds three threads and its indexing memory, and a process that writes for many
    /// tenants must not keep them for the ones that went quiet. Whether it closed one.
    pub(super) fn close_idle_writer(&self, idle: Duration) -> bool {
        let mut slot = lock(&self.writer);
        let quiet = slot
            .as_ref()
            .is_some_and(|w| w.pending.is_empty() && w.last_write.elapsed() >= idle);
        if quiet {
            // Waits for the writer's merges in progress; only this index's writes wait.
            *slot = None;
        }
        quiet
    }

    /// Commits what the writer holds and closes it (the index stays open for reading).
    /// Whether there was something to commit.
    pub(super) fn close_writer(&self) -> Result<bool, SearchError> {
        let mut slot = lock(&self.writer);
        let pending = slot.as_ref().is_some_and(|w| !w.pending.is_empty());
        if pending {
            self.commit_in(&mut slot)?;
        }
        *slot = None;
        Ok(pending)
    }

    /// Drops the writer without committing (its index is being removed).
    pub(super) fn discard_writer(&self) {
        *lock(&self.writer) = None;
    }

    pub(super) fn has_writer(&self) -> bool {
        lock(&self.writer).is_some()
    }

    /// Replays and commits a log an earlier writer left (see [`wal::has_entries`]).
    pub(super) fn recover(&self) -> Result<(), SearchError> {
        let mut slot = lock(&self.writer);
        self.writer_in(&mut slot)?;
        Ok(())
    }

    /// Logs the staged documents (in logged mode) and hands them to the writer.
    fn log_and_add(&self, w: &mut Writer, staged: Vec<Staged>) -> Result<(), SearchError> {
        let common = *self.fields.common();
        if let Some(wal) = &mut w.wal {
            let entries: Vec<wal::Entry> = staged
                .iter()
                .map(|s| wal::Entry {
                    k: s.key.clone(),
                    s: s.padded.clone(),
                    d: s.doc
                        .get_first(common.source)
                        .and_then(|v| v.as_str())
                        .map(str::to_owned),
                })
                .collect();
            wal.append(&entries).map_err(unavailable)?;
            w.since.get_or_insert_with(Instant::now);
        }
        self.add_staged(w, staged)
    }

    /// Hands staged documents to the writer, each replacing its key's older document.
    fn add_staged(&self, w: &mut Writer, staged: Vec<Staged>) -> Result<(), SearchError> {
        let key_field = self.fields.common().key;
        for s in staged {
            w.writer
                .delete_term(Term::from_field_text(key_field, &s.key));
            w.writer.add_document(s.doc).map_err(unavailable)?;
            w.pending.insert(s.key, s.seq);
        }
        Ok(())
    }

    /// The sequence guard, for a batch and for a replayed log alike: whether `seq` is
    /// newer than what is known of `key`, which is the writer's `uncommitted` change of
    /// it if there is one, else what the committed index holds (live or tombstone).
    fn is_newer(
        &self,
        searcher: &Searcher,
        uncommitted: Option<&SeqNo>,
        key: &str,
        seq: &SeqNo,
    ) -> Result<bool, SearchError> {
        if let Some(known) = uncommitted {
            return Ok(known < seq);
        }
        match self.lookup(searcher, key)? {
            Some(doc) => Ok(self.stored_seq(&doc)? < *seq),
            None => Ok(true),
        }
    }
    pub(super) fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Stored<T>>, SearchError> {
        let searcher = self.reader.searcher();
        let Some(doc) = self.lookup(&searcher, key)? else {
            return Ok(None);
        };
        let Some(source) = doc
            .get_first(self.fields.common().source)
            .and_then(|v| v.as_str())
        else {
            return Ok(None); // a tombstone
        };
        let value =
            dynamo::from_item_json(source).map_err(|e| SearchError::Corrupt(e.to_string()))?;
        Ok(Some(Stored {
            doc: value,
            seq: self.stored_seq(&doc)?,
        }))
    }

    pub(super) fn count_live(&self) -> Result<u64, SearchError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.common().state, LIVE),
            IndexRecordOption::Basic,
        );
        let n = self
            .reader
            .searcher()
            .search(&query, &Count)
            .map_err(unavailable)?;
        Ok(n as u64)
    }
}

/// A writer for `index`, its stamps past the committed one.
fn new_writer(index: &Index, key: tantivy::schema::Field) -> Result<IndexWriter, SearchError> {
    let options = IndexWriterOptions::builder()
        .num_worker_threads(1)
        .memory_budget_per_thread(WRITER_MEMORY)
        // One merge thread per writer: a process writing for many tenants must not pay
        // Tantivy's default of four for each.
        .num_merge_threads(1)
        .build();
    let writer: IndexWriter = index.writer_with_options(options).map_err(unavailable)?;
    // Every search pays per segment (term dictionary walks, postings, bitsets), and CDC
    // commits small segments: merge sooner than Tantivy's default (8 segments of a
    // size), since a catalog is read far more than written.
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_AT_SEGMENTS);
    writer.set_merge_policy(Box::new(policy));
    pass_committed_stamp(&writer, key);
    Ok(writer)
}

/// Moves a writer's operation stamps past the committed one, after it was created or
/// rolled back. Tantivy 0.27 starts a writer's stamps at the committed opstamp, so its
/// first operation shares the stamp of the last commit. A merge of committed segments
/// then applies a delete with that stamp to the segments it reads except one whose
/// deletes are already "up to date" at that stamp, and the merged segment keeps the
/// delete cursor of the first: the delete is lost for that segment's documents, and an
/// updated key ends up with two live documents (the old one resurrected). This happened
/// after a writer was reopened (a restart, an idle close) with the crash test of issue
/// #10. A delete of a key no document has takes the shared stamp harmlessly.
fn pass_committed_stamp(writer: &IndexWriter, key: tantivy::schema::Field) {
    writer.delete_term(Term::from_field_text(key, ""));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tantivy::schema::{STORED, STRING};

    use super::*;

    fn live_keys(index: &Index, key: tantivy::schema::Field) -> Vec<String> {
        let reader: IndexReader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .unwrap();
        let searcher = reader.searcher();
        let mut keys = Vec::new();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(1).unwrap();
            for d in segment.doc_ids_alive() {
                let doc: TantivyDocument = store.get(d).unwrap();
                keys.push(doc.get_first(key).unwrap().as_str().unwrap().to_owned());
            }
        }
        keys.sort();
        keys
    }

    /// The history that left two live documents for one key in issue #10's crash test,
    /// made deterministic: a writer is reopened after a commit that deleted from a
    /// segment, updates a key of that segment, and a merge of committed segments
    /// (started here by hand, in the order that loses the delete) runs before its commit.
    #[test]
    fn issue_10_an_update_after_a_writer_reopens_survives_a_merge_of_committed_segments() {
        let mut builder = Schema::builder();
        let key = builder.add_text_field("key", STRING | STORED);
        let index = Index::create_in_ram(builder.build());
        let doc = |k: &str| {
            let mut d = TantivyDocument::default();
            d.add_text(key, k);
            d
        };
        let upsert = |w: &IndexWriter, k: &str| {
            w.delete_term(Term::from_field_text(key, k));
            w.add_document(doc(k)).unwrap();
        };
        let writer = |index: &Index| {
            let w = new_writer(index, key).unwrap();
            w.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
            w
        };
        let mut first = writer(&index);
        upsert(&first, "x");
        first.commit().unwrap();
        upsert(&first, "a");
        upsert(&first, "b");
        first.commit().unwrap();
        // The last commit deletes from the segment of `a` and `b`.
        upsert(&first, "b");
        first.commit().unwrap();
        drop(first);
        let metas = index.searchable_segment_metas().unwrap();
        let of_x = metas
            .iter()
            .find(|m| m.max_doc() == 1 && m.num_deleted_docs() == 0);
        let of_ab = metas.iter().find(|m| m.max_doc() == 2);
        let (of_x, of_ab) = (of_x.unwrap().id(), of_ab.unwrap().id());

        let mut second = writer(&index);
        upsert(&second, "a");
        second.merge(&[of_x, of_ab]).wait().unwrap();
        second.commit().unwrap();
        assert_eq!(live_keys(&index, key), ["a", "b", "x"]);
    }
}
