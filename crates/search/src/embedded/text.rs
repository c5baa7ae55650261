//! Turning what a person typed into a Tantivy query without any query syntax, and
//! highlighting what matched.
//!
//! Every typed word must match in at least one field. Per field, an exact match scores
//! most, a prefix match of the last word (the one still being typed) less, a typo match
//! (edit distance by Elasticsearch's `fuzziness: AUTO`) least; field weights put name
//! above category and brand above description. Scores are constant per kind of match, so
//! "exact above prefix above fuzzy" holds whatever the term statistics; BM25 on exact
//! matches orders documents within a kind.

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder};
use tantivy::Term;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;

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

/// All `terms` must match, each in any of the weighted `fields`.
pub fn words_query(fields: &[(Field, f32)], terms: &[String]) -> Box<dyn Query> {
    let last = terms.len().saturating_sub(1);
    let musts = terms
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let distance = auto_fuzziness(word);
            let mut shoulds: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for &(field, weight) in fields {
                let term = Term::from_field_text(field, word);
                let exact = || Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs));
                shoulds.push(constant(exact(), EXACT * weight));
                shoulds.push((Occur::Should, Box::new(BoostQuery::new(exact(), weight))));
                if distance > 0 {
                    shoulds.push(constant(
                        Box::new(FuzzyTermQuery::new(term.clone(), distance, true)),
                        FUZZY * weight,
                    ));
                }
                if i == last {
                    shoulds.push(constant(
                        Box::new(FuzzyTermQuery::new_prefix(term.clone(), 0, true)),
                        PREFIX * weight,
                    ));
                    if distance > 0 {
                        shoulds.push(constant(
                            Box::new(FuzzyTermQuery::new_prefix(term, distance, true)),
                            FUZZY * weight,
                        ));
                    }
                }
            }
            (
                Occur::Must,
                Box::new(BooleanQuery::new(shoulds)) as Box<dyn Query>,
            )
        })
        .collect();
    Box::new(BooleanQuery::new(musts))
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
                    if i == last {
                        automata.dfa(t, d, true)
                    } else {
                        None
                    },
                )
            })
            .collect();
        Self { words }
    }

    fn matches(&self, token: &str, last_is_prefix: bool) -> bool {
        let n = self.words.len();
        self.words
            .iter()
            .enumerate()
            .any(|(i, (word, dfa, prefix_dfa))| {
                let is_last = i + 1 == n;
                token == word
                    || (is_last && last_is_prefix && token.starts_with(word.as_str()))
                    || dfa
                        .as_ref()
                        .is_some_and(|d| matches!(d.eval(token), Distance::Exact(_)))
                    || prefix_dfa
                        .as_ref()
                        .is_some_and(|d| matches!(d.eval(token), Distance::Exact(_)))
            })
    }

    /// `text`, HTML-escaped, with matching words wrapped in `<em>`; `None` if none match.
    pub fn highlight(&self, analyzer: &TextAnalyzer, text: &str) -> Option<String> {
        let mut analyzer = analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut spans = Vec::new();
        stream.process(&mut |t| {
            if self.matches(&t.text, true) {
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
