//! One pass over a product query's matches that collects the page, the total and the
//! category and brand facets together, at a cost bounded whatever the number of matches.
//!
//! Ordered by relevance, the pass stops after [`SCAN_LIMIT`] live matches: a one- or
//! two-letter prefix matches most of a catalog, and scoring, counting and faceting all of
//! it made the broadest queries the slowest (issue #11). The page is then the best of the
//! matches seen, and the total and facet counts are estimated by scaling what was seen to
//! the whole index ([`Collected::estimated`] says so). Ordered by a field (price, newest),
//! every match is visited, since the first page must hold the true extremes; facets are
//! still counted over the first [`SCAN_LIMIT`] matches and scaled.
//!
//! Facets count term ordinals of the `*_exact` fast fields per segment and turn the
//! winners into strings once, instead of Tantivy's general aggregation machinery (which
//! went through JSON and showed up on every profile).

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::query::{Scorer, Weight};
use tantivy::{DocAddress, DocId, DocSet, Order, Score, SegmentOrdinal, SegmentReader, TERMINATED};

use crate::query::FacetCount;

/// Live matches a relevance-ordered pass visits before it stops and estimates (more when
/// the requested page lies deeper).
pub const SCAN_LIMIT: usize = 5_000;

/// How hits are ordered: by score, or by an i64 fast field.
#[derive(Debug, Clone, Copy)]
pub enum By<'a> {
    Score,
    Field(&'a str, Order),
}

/// A hit's place in the order: bigger is better.
#[derive(Debug, Clone, Copy)]
struct Key {
    /// The score (as order-preserving bits) or the field's value, negated for ascending.
    value: i64,
    score: f32,
    addr: DocAddress,
}

/// `f32`'s total order as an integer, so that scores and field values compare alike.
fn score_key(score: f32) -> i64 {
    let bits = score.to_bits() as i32;
    i64::from(bits ^ ((((bits >> 31) as u32) >> 1) as i32))
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}

impl Eq for Key {}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // Higher value first; among equals the earlier document, so pages are stable.
        self.value
            .cmp(&other.value)
            .then_with(|| other.addr.cmp(&self.addr))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

/// The best `n` keys seen, kept in a min-heap of size `n`.
#[derive(Debug)]
struct Top {
    n: usize,
    heap: BinaryHeap<std::cmp::Reverse<Key>>,
}

impl Top {
    fn new(n: usize) -> Self {
        Self {
            n,
            heap: BinaryHeap::with_capacity(n + 1),
        }
    }

    fn push(&mut self, key: Key) {
        if self.heap.len() < self.n {
            self.heap.push(std::cmp::Reverse(key));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && key > worst.0
        {
            worst.0 = key;
        }
    }
}

/// What one segment contributed.
#[derive(Debug)]
pub struct SegmentFruit {
    top: Vec<Key>,
    matches: u64,
    /// Documents of the segment the pass went through (all of them unless it stopped).
    covered: u64,
    max_doc: u64,
    facets: [HashMap<String, u64>; 2],
    facet_matches: u64,
}

impl SegmentFruit {
    fn empty(max_doc: u64) -> Self {
        Self {
            top: Vec::new(),
            matches: 0,
            covered: 0,
            max_doc,
            facets: Default::default(),
            facet_matches: 0,
        }
    }
}

/// The page, the total and the facets of one query.
#[derive(Debug)]
pub struct Collected {
    /// The page's (score, document), best first; the score is 0 when ordered by a field.
    pub page: Vec<(f32, DocAddress)>,
    pub total: u64,
    pub facets: [Vec<FacetCount>; 2],
    /// The pass stopped early: `total` and the facet counts are estimates.
    pub estimated: bool,
}

/// Collects a product query's page, total and facets (see the module doc).
#[derive(Debug)]
pub struct ProductCollector<'a> {
    by: By<'a>,
    offset: usize,
    limit: usize,
    facet_fields: [&'a str; 2],
    facet_size: usize,
    /// Live matches the pass may still visit before it stops (relevance) or stops
    /// counting facets (field order).
    budget: AtomicUsize,
}

impl<'a> ProductCollector<'a> {
    pub fn new(
        by: By<'a>,
        offset: usize,
        limit: usize,
        facet_fields: [&'a str; 2],
        facet_size: usize,
    ) -> Self {
        Self {
            by,
            offset,
            limit,
            facet_fields,
            facet_size,
            // A page asked for beyond the limit is still reached: the caller pays for
            // the depth it asked for (the API caps it with `max_result_window`).
            budget: AtomicUsize::new(SCAN_LIMIT.max(offset + limit)),
        }
    }

    fn facet_columns(&self, reader: &SegmentReader) -> tantivy::Result<[Option<StrColumn>; 2]> {
        let ff = reader.fast_fields();
        Ok([ff.str(self.facet_fields[0])?, ff.str(self.facet_fields[1])?])
    }
}

/// Adds one document's facet ordinals to per-ordinal counts.
fn count_ords(columns: &[Option<StrColumn>; 2], counts: &mut [Vec<u32>; 2], doc: DocId) {
    for (column, counts) in columns.iter().zip(counts.iter_mut()) {
        if let Some(column) = column {
            for ord in column.term_ords(doc) {
                if let Some(c) = counts.get_mut(ord as usize) {
                    *c += 1;
                }
            }
        }
    }
}

fn ords_to_strings(
    columns: &[Option<StrColumn>; 2],
    counts: [Vec<u32>; 2],
) -> tantivy::Result<[HashMap<String, u64>; 2]> {
    let mut out: [HashMap<String, u64>; 2] = Default::default();
    for ((column, counts), out) in columns.iter().zip(counts).zip(out.iter_mut()) {
        let Some(column) = column else { continue };
        for (ord, n) in counts.into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            let mut s = String::new();
            if column.ord_to_str(ord as u64, &mut s)? {
                *out.entry(s).or_default() += u64::from(n);
            }
        }
    }
    Ok(out)
}

impl Collector for ProductCollector<'_> {
    type Fruit = Collected;
    type Child = NoSegmentCollector;

    fn for_segment(&self, _: SegmentOrdinal, _: &SegmentReader) -> tantivy::Result<Self::Child> {
        // Never used: `collect_segment` below drives the segment itself, to stop early.
        Ok(NoSegmentCollector)
    }

    fn requires_scoring(&self) -> bool {
        matches!(self.by, By::Score)
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Collected> {
        let mut top = Top::new(self.offset + self.limit);
        let (mut matches, mut covered, mut max_doc, mut facet_matches) = (0, 0, 0, 0);
        let mut facets: [HashMap<String, u64>; 2] = Default::default();
        for f in fruits {
            f.top.into_iter().for_each(|k| top.push(k));
            matches += f.matches;
            covered += f.covered;
            max_doc += f.max_doc;
            facet_matches += f.facet_matches;
            for (into, from) in facets.iter_mut().zip(f.facets) {
                for (k, v) in from {
                    *into.entry(k).or_default() += v;
                }
            }
        }
        let estimated = covered < max_doc;
        let total = if estimated {
            // Matches are spread over the document space about evenly: scale by the part seen.
            ((matches as f64) * (max_doc as f64) / (covered.max(1) as f64)).round() as u64
        } else {
            matches
        };
        let facet_estimated = facet_matches < total;
        let scale = if facet_estimated && facet_matches > 0 {
            total as f64 / facet_matches as f64
        } else {
            1.0
        };
        let facets = facets.map(|counts| {
            let mut v: Vec<FacetCount> = counts
                .into_iter()
                .map(|(value, count)| FacetCount {
                    value,
                    count: ((count as f64) * scale).round() as u64,
                })
                .collect();
            v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
            v.truncate(self.facet_size);
            v
        });
        let mut keys: Vec<Key> = top.heap.into_iter().map(|r| r.0).collect();
        keys.sort_by(|a, b| b.cmp(a));
        let page = keys
            .into_iter()
            .skip(self.offset)
            .map(|k| (k.score, k.addr))
            .collect();
        Ok(Collected {
            page,
            total,
            facets,
            estimated: estimated || facet_estimated,
        })
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment_ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentFruit> {
        let max_doc = u64::from(reader.max_doc());
        let mut fruit = SegmentFruit::empty(max_doc);
        let scan_all = !matches!(self.by, By::Score);
        let mut budget = self.budget.load(Ordering::Relaxed);
        if budget == 0 && !scan_all {
            return Ok(fruit);
        }
        let columns = self.facet_columns(reader)?;
        let mut counts: [Vec<u32>; 2] = [0, 1].map(|i| {
            columns[i]
                .as_ref()
                .map_or_else(Vec::new, |c| vec![0u32; c.num_terms()])
        });
        let sort_column = match self.by {
            By::Score => None,
            By::Field(name, order) => Some((reader.fast_fields().i64(name)?, order)),
        };
        let alive = reader.alive_bitset();
        let mut top = Top::new(self.offset + self.limit);
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        let mut last = None;
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                fruit.matches += 1;
                let (value, score) = match &sort_column {
                    None => {
                        let score = scorer.score();
                        (score_key(score), score)
                    }
                    Some((column, order)) => {
                        // A product without the field sorts last either way.
                        let v = match (column.first(doc), order) {
                            (Some(v), Order::Desc) => v,
                            (Some(v), Order::Asc) => v.saturating_neg(),
                            (None, _) => i64::MIN,
                        };
                        (v, 0.0)
                    }
                };
                top.push(Key {
                    value,
                    score,
                    addr: DocAddress::new(segment_ord, doc),
                });
                if budget > 0 {
                    count_ords(&columns, &mut counts, doc);
                    fruit.facet_matches += 1;
                    budget -= 1;
                    if budget == 0 && !scan_all {
                        last = Some(doc);
                        break;
                    }
                }
            }
            doc = scorer.advance();
        }
        self.budget.store(budget, Ordering::Relaxed);
        fruit.covered = last.map_or(max_doc, |d| u64::from(d) + 1);
        fruit.facets = ords_to_strings(&columns, counts)?;
        fruit.top = top.heap.into_iter().map(|r| r.0).collect();
        Ok(fruit)
    }
}

/// [`ProductCollector`] drives each segment itself; this child is never fed.
#[derive(Debug)]
pub struct NoSegmentCollector;

impl SegmentCollector for NoSegmentCollector {
    type Fruit = SegmentFruit;

    fn collect(&mut self, _: DocId, _: Score) {}

    fn harvest(self) -> SegmentFruit {
        SegmentFruit::empty(0)
    }
}
