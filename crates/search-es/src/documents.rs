//! Model documents as Elasticsearch indexes them, and the bulk lines that write them.
//!
//! # Sequence-number ordering
//!
//! DynamoDB Streams sequence numbers have up to 40 digits; Elasticsearch's external
//! versions are signed 64-bit integers (at most 19 digits), so a sequence number cannot
//! be a version, and no order-preserving map of 40-digit numbers into 63 bits exists.
//! Every write is therefore an `update` with a Painless script ([`SEQ_GUARD`]) that
//! compares the stored `seq` with the change's: both are zero-padded to 40 digits, so
//! string order is numeric order. An older or equal sequence number is a `noop` (counted
//! as stale); a newer one replaces the whole source. `scripted_upsert` runs the same
//! script when the document does not exist yet, so a first write needs no other path.
//! Deletes write a tombstone the same way (`deleted: true` plus `seq`) instead of removing
//! the document, so a late, older upsert finds the newer tombstone and cannot resurrect
//! the document. The script runs under the document's lock on its primary shard;
//! concurrent writers of one key get version conflicts, which `retry_on_conflict` and
//! then the caller's retries absorb, and the comparison makes the retried write correct
//! whatever order the writers end in.
//!
//! A product's `units_sold` is derived from purchases, not from the product's own
//! stream, so the script keeps it when it replaces a product's source.

use std::collections::BTreeSet;

use cloudpf_model::{Document, Product, Purchase, SeqNo, dynamo};
use cloudpf_search::{DocChange, SearchError, Versioned};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Replaces the source only for a newer sequence number; keeps `units_sold`.
pub const SEQ_GUARD: &str = "def stored = ctx._source.seq; \
if (stored != null && stored.compareTo(params.seq) >= 0) { ctx.op = 'noop'; return; } \
def sold = ctx._source.units_sold; \
ctx._source.clear(); \
ctx._source.putAll(params.doc); \
if (sold != null) { ctx._source.units_sold = sold; }";

/// How often Elasticsearch itself retries an update whose document changed between read
/// and write, before reporting a version conflict.
pub const RETRY_ON_CONFLICT: u32 = 3;

/// A model type with an index of its own.
/// Its entity and key field (a keyword) are the model's [`Document`] constants.
pub trait EsDoc: Document + Serialize {
    /// The searchable fields (everything but `seq`, `deleted` and `source`).
    fn fields(&self) -> Map<String, Value>;
    /// Products whose units sold this document contributes to.
    fn sold_products(&self) -> BTreeSet<String>;
    /// The document as the DynamoDB item it came from: numbers stay decimal text there,
    /// so storing it keeps money and 38-digit attribute numbers exact.
    fn item(&self) -> serde_dynamo::Item;
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl EsDoc for Product {
    fn fields(&self) -> Map<String, Value> {
        object(json!({
            "product_id": self.product_id,
            "name": self.name,
            "description": self.description,
            "category": self.category,
            "brand": self.brand,
            "tags": self.tags,
            // The exact decimal text: Elasticsearch scales it into the scaled_float.
            "price": self.price.to_string(),
            "price_exact": self.price.to_string(),
            "currency": self.currency.as_str(),
            "stock": self.stock,
            "is_active": self.is_active,
            // Microseconds since the epoch, as the embedded engine compares them.
            "created_micros": self.created_at.utc().timestamp_micros(),
            "units_sold": 0,
        }))
    }

    fn sold_products(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }

    fn item(&self) -> serde_dynamo::Item {
        dynamo::product_item(self)
    }
}

impl EsDoc for Purchase {
    fn fields(&self) -> Map<String, Value> {
        let mut text = vec![self.purchase_id.clone(), self.customer_id.clone()];
        text.extend(self.items.iter().map(|i| i.name.clone()));
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|i| json!({ "product_id": i.product_id, "name": i.name, "quantity": i.quantity }))
            .collect();
        object(json!({
            "purchase_id": self.purchase_id,
            "customer_id": self.customer_id,
            "status": self.status.as_str(),
            // Microseconds since the epoch, as the embedded engine compares them.
            "created_micros": self.created_at.utc().timestamp_micros(),
            "total": self.total_amount.to_string(),
            "total_exact": self.total_amount.to_string(),
            "currency": self.currency.as_str(),
            "payment_method": self.payment_method,
            "shipping_country": self.shipping_country,
            "shipping_city": self.shipping_city,
            "product_ids": self.items.iter().map(|i| i.product_id.clone()).collect::<BTreeSet<_>>(),
            "text": text,
            "items": items,
        }))
    }

    fn sold_products(&self) -> BTreeSet<String> {
        self.items.iter().map(|i| i.product_id.clone()).collect()
    }

    fn item(&self) -> serde_dynamo::Item {
        dynamo::purchase_item(self)
    }
}

/// `value` with every object's keys in order: a DynamoDB item is a hash map, and the
/// same document should always be the same text.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// The full document a change leaves in the index: the searchable fields, the exact
/// model document and the sequence number, or a tombstone.
pub fn indexed<T: EsDoc>(change: &Versioned<T>) -> Result<Value, SearchError> {
    let mut doc = match &change.change {
        DocChange::Upsert(value) => {
            let mut fields = value.fields();
            let item = serde_json::to_value(value.item())
                .map_err(|e| SearchError::Corrupt(format!("document does not serialize: {e}")))?;
            let source = serde_json::to_string(&sorted(item))
                .map_err(|e| SearchError::Corrupt(format!("document does not serialize: {e}")))?;
            fields.insert("source".into(), Value::String(source));
            fields.insert("deleted".into(), Value::Bool(false));
            fields
        }
        DocChange::Delete => {
            let mut tombstone = Map::new();
            tombstone.insert(T::KEY.into(), Value::String(change.key.clone()));
            tombstone.insert("deleted".into(), Value::Bool(true));
            tombstone
        }
    };
    doc.insert("seq".into(), Value::String(change.seq.padded()));
    Ok(Value::Object(doc))
}

/// The two NDJSON lines of one sequence-guarded write.
pub fn bulk_lines<T: EsDoc>(change: &Versioned<T>) -> Result<(Value, Value), SearchError> {
    let action = json!({
        "update": { "_id": change.key, "retry_on_conflict": RETRY_ON_CONFLICT }
    });
    let body = json!({
        "scripted_upsert": true,
        "upsert": {},
        "script": {
            "lang": "painless",
            "source": SEQ_GUARD,
            "params": { "seq": change.seq.padded(), "doc": indexed(change)? }
        }
    });
    Ok((action, body))
}

/// The two NDJSON lines setting a product's units sold. A product not indexed yet gets
/// a stub holding only `units_sold` (no `deleted: false`, so nothing reads it as live),
/// which its first upsert keeps.
pub fn units_sold_lines(product_id: &str, units: u64) -> (Value, Value) {
    (
        json!({ "update": { "_id": product_id, "retry_on_conflict": RETRY_ON_CONFLICT } }),
        json!({ "doc": { "units_sold": units }, "doc_as_upsert": true }),
    )
}

/// Lines as an NDJSON request body (each line, newline-terminated).
pub fn ndjson<'a>(lines: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The model document and sequence number of a stored `_source`; `None` for tombstones
/// and units-sold stubs.
pub fn stored<T: EsDoc>(source: &Value) -> Result<Option<(T, SeqNo)>, SearchError> {
    if source.get("deleted").and_then(Value::as_bool) != Some(false) {
        return Ok(None);
    }
    let (Some(text), Some(seq)) = (
        source.get("source").and_then(Value::as_str),
        source.get("seq").and_then(Value::as_str),
    ) else {
        return Err(SearchError::Corrupt(format!(
            "live {} document without source or seq",
            T::ENTITY
        )));
    };
    let corrupt = |e: String| {
        SearchError::Corrupt(format!("stored {} document does not parse: {e}", T::ENTITY))
    };
    let item: serde_dynamo::Item =
        serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
    let doc = dynamo::from_item(item).map_err(|e| corrupt(e.to_string()))?;
    let seq = SeqNo::parse(seq).map_err(SearchError::Corrupt)?;
    Ok(Some((doc, seq)))
}

/// The changes that wrote stored documents (`_id`, `_source`), for a rebuild's catch-up:
/// live documents as upserts and tombstones as deletes, each at its stored sequence
/// number. Units-sold stubs (no source, no sequence number) are derived and skipped.
pub fn versioned_of<T: EsDoc>(hits: &[(String, Value)]) -> Result<Vec<Versioned<T>>, SearchError> {
    let mut out = Vec::with_capacity(hits.len());
    for (id, source) in hits {
        if let Some((doc, seq)) = stored::<T>(source)? {
            out.push(Versioned {
                key: id.clone(),
                seq,
                change: DocChange::Upsert(doc),
            });
        } else if source.get("deleted").and_then(Value::as_bool) == Some(true)
            && let Some(seq) = source.get("seq").and_then(Value::as_str)
        {
            out.push(Versioned {
                key: id.clone(),
                seq: SeqNo::parse(seq).map_err(SearchError::Corrupt)?,
                change: DocChange::Delete,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudpf_search::suite::{product, purchase};

    fn seq(s: &str) -> SeqNo {
        SeqNo::parse(s).unwrap()
    }

    #[test]
    fn bulk_lines_for_an_upsert_and_a_delete_are_as_recorded() {
        let mut p = product(
            "acme",
            "p1",
            "Camping Stove",
            "Outdoor",
            "Trailcraft",
            "45.50",
            4,
        );
        p.tags = vec!["camping".into(), "gas".into()];
        p.description = "Two burners <b>and</b> a lid".into();
        let upsert = Versioned {
            key: "p1".into(),
            seq: seq("4966889929127384629347829164987346826483"),
            change: DocChange::Upsert(p),
        };
        let delete: Versioned<Product> = Versioned {
            key: "p2".into(),
            seq: seq("1001"),
            change: DocChange::Delete,
        };
        let (a1, b1) = bulk_lines(&upsert).unwrap();
        let (a2, b2) = bulk_lines(&delete).unwrap();
        insta::assert_json_snapshot!("bulk_upsert_and_delete", vec![a1, b1, a2, b2]);
    }

    #[test]
    fn a_purchase_is_indexed_with_its_lines_text_and_exact_total() {
        let o = purchase(
            "acme",
            "o1",
            "c1",
            "2025-06-02T10:00:00Z",
            cloudpf_model::PurchaseStatus::Paid,
            &[
                ("p1", "Camping Stove", 2, "45.50"),
                ("p9", "Gas Can", 1, "7.25"),
            ],
        );
        let change = Versioned {
            key: "o1".into(),
            seq: seq("77"),
            change: DocChange::Upsert(o),
        };
        insta::assert_json_snapshot!("purchase_document", indexed(&change).unwrap());
    }

    #[test]
    fn padded_sequence_numbers_compare_as_text_in_numeric_order_up_to_40_digits() {
        // The script compares stored and new `seq` as strings; this is what makes it sound.
        let ordered = [
            "0",
            "9",
            "10",
            "9223372036854775807",
            "9223372036854775808",
            "4966889929127384629347829164987346826483",
            "4966889929127384629347829164987346826484",
            "9999999999999999999999999999999999999999",
        ];
        for pair in ordered.windows(2) {
            let (a, b) = (seq(pair[0]), seq(pair[1]));
            assert!(a < b);
            assert!(a.padded() < b.padded(), "{} vs {}", a.padded(), b.padded());
            assert_eq!(a.padded().len(), 40);
        }
    }

    #[test]
    fn units_sold_lines_upsert_a_stub_when_the_product_is_not_indexed_yet() {
        let (a, b) = units_sold_lines("p1", 12);
        assert_eq!(
            String::from_utf8(ndjson([&a, &b])).unwrap(),
            "{\"update\":{\"_id\":\"p1\",\"retry_on_conflict\":3}}\n\
             {\"doc\":{\"units_sold\":12},\"doc_as_upsert\":true}\n"
        );
    }

    #[test]
    fn the_stored_source_round_trips_the_exact_model_document() {
        let mut p = product("acme", "p1", "Stove", "Outdoor", "Trailcraft", "45.5000", 4);
        p.attributes.insert(
            "weight".into(),
            cloudpf_model::AttrValue::Number("12345678901234567890.123456789012345678".into()),
        );
        let change = Versioned {
            key: "p1".into(),
            seq: seq("123"),
            change: DocChange::Upsert(p.clone()),
        };
        let doc = indexed(&change).unwrap();
        let (back, s): (Product, SeqNo) = stored(&doc).unwrap().unwrap();
        assert_eq!(back, p);
        assert_eq!(back.price.to_string(), "45.5000");
        assert_eq!(s, seq("123"));

        let tombstone: Versioned<Product> = Versioned {
            key: "p1".into(),
            seq: seq("124"),
            change: DocChange::Delete,
        };
        assert!(
            stored::<Product>(&indexed(&tombstone).unwrap())
                .unwrap()
                .is_none()
        );
        assert!(
            stored::<Product>(&json!({ "units_sold": 4 }))
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            stored::<Product>(&json!({ "deleted": false })),
            Err(SearchError::Corrupt(_))
        ));
    }
}
