//! Turning what a person typed into a Tantivy query without any query syntax, and
//! highlighting what matched.
//!
//! Every typed word must match in at least one field. Per field, an exact match scores
//! most, a prefix match of the last word (the one still being typed) less, a typo match
//! (edit distance by Elasticsearch's `fuzziness: AUTO`; one edit for the word being
//! typed, from five letters) least. Typos are tolerated in short fields (a product's name,
//! category, brand, tags), not in its description, where a typo of a short word would
//! match most of a catalog. Prefixes and typos expand to the most frequent index terms,
//! at most [`MAX_EXPANSIONS`] per word and field. Field weights put name
//! above category and brand above description. Scores are constant per kind of match, so
//! "exact above prefix above fuzzy" holds whatever the term statistics; BM25 on exact
//! matches orders documents within a kind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use fst::automaton::Str;
use fst::{Automaton as _, IntoStreamer as _, Map, Streamer as _};

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder};
use tantivy::index::SegmentId;
use tantivy::postings::TermInfo;
use tantivy::query::{
    BitSetDocSet, BooleanQuery, ConstScoreQuery, ConstScorer, EmptyScorer, EnableScoring,
    Explanation, Occur, PhrasePrefixQuery, PhraseQuery, Query, Scorer, TermQuery, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{BitSet, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

use super::suggest::Lev;
use super::unavailable;
use crate::engine::SearchError;
use crate::query::{auto_fuzziness, escape_html_into, plural_variants};

const EXACT: f32 = 4.0;
/// The word's other English form ("boots" for "boot"): nearly as good as the word.
const PLURAL: f32 = 3.0;
const PREFIX: f32 = 2.0;
/// Two adjacent words found joined ("head phones" → "headphones") or one word found as
/// two ("laptopstand" → "laptop stand"): below exact and prefix matches, above typos.
const JOINED: f32 = 1.5;
const FUZZY: f32 = 1.0;

/// A word is tried as two (split) only from this many letters, each part at least
/// [`SPLIT_MIN_PART`] long, at no more than [`MAX_SPLITS`] split points: bounded work for
/// a word that matched nothing exactly.
const SPLIT_MIN_CHARS: usize = 6;
const SPLIT_MIN_PART: usize = 3;
const MAX_SPLITS: usize = 2;

/// The words of `text` as the index analyzer sees them.
pub fn analyze(analyzer: &TextAnalyzer, text: &str) -> Vec<String> {
    let mut analyzer = analyzer.clone();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    stream.process(&mut |t| out.push(t.text.clone()));
    out
}

fn constant(q: Box<dyn Query>, score: f32) -> (Occur, Box<dyn Query>) {
    (Occur::Should, Box::new(ConstScoreQuery::new(q, score)))
}

/// Most index terms one prefix or typo of a word expands to in one field, the most
/// frequent first: Elasticsearch's `max_expansions` for fuzzy and prefix queries. A short
/// prefix or a typo must not make one keystroke read half of a large index (issue #11).
pub const MAX_EXPANSIONS: usize = 50;

/// The word being typed is matched as a prefix with a typo only from this many
/// characters on: within one edit, a shorter prefix reaches much of any vocabulary ("ten"
/// already matches every word starting with "te", "en", "tn", "t?n" or "?ten").
pub const FUZZY_PREFIX_MIN_CHARS: usize = 5;

/// Every term of one field over all segments of one searcher, with its document count:
/// prefixes and typos are looked up here once instead of in each segment's term
/// dictionary (a Levenshtein walk per segment and field was a third of a fuzzy search).
/// Built when a query first needs it after a commit; an idle index never builds one.
#[derive(Default)]
pub struct Vocabularies {
    commit: u64,
    maps: HashMap<Field, Arc<Map<Vec<u8>>>>,
}

impl std::fmt::Debug for Vocabularies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabularies")
            .field("fields", &self.maps.len())
            .finish_non_exhaustive()
    }
}

/// `field`'s vocabulary as of `searcher` (whose commit identity is `commit`).
pub fn vocabulary(
    cache: &std::sync::Mutex<Vocabularies>,
    searcher: &Searcher,
    commit: u64,
    field: Field,
) -> Result<Arc<Map<Vec<u8>>>, SearchError> {
    let mut cache = super::lock(cache);
    if cache.commit != commit {
        *cache = Vocabularies {
            commit,
            maps: HashMap::new(),
        };
    }
    if let Some(map) = cache.maps.get(&field) {
        return Ok(map.clone());
    }
    let mut terms: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field).map_err(unavailable)?;
        let mut stream = inverted.terms().stream().map_err(unavailable)?;
        while stream.advance() {
            *terms.entry(stream.key().to_vec()).or_default() += u64::from(stream.value().doc_freq);
        }
    }
    let map = Arc::new(Map::from_iter(terms).map_err(|e| SearchError::Corrupt(e.to_string()))?);
    cache.maps.insert(field, map.clone());
    Ok(map)
}

/// How a word is widened to index terms.
#[derive(Clone, Copy)]
enum Widen<'a> {
    /// Terms within a typo (the DFA) of the word.
    Typo(&'a DFA),
    /// Terms starting with the word.
    Prefix(&'a str),
}

/// The terms of `vocabulary` that `widen` reaches, at most [`MAX_EXPANSIONS`], most
/// frequent first, as a query over `field` matching any of them in any segment.
fn expand(
    searcher: &Searcher,
    vocabulary: &Map<Vec<u8>>,
    field: Field,
    widen: Widen<'_>,
) -> Result<Option<ExpandedQuery>, SearchError> {
    fn drain<A: fst::Automaton>(mut stream: fst::map::Stream<'_, A>) -> Vec<(Vec<u8>, u64)> {
        let mut found = Vec::new();
        while let Some((term, freq)) = stream.next() {
            found.push((term.to_vec(), freq));
        }
        found
    }
    let mut found = match widen {
        Widen::Typo(dfa) => drain(vocabulary.search(Lev(dfa)).into_stream()),
        Widen::Prefix(word) => drain(
            vocabulary
                .search(Str::new(word).starts_with())
                .into_stream(),
        ),
    };
    if found.is_empty() {
        return Ok(None);
    }
    found.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    found.truncate(MAX_EXPANSIONS);
    let mut segments = HashMap::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field).map_err(unavailable)?;
        let mut infos = Vec::new();
        for (term, _) in &found {
            if let Some(info) = inverted.terms().get(term).map_err(unavailable)? {
                infos.push(info);
            }
        }
        segments.insert(segment.segment_id(), infos);
    }
    Ok(Some(ExpandedQuery {
        field,
        segments: Arc::new(segments),
    }))
}

/// Documents containing any of a set of terms already looked up in each segment's term
/// dictionary (see [`expand`]); every match scores 1 (callers wrap it in a constant
/// score).
#[derive(Clone)]
struct ExpandedQuery {
    field: Field,
    segments: Arc<HashMap<SegmentId, Vec<TermInfo>>>,
}

impl std::fmt::Debug for ExpandedQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpandedQuery")
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

impl Query for ExpandedQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for ExpandedQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let Some(infos) = self.segments.get(&reader.segment_id()) else {
            return Ok(Box::new(EmptyScorer));
        };
        let inverted = reader.inverted_index(self.field)?;
        // Every block of matching documents, term by term.
        let each_block = |f: &mut dyn FnMut(&[DocId])| -> tantivy::Result<()> {
            for info in infos {
                let mut block =
                    inverted.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
                while !block.docs().is_empty() {
                    f(block.docs());
                    block.advance();
                }
            }
            Ok(())
        };
        let matches: u64 = infos.iter().map(|i| u64::from(i.doc_freq)).sum();
        // A typo or a long prefix matches a few documents: a sorted list of them costs
        // their number, where a bitset costs the segment's size to clear and to walk.
        if matches * 16 < u64::from(reader.max_doc()) {
            let mut docs = Vec::with_capacity(usize::try_from(matches).unwrap_or(0));
            each_block(&mut |block| docs.extend_from_slice(block))?;
            docs.sort_unstable();
            docs.dedup();
            return Ok(Box::new(ConstScorer::new(
                SortedDocs { docs, at: 0 },
                boost,
            )));
        }
        let mut bits = BitSet::with_max_value(reader.max_doc());
        each_block(&mut |block| {
            for &doc in block {
                bits.insert(doc);
            }
        })?;
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(bits), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.seek(doc) == doc {
            Ok(Explanation::new("ExpandedQuery", scorer.score()))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(
                "the document does not match".into(),
            ))
        }
    }
}

/// Documents matching any of `clauses`, scored by the sum of the matching clauses'
/// scores: a word's union over fields and kinds of match. Tantivy's `BooleanQuery` of
/// `Should` clauses builds a buffered union that is fast to iterate but refills a
/// 4,096-document window on every seek, and an intersection of words seeks all the time
/// (the unions' seeks were a third of a typo search: issue #11). This union keeps only
/// each clause's position, so a seek costs one seek per clause.
#[derive(Debug)]
struct AnyOf {
    clauses: Vec<Box<dyn Query>>,
}

impl Clone for AnyOf {
    fn clone(&self) -> Self {
        Self {
            clauses: self.clauses.iter().map(|c| c.box_clone()).collect(),
        }
    }
}

impl Query for AnyOf {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let weights = self
            .clauses
            .iter()
            .map(|c| c.weight(scoring))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(AnyOfWeight { weights }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for clause in &self.clauses {
            clause.query_terms(visitor);
        }
    }
}

struct AnyOfWeight {
    weights: Vec<Box<dyn Weight>>,
}

impl Weight for AnyOfWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut scorers = Vec::with_capacity(self.weights.len());
        for weight in &self.weights {
            let scorer = weight.scorer(reader, boost)?;
            if !scorer.is::<EmptyScorer>() && scorer.doc() != TERMINATED {
                scorers.push(scorer);
            }
        }
        Ok(match scorers.len() {
            0 => Box::new(EmptyScorer),
            1 => scorers.remove(0),
            _ => {
                let mut any = AnyOfScorer { scorers, doc: 0 };
                any.doc = any.least();
                Box::new(any)
            }
        })
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let details: Vec<Explanation> = self
            .weights
            .iter()
            .filter_map(|w| w.explain(reader, doc).ok())
            .collect();
        if details.is_empty() {
            return Err(tantivy::TantivyError::InvalidArgument(
                "the document does not match".into(),
            ));
        }
        let mut explanation =
            Explanation::new("any of", details.iter().map(Explanation::value).sum());
        for detail in details {
            explanation.add_detail(detail);
        }
        Ok(explanation)
    }
}

struct AnyOfScorer {
    scorers: Vec<Box<dyn Scorer>>,
    doc: DocId,
}

impl AnyOfScorer {
    fn least(&self) -> DocId {
        self.scorers
            .iter()
            .map(|s| s.doc())
            .min()
            .unwrap_or(TERMINATED)
    }
}

impl DocSet for AnyOfScorer {
    fn advance(&mut self) -> DocId {
        let doc = self.doc;
        for s in &mut self.scorers {
            if s.doc() == doc {
                s.advance();
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for s in &mut self.scorers {
            if s.doc() < target {
                s.seek(target);
            }
        }
        self.doc = self.least();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.scorers
            .iter()
            .map(|s| s.size_hint())
            .fold(0u32, u32::saturating_add)
    }

    fn cost(&self) -> u64 {
        self.scorers.iter().map(|s| s.cost()).sum()
    }
}

impl Scorer for AnyOfScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        self.scorers
            .iter_mut()
            .filter(|s| s.doc() == doc)
            .map(|s| s.score())
            .sum()
    }
}

/// Strictly increasing document ids.
struct SortedDocs {
    docs: Vec<DocId>,
    at: usize,
}

impl DocSet for SortedDocs {
    fn advance(&mut self) -> DocId {
        self.at = (self.at + 1).min(self.docs.len());
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.at += self.docs[self.at..].partition_point(|&d| d < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        u32::try_from(self.docs.len() - self.at).unwrap_or(u32::MAX)
    }
}

/// An exact match of a word in a field: BM25 times the field's weight, plus a constant
/// that puts every exact match above prefix and typo matches. One scorer where a constant
/// clause and a BM25 clause over the same postings were two in every word's union (the
/// unions were a third of a fuzzy search: issue #11).
#[derive(Debug, Clone)]
struct ExactQuery {
    term: Term,
    weight: f32,
}

impl Query for ExactQuery {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let inner =
            TermQuery::new(self.term.clone(), IndexRecordOption::WithFreqs).weight(scoring)?;
        Ok(Box::new(ExactWeight {
            inner,
            weight: self.weight,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        visitor(&self.term, false);
    }
}

struct ExactWeight {
    inner: Box<dyn Weight>,
    weight: f32,
}

impl Weight for ExactWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let inner = self.inner.scorer(reader, boost * self.weight)?;
        if inner.is::<EmptyScorer>() {
            // Kept recognisable: a union drops empty scorers.
            return Ok(inner);
        }
        Ok(Box::new(ExactScorer {
            inner,
            add: EXACT * self.weight * boost,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut explanation = Explanation::new("exact match", EXACT * self.weight);
        explanation.add_detail(self.inner.explain(reader, doc)?);
        Ok(explanation)
    }
}

struct ExactScorer {
    inner: Box<dyn Scorer>,
    add: f32,
}

impl DocSet for ExactScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target)
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for ExactScorer {
    fn score(&mut self) -> Score {
        self.inner.score() + self.add
    }
}

/// One constant-score clause over an expansion, or none when nothing matched.
fn any_of(expanded: Option<ExpandedQuery>, score: f32) -> Option<(Occur, Box<dyn Query>)> {
    expanded.map(|q| constant(Box::new(q), score))
}

/// A searched field, its weight and its vocabulary.
type FieldVocabulary = (Field, f32, Arc<Map<Vec<u8>>>);

/// What a product or purchase search reads its terms' expansions from.
pub struct Lexicon<'a> {
    pub searcher: &'a Searcher,
    pub commit: u64,
    pub vocabularies: &'a std::sync::Mutex<Vocabularies>,
}

/// All words of `matcher` must match, each in any of the weighted `fields` (see the
/// module doc). Typo tolerance applies to the fields listed in `typo_fields`; prefixes
/// and typos expand to at most [`MAX_EXPANSIONS`] index terms per word and field.
///
/// With [`WordMatcher::with_plural_forms`] (product search), a word also matches its
/// other English form ([`plural_variants`], in the fields whose vocabulary has it). With
/// [`WordMatcher::with_alternatives`], two adjacent words also match one indexed word that
/// joins them (with a typo if either word is not indexed, as a prefix if the second is
/// being typed), and a long word that is not indexed matches two adjacent indexed words it
/// splits into. The parts of such splits
/// are added to the matcher's highlights.
pub fn words_query(
    lexicon: &Lexicon<'_>,
    fields: &[(Field, f32)],
    typo_fields: &[Field],
    matcher: &mut WordMatcher,
) -> Result<Box<dyn Query>, SearchError> {
    let last = matcher.words.len().saturating_sub(1);
    let vocabularies: Vec<FieldVocabulary> = if matcher.plural || matcher.joins {
        fields
            .iter()
            .map(|&(field, weight)| {
                let v = vocabulary(
                    lexicon.vocabularies,
                    lexicon.searcher,
                    lexicon.commit,
                    field,
                )?;
                Ok((field, weight, v))
            })
            .collect::<Result<_, SearchError>>()?
    } else {
        Vec::new()
    };
    let known: Vec<bool> = matcher
        .words
        .iter()
        .map(|(w, _, _)| vocabularies.iter().any(|(_, _, v)| v.contains_key(w)))
        .collect();
    let joins = if matcher.joins {
        join_clauses(lexicon, &vocabularies, typo_fields, matcher, &known)?
    } else {
        Vec::new()
    };
    let mut split_parts = Vec::new();
    let mut musts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (i, (word, typo, prefix_typo)) in matcher.words.iter().enumerate() {
        let mut shoulds: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for &(field, weight) in fields {
            let term = Term::from_field_text(field, word);
            shoulds.push((Occur::Should, Box::new(ExactQuery { term, weight })));
            let typos = typo_fields.contains(&field);
            if !(i == last || (typos && typo.is_some())) {
                continue;
            }
            let vocabulary = vocabulary(
                lexicon.vocabularies,
                lexicon.searcher,
                lexicon.commit,
                field,
            )?;
            let widen = |w| expand(lexicon.searcher, &vocabulary, field, w);
            if let (true, Some(dfa)) = (typos, typo) {
                shoulds.extend(any_of(widen(Widen::Typo(dfa))?, FUZZY * weight));
            }
            if i == last {
                shoulds.extend(any_of(widen(Widen::Prefix(word))?, PREFIX * weight));
                if let (true, Some(dfa)) = (typos, prefix_typo) {
                    shoulds.extend(any_of(widen(Widen::Typo(dfa))?, FUZZY * weight));
                }
            }
        }
        for (field, weight, vocabulary) in &vocabularies {
            for form in plural_variants(word).into_iter().filter(|_| matcher.plural) {
                if vocabulary.contains_key(&form) {
                    let term = Term::from_field_text(*field, &form);
                    let q = TermQuery::new(term, IndexRecordOption::Basic);
                    shoulds.push(constant(Box::new(q), PLURAL * weight));
                }
            }
            if matcher.joins && !known[i] && typo_fields.contains(field) {
                for (left, right, prefix) in splits(vocabulary, word, i == last) {
                    let terms = vec![
                        Term::from_field_text(*field, &left),
                        Term::from_field_text(*field, &right),
                    ];
                    let q: Box<dyn Query> = if prefix {
                        let mut q = PhrasePrefixQuery::new(terms);
                        q.set_max_expansions(u32::try_from(MAX_EXPANSIONS).unwrap_or(50));
                        Box::new(q)
                    } else {
                        Box::new(PhraseQuery::new(terms))
                    };
                    shoulds.push(constant(q, JOINED * weight));
                    split_parts.extend([left, right]);
                }
            }
        }
        // A pair's join covers both of its words.
        for pair in [i.checked_sub(1), Some(i)].into_iter().flatten() {
            if let Some(clauses) = joins.get(pair) {
                shoulds.extend(clauses.iter().map(|q| (Occur::Should, q.box_clone())));
            }
        }
        // One word is iterated, which Tantivy's buffered union does best; several words
        // are intersected, which seeks (see [`AnyOf`]).
        let any: Box<dyn Query> = if matcher.words.len() == 1 {
            Box::new(BooleanQuery::new(shoulds))
        } else {
            Box::new(AnyOf {
                clauses: shoulds.into_iter().map(|(_, q)| q).collect(),
            })
        };
        musts.push((Occur::Must, any));
    }
    matcher.extra.extend(split_parts);
    Ok(Box::new(BooleanQuery::new(musts)))
}

/// For each pair of adjacent words, the clauses matching them joined into one indexed
/// word: exactly; as a prefix when the second word is the one being typed; within the
/// joined word's typo budget when either word is not indexed as it is.
fn join_clauses(
    lexicon: &Lexicon<'_>,
    vocabularies: &[FieldVocabulary],
    typo_fields: &[Field],
    matcher: &WordMatcher,
    known: &[bool],
) -> Result<Vec<Vec<Box<dyn Query>>>, SearchError> {
    let last = matcher.words.len().saturating_sub(1);
    let mut out = Vec::new();
    for (i, pair) in matcher.words.windows(2).enumerate() {
        let joined = format!("{}{}", pair[0].0, pair[1].0);
        // Built only when needed: a typo automaton of a long word costs more than the
        // lookups of a whole query.
        let typo = (!known[i] || !known[i + 1])
            .then(|| {
                matcher
                    .automata
                    .dfa(&joined, auto_fuzziness(&joined), false)
            })
            .flatten();
        let mut clauses: Vec<Box<dyn Query>> = Vec::new();
        for (field, weight, vocabulary) in vocabularies {
            if !typo_fields.contains(field) {
                continue;
            }
            let widen = |w| expand(lexicon.searcher, vocabulary, *field, w);
            if vocabulary.contains_key(&joined) {
                let term = Term::from_field_text(*field, &joined);
                let q = TermQuery::new(term, IndexRecordOption::Basic);
                clauses.push(constant(Box::new(q), JOINED * weight).1);
            } else if i + 1 == last {
                if let Some(q) = widen(Widen::Prefix(&joined))? {
                    clauses.push(constant(Box::new(q), JOINED * weight).1);
                }
            } else if let Some(dfa) = &typo
                && let Some(q) = widen(Widen::Typo(dfa))?
            {
                clauses.push(constant(Box::new(q), FUZZY * weight).1);
            }
        }
        out.push(clauses);
    }
    Ok(out)
}

/// Where `word` splits into two indexed words of `vocabulary` (the second a prefix of
/// one when `typing`): at most [`MAX_SPLITS`], longest first part first.
fn splits(vocabulary: &Map<Vec<u8>>, word: &str, typing: bool) -> Vec<(String, String, bool)> {
    let chars: Vec<(usize, char)> = word.char_indices().collect();
    if chars.len() < SPLIT_MIN_CHARS {
        return Vec::new();
    }
    let mut found = Vec::new();
    for k in (SPLIT_MIN_PART..=chars.len() - SPLIT_MIN_PART).rev() {
        let (left, right) = word.split_at(chars[k].0);
        if !vocabulary.contains_key(left) {
            continue;
        }
        if vocabulary.contains_key(right) {
            found.push((left.to_owned(), right.to_owned(), false));
        } else if typing {
            let mut stream = vocabulary
                .search(Str::new(right).starts_with())
                .into_stream();
            if stream.next().is_some() {
                found.push((left.to_owned(), right.to_owned(), true));
            }
        }
        if found.len() == MAX_SPLITS {
            break;
        }
    }
    found
}

/// Levenshtein automata builders for distances 1 and 2. Building one takes a few
/// milliseconds, so an engine keeps them.
pub struct Automata {
    one: LevenshteinAutomatonBuilder,
    two: LevenshteinAutomatonBuilder,
}

impl std::fmt::Debug for Automata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Automata")
    }
}

impl Default for Automata {
    fn default() -> Self {
        Self {
            one: LevenshteinAutomatonBuilder::new(1, true),
            two: LevenshteinAutomatonBuilder::new(2, true),
        }
    }
}

impl Automata {
    pub fn dfa(&self, word: &str, distance: u8, prefix: bool) -> Option<DFA> {
        let builder = match distance {
            0 => return None,
            1 => &self.one,
            _ => &self.two,
        };
        Some(if prefix {
            builder.build_prefix_dfa(word)
        } else {
            builder.build_dfa(word)
        })
    }
}

/// A query's words with their typo automata (full word, and as a prefix for the last
/// word): built once per request, used to expand the words and to highlight matches.
pub struct WordMatcher<'a> {
    automata: &'a Automata,
    words: Vec<(String, Option<DFA>, Option<DFA>)>,
    /// Whether words also match their other English form (product search).
    plural: bool,
    /// Whether adjacent words also match joined, and a word split in two.
    joins: bool,
    /// Tokens that match as such alternatives, for highlights.
    extra: HashSet<String>,
}

impl<'a> WordMatcher<'a> {
    pub fn new(automata: &'a Automata, terms: &[String]) -> Self {
        let last = terms.len().saturating_sub(1);
        let words = terms
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let d = auto_fuzziness(t);
                (
                    t.clone(),
                    automata.dfa(t, d, false),
                    if i == last && t.chars().count() >= FUZZY_PREFIX_MIN_CHARS {
                        automata.dfa(t, d.min(1), true)
                    } else {
                        None
                    },
                )
            })
            .collect();
        Self {
            automata,
            words,
            plural: false,
            joins: false,
            extra: HashSet::new(),
        }
    }

    /// Also matches each word's other English form (see [`words_query`]): cheap, one
    /// lookup per form and field.
    #[must_use]
    pub fn with_plural_forms(mut self) -> Self {
        if !self.plural {
            self.plural = true;
            for (word, _, _) in &self.words {
                self.extra.extend(plural_variants(word));
            }
        }
        self
    }

    /// Also matches each word's other English form, adjacent words joined, and a word
    /// split in two (see [`words_query`]): what a shopper's search box needs when the
    /// words as typed find little. Joins and splits cost vocabulary walks per pair and
    /// word, so product search adds them only when the words as typed found less than a
    /// page.
    #[must_use]
    pub fn with_alternatives(self) -> Self {
        let mut this = self.with_plural_forms();
        this.joins = true;
        let joined: Vec<String> = this
            .words
            .windows(2)
            .map(|pair| format!("{}{}", pair[0].0, pair[1].0))
            .collect();
        this.extra.extend(joined);
        this
    }

    /// Whether the query has no words (browsing).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether `token` matches a word of the query: exactly, as a prefix of the last
    /// word, or (with `typos`) within its edit distance.
    fn matches(&self, token: &str, typos: bool) -> bool {
        if self.extra.contains(token) {
            return true;
        }
        let n = self.words.len();
        self.words
            .iter()
            .enumerate()
            .any(|(i, (word, dfa, prefix_dfa))| {
                let is_last = i + 1 == n;
                token == word
                    || (is_last && token.starts_with(word.as_str()))
                    || (typos
                        && (dfa
                            .as_ref()
                            .is_some_and(|d| matches!(d.eval(token), Distance::Exact(_)))
                            || prefix_dfa
                                .as_ref()
                                .is_some_and(|d| matches!(d.eval(token), Distance::Exact(_)))))
            })
    }

    /// `text`, HTML-escaped, with matching words wrapped in `<em>`; `None` if none match.
    /// `typos` says whether the field is matched with typos.
    pub fn highlight(&self, analyzer: &TextAnalyzer, text: &str, typos: bool) -> Option<String> {
        let mut analyzer = analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut spans = Vec::new();
        stream.process(&mut |t| {
            if self.matches(&t.text, typos) {
                spans.push((t.offset_from, t.offset_to));
            }
        });
        if spans.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len() + spans.len() * 9);
        let mut at = 0;
        for (from, to) in spans {
            if from < at || to > text.len() {
                continue;
            }
            escape_html_into(&mut out, &text[at..from]);
            out.push_str("<em>");
            escape_html_into(&mut out, &text[from..to]);
            out.push_str("</em>");
            at = to;
        }
        escape_html_into(&mut out, &text[at..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sorted_doc_list_advances_and_seeks_like_a_postings_list() {
        let mut docs = SortedDocs {
            docs: vec![3, 7, 8, 20],
            at: 0,
        };
        assert_eq!(docs.doc(), 3);
        assert_eq!(docs.seek(3), 3, "seeking the current document stays");
        assert_eq!(docs.seek(4), 7);
        assert_eq!(docs.advance(), 8);
        assert_eq!(docs.size_hint(), 2);
        assert_eq!(docs.seek(21), TERMINATED);
        assert_eq!(docs.advance(), TERMINATED);
    }
}
