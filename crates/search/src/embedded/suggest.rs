//! Autocomplete: an FST per tenant of every word-suffix of every active product name
//! ("hiking boots – brown" is found by "hik", "boo" and "bro"), ranked by match quality and
//! then by units sold.
//!
//! The hot path never touches the Tantivy index, and its cost is bounded whatever the
//! catalog size: a prefix shared by more than [`SCAN_LIMIT`] keys (a "heavy" prefix such
//! as "he") is answered from a top list computed when the FST is built; any other prefix
//! matches at most [`SCAN_LIMIT`] keys, which are ranked on the spot. A typo-tolerant pass
//! (a Levenshtein prefix automaton walking the FST, at most [`FUZZY_LIMIT`] keys) runs
//! only when exact matches do not fill the answer. The suggester is rebuilt from the
//! index when a commit changes the products or purchases it was built from.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};

use cloudpf_model::{Product, Purchase, PurchaseStatus};
use fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer};
use levenshtein_automata::{DFA, Distance, SINK_STATE};
use std::sync::Arc;

use tantivy::index::SegmentId;
use tantivy::schema::IndexRecordOption;
use tantivy::store::StoreReader;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocId, DocSet, Searcher, SegmentReader, TERMINATED};

use super::schema::{CommonFields, LIVE};
use super::text::{Automata, analyze};
use super::unavailable;
use crate::engine::SearchError;
use crate::query::{Suggestion, auto_fuzziness};

/// Suggestions kept per heavy prefix; also the most a request may ask for.
pub const MAX_SUGGESTIONS: usize = 20;
/// A prefix matching more keys than this gets a precomputed top list.
pub const SCAN_LIMIT: usize = 256;
/// Keys the typo-tolerant pass looks at, at most.
pub const FUZZY_LIMIT: usize = 1024;
/// Words of a name that start a key: later words of a very long name are found only
/// through the keys of earlier ones. With [`MAX_KEY_BYTES`] this bounds what one name
/// costs the suggester (at most 16 keys of 96 bytes), whatever its length.
pub const MAX_KEY_WORDS: usize = 16;
/// Bytes of a name (or a query) that a key holds.
pub const MAX_KEY_BYTES: usize = 96;

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    product_id: String,
    popularity: u64,
}

/// What the suggester was built from: the commit identities of both indexes.
pub type BuiltFrom = (u64, u64);

/// Ranking key, smaller is better: typo distance, not at the name start, fewer sales, ordinal.
type Rank = (u8, bool, Reverse<u64>, u32);

pub struct Suggester {
    built_from: BuiltFrom,
    entries: Vec<Entry>,
    /// Key: normalized word-suffix of a name, 0, entry ordinal (big-endian u32).
    /// Value: ordinal << 1 | 1 if the suffix starts at the name's first word.
    fst: Map<Vec<u8>>,
    /// Best entries of every heavy prefix (raw key bytes), best first.
    heavy: HashMap<Vec<u8>, Vec<u32>>,
    extracts: Extracts,
    segments_read: u64,
}

impl std::fmt::Debug for Suggester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suggester")
            .field("entries", &self.entries.len())
            .field("heavy_prefixes", &self.heavy.len())
            .finish_non_exhaustive()
    }
}

/// The live documents of one segment, deleted ones included (the alive bitset of the
/// searcher that uses the extract decides).
fn live_docs(segment: &SegmentReader, common: &CommonFields) -> Result<Vec<DocId>, SearchError> {
    let term = tantivy::Term::from_field_text(common.state, LIVE);
    let inverted = segment.inverted_index(common.state).map_err(unavailable)?;
    let mut docs = Vec::new();
    if let Some(mut postings) = inverted
        .read_postings(&term, IndexRecordOption::Basic)
        .map_err(unavailable)?
    {
        let mut doc = postings.doc();
        while doc != TERMINATED {
            docs.push(doc);
            doc = postings.advance();
        }
    }
    Ok(docs)
}

fn source<T: serde::de::DeserializeOwned>(
    store: &StoreReader,
    common: &CommonFields,
    doc: DocId,
) -> Result<T, SearchError> {
    use tantivy::schema::Value;
    let doc: tantivy::TantivyDocument = store.get(doc).map_err(unavailable)?;
    let text = doc
        .get_first(common.source)
        .and_then(|v| v.as_str())
        .unwrap_or("{}");
    let item: serde_dynamo::Item =
        serde_json::from_str(text).map_err(|e| SearchError::Corrupt(e.to_string()))?;
    cloudpf_model::dynamo::from_item(item).map_err(|e| SearchError::Corrupt(e.to_string()))
}

/// An active product of a segment, with the name part of its keys (the key text and
/// whether it starts at the name's first word).
#[derive(Debug)]
struct ProductDoc {
    doc: DocId,
    name: String,
    product_id: String,
    keys: Vec<(String, bool)>,
}

/// Line quantities of a purchase that counts as sold (not cancelled or refunded).
#[derive(Debug)]
struct PurchaseDoc {
    doc: DocId,
    lines: Vec<(String, u64)>,
}

/// What autocomplete read from each segment. Segments never change, so a rebuild reads
/// and analyzes only the segments committed since the last build, and applies deletes
/// through each segment's alive bitset (issue #11: a 100k catalog was read again in full
/// on every small change).
#[derive(Debug, Default, Clone)]
pub struct Extracts {
    products: HashMap<SegmentId, Arc<Vec<ProductDoc>>>,
    purchases: HashMap<SegmentId, Arc<Vec<PurchaseDoc>>>,
}

fn product_segment(
    analyzer: &TextAnalyzer,
    segment: &SegmentReader,
    common: &CommonFields,
) -> Result<Vec<ProductDoc>, SearchError> {
    let store = segment.get_store_reader(64).map_err(unavailable)?;
    let mut out = Vec::new();
    for doc in live_docs(segment, common)? {
        let p: Product = source(&store, common, doc)?;
        if !p.is_active {
            continue;
        }
        let words = analyze(analyzer, &p.name);
        let keys = (0..words.len().min(MAX_KEY_WORDS))
            .map(|start| (key_text(&words[start..]), start == 0))
            .collect();
        out.push(ProductDoc {
            doc,
            name: p.name,
            product_id: p.product_id,
            keys,
        });
    }
    Ok(out)
}

fn purchase_segment(
    segment: &SegmentReader,
    common: &CommonFields,
) -> Result<Vec<PurchaseDoc>, SearchError> {
    let store = segment.get_store_reader(64).map_err(unavailable)?;
    let mut out = Vec::new();
    for doc in live_docs(segment, common)? {
        let p: Purchase = source(&store, common, doc)?;
        if matches!(
            p.status,
            PurchaseStatus::Cancelled | PurchaseStatus::Refunded
        ) {
            continue;
        }
        let lines = p
            .items
            .into_iter()
            .map(|i| (i.product_id, u64::try_from(i.quantity).unwrap_or(0)))
            .collect();
        out.push(PurchaseDoc { doc, lines });
    }
    Ok(out)
}

/// The indexes a suggester is built from, with what an earlier build already read.
#[allow(missing_debug_implementations)] // Tantivy's analyzer has no Debug
pub struct Sources<'a> {
    pub analyzer: &'a TextAnalyzer,
    pub products: &'a Searcher,
    pub product_fields: &'a CommonFields,
    pub purchases: Option<(&'a Searcher, &'a CommonFields)>,
    pub previous: Option<&'a Extracts>,
}

impl Sources<'_> {
    /// Every segment's extract, from `previous` where it has it; and how many segments
    /// had to be read.
    fn extracts(&self) -> Result<(Extracts, u64), SearchError> {
        let mut out = Extracts::default();
        let mut read = 0;
        for segment in self.products.segment_readers() {
            let id = segment.segment_id();
            let got = match self.previous.and_then(|p| p.products.get(&id)) {
                Some(e) => e.clone(),
                None => {
                    read += 1;
                    Arc::new(product_segment(
                        self.analyzer,
                        segment,
                        self.product_fields,
                    )?)
                }
            };
            out.products.insert(id, got);
        }
        if let Some((searcher, fields)) = self.purchases {
            for segment in searcher.segment_readers() {
                let id = segment.segment_id();
                let got = match self.previous.and_then(|p| p.purchases.get(&id)) {
                    Some(e) => e.clone(),
                    None => {
                        read += 1;
                        Arc::new(purchase_segment(segment, fields)?)
                    }
                };
                out.purchases.insert(id, got);
            }
        }
        Ok((out, read))
    }
}

/// Units sold per product over the purchases that are alive in `searcher`.
fn units_sold(searcher: Option<&Searcher>, extracts: &Extracts) -> HashMap<String, u64> {
    let mut sold: HashMap<String, u64> = HashMap::new();
    let Some(searcher) = searcher else {
        return sold;
    };
    for segment in searcher.segment_readers() {
        let Some(docs) = extracts.purchases.get(&segment.segment_id()) else {
            continue;
        };
        let alive = segment.alive_bitset();
        for d in docs
            .iter()
            .filter(|d| alive.is_none_or(|a| a.is_alive(d.doc)))
        {
            for (product_id, quantity) in &d.lines {
                *sold.entry(product_id.clone()).or_default() += quantity;
            }
        }
    }
    sold
}

/// Finds every prefix matched by more than [`SCAN_LIMIT`] keys and stores its best
/// entries. `keys` is sorted, so the keys of a prefix are contiguous; each level splits
/// its range by the next byte. The walk keeps its own stack instead of recursing: a
/// prefix may be as deep as a key is long, and data must never decide stack depth
/// (issue #10: a 20 KB name aborted the whole server).
fn heavy_prefixes(keys: &[(Vec<u8>, u64)], entries: &[Entry]) -> HashMap<Vec<u8>, Vec<u32>> {
    let mut out = HashMap::new();
    // (range start, range end, depth): every key in the range shares `depth` bytes.
    let mut pending = vec![(0, keys.len(), 0)];
    while let Some((lo, hi, depth)) = pending.pop() {
        let mut start = lo;
        while start < hi {
            let Some(&byte) = keys[start].0.get(depth) else {
                start += 1;
                continue;
            };
            let end = start + keys[start..hi].partition_point(|(k, _)| k.get(depth) == Some(&byte));
            // The 0 byte ends the name part of a key: no prefix reaches past it.
            if byte != 0 && end - start > SCAN_LIMIT {
                let group = &keys[start..end];
                out.insert(group[0].0[..=depth].to_vec(), top_entries(group, entries));
                pending.push((start, end, depth + 1));
            }
            start = end;
        }
    }
    out
}

/// The best [`MAX_SUGGESTIONS`] distinct entries among `group`'s keys.
fn top_entries(group: &[(Vec<u8>, u64)], entries: &[Entry]) -> Vec<u32> {
    let mut ranked: Vec<(bool, Reverse<u64>, u32)> = group
        .iter()
        .map(|(_, v)| {
            let o = (v >> 1) as u32;
            (v & 1 == 0, Reverse(entries[o as usize].popularity), o)
        })
        .collect();
    ranked.sort_unstable();
    let mut top: Vec<u32> = Vec::with_capacity(MAX_SUGGESTIONS);
    for (_, _, o) in ranked {
        if !top.contains(&o) {
            top.push(o);
            if top.len() == MAX_SUGGESTIONS {
                break;
            }
        }
    }
    top
}

/// The name part of a key: the words joined by spaces, cut to [`MAX_KEY_BYTES`] on a
/// character boundary. Queries are cut the same way, so a long query still matches.
fn key_text(words: &[String]) -> String {
    let mut text = String::new();
    for word in words {
        let sep = usize::from(!text.is_empty());
        if text.len() + sep + word.len() > MAX_KEY_BYTES {
            let room = MAX_KEY_BYTES.saturating_sub(text.len() + sep);
            if room > 0 {
                if sep == 1 {
                    text.push(' ');
                }
                let mut cut = room;
                while !word.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.push_str(&word[..cut]);
            }
            break;
        }
        if sep == 1 {
            text.push(' ');
        }
        text.push_str(word);
    }
    text
}

impl Suggester {
    /// Builds from `sources`, reading only the segments `sources.previous` lacks.
    pub fn build(sources: &Sources<'_>, built_from: BuiltFrom) -> Result<Self, SearchError> {
        let (extracts, segments_read) = sources.extracts()?;
        let sold = units_sold(sources.purchases.map(|(s, _)| s), &extracts);
        let mut entries = Vec::new();
        let mut keys: Vec<(Vec<u8>, u64)> = Vec::new();
        for segment in sources.products.segment_readers() {
            let Some(docs) = extracts.products.get(&segment.segment_id()) else {
                continue;
            };
            let alive = segment.alive_bitset();
            for d in docs
                .iter()
                .filter(|d| alive.is_none_or(|a| a.is_alive(d.doc)))
            {
                let ordinal = u32::try_from(entries.len())
                    .map_err(|_| SearchError::Corrupt("too many products".into()))?;
                for (text, first) in &d.keys {
                    let mut key = Vec::with_capacity(text.len() + 5);
                    key.extend_from_slice(text.as_bytes());
                    key.push(0);
                    key.extend_from_slice(&ordinal.to_be_bytes());
                    keys.push((key, u64::from(ordinal) << 1 | u64::from(*first)));
                }
                entries.push(Entry {
                    name: d.name.clone(),
                    product_id: d.product_id.clone(),
                    popularity: sold.get(&d.product_id).copied().unwrap_or(0),
                });
            }
        }
        keys.sort_unstable();
        keys.dedup_by(|a, b| a.0 == b.0);
        let heavy = heavy_prefixes(&keys, &entries);
        let mut builder = MapBuilder::memory();
        for (k, v) in keys {
            builder
                .insert(k, v)
                .map_err(|e| SearchError::Corrupt(e.to_string()))?;
        }
        Ok(Self {
            built_from,
            entries,
            fst: builder.into_map(),
            heavy,
            extracts,
            segments_read,
        })
    }

    /// Segments this build read (the others came from the previous build).
    pub fn segments_read(&self) -> u64 {
        self.segments_read
    }

    /// What this build read, for the next one to reuse.
    pub fn extracts(&self) -> &Extracts {
        &self.extracts
    }

    pub fn built_from(&self) -> BuiltFrom {
        self.built_from
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn suggest(
        &self,
        analyzer: &TextAnalyzer,
        automata: &Automata,
        input: &str,
        size: usize,
    ) -> Vec<Suggestion> {
        let size = size.min(MAX_SUGGESTIONS);
        let query = key_text(&analyze(analyzer, input));
        if query.is_empty() || size == 0 {
            return Vec::new();
        }
        let popularity = |o: u32| Reverse(self.entries[o as usize].popularity);
        let mut best: BTreeMap<u32, Rank> = BTreeMap::new();
        let offer = |best: &mut BTreeMap<u32, Rank>, o: u32, rank: Rank| {
            best.entry(o)
                .and_modify(|r| *r = (*r).min(rank))
                .or_insert(rank);
        };
        if let Some(top) = self.heavy.get(query.as_bytes()) {
            // Ranked when built; the position keeps that order among exact matches.
            for (position, &o) in top.iter().enumerate() {
                offer(
                    &mut best,
                    o,
                    (0, false, Reverse(u64::MAX - position as u64), o),
                );
            }
        } else {
            let mut stream = self
                .fst
                .search(fst::automaton::Str::new(&query).starts_with())
                .into_stream();
            while let Some((_, v)) = stream.next() {
                let o = (v >> 1) as u32;
                offer(&mut best, o, (0, v & 1 == 0, popularity(o), o));
            }
        }
        if best.len() < size
            && let Some(dfa) = automata.dfa(&query, auto_fuzziness(&query), true)
        {
            let mut stream = self.fst.search(Lev(&dfa)).into_stream();
            let mut seen = 0;
            while let Some((key, v)) = stream.next() {
                if let Distance::Exact(d) = dfa.eval(key) {
                    let o = (v >> 1) as u32;
                    offer(&mut best, o, (d, v & 1 == 0, popularity(o), o));
                }
                seen += 1;
                if seen >= FUZZY_LIMIT {
                    break;
                }
            }
        }
        let mut ranked: Vec<(Rank, u32)> = best.into_iter().map(|(o, r)| (r, o)).collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .take(size)
            .map(|((distance, ..), o)| {
                let e = &self.entries[o as usize];
                Suggestion {
                    text: e.name.clone(),
                    product_id: e.product_id.clone(),
                    popularity: e.popularity,
                    fuzzy: distance > 0,
                }
            })
            .collect()
    }
}

/// A Levenshtein DFA walking the FST.
pub(crate) struct Lev<'a>(pub(crate) &'a DFA);

impl Automaton for Lev<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}
