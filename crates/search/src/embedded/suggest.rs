//! Autocomplete: an FST per tenant of every word-suffix of every active product name
//! ("hiking boots – brown" is found by "hik", "boo" and "bro"), ranked by match quality and
//! then by units sold.
//!
//! The hot path never touches the Tantivy index: an exact prefix of up to
//! [`SHORT_PREFIX`] characters is answered from a precomputed top list; a longer one walks
//! the FST's matching range; a typo-tolerant pass (a Levenshtein prefix automaton over
//! the FST) runs only when exact matches do not fill the answer. The FST is rebuilt from
//! the index when a commit changes the products or purchases the suggester was built from.

use std::collections::{BTreeMap, HashMap, HashSet};

use cloudpf_model::{Product, Purchase, PurchaseStatus};
use fst::{Automaton, IntoStreamer, Map, MapBuilder, Streamer};
use levenshtein_automata::{DFA, Distance, SINK_STATE};
use tantivy::Searcher;
use tantivy::collector::DocSetCollector;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::tokenizer::TextAnalyzer;

use super::schema::{CommonFields, LIVE};
use super::text::{Automata, analyze};
use super::unavailable;
use crate::engine::SearchError;
use crate::query::{Suggestion, auto_fuzziness};

/// Prefixes up to this many characters are answered from precomputed lists.
pub const SHORT_PREFIX: usize = 3;
/// Suggestions kept per short prefix; also the most a request may ask for.
pub const MAX_SUGGESTIONS: usize = 20;
/// At most this many FST entries are ranked for one request, so a broad typo match stays
/// cheap.
const MAX_CANDIDATES: usize = 4096;

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    product_id: String,
    popularity: u64,
}

/// What the suggester was built from: the searcher generations of both indexes.
pub type BuiltFrom = (u64, u64);

pub struct Suggester {
    built_from: BuiltFrom,
    entries: Vec<Entry>,
    /// Key: normalized word-suffix of a name, 0, entry ordinal (big-endian u32).
    /// Value: ordinal << 1 | 1 if the suffix starts at the name's first word.
    fst: Map<Vec<u8>>,
    short: HashMap<String, Vec<(u32, bool)>>,
}

impl std::fmt::Debug for Suggester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suggester")
            .field("entries", &self.entries.len())
            .finish_non_exhaustive()
    }
}

/// Ranking key, smaller is better: typo distance, not at the name start, fewer sales, name.
type Rank = (u8, bool, std::cmp::Reverse<u64>, u32);

fn live_docs(
    searcher: &Searcher,
    common: &CommonFields,
) -> Result<Vec<tantivy::DocAddress>, SearchError> {
    let q = TermQuery::new(
        tantivy::Term::from_field_text(common.state, LIVE),
        IndexRecordOption::Basic,
    );
    let mut docs: Vec<_> = searcher
        .search(&q, &DocSetCollector)
        .map_err(unavailable)?
        .into_iter()
        .collect();
    docs.sort();
    Ok(docs)
}

fn source<T: serde::de::DeserializeOwned>(
    searcher: &Searcher,
    common: &CommonFields,
    addr: tantivy::DocAddress,
) -> Result<T, SearchError> {
    use tantivy::schema::Value;
    let doc: tantivy::TantivyDocument = searcher.doc(addr).map_err(unavailable)?;
    let text = doc
        .get_first(common.source)
        .and_then(|v| v.as_str())
        .unwrap_or("{}");
    let item: serde_dynamo::Item =
        serde_json::from_str(text).map_err(|e| SearchError::Corrupt(e.to_string()))?;
    cloudpf_model::dynamo::from_item(item).map_err(|e| SearchError::Corrupt(e.to_string()))
}

/// Units sold per product: line quantities of live purchases that were not cancelled or
/// refunded.
pub fn units_sold(
    searcher: &Searcher,
    common: &CommonFields,
) -> Result<HashMap<String, u64>, SearchError> {
    let mut sold: HashMap<String, u64> = HashMap::new();
    for addr in live_docs(searcher, common)? {
        let p: Purchase = source(searcher, common, addr)?;
        if matches!(
            p.status,
            PurchaseStatus::Cancelled | PurchaseStatus::Refunded
        ) {
            continue;
        }
        for item in p.items {
            *sold.entry(item.product_id).or_default() += u64::try_from(item.quantity).unwrap_or(0);
        }
    }
    Ok(sold)
}

fn normalize(analyzer: &TextAnalyzer, text: &str) -> String {
    analyze(analyzer, text).join(" ")
}

impl Suggester {
    pub fn build(
        analyzer: &TextAnalyzer,
        products: &Searcher,
        product_fields: &CommonFields,
        sold: &HashMap<String, u64>,
        built_from: BuiltFrom,
    ) -> Result<Self, SearchError> {
        let mut entries = Vec::new();
        for addr in live_docs(products, product_fields)? {
            let p: Product = source(products, product_fields, addr)?;
            if p.is_active {
                let popularity = sold.get(&p.product_id).copied().unwrap_or(0);
                entries.push(Entry {
                    name: p.name,
                    product_id: p.product_id,
                    popularity,
                });
            }
        }
        let mut keys: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut short: HashMap<String, Vec<(u32, bool)>> = HashMap::new();
        for (ordinal, entry) in entries.iter().enumerate() {
            let ordinal = u32::try_from(ordinal)
                .map_err(|_| SearchError::Corrupt("too many products".into()))?;
            let words = analyze(analyzer, &entry.name);
            let mut seen_short = HashSet::new();
            for start in 0..words.len() {
                let suffix = words[start..].join(" ");
                let at_start = start == 0;
                // Byte ends of the suffix's first 1..=SHORT_PREFIX characters.
                let ends = suffix
                    .char_indices()
                    .map(|(i, _)| i)
                    .skip(1)
                    .chain([suffix.len()])
                    .take(SHORT_PREFIX);
                for end in ends {
                    let prefix = &suffix[..end];
                    if seen_short.insert(prefix.to_owned()) {
                        short
                            .entry(prefix.to_owned())
                            .or_default()
                            .push((ordinal, at_start));
                    }
                }
                let mut key = suffix.into_bytes();
                key.push(0);
                key.extend_from_slice(&ordinal.to_be_bytes());
                keys.push((key, u64::from(ordinal) << 1 | u64::from(at_start)));
            }
        }
        let rank = |&(o, at_start): &(u32, bool)| -> Rank {
            (
                0,
                !at_start,
                std::cmp::Reverse(entries[o as usize].popularity),
                o,
            )
        };
        for list in short.values_mut() {
            list.sort_by_key(rank);
            list.truncate(MAX_SUGGESTIONS);
        }
        keys.sort();
        keys.dedup_by(|a, b| a.0 == b.0);
        let mut builder = MapBuilder::memory();
        for (k, v) in keys {
            builder
                .insert(k, v)
                .map_err(|e| SearchError::Corrupt(e.to_string()))?;
        }
        let fst = builder.into_map();
        Ok(Self {
            built_from,
            entries,
            fst,
            short,
        })
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
        let query = normalize(analyzer, input);
        if query.is_empty() || size == 0 {
            return Vec::new();
        }
        // Best rank per entry.
        let mut best: BTreeMap<u32, Rank> = BTreeMap::new();
        let offer = |best: &mut BTreeMap<u32, Rank>, ordinal: u32, rank: Rank| {
            best.entry(ordinal)
                .and_modify(|r| *r = (*r).min(rank))
                .or_insert(rank);
        };
        let popularity = |o: u32| std::cmp::Reverse(self.entries[o as usize].popularity);
        if query.chars().count() <= SHORT_PREFIX {
            for &(o, at_start) in self.short.get(&query).into_iter().flatten() {
                offer(&mut best, o, (0, !at_start, popularity(o), o));
            }
        } else {
            let mut stream = self
                .fst
                .search(fst::automaton::Str::new(&query).starts_with())
                .into_stream();
            let mut seen = 0;
            while let Some((_, v)) = stream.next() {
                let o = (v >> 1) as u32;
                offer(&mut best, o, (0, v & 1 == 0, popularity(o), o));
                seen += 1;
                if seen >= MAX_CANDIDATES {
                    break;
                }
            }
        }
        let distance = auto_fuzziness(&query);
        if best.len() < size
            && let Some(dfa) = automata.dfa(&query, distance, true)
        {
            let mut stream = self.fst.search(Lev(&dfa)).into_stream();
            let mut seen = 0;
            while let Some((key, v)) = stream.next() {
                let o = (v >> 1) as u32;
                let d = match dfa.eval(key) {
                    Distance::Exact(d) => d,
                    Distance::AtLeast(_) => continue,
                };
                offer(&mut best, o, (d, v & 1 == 0, popularity(o), o));
                seen += 1;
                if seen >= MAX_CANDIDATES {
                    break;
                }
            }
        }
        let mut ranked: Vec<(Rank, u32)> = best.into_iter().map(|(o, r)| (r, o)).collect();
        ranked.sort();
        ranked
            .into_iter()
            .take(size)
            .map(|((d, _, _, _), o)| {
                let e = &self.entries[o as usize];
                Suggestion {
                    text: e.name.clone(),
                    product_id: e.product_id.clone(),
                    popularity: e.popularity,
                    fuzzy: d > 0,
                }
            })
            .collect()
    }
}

/// A Levenshtein DFA walking the FST.
struct Lev<'a>(&'a DFA);

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
