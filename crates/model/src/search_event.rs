//! What the search log records (issue #12): a search or an autocomplete with how many
//! results it had, and a shopper's click on a result. Nothing about the person: no key,
//! no address, no cookie; the normalised text, counts, the product clicked and when.
//! The tenant and the date are the lake partition the event is written to.

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Characters of a query the log keeps.
pub const MAX_LOGGED_QUERY_CHARS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchEventKind {
    /// A product search (page 1 only: paging is the same search).
    Search,
    /// An autocomplete request: one per pause in typing.
    Autocomplete,
    /// A click on a search result, reported by the page.
    Click,
}

/// One line of the `search_events` log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchEvent {
    pub kind: SearchEventKind,
    /// The normalised query ([`normalise_query`]); a click carries its search's.
    pub query: String,
    /// Links a click to its search; random, says nothing about the shopper.
    pub query_id: String,
    /// Matches of a search or suggestions of an autocomplete; none for a click.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<u64>,
    /// The product clicked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// The clicked result's position in the whole result list, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    pub at: Timestamp,
}

/// A query as the log counts it: lowercase, words separated by one space, at most
/// [`MAX_LOGGED_QUERY_CHARS`] characters; so "Hiking  Boots" and "hiking boots" are one
/// query in the reports.
pub fn normalise_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LOGGED_QUERY_CHARS));
    let mut chars = 0;
    for word in text.split_whitespace() {
        let space = (!out.is_empty()).then_some(' ');
        for c in space
            .into_iter()
            .chain(word.chars().flat_map(char::to_lowercase))
        {
            if chars == MAX_LOGGED_QUERY_CHARS {
                return out;
            }
            if !c.is_control() {
                out.push(c);
                chars += 1;
            }
        }
    }
    out
}

/// A fresh query id: 16 hex digits.
pub fn new_query_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_counted_by_their_words_not_their_spelling_of_space_and_case() {
        assert_eq!(normalise_query("  Hiking \t BOOTS "), "hiking boots");
        assert_eq!(normalise_query("Äpfel"), "äpfel");
        assert_eq!(normalise_query(""), "");
    }

    #[test]
    fn a_long_query_is_cut_to_the_logged_length() {
        let long = "word ".repeat(100);
        assert_eq!(
            normalise_query(&long).chars().count(),
            MAX_LOGGED_QUERY_CHARS
        );
    }

    #[test]
    fn an_event_is_one_json_line_with_rfc3339_time() {
        let e = SearchEvent {
            kind: SearchEventKind::Click,
            query: "boots".into(),
            query_id: "00ff".into(),
            results: None,
            product_id: Some("p-1".into()),
            position: Some(3),
            at: Timestamp::parse("2026-12-03T10:00:00Z").unwrap_or_else(|e| panic!("{e}")),
        };
        let line = serde_json::to_string(&e).unwrap_or_default();
        assert_eq!(
            line,
            r#"{"kind":"click","query":"boots","query_id":"00ff","product_id":"p-1","position":3,"at":"2026-12-03T10:00:00Z"}"#
        );
    }
}
