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

use cloudpf_model::{Currency, Money, Product, Purchase, PurchaseStatus};
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
use crate::query::{MAX_SUGGESTIONS, Suggestion, auto_fuzziness};
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

/// A suggestible product: where its name and id live (a row of a segment's extract).
#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: u32,
    row: u32,
    popularity: u64,
}

/// What the suggester was built from: the commit identities of both indexes.
pub type BuiltFrom = (u64, u64);

/// Ranking key, smaller is better: typo distance, not at the name start, fewer sales, ordinal.
type Rank = (u8, bool, Reverse<u64>, u32);

/// Memory is what bounds a large tenant here (issue #11: a 100k catalog's suggester took
/// 140 MB while it was built), so names live once, in the segment extracts' arenas, and
/// the FST holds each distinct key text once, pointing at a group of entries.
pub struct Suggester {
    built_from: BuiltFrom,
    entries: Vec<Entry>,
    /// The product extracts `entries` point into.
    segments: Vec<Arc<ProductExtract>>,
    /// Key: normalized word-suffix of a name (see [`key_of`]). Value: its group number.
    fst: Map<Vec<u8>>,
    /// Where each group's postings end in `postings` (a group starts where the previous
    /// one ends).
    group_ends: Vec<u32>,
    /// Per key and entry: ordinal << 1 | 1 if the key starts at the name's first word.
    postings: Vec<u32>,
    /// Best entries of every heavy prefix (raw key bytes), best first.
    heavy: HashMap<Box<[u8]>, Box<[u32]>>,
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
    cloudpf_model::dynamo::from_item_json(text).map_err(|e| SearchError::Corrupt(e.to_string()))
}

/// The active products of a segment: each one's name, id and folded name (its analyzed
/// words joined by spaces, see [`folded`]) in one arena, so a product costs its bytes and
/// 16 more instead of three allocations and a key string per word.
#[derive(Debug, Default)]
struct ProductExtract {
    arena: String,
    rows: Vec<ProductRow>,
}

/// Where one product's texts end in the arena; each starts where the previous one ends.
#[derive(Debug, Clone, Copy)]
struct ProductRow {
    doc: DocId,
    name_end: u32,
    id_end: u32,
    folded_end: u32,
    price: Money,
    currency: Currency,
}

impl ProductExtract {
    fn push(
        &mut self,
        doc: DocId,
        name: &str,
        product_id: &str,
        folded: &str,
        (price, currency): (Money, Currency),
    ) -> Result<(), SearchError> {
        let end = |arena: &String| {
            u32::try_from(arena.len()).map_err(|_| SearchError::Corrupt("segment too large".into()))
        };
        self.arena.push_str(name);
        let name_end = end(&self.arena)?;
        self.arena.push_str(product_id);
        let id_end = end(&self.arena)?;
        self.arena.push_str(folded);
        let folded_end = end(&self.arena)?;
        self.rows.push(ProductRow {
            doc,
            name_end,
            id_end,
            folded_end,
            price,
            currency,
        });
        Ok(())
    }

    fn start(&self, row: usize) -> usize {
        row.checked_sub(1)
            .map_or(0, |r| self.rows[r].folded_end as usize)
    }

    fn name(&self, row: usize) -> &str {
        &self.arena[self.start(row)..self.rows[row].name_end as usize]
    }

    fn product_id(&self, row: usize) -> &str {
        let r = &self.rows[row];
        &self.arena[r.name_end as usize..r.id_end as usize]
    }

    fn price(&self, row: usize) -> (Money, Currency) {
        let r = &self.rows[row];
        (r.price, r.currency)
    }

    fn folded(&self, row: usize) -> &str {
        let r = &self.rows[row];
        &self.arena[r.id_end as usize..r.folded_end as usize]
    }
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
    products: HashMap<SegmentId, Arc<ProductExtract>>,
    purchases: HashMap<SegmentId, Arc<Vec<PurchaseDoc>>>,
}

fn product_segment(
    analyzer: &TextAnalyzer,
    segment: &SegmentReader,
    common: &CommonFields,
) -> Result<ProductExtract, SearchError> {
    let store = segment.get_store_reader(64).map_err(unavailable)?;
    let mut out = ProductExtract::default();
    for doc in live_docs(segment, common)? {
        let p: Product = source(&store, common, doc)?;
        if p.is_active {
            let folded = folded(&analyze(analyzer, &p.name));
            out.push(doc, &p.name, &p.product_id, &folded, (p.price, p.currency))?;
        }
    }
    out.arena.shrink_to_fit();
    out.rows.shrink_to_fit();
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
fn units_sold<'a>(searcher: Option<&Searcher>, extracts: &'a Extracts) -> HashMap<&'a str, u64> {
    let mut sold: HashMap<&str, u64> = HashMap::new();
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
                *sold.entry(product_id.as_str()).or_default() += quantity;
            }
        }
    }
    sold
}

/// One key of one entry while a suggester is built: `len` bytes of the entry's folded
/// name from byte `start` (8 bytes instead of an allocated key per word and product).
#[derive(Debug, Clone, Copy)]
struct KeyRef {
    entry: u32,
    start: u16,
    len: u8,
    first: bool,
}

impl KeyRef {
    fn posting(self) -> u32 {
        self.entry << 1 | u32::from(self.first)
    }
}

/// Finds every prefix matched by more than [`SCAN_LIMIT`] keys and stores its best
/// entries. `keys` is sorted, so the keys of a prefix are contiguous; each level splits
/// its range by the next byte. The walk keeps its own stack instead of recursing: a
/// prefix may be as deep as a key is long, and data must never decide stack depth
/// (issue #10: a 20 KB name aborted the whole server).
fn heavy_prefixes<'a>(
    keys: &[KeyRef],
    text: impl Fn(KeyRef) -> &'a [u8],
    entries: &[Entry],
) -> HashMap<Box<[u8]>, Box<[u32]>> {
    let mut out = HashMap::new();
    // (range start, range end, depth): every key in the range shares `depth` bytes.
    let mut pending = vec![(0, keys.len(), 0)];
    while let Some((lo, hi, depth)) = pending.pop() {
        let mut start = lo;
        while start < hi {
            // A key that ends here sorts before longer ones; no prefix reaches past it.
            let Some(&byte) = text(keys[start]).get(depth) else {
                start += 1;
                continue;
            };
            let end =
                start + keys[start..hi].partition_point(|k| text(*k).get(depth) == Some(&byte));
            if end - start > SCAN_LIMIT {
                let group = &keys[start..end];
                let prefix = &text(group[0])[..=depth];
                out.insert(prefix.into(), top_entries(group, entries));
                pending.push((start, end, depth + 1));
            }
            start = end;
        }
    }
    out
}

/// The best [`MAX_SUGGESTIONS`] distinct entries among `group`'s keys.
fn top_entries(group: &[KeyRef], entries: &[Entry]) -> Box<[u32]> {
    let mut ranked: Vec<(bool, Reverse<u64>, u32)> = group
        .iter()
        .map(|k| {
            (
                !k.first,
                Reverse(entries[k.entry as usize].popularity),
                k.entry,
            )
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
    top.into_boxed_slice()
}

/// A name's analyzed words joined by spaces, as far as any key reaches: keys start at the
/// first [`MAX_KEY_WORDS`] words and hold at most [`MAX_KEY_BYTES`]. Words have no spaces
/// (the tokenizer splits on them), so a key is a slice from a word start.
fn folded(words: &[String]) -> String {
    let mut text = String::new();
    let mut reach = usize::MAX;
    for (i, word) in words.iter().enumerate() {
        if i == MAX_KEY_WORDS {
            reach = text.len() + MAX_KEY_BYTES;
        }
        if text.len() >= reach {
            break;
        }
        if i > 0 {
            text.push(' ');
        }
        text.push_str(word);
    }
    cut(&text, reach).to_owned()
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The key that starts at byte `start` of a folded name: at most [`MAX_KEY_BYTES`], cut on
/// a character boundary, without a trailing space. Queries are keyed the same way (from
/// 0), so a long query still matches.
fn key_of(folded: &str, start: usize) -> &str {
    cut(&folded[start..], MAX_KEY_BYTES).trim_end_matches(' ')
}

impl Suggester {
    /// Builds from `sources`, reading only the segments `sources.previous` lacks.
    pub fn build(sources: &Sources<'_>, built_from: BuiltFrom) -> Result<Self, SearchError> {
        let too_many = || SearchError::Corrupt("too many products".into());
        // Unreachable while folded names are bounded as [`folded`] bounds them.
        let too_long = || SearchError::Corrupt("a key reaches past its bounds".into());
        let (extracts, segments_read) = sources.extracts()?;
        let sold = units_sold(sources.purchases.map(|(s, _)| s), &extracts);
        let mut segments = Vec::new();
        let mut entries = Vec::new();
        let mut folded_names: Vec<&str> = Vec::new();
        let mut keys: Vec<KeyRef> = Vec::new();
        for segment in sources.products.segment_readers() {
            let Some(extract) = extracts.products.get(&segment.segment_id()) else {
                continue;
            };
            let segment_no = u32::try_from(segments.len()).map_err(|_| too_many())?;
            segments.push(extract.clone());
            let alive = segment.alive_bitset();
            for (row, r) in extract.rows.iter().enumerate() {
                if alive.is_some_and(|a| !a.is_alive(r.doc)) {
                    continue;
                }
                // A posting keeps the entry shifted left by one.
                let entry = u32::try_from(entries.len())
                    .ok()
                    .filter(|e| *e <= u32::MAX >> 1)
                    .ok_or_else(too_many)?;
                let folded = extract.folded(row);
                let starts =
                    std::iter::once(0).chain(folded.match_indices(' ').map(|(i, _)| i + 1));
                for (word, start) in starts.take(MAX_KEY_WORDS).enumerate() {
                    let len = key_of(folded, start).len();
                    if len > 0 {
                        keys.push(KeyRef {
                            entry,
                            start: u16::try_from(start).map_err(|_| too_long())?,
                            len: u8::try_from(len).map_err(|_| too_long())?,
                            first: word == 0,
                        });
                    }
                }
                folded_names.push(folded);
                entries.push(Entry {
                    segment: segment_no,
                    row: u32::try_from(row).map_err(|_| too_many())?,
                    popularity: sold.get(extract.product_id(row)).copied().unwrap_or(0),
                });
            }
        }
        let text = |k: KeyRef| {
            let start = usize::from(k.start);
            &folded_names[k.entry as usize].as_bytes()[start..start + usize::from(k.len)]
        };
        // By text, then entry, a first-word key before a later one of the same text.
        keys.sort_unstable_by(|a, b| {
            text(*a)
                .cmp(text(*b))
                .then(a.entry.cmp(&b.entry))
                .then(b.first.cmp(&a.first))
        });
        keys.dedup_by(|a, b| a.entry == b.entry && text(*a) == text(*b));
        let heavy = heavy_prefixes(&keys, text, &entries);
        let mut builder = MapBuilder::memory();
        let mut group_ends = Vec::new();
        let mut postings = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            postings.push(k.posting());
            if keys.get(i + 1).is_none_or(|next| text(*next) != text(*k)) {
                builder
                    .insert(text(*k), group_ends.len() as u64)
                    .map_err(|e| SearchError::Corrupt(e.to_string()))?;
                group_ends.push(u32::try_from(postings.len()).map_err(|_| too_many())?);
            }
        }
        drop(keys);
        drop(sold);
        group_ends.shrink_to_fit();
        Ok(Self {
            built_from,
            entries,
            segments,
            fst: builder.into_map(),
            group_ends,
            postings,
            heavy,
            extracts,
            segments_read,
        })
    }

    /// Roughly what this suggester holds in memory, in bytes, by part (for the build log).
    pub fn footprint(&self) -> [(&'static str, usize); 5] {
        let arenas = self
            .segments
            .iter()
            .map(|e| e.arena.capacity() + e.rows.capacity() * std::mem::size_of::<ProductRow>())
            .sum();
        let heavy = self
            .heavy
            .iter()
            .map(|(k, v)| k.len() + v.len() * 4 + 48)
            .sum();
        [
            ("fst", self.fst.as_fst().as_bytes().len()),
            (
                "postings",
                (self.postings.capacity() + self.group_ends.capacity()) * 4,
            ),
            (
                "entries",
                self.entries.capacity() * std::mem::size_of::<Entry>(),
            ),
            ("names", arenas),
            ("heavy", heavy),
        ]
    }

    /// The postings of the key group `group`.
    fn group(&self, group: u64) -> &[u32] {
        let g = group as usize;
        let start = g.checked_sub(1).map_or(0, |p| self.group_ends[p] as usize);
        &self.postings[start..self.group_ends[g] as usize]
    }

    fn name(&self, entry: u32) -> (&str, &str, (Money, Currency)) {
        let e = self.entries[entry as usize];
        let extract = &self.segments[e.segment as usize];
        (
            extract.name(e.row as usize),
            extract.product_id(e.row as usize),
            extract.price(e.row as usize),
        )
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
        let folded = folded(&analyze(analyzer, input));
        let query = key_of(&folded, 0);
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
                .search(fst::automaton::Str::new(query).starts_with())
                .into_stream();
            while let Some((_, group)) = stream.next() {
                for &p in self.group(group) {
                    let o = p >> 1;
                    offer(&mut best, o, (0, p & 1 == 0, popularity(o), o));
                }
            }
        }
        if best.len() < size
            && let Some(dfa) = automata.dfa(query, auto_fuzziness(query), true)
        {
            let mut stream = self.fst.search(Lev(&dfa)).into_stream();
            let mut seen = 0;
            'keys: while let Some((key, group)) = stream.next() {
                let Distance::Exact(d) = dfa.eval(key) else {
                    continue;
                };
                for &p in self.group(group) {
                    let o = p >> 1;
                    offer(&mut best, o, (d, p & 1 == 0, popularity(o), o));
                    seen += 1;
                    if seen >= FUZZY_LIMIT {
                        break 'keys;
                    }
                }
            }
        }
        let mut ranked: Vec<(Rank, u32)> = best.into_iter().map(|(o, r)| (r, o)).collect();
        ranked.sort_unstable();
        ranked
            .into_iter()
            .take(size)
            .map(|((distance, ..), o)| {
                let (name, product_id, (price, currency)) = self.name(o);
                Suggestion {
                    text: name.to_owned(),
                    product_id: product_id.to_owned(),
                    price,
                    currency,
                    popularity: self.entries[o as usize].popularity,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(words: &[&str]) -> Vec<String> {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        let folded = folded(&words);
        std::iter::once(0)
            .chain(folded.match_indices(' ').map(|(i, _)| i + 1))
            .take(MAX_KEY_WORDS)
            .map(|start| key_of(&folded, start).to_owned())
            .collect()
    }

    #[test]
    fn keys_start_at_each_of_the_first_sixteen_words_and_run_to_the_end_of_the_name() {
        assert_eq!(
            keys(&["hiking", "boots", "brown"]),
            ["hiking boots brown", "boots brown", "brown"]
        );
        let many: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let got = keys(&many);
        assert_eq!(got.len(), MAX_KEY_WORDS);
        assert!(got[15].starts_with("w15 w16 w17"), "{}", got[15]);
    }

    #[test]
    fn a_key_holds_at_most_96_bytes_cut_on_a_character_boundary_without_a_trailing_space() {
        let long = "é".repeat(39); // 78 bytes
        let got = keys(&[&long, &long, "x"]);
        assert!(got.iter().all(|k| k.len() <= MAX_KEY_BYTES));
        // 78 bytes, a space, then 8 two-byte characters: 95 bytes, not 96.
        assert_eq!(got[0], format!("{long} {}", "é".repeat(8)));
        assert_eq!(got[1], format!("{long} x"));
        let exact = "a".repeat(95);
        assert_eq!(
            keys(&[&exact, "b"])[0],
            exact,
            "the space before a cut word is dropped"
        );
    }
}
