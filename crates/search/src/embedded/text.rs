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

use std::collections::HashMap;

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder};
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, Query, TermQuery,
    TermSetQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Searcher, Term};

use super::unavailable;
use crate::engine::SearchError;
use crate::query::{auto_fuzziness, escape_html_into};

const EXACT: f32 = 4.0;
const PREFIX: f32 = 2.0;
const FUZZY: f32 = 1.0;

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

/// The index terms of `field` that `word` matches within `distance` edits (as a prefix
/// with `prefix`), at most [`MAX_EXPANSIONS`], most frequent first.
fn expand(
    searcher: &Searcher,
    field: Field,
    word: &str,
    distance: u8,
    prefix: bool,
) -> Result<Vec<Term>, SearchError> {
    let term = Term::from_field_text(field, word);
    let query = if prefix {
        FuzzyTermQuery::new_prefix(term, distance, true)
    } else {
        FuzzyTermQuery::new(term, distance, true)
    };
    let automaton = query.automaton().map_err(unavailable)?;
    let mut freq: HashMap<Vec<u8>, u64> = HashMap::new();
    for segment in searcher.segment_readers() {
        let inverted = segment.inverted_index(field).map_err(unavailable)?;
        let mut stream = inverted
            .terms()
            .search(&automaton)
            .into_stream()
            .map_err(unavailable)?;
        while stream.advance() {
            *freq.entry(stream.key().to_vec()).or_default() += u64::from(stream.value().doc_freq);
        }
    }
    let mut terms: Vec<(Vec<u8>, u64)> = freq.into_iter().collect();
    terms.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    terms.truncate(MAX_EXPANSIONS);
    Ok(terms
        .into_iter()
        .filter_map(|(bytes, _)| {
            std::str::from_utf8(&bytes)
                .ok()
                .map(|t| Term::from_field_text(field, t))
        })
        .collect())
}

/// One constant-score clause over `terms`, or none when there are none.
fn any_of(terms: Vec<Term>, score: f32) -> Option<(Occur, Box<dyn Query>)> {
    match terms.len() {
        0 => None,
        1 => terms
            .into_iter()
            .next()
            .map(|t| constant(Box::new(TermQuery::new(t, IndexRecordOption::Basic)), score)),
        _ => Some(constant(Box::new(TermSetQuery::new(terms)), score)),
    }
}

/// All `terms` must match, each in any of the weighted `fields` (see the module doc).
/// Typo tolerance applies to the fields listed in `typo_fields`; prefixes and typos
/// expand to at most [`MAX_EXPANSIONS`] index terms per word and field.
pub fn words_query(
    searcher: &Searcher,
    fields: &[(Field, f32)],
    typo_fields: &[Field],
    terms: &[String],
) -> Result<Box<dyn Query>, SearchError> {
    let last = terms.len().saturating_sub(1);
    let mut musts: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (i, word) in terms.iter().enumerate() {
        let distance = auto_fuzziness(word);
        let mut shoulds: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for &(field, weight) in fields {
            let term = Term::from_field_text(field, word);
            let exact = || Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs));
            shoulds.push(constant(exact(), EXACT * weight));
            shoulds.push((Occur::Should, Box::new(BoostQuery::new(exact(), weight))));
            let typos = distance > 0 && typo_fields.contains(&field);
            if typos {
                shoulds.extend(any_of(
                    expand(searcher, field, word, distance, false)?,
                    FUZZY * weight,
                ));
            }
            if i == last {
                shoulds.extend(any_of(
                    expand(searcher, field, word, 0, true)?,
                    PREFIX * weight,
                ));
                if typos && word.chars().count() >= FUZZY_PREFIX_MIN_CHARS {
                    shoulds.extend(any_of(
                        expand(searcher, field, word, 1, true)?,
                        FUZZY * weight,
                    ));
                }
            }
        }
        musts.push((Occur::Must, Box::new(BooleanQuery::new(shoulds))));
    }
    Ok(Box::new(BooleanQuery::new(musts)))
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

/// How a query matches a word: the same rules as [`words_query`].
pub struct WordMatcher {
    words: Vec<(String, Option<DFA>, Option<DFA>)>,
}

impl WordMatcher {
    pub fn new(automata: &Automata, terms: &[String]) -> Self {
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
        Self { words }
    }

    /// Whether `token` matches a word of the query: exactly, as a prefix of the last
    /// word, or (with `typos`) within its edit distance.
    fn matches(&self, token: &str, typos: bool) -> bool {
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
