//! Search request bodies, built with `json!` from typed queries (user text only ever
//! appears as a JSON string value, never as query syntax); their answers are read in
//! [`crate::response`].
//!
//! Product text search mirrors the embedded engine: every typed word must match in at
//! least one field (name^3, brand^2, category^2, tags^1.5, description); per field an exact
//! match scores most, a prefix match of the last word less, a typo match (`fuzziness:
//! AUTO`) least, each as a constant score so "exact above prefix above typo" holds
//! whatever the term statistics; BM25 of exact matches orders within a kind. Words of
//! one or two characters get no typo clauses, as in the embedded engine.
//!
//! Two limits the embedded engine does not have: only the first [`MAX_WORDS`] words of a
//! text are searched (each word adds some twenty clauses, and Elasticsearch refuses a
//! query over its clause limit, at least 1024), and no page reaches past
//! [`MAX_RESULT_WINDOW`] (see [`window`]).

use cloudpf_model::Money;
use cloudpf_search::{
    MAX_SUGGESTIONS, ProductQuery, ProductSort, PurchaseQuery, auto_fuzziness, plural_variants,
};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::mapping::MONEY_SCALE;

/// How many distinct categories and brands a facet lists at most (as the embedded engine).
pub const FACET_SIZE: u32 = 50;
/// The most words of a text that a search uses; the rest are ignored.
pub const MAX_WORDS: usize = 16;
/// How deep a page may reach: Elasticsearch's default `index.max_result_window`, past
/// which it refuses `from + size` outright.
pub const MAX_RESULT_WINDOW: usize = 10_000;

/// What Elasticsearch puts around a highlighted word: private-use characters, which no
/// product text is expected to hold, so that the whole text can be escaped here exactly
/// as the embedded engine escapes it and the marks then turned into `<em>` and `</em>`.
pub(crate) const MARK_START: char = '\u{E000}';
pub(crate) const MARK_END: char = '\u{E001}';

const EXACT: f64 = 4.0;
/// The scores of the embedded engine's kinds of match (`crates/search/src/embedded/text.rs`).
const PLURAL: f64 = 3.0;
const PREFIX: f64 = 2.0;
const JOINED: f64 = 1.5;
const FUZZY: f64 = 1.0;

/// Fields of the product text search with their weights.
const PRODUCT_FIELDS: [(&str, f64); 5] = [
    ("name", 3.0),
    ("brand", 2.0),
    ("category", 2.0),
    ("tags", 1.5),
    ("description", 1.0),
];

/// The words of `text` as the text analyzer splits them (runs of letters and digits;
/// a word longer than the analyzer's 40 UTF-16 units is dropped as the analyzer drops
/// it, so that no word becomes a clause without tokens, which would match nothing), at
/// most [`MAX_WORDS`]. Case and accents are left to Elasticsearch, which analyzes each
/// word again.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && w.encode_utf16().count() <= 40)
        .take(MAX_WORDS)
        .map(str::to_owned)
        .collect()
}

/// The `(from, size)` actually asked of Elasticsearch for a page at `offset` of `limit`
/// hits: the part of the page inside [`MAX_RESULT_WINDOW`]. A page wholly past it asks
/// for no hits (`(0, 0)`), so the answer still carries the total and the facets, with
/// no hits; a page straddling it is cut at the window. The API's own result window
/// (`page * size`, 10,000 by default) keeps callers inside it.
pub fn window(offset: usize, limit: usize) -> (usize, usize) {
    if offset >= MAX_RESULT_WINDOW {
        (0, 0)
    } else {
        (offset, limit.min(MAX_RESULT_WINDOW - offset))
    }
}

fn constant(query: Value, boost: f64) -> Value {
    json!({ "constant_score": { "filter": query, "boost": boost } })
}

/// Every word must match in some field: exact, typo-tolerant, and for the last word as a
/// prefix (exact, or with a typo on the field's word-prefix subfield `<field>.prefix`,
/// which every searched field has).
pub fn words_query(fields: &[(&str, f64)], words: &[String]) -> Value {
    words_query_with(fields, words, false)
}

/// [`words_query`], and with `alternatives` (product search, issue #16) as the embedded
/// engine does: a word also matches its other English form ([`plural_variants`]), and
/// two adjacent words match one indexed word joining them (within the joined word's typo
/// budget; as a prefix when the second is being typed) in every field but the
/// description. A word split in two ("laptopstand") is not matched here: that needs a
/// shingle subfield in the mapping (a new mapping version and a rebuild).
pub fn words_query_with(fields: &[(&str, f64)], words: &[String], alternatives: bool) -> Value {
    let last = words.len().saturating_sub(1);
    // Per adjacent pair, the clauses matching the two words joined: both words' clauses.
    let joins: Vec<Vec<Value>> = if alternatives {
        words
            .windows(2)
            .enumerate()
            .map(|(i, pair)| {
                let joined = format!("{}{}", pair[0].to_lowercase(), pair[1].to_lowercase());
                let mut clauses = Vec::new();
                for &(field, weight) in fields.iter().filter(|(f, _)| *f != "description") {
                    clauses.push(constant(
                        json!({ "match": { field: { "query": joined, "fuzziness": "AUTO", "fuzzy_rewrite": "constant_score" } } }),
                        JOINED * weight,
                    ));
                    if i + 1 == last {
                        clauses.push(constant(
                            json!({ "match_bool_prefix": { field: { "query": joined } } }),
                            JOINED * weight,
                        ));
                    }
                }
                clauses
            })
            .collect()
    } else {
        Vec::new()
    };
    let musts: Vec<Value> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            // `AUTO` allows no typo in one or two characters: no clause for them.
            let typos = auto_fuzziness(word) > 0;
            let mut shoulds = Vec::new();
            for &(field, weight) in fields {
                let exact = json!({ "match": { field: { "query": word } } });
                shoulds.push(constant(exact.clone(), EXACT * weight));
                shoulds.push(json!({ "match": { field: { "query": word, "boost": weight } } }));
                if typos {
                    shoulds.push(constant(
                        json!({ "match": { field: { "query": word, "fuzziness": "AUTO", "fuzzy_rewrite": "constant_score" } } }),
                        FUZZY * weight,
                    ));
                }
                if i == last {
                    shoulds.push(constant(
                        json!({ "match_bool_prefix": { field: { "query": word } } }),
                        PREFIX * weight,
                    ));
                    if typos {
                        let subfield = format!("{field}.prefix");
                        shoulds.push(constant(
                            json!({ "match": { subfield: { "query": word, "fuzziness": "AUTO", "fuzzy_rewrite": "constant_score" } } }),
                            FUZZY * weight,
                        ));
                    }
                }
                if alternatives {
                    let forms = plural_variants(&word.to_lowercase());
                    if !forms.is_empty() {
                        shoulds.push(constant(
                            json!({ "match": { field: { "query": forms.join(" ") } } }),
                            PLURAL * weight,
                        ));
                    }
                }
            }
            for pair in [i.checked_sub(1), Some(i)].into_iter().flatten() {
                if let Some(clauses) = joins.get(pair) {
                    shoulds.extend(clauses.iter().cloned());
                }
            }
            json!({ "bool": { "should": shoulds, "minimum_should_match": 1 } })
        })
        .collect();
    json!({ "bool": { "must": musts } })
}

/// The live-document filter every read applies.
fn live() -> Value {
    json!({ "term": { "deleted": false } })
}

/// A money range on a `scaled_float` field, exact for every amount on the index's
/// grid: the bounds are turned into whole millionths here, in decimal, and sent half a
/// millionth outside, so Elasticsearch's own float rounding of the bound cannot move it
/// across an indexed amount.
fn money_range(field: &str, min: Option<Money>, max: Option<Money>) -> Option<Value> {
    if min.is_none() && max.is_none() {
        return None;
    }
    let scale = Decimal::from(MONEY_SCALE);
    let half = Decimal::new(5, 1);
    let mut range = serde_json::Map::new();
    if let Some(min) = min {
        // A minimum beyond what decimals can scale is beyond every indexed amount.
        let Some(units) = min.amount().checked_mul(scale).map(|u| u.ceil()) else {
            return Some(json!({ "match_none": {} }));
        };
        range.insert(
            "gte".into(),
            json!(((units - half) / scale).normalize().to_string()),
        );
    }
    // A maximum beyond that bounds nothing.
    if let Some(units) = max
        .and_then(|m| m.amount().checked_mul(scale))
        .map(|u| u.floor())
    {
        range.insert(
            "lte".into(),
            json!(((units + half) / scale).normalize().to_string()),
        );
    }
    if range.is_empty() {
        return None;
    }
    Some(json!({ "range": { field: range } }))
}

pub fn product_search(q: &ProductQuery) -> Value {
    let mut filters = vec![live(), json!({ "term": { "is_active": true } })];
    if let Some(c) = &q.category {
        filters.push(json!({ "term": { "category.keyword": c } }));
    }
    if let Some(b) = &q.brand {
        filters.push(json!({ "term": { "brand.keyword": b } }));
    }
    filters.extend(money_range("price", q.min_price, q.max_price));
    match q.in_stock {
        Some(true) => filters.push(json!({ "range": { "stock": { "gt": 0 } } })),
        Some(false) => filters.push(json!({ "range": { "stock": { "lte": 0 } } })),
        None => {}
    }
    let words = words(&q.text);
    let mut bool_query = serde_json::Map::new();
    bool_query.insert("filter".into(), json!(filters));
    if !words.is_empty() {
        bool_query.insert(
            "must".into(),
            json!([words_query_with(&PRODUCT_FIELDS, &words, true)]),
        );
    }
    let (from, size) = window(q.offset, q.limit);
    let tie = json!({ "product_id": "asc" });
    let sort = match q.sort {
        ProductSort::Relevance => json!([{ "_score": "desc" }, tie]),
        ProductSort::PriceAsc => json!([{ "price": "asc" }, tie]),
        ProductSort::PriceDesc => json!([{ "price": "desc" }, tie]),
        ProductSort::Newest => json!([{ "created_micros": "desc" }, tie]),
    };
    let mut body = json!({
        "query": { "bool": bool_query },
        "from": from,
        "size": size,
        "sort": sort,
        "track_total_hits": true,
        "track_scores": true,
        "_source": ["source", "seq", "deleted"],
        "aggs": {
            "category": { "terms": { "field": "category.keyword", "size": FACET_SIZE } },
            "brand": { "terms": { "field": "brand.keyword", "size": FACET_SIZE } }
        },
        // Each field highlights what matched it, its word-prefix subfield included
        // (`matched_fields`, unified highlighter, Elasticsearch 8.15 and later): a word
        // found only by a prefix with a typo is highlighted whole, as in the embedded
        // engine. No encoder: the text is escaped in `parse_products`.
        "highlight": {
            "pre_tags": [MARK_START.to_string()],
            "post_tags": [MARK_END.to_string()],
            "encoder": "default",
            "require_field_match": true,
            "fields": {
                "name": { "number_of_fragments": 0, "matched_fields": ["name", "name.prefix"] },
                "description": {
                    "number_of_fragments": 0,
                    "matched_fields": ["description", "description.prefix"]
                }
            }
        }
    });
    // "Did you mean": for each word not in any product name, the closest one that is
    // (within two edits), read by `parse_products` only when nothing matched.
    if !words.is_empty() {
        body["suggest"] = json!({
            "text": words.join(" ").to_lowercase(),
            DID_YOU_MEAN: {
                "term": { "field": "name", "suggest_mode": "missing", "max_edits": 2, "size": 1 }
            }
        });
    }
    body
}

/// The name of the term suggestion of a product search.
pub(crate) const DID_YOU_MEAN: &str = "did_you_mean";

/// Autocomplete: three tiers of constant scores, the best one counting. The name starts
/// with the input (3), a word inside the name starts with the input (2), the input
/// matches word starts with typos (1, named `fuzzy`). Within a tier the best sellers come
/// first, then product ids in order.
pub fn autocomplete(prefix: &str, size: usize) -> Value {
    let words = words(prefix).join(" ");
    json!({
        "query": {
            "bool": {
                "filter": [live(), { "term": { "is_active": true } }],
                "must": [{
                    "dis_max": {
                        "queries": [
                            { "constant_score": {
                                "filter": { "match": { "name.start": { "query": words } } },
                                "boost": 3.0, "_name": "start" } },
                            { "constant_score": {
                                "filter": { "match_phrase": { "name.prefix": { "query": words } } },
                                "boost": 2.0, "_name": "word" } },
                            { "constant_score": {
                                "filter": { "match": { "name.prefix": {
                                    "query": words, "fuzziness": "AUTO", "fuzzy_rewrite": "constant_score", "operator": "and" } } },
                                "boost": 1.0, "_name": "fuzzy" } }
                        ]
                    }
                }]
            }
        },
        "size": size.min(MAX_SUGGESTIONS),
        "sort": [{ "_score": "desc" }, { "units_sold": "desc" }, { "product_id": "asc" }],
        "track_scores": true,
        "_source": ["product_id", "name", "units_sold", "price_exact", "currency"]
    })
}

pub fn purchase_search(q: &PurchaseQuery) -> Value {
    let mut filters = vec![live()];
    if let Some(c) = &q.customer_id {
        filters.push(json!({ "term": { "customer_id": c } }));
    }
    if let Some(p) = &q.product_id {
        filters.push(json!({ "term": { "product_ids": p } }));
    }
    if let Some(s) = q.status {
        filters.push(json!({ "term": { "status": s.as_str() } }));
    }
    if q.from.is_some() || q.to.is_some() {
        let mut range = serde_json::Map::new();
        if let Some(from) = q.from {
            range.insert("gte".into(), json!(from.utc().timestamp_micros()));
        }
        if let Some(to) = q.to {
            range.insert("lte".into(), json!(to.utc().timestamp_micros()));
        }
        // Microseconds, as indexed: an instant's sub-microsecond part is dropped from
        // bounds and documents alike, as in the embedded engine.
        filters.push(json!({ "range": { "created_micros": range } }));
    }
    filters.extend(money_range("total", q.min_total, q.max_total));
    let words = words(&q.text);
    let mut bool_query = serde_json::Map::new();
    bool_query.insert("filter".into(), json!(filters));
    if !words.is_empty() {
        bool_query.insert(
            "must".into(),
            json!([words_query(&[("text", 1.0)], &words)]),
        );
    }
    let (from, size) = window(q.offset, q.limit);
    json!({
        "query": { "bool": bool_query },
        "from": from,
        "size": size,
        "sort": [{ "created_micros": "desc" }, { "purchase_id": "asc" }],
        "track_total_hits": true,
        "_source": ["source", "seq", "deleted"]
    })
}

/// Live documents of an index.
pub fn count_live() -> Value {
    json!({ "query": live() })
}

/// Units sold of `products`: line quantities of live purchases that were not cancelled or
/// refunded, summed per product.
pub fn units_sold<'a>(products: impl IntoIterator<Item = &'a String>) -> Value {
    let products: Vec<&String> = products.into_iter().collect();
    json!({
        "size": 0,
        "query": {
            "bool": {
                "filter": [live(), { "terms": { "product_ids": products } }],
                "must_not": [{ "terms": { "status": ["cancelled", "refunded"] } }]
            }
        },
        "aggs": {
            "items": {
                "nested": { "path": "items" },
                "aggs": {
                    "touched": {
                        "filter": { "terms": { "items.product_id": products } },
                        "aggs": {
                            "products": {
                                "terms": { "field": "items.product_id", "size": products.len().max(1) },
                                "aggs": { "units": { "sum": { "field": "items.quantity" } } }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// `_mget` by ids, each with the `_source` fields wanted: ids travel in the body, never
/// in the URL.
pub fn mget(ids: &[&str], source: &[&str]) -> Value {
    let docs: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "_id": id, "_source": source }))
        .collect();
    json!({ "docs": docs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_bounds_beyond_what_decimals_scale_match_nothing_or_bound_nothing() {
        let huge = Money::parse("9999999999999999999999999999").unwrap();
        assert_eq!(
            money_range("price", Some(huge), None),
            Some(json!({ "match_none": {} }))
        );
        assert_eq!(money_range("price", None, Some(huge)), None);
        let ten = Money::parse("10").unwrap();
        assert_eq!(
            money_range("price", Some(ten), Some(huge)),
            Some(json!({ "range": { "price": { "gte": "9.9999995" } } }))
        );
    }
    use cloudpf_model::{PurchaseStatus, Timestamp};

    fn money(m: &str) -> Option<Money> {
        Some(Money::parse(m).unwrap())
    }

    #[test]
    fn words_split_like_the_index_analyzer_and_keep_no_syntax() {
        assert_eq!(
            words("name:laptop AND -stand \"lap* (x)^10"),
            ["name", "laptop", "AND", "stand", "lap", "x", "10"]
        );
        assert!(words("*:*").is_empty());
    }

    #[test]
    fn the_product_search_with_every_filter_is_as_recorded() {
        let q = ProductQuery {
            text: "gamng lap".into(),
            category: Some("Electronics".into()),
            brand: Some("Voltix".into()),
            min_price: money("39.99"),
            max_price: money("1299.00"),
            in_stock: Some(true),
            sort: ProductSort::Relevance,
            offset: 10,
            limit: 5,
        };
        insta::assert_json_snapshot!("product_search_all_filters", product_search(&q));
    }

    #[test]
    fn each_product_sort_is_as_recorded() {
        for (name, sort) in [
            ("price_asc", ProductSort::PriceAsc),
            ("price_desc", ProductSort::PriceDesc),
            ("newest", ProductSort::Newest),
        ] {
            let q = ProductQuery {
                sort,
                limit: 20,
                ..ProductQuery::default()
            };
            insta::assert_json_snapshot!(format!("product_search_sort_{name}"), product_search(&q));
        }
    }

    #[test]
    fn the_autocomplete_query_is_as_recorded() {
        insta::assert_json_snapshot!("autocomplete", autocomplete("Headphones mod", 5));
    }

    #[test]
    fn the_purchase_search_with_every_filter_is_as_recorded() {
        let q = PurchaseQuery {
            text: "wireles mouse".into(),
            customer_id: Some("c1".into()),
            product_id: Some("p4".into()),
            status: Some(PurchaseStatus::Shipped),
            from: Some(Timestamp::parse("2025-06-02T00:00:00Z").unwrap()),
            to: Some(Timestamp::parse("2025-06-09T23:59:59Z").unwrap()),
            min_total: money("39.98"),
            max_total: money("89.00"),
            offset: 0,
            limit: 10,
        };
        insta::assert_json_snapshot!("purchase_search_all_filters", purchase_search(&q));
    }

    #[test]
    fn the_units_sold_aggregation_is_as_recorded() {
        let ids = ["p1".to_owned(), "p8".to_owned()];
        insta::assert_json_snapshot!("units_sold", units_sold(&ids));
    }

    #[test]
    fn money_bounds_are_sent_half_a_millionth_outside_the_exact_amount() {
        let range = money_range("price", money("39.99"), money("120.00")).unwrap();
        assert_eq!(
            range,
            json!({ "range": { "price": { "gte": "39.9899995", "lte": "120.0000005" } } })
        );
        // An amount finer than a millionth rounds inward: the bound excludes what it must.
        let range = money_range("price", money("0.0000001"), None).unwrap();
        assert_eq!(
            range,
            json!({ "range": { "price": { "gte": "0.0000005" } } })
        );
    }

    #[test]
    fn pages_stay_inside_the_result_window() {
        assert_eq!(window(0, 20), (0, 20));
        assert_eq!(window(9_980, 20), (9_980, 20));
        assert_eq!(window(9_990, 20), (9_990, 10));
        assert_eq!(window(10_000, 20), (0, 0));
        assert_eq!(window(usize::MAX, usize::MAX), (0, 0));
        let q = ProductQuery {
            offset: 12_000,
            limit: 100,
            ..ProductQuery::default()
        };
        let body = product_search(&q);
        assert_eq!(
            (body["from"].clone(), body["size"].clone()),
            (json!(0), json!(0))
        );
        let q = PurchaseQuery {
            offset: 9_950,
            limit: 100,
            ..PurchaseQuery::default()
        };
        let body = purchase_search(&q);
        assert_eq!(
            (body["from"].clone(), body["size"].clone()),
            (json!(9_950), json!(50))
        );
    }

    #[test]
    fn words_of_one_or_two_characters_get_no_typo_clauses() {
        let words = ["tv".to_owned(), "4k".to_owned(), "stand".to_owned()];
        insta::assert_json_snapshot!("short_words", words_query(&[("text", 1.0)], &words));
        let query = words_query(&[("text", 1.0)], &words);
        let fuzzy = |i: usize| query["bool"]["must"][i].to_string().contains("fuzziness");
        assert_eq!([fuzzy(0), fuzzy(1), fuzzy(2)], [false, false, true]);
    }

    /// Leaf queries of a query tree, as Elasticsearch counts them against its clause
    /// limit (before fuzzy and prefix expansion).
    fn leaves(v: &Value) -> usize {
        match v {
            Value::Object(o) => {
                let inner: usize = o
                    .iter()
                    .filter(|(k, _)| {
                        matches!(
                            k.as_str(),
                            "bool" | "constant_score" | "filter" | "must" | "should"
                        )
                    })
                    .map(|(_, v)| leaves(v))
                    .sum();
                if o.keys()
                    .any(|k| matches!(k.as_str(), "match" | "match_bool_prefix" | "term" | "range"))
                {
                    1
                } else {
                    inner
                }
            }
            Value::Array(a) => a.iter().map(leaves).sum(),
            _ => 0,
        }
    }

    #[test]
    fn product_words_also_match_their_other_english_form_and_adjacent_words_joined() {
        // Issue #16, as the embedded engine: "phones" also as "phone", "head phones" also
        // as the one word "headphones" (with its typos), in name, brand, category, tags.
        let body = product_search(&ProductQuery {
            text: "Head Phones".into(),
            limit: 10,
            ..ProductQuery::default()
        });
        let text = body["query"].to_string();
        assert!(
            text.contains(r#"{"match":{"name":{"query":"phone"}}}"#),
            "{text}"
        );
        let joined = r#"{"match":{"name":{"fuzziness":"AUTO","fuzzy_rewrite":"constant_score","query":"headphones"}}}"#;
        assert!(text.contains(joined), "{text}");
        // The join is a way for either word to match, so both words carry it.
        let musts = body["query"]["bool"]["must"][0]["bool"]["must"]
            .as_array()
            .unwrap();
        assert_eq!(musts.len(), 2);
        for word in musts {
            assert!(word.to_string().contains("headphones"), "{word}");
        }
        assert!(!text.contains(r#"{"match":{"description":{"fuzziness":"AUTO","fuzzy_rewrite":"constant_score","query":"headphones"}}}"#));
        // Purchases are searched by their own words only.
        let purchases = purchase_search(&PurchaseQuery {
            text: "Head Phones".into(),
            limit: 10,
            ..PurchaseQuery::default()
        });
        let text = purchases["query"].to_string();
        assert!(
            !text.contains("headphones") && !text.contains(r#""query":"phone""#),
            "{text}"
        );
    }

    #[test]
    fn a_long_text_searches_only_its_first_words_and_stays_far_below_the_clause_limit() {
        let text: Vec<String> = (0..60).map(|i| format!("word{i}")).collect();
        let words = words(&text.join(" "));
        assert_eq!(words.len(), MAX_WORDS);
        assert_eq!(words.last().map(String::as_str), Some("word15"));
        let q = ProductQuery {
            text: text.join(" "),
            limit: 10,
            ..ProductQuery::default()
        };
        let n = leaves(&product_search(&q)["query"]);
        assert!(n > 16 * 15 && n < 512, "{n} leaf queries");
    }

    #[test]
    fn words_too_long_for_the_analyzer_are_not_searched() {
        // 25 characters outside the Basic Multilingual Plane: 50 UTF-16 units, which the
        // analyzer's length filter drops, so the word would match nothing.
        let astral = "\u{20000}".repeat(25);
        assert_eq!(words(&format!("lamp {astral}")), ["lamp"]);
        assert_eq!(words(&"a".repeat(40)).len(), 1);
        assert!(words(&"a".repeat(41)).is_empty());
        // An alphabetic mark is a word to the query and, by WORD_SEPARATORS, to the index.
        assert_eq!(words("\u{093E}"), ["\u{093E}"]);
    }
}
