//! Index names, settings and mappings. Every tenant has one index per entity, named
//! `<prefix>-<tenant>-<entity>-v<MAPPING_VERSION>` and always used through the alias
//! `<prefix>-<tenant>-<entity>`, so a rebuild under a new mapping swaps the alias and no
//! reader or writer changes.
//!
//! Every document keeps the exact model document, as the JSON text of its DynamoDB item,
//! in `source` (stored, not indexed): money and 38-digit attribute numbers survive
//! exactly, whatever Painless scripts do to the numbers of `_source` when they rewrite it. The other fields are
//! derived from it for searching, filtering, sorting and faceting.

use cloudpf_model::TenantId;
use cloudpf_search::Entity;
use serde_json::{Value, json};

/// The version of the settings and mappings below. Raise it with every change to them;
/// `rebuild` then moves a tenant's data to an index of the new version.
pub const MAPPING_VERSION: u32 = 1;

/// Money is indexed in millionths (as the embedded engine does), which keeps every
/// amount of up to six decimals exact in the `scaled_float` doc values.
pub const MONEY_SCALE: u32 = 1_000_000;

/// The analyzer of full-text fields: like the embedded engine's, words are runs of
/// letters and digits, lowercased and ASCII-folded, words over 40 UTF-16 units dropped.
pub const TEXT_ANALYZER: &str = "cloudpf_text";
/// Every prefix of every word (words are at most 40 characters), for typing-time matches.
pub const WORD_PREFIX_ANALYZER: &str = "cloudpf_word_prefix";
/// The whole name normalised to words separated by single spaces, as one token.
pub const NAME_ANALYZER: &str = "cloudpf_name";
/// Every prefix of the normalised whole name (up to 64 characters).
pub const NAME_PREFIX_ANALYZER: &str = "cloudpf_name_prefix";

/// The names of one tenant's index of one entity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexNames {
    /// What every read and write goes through.
    pub alias: String,
    prefix: String,
}

impl IndexNames {
    pub fn new(index_prefix: &str, tenant: &TenantId, entity: Entity) -> Self {
        let alias = format!("{index_prefix}-{tenant}-{entity}");
        Self {
            prefix: alias.clone(),
            alias,
        }
    }

    /// The concrete index of a mapping version.
    pub fn versioned(&self, version: u32) -> String {
        format!("{}-v{version}", self.prefix)
    }

    /// The concrete index this build of cloudpf creates.
    pub fn current(&self) -> String {
        self.versioned(MAPPING_VERSION)
    }

    /// The mapping version of one of this alias's concrete indexes.
    pub fn version_of(&self, index: &str) -> Option<u32> {
        index
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix("-v")?
            .parse()
            .ok()
    }
}

/// What separates words, as a Java regex: anything not Alphabetic nor a Number, exactly
/// Rust's `char::is_alphanumeric`, which the embedded engine's tokenizer and
/// [`crate::query::words`] use. (`\p{L}` would also split at alphabetic marks such as
/// Devanagari vowel signs, so a typed word of such marks would be a word to the query but
/// no token to the index, and match nothing.)
pub const WORD_SEPARATORS: &str = "[^\\p{IsAlphabetic}\\p{N}]+";

fn settings() -> Value {
    let words = json!({
        "type": "pattern",
        "pattern": WORD_SEPARATORS
    });
    json!({
        // Tenant indexes are small; one shard keeps scoring statistics exact and
        // `refresh=wait_for` cheap.
        "number_of_shards": 1,
        "analysis": {
            "tokenizer": { "cloudpf_words": words },
            "char_filter": {
                "cloudpf_separators": {
                    "type": "pattern_replace",
                    "pattern": WORD_SEPARATORS,
                    "replacement": " "
                }
            },
            "filter": {
                "cloudpf_max_word": { "type": "length", "max": 40 },
                "cloudpf_word_edges": { "type": "edge_ngram", "min_gram": 1, "max_gram": 40 },
                "cloudpf_name_edges": { "type": "edge_ngram", "min_gram": 1, "max_gram": 64 }
            },
            "analyzer": {
                TEXT_ANALYZER: {
                    "type": "custom",
                    "tokenizer": "cloudpf_words",
                    "filter": ["cloudpf_max_word", "lowercase", "asciifolding"]
                },
                WORD_PREFIX_ANALYZER: {
                    "type": "custom",
                    "tokenizer": "cloudpf_words",
                    "filter": ["cloudpf_max_word", "lowercase", "asciifolding", "cloudpf_word_edges"]
                },
                NAME_ANALYZER: {
                    "type": "custom",
                    "char_filter": ["cloudpf_separators"],
                    "tokenizer": "keyword",
                    "filter": ["lowercase", "asciifolding", "trim"]
                },
                NAME_PREFIX_ANALYZER: {
                    "type": "custom",
                    "char_filter": ["cloudpf_separators"],
                    "tokenizer": "keyword",
                    "filter": ["lowercase", "asciifolding", "trim", "cloudpf_name_edges"]
                }
            }
        }
    })
}

fn text() -> Value {
    json!({ "type": "text", "analyzer": TEXT_ANALYZER })
}

/// Every prefix of every word, searched with whole words: a prefix with a typo.
fn word_prefixes() -> Value {
    json!({
        "type": "text",
        "analyzer": WORD_PREFIX_ANALYZER,
        "search_analyzer": TEXT_ANALYZER
    })
}

/// Full text that the text search looks at: with its word-prefix subfield.
fn searched_text() -> Value {
    json!({
        "type": "text",
        "analyzer": TEXT_ANALYZER,
        "fields": { "prefix": word_prefixes() }
    })
}

/// The longest keyword kept for filters and facets: Lucene's limit on one term is 32766
/// bytes, and a UTF-8 character takes at most 4, so no value of up to 8191 characters
/// is ever left out of a filter (the embedded engine keeps every value).
pub const KEYWORD_MAX_CHARS: u32 = 8191;

/// Searched full text with an exact keyword underneath, for filters and facets.
fn searched_text_with_keyword() -> Value {
    json!({
        "type": "text",
        "analyzer": TEXT_ANALYZER,
        "fields": {
            "prefix": word_prefixes(),
            "keyword": { "type": "keyword", "ignore_above": KEYWORD_MAX_CHARS }
        }
    })
}

fn keyword() -> Value {
    json!({ "type": "keyword" })
}

/// When a document was created, in whole microseconds since the epoch (before 1970
/// negative): the embedded engine's precision and range. `date` would round to
/// milliseconds, and `date_nanos` refuses instants before 1970 and after 2262, which
/// would turn such documents away.
fn created_micros() -> Value {
    json!({ "type": "long" })
}

fn money() -> Value {
    json!({ "type": "scaled_float", "scaling_factor": MONEY_SCALE })
}

/// The fields every document has: its key, the sequence number that wrote it, the
/// tombstone flag and the exact model document.
fn common(properties: &mut serde_json::Map<String, Value>) {
    properties.insert("seq".into(), keyword());
    properties.insert("deleted".into(), json!({ "type": "boolean" }));
    properties.insert(
        "source".into(),
        json!({ "type": "keyword", "index": false, "doc_values": false }),
    );
}

fn with_common(mut properties: Value) -> Value {
    if let Some(map) = properties.as_object_mut() {
        common(map);
    }
    properties
}

pub fn product_mappings() -> Value {
    json!({
        // Only cloudpf writes these indexes; a field it does not know is a bug, not data.
        "dynamic": "strict",
        "properties": with_common(json!({
            "product_id": keyword(),
            "name": {
                "type": "text",
                "analyzer": TEXT_ANALYZER,
                "fields": {
                    "prefix": word_prefixes(),
                    "start": {
                        "type": "text",
                        "analyzer": NAME_PREFIX_ANALYZER,
                        "search_analyzer": NAME_ANALYZER
                    }
                }
            },
            "description": searched_text(),
            "category": searched_text_with_keyword(),
            "brand": searched_text_with_keyword(),
            "tags": searched_text(),
            "price": money(),
            "price_exact": keyword(),
            "currency": keyword(),
            "stock": { "type": "long" },
            "is_active": { "type": "boolean" },
            "created_micros": created_micros(),
            "units_sold": { "type": "long" }
        }))
    })
}

pub fn purchase_mappings() -> Value {
    json!({
        "dynamic": "strict",
        "properties": with_common(json!({
            "purchase_id": keyword(),
            "customer_id": keyword(),
            "status": keyword(),
            "created_micros": created_micros(),
            "total": money(),
            "total_exact": keyword(),
            "currency": keyword(),
            "payment_method": keyword(),
            "shipping_country": keyword(),
            "shipping_city": {
                "type": "text",
                "analyzer": TEXT_ANALYZER,
                "fields": { "keyword": { "type": "keyword", "ignore_above": KEYWORD_MAX_CHARS } }
            },
            "product_ids": keyword(),
            // What the text search looks at: the purchase and customer ids and the
            // names of the items bought.
            "text": searched_text(),
            // Nested, so units sold sum each line's own quantity for its own product.
            "items": {
                "type": "nested",
                "properties": {
                    "product_id": keyword(),
                    "name": text(),
                    "quantity": { "type": "long" }
                }
            }
        }))
    })
}

pub fn mappings(entity: Entity) -> Value {
    match entity {
        Entity::Products => product_mappings(),
        Entity::Purchases => purchase_mappings(),
    }
}

/// The body creating a concrete index; with `alias`, the index becomes the alias's
/// write index in the same request, so no reader ever sees the alias without an index.
pub fn create_index_body(entity: Entity, alias: Option<&str>) -> Value {
    let mut body = json!({
        "settings": settings(),
        "mappings": mappings(entity),
    });
    if let (Some(alias), Some(map)) = (alias, body.as_object_mut()) {
        map.insert(
            "aliases".into(),
            json!({ alias: { "is_write_index": true } }),
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_carry_the_prefix_the_tenant_the_entity_and_the_version() {
        let names = IndexNames::new(
            "cloudpf",
            &TenantId::parse("acme").unwrap(),
            Entity::Products,
        );
        assert_eq!(names.alias, "cloudpf-acme-products");
        assert_eq!(
            names.current(),
            format!("cloudpf-acme-products-v{MAPPING_VERSION}")
        );
        assert_eq!(names.version_of("cloudpf-acme-products-v7"), Some(7));
        assert_eq!(
            names.version_of("cloudpf-acme-products-b-products-v7"),
            None
        );
        assert_eq!(names.version_of("cloudpf-acme-purchases-v1"), None);
    }

    #[test]
    fn the_product_index_body_is_as_recorded() {
        insta::assert_json_snapshot!(create_index_body(
            Entity::Products,
            Some("cloudpf-acme-products")
        ));
    }

    #[test]
    fn the_purchase_index_body_is_as_recorded() {
        insta::assert_json_snapshot!(create_index_body(
            Entity::Purchases,
            Some("cloudpf-acme-purchases")
        ));
    }
}
