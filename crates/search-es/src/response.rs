//! Elasticsearch's answers to the bodies of [`crate::query`], read into the engine's
//! result types: hits with their stored documents, facets, highlights (escaped exactly as
//! the embedded engine escapes them), suggestions and units sold. A reply missing what
//! it must hold is [`SearchError::Unavailable`]: retrying may reach a node that answers.

use cloudpf_model::{Currency, Money, Product, Purchase};
use cloudpf_search::{
    FacetCount, Facets, Highlights, ProductHit, ProductResults, PurchaseResults, SearchError,
    Suggestion, escape_html,
};
use serde_json::Value;

use crate::documents;
use crate::query::{MARK_END, MARK_START};

/// A reply without what it must hold: a proxy's page, a node restarting. Retrying may
/// reach a node that answers properly, so it is not a damaged index.
fn unexpected(what: &str) -> SearchError {
    SearchError::Unavailable(format!("unexpected elasticsearch response: {what}"))
}

fn total(body: &Value) -> Result<u64, SearchError> {
    body.pointer("/hits/total/value")
        .and_then(Value::as_u64)
        .ok_or_else(|| unexpected("no hits.total.value"))
}

fn hits(body: &Value) -> Result<&Vec<Value>, SearchError> {
    body.pointer("/hits/hits")
        .and_then(Value::as_array)
        .ok_or_else(|| unexpected("no hits.hits"))
}

fn source_doc<T: documents::EsDoc>(hit: &Value) -> Result<Option<T>, SearchError> {
    let source = hit
        .get("_source")
        .ok_or_else(|| unexpected("hit without _source"))?;
    Ok(documents::stored::<T>(source)?.map(|(doc, _)| doc))
}

fn buckets(body: &Value, name: &str) -> Vec<FacetCount> {
    body.pointer(&format!("/aggregations/{name}/buckets"))
        .and_then(Value::as_array)
        .map(|buckets| {
            buckets
                .iter()
                .filter_map(|b| {
                    Some(FacetCount {
                        value: b.get("key")?.as_str()?.to_owned(),
                        count: b.get("doc_count")?.as_u64()?,
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The highlight of `field`, HTML-escaped with `<em>` around matches; `None` when the
/// field's own text (`original`) holds a mark character, as marks and text could then
/// not be told apart.
fn highlight(hit: &Value, field: &str, original: &str) -> Option<String> {
    if original.contains([MARK_START, MARK_END]) {
        return None;
    }
    let fragments = hit.pointer(&format!("/highlight/{field}"))?.as_array()?;
    let parts: Vec<String> = fragments
        .iter()
        .filter_map(Value::as_str)
        .map(|f| {
            escape_html(f)
                .replace(MARK_START, "<em>")
                .replace(MARK_END, "</em>")
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" … "))
}

pub fn parse_products(body: &Value) -> Result<ProductResults, SearchError> {
    let mut out = Vec::new();
    for hit in hits(body)? {
        let Some(product) = source_doc::<Product>(hit)? else {
            continue;
        };
        let highlights = Highlights {
            name: highlight(hit, "name", &product.name),
            description: highlight(hit, "description", &product.description),
        };
        out.push(ProductHit {
            product,
            score: hit.get("_score").and_then(Value::as_f64).unwrap_or(0.0) as f32,
            highlights,
        });
    }
    // `track_total_hits: true`: Elasticsearch counts every match.
    let total = total(body)?;
    Ok(ProductResults {
        total,
        total_is_estimate: false,
        hits: out,
        facets: Facets {
            category: buckets(body, "category"),
            brand: buckets(body, "brand"),
        },
        did_you_mean: if total == 0 { did_you_mean(body) } else { None },
    })
}

/// The searched words with each one the term suggestion has a correction for replaced
/// by it; `None` if there is nothing to correct. Unlike the embedded engine's, it is not
/// checked to find something (that would be a second request).
fn did_you_mean(body: &Value) -> Option<String> {
    let entries = body
        .pointer(&format!("/suggest/{}", crate::query::DID_YOU_MEAN))?
        .as_array()?;
    let mut changed = false;
    let words: Vec<&str> = entries
        .iter()
        .filter_map(|entry| {
            let better = entry.pointer("/options/0/text").and_then(Value::as_str);
            changed |= better.is_some();
            better.or_else(|| entry.get("text").and_then(Value::as_str))
        })
        .collect();
    (changed && !words.is_empty()).then(|| words.join(" "))
}

pub fn parse_suggestions(body: &Value) -> Result<Vec<Suggestion>, SearchError> {
    hits(body)?
        .iter()
        .map(|hit| {
            let source = hit
                .get("_source")
                .ok_or_else(|| unexpected("hit without _source"))?;
            let text = |f: &str| {
                source
                    .get(f)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        unexpected("suggestion without name, product_id, price or currency")
                    })
            };
            let matched: Vec<&str> = hit
                .get("matched_queries")
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let price = Money::parse(&text("price_exact")?)
                .map_err(|_| unexpected("suggestion with a malformed price"))?;
            let currency = Currency::parse(&text("currency")?)
                .map_err(|_| unexpected("suggestion with a malformed currency"))?;
            Ok(Suggestion {
                text: text("name")?,
                product_id: text("product_id")?,
                price,
                currency,
                popularity: source
                    .get("units_sold")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
                fuzzy: !matched.iter().any(|m| *m == "start" || *m == "word"),
            })
        })
        .collect()
}

pub fn parse_purchases(body: &Value) -> Result<PurchaseResults, SearchError> {
    let mut out = Vec::new();
    for hit in hits(body)? {
        if let Some(p) = source_doc::<Purchase>(hit)? {
            out.push(p);
        }
    }
    Ok(PurchaseResults {
        total: total(body)?,
        hits: out,
    })
}

/// Units sold per product from a [`units_sold`] response.
pub fn parse_units_sold(body: &Value) -> Result<Vec<(String, u64)>, SearchError> {
    let buckets = body
        .pointer("/aggregations/items/touched/products/buckets")
        .and_then(Value::as_array)
        .ok_or_else(|| unexpected("no units sold buckets"))?;
    buckets
        .iter()
        .map(|b| {
            let id = b.get("key").and_then(Value::as_str);
            let units = b.pointer("/units/value").and_then(Value::as_f64);
            match (id, units) {
                (Some(id), Some(units)) if units >= 0.0 => Ok((id.to_owned(), units as u64)),
                _ => Err(unexpected("bad units sold bucket")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn highlights_are_escaped_as_the_embedded_engine_escapes_them() {
        let hit = json!({ "highlight": { "name": [
            "Kid's <b>\u{E000}Laptop\u{E001}</b> / \"Pro\" & \u{E000}Co\u{E001}"
        ] } });
        assert_eq!(
            highlight(&hit, "name", "Kid's <b>Laptop</b> / \"Pro\" & Co").as_deref(),
            Some(
                "Kid&#39;s &lt;b&gt;<em>Laptop</em>&lt;/b&gt; / &quot;Pro&quot; &amp; <em>Co</em>"
            )
        );
        // A text that holds a mark itself cannot be told apart from a highlight.
        assert_eq!(highlight(&hit, "name", "odd \u{E000} name"), None);
        assert_eq!(highlight(&hit, "description", "Kid's"), None);
    }

    #[test]
    fn an_empty_result_offers_the_term_suggestions_corrections_as_did_you_mean() {
        // As Elasticsearch 8 answers a term suggestion in `suggest_mode: missing`.
        let answer = |total: u64| {
            json!({
                "took": 2, "timed_out": false,
                "hits": { "total": { "value": total, "relation": "eq" }, "max_score": null, "hits": [] },
                "suggest": { "did_you_mean": [
                    { "text": "gaming", "offset": 0, "length": 6, "options": [] },
                    { "text": "lptp", "offset": 7, "length": 4,
                      "options": [{ "text": "laptop", "score": 0.5, "freq": 3 }] }
                ] }
            })
        };
        let empty = parse_products(&answer(0)).unwrap();
        assert_eq!(empty.did_you_mean.as_deref(), Some("gaming laptop"));
        // Only when nothing matched; and nothing to correct, nothing to say.
        assert_eq!(parse_products(&answer(3)).unwrap().did_you_mean, None);
        let mut nothing = answer(0);
        nothing["suggest"]["did_you_mean"][1]["options"] = json!([]);
        assert_eq!(parse_products(&nothing).unwrap().did_you_mean, None);
        nothing.as_object_mut().unwrap().remove("suggest");
        assert_eq!(parse_products(&nothing).unwrap().did_you_mean, None);
    }

    #[test]
    fn units_sold_buckets_are_read_per_product() {
        let body = json!({
            "took": 3, "timed_out": false,
            "hits": { "total": { "value": 2, "relation": "eq" }, "max_score": null, "hits": [] },
            "aggregations": { "items": { "doc_count": 3, "touched": { "doc_count": 2, "products": {
                "doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                "buckets": [
                    { "key": "p1", "doc_count": 1, "units": { "value": 3.0 } },
                    { "key": "p8", "doc_count": 1, "units": { "value": 9.0 } }
                ]
            } } } }
        });
        assert_eq!(
            parse_units_sold(&body).unwrap(),
            [("p1".to_owned(), 3), ("p8".to_owned(), 9)]
        );
    }
}
