//! One tenant's index of one entity, as the embedded engine keeps it open: opening it
//! (schema checked), applying a batch of versioned changes in one commit, looking a
//! document up by key, and turning model types into Tantivy documents
//! ([`Indexable`]). Which indexes are open, and for how long, is the engine's business
//! (`mod.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cloudpf_model::{Document, Product, Purchase, SeqNo, dynamo};
use serde::de::DeserializeOwned;
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::LogMergePolicy;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Schema, Value};
use tantivy::{
    Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
};

use super::schema::{self, CommonFields, LIVE, ProductFields, PurchaseFields, SCHEMA_VERSION};
use super::{lock, text, unavailable};
use crate::engine::{ApplyOutcome, DocChange, Entity, SearchError, Stored, Versioned};

/// Memory for one index writer. Tantivy's floor is 15 MB per indexing thread; one thread
/// per index keeps a many-tenant process small, and CDC batches are small anyway.
const WRITER_MEMORY: usize = 32_000_000;

/// Segments of about one size that a writer merges into one.
const MERGE_AT_SEGMENTS: usize = 4;

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
    pub(super) writer: Mutex<Option<IndexWriter>>,
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
    pub(super) fn open(dir: PathBuf, entity: Entity) -> Result<Self, SearchError> {
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
            dir,
            reader,
            writer: Mutex::new(None),
            fields,
            vocabularies: Mutex::new(text::Vocabularies::default()),
        })
    }
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

    /// The stored sequence number and document of `key`, live or tombstone.
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
            .search(&query, &TopDocs::with_limit(1).order_by_score())
            .map_err(unavailable)?;
        match top.first() {
            Some((_, addr)) => Ok(Some(searcher.doc(*addr).map_err(unavailable)?)),
            None => Ok(None),
        }
    }

    pub(super) fn stored_seq(&self, doc: &TantivyDocument) -> Result<SeqNo, SearchError> {
        let text = doc
            .get_first(self.fields.common().seq)
            .and_then(|v| v.as_str())
            .ok_or_else(|| SearchError::Corrupt("document without a sequence number".into()))?;
        SeqNo::parse(text).map_err(SearchError::Corrupt)
    }

    pub(super) fn apply<T: Indexable>(
        &self,
        changes: Vec<Versioned<T>>,
    ) -> Result<ApplyOutcome, SearchError> {
        let common = *self.fields.common();
        let mut writer_slot = lock(&self.writer);
        if writer_slot.is_none() {
            let writer: IndexWriter = self
                .index
                .writer_with_num_threads(1, WRITER_MEMORY)
                .map_err(unavailable)?;
            // Every search pays per segment (term dictionary walks, postings, bitsets), and
            // CDC commits one small segment per batch: merge sooner than Tantivy's default
            // (8 segments of a size), since a catalog is read far more than written.
            let mut policy = LogMergePolicy::default();
            policy.set_min_num_segments(MERGE_AT_SEGMENTS);
            writer.set_merge_policy(Box::new(policy));
            *writer_slot = Some(writer);
        }
        let Some(writer) = writer_slot.as_mut() else {
            return Err(unavailable("index writer missing"));
        };
        // The reader of this process is reloaded after each of its commits, and only this
        // writer (it holds the directory lock) commits, so it shows every committed seq.
        let searcher = self.reader.searcher();
        let mut current: HashMap<String, SeqNo> = HashMap::new();
        let mut outcome = ApplyOutcome::default();
        for change in changes {
            let known = match current.get(&change.key) {
                Some(seq) => Some(seq.clone()),
                None => match self.lookup(&searcher, &change.key)? {
                    Some(doc) => Some(self.stored_seq(&doc)?),
                    None => None,
                },
            };
            if known.as_ref().is_some_and(|k| *k >= change.seq) {
                outcome.stale += 1;
                continue;
            }
            let seq = change.seq.padded();
            let doc = match &change.change {
                DocChange::Upsert(value) => value.document(&self.fields, &seq)?,
                DocChange::Delete => common.tombstone(&change.key, &seq),
            };
            writer.delete_term(Term::from_field_text(common.key, &change.key));
            writer.add_document(doc).map_err(unavailable)?;
            current.insert(change.key, change.seq);
            outcome.applied += 1;
        }
        if outcome.applied > 0 {
            if let Err(e) = writer.commit() {
                // Drop what this batch staged so a retry starts from the committed state.
                let _ = writer.rollback();
                return Err(unavailable(e));
            }
            self.reader.reload().map_err(unavailable)?;
        }
        Ok(outcome)
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
