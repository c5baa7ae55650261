//! Recorded answers and steps several scenarios share: alias and index checks, bulk
//! replies, the units-sold recount after a products bulk.

use cloudpf_model::{Product, SeqNo};
use cloudpf_search::suite::product;
use cloudpf_search::{DocChange, Versioned};
use serde_json::{Value, json};

use crate::common::{Step, step};

pub(crate) const PRODUCTS: &str = "cloudpf-acme-products";
pub(crate) const PURCHASES: &str = "cloudpf-acme-purchases";

pub(crate) fn seq(s: &str) -> SeqNo {
    SeqNo::parse(s).unwrap()
}

pub(crate) fn upsert(p: Product, s: &str) -> Versioned<Product> {
    Versioned {
        key: p.product_id.clone(),
        seq: seq(s),
        change: DocChange::Upsert(p),
    }
}

pub(crate) fn stove(id: &str) -> Product {
    product(
        "acme",
        id,
        "Camping Stove",
        "Outdoor",
        "Trailcraft",
        "45.50",
        4,
    )
}

pub(crate) fn alias_missing(alias: &str) -> Step {
    step(
        "GET",
        &format!("/_alias/{alias}"),
        404,
        json!({ "error": format!("alias [{alias}] missing"), "status": 404 }),
    )
}

pub(crate) fn alias_exists(alias: &str) -> Step {
    step(
        "GET",
        &format!("/_alias/{alias}"),
        200,
        json!({ format!("{alias}-v1"): { "aliases": { alias: { "is_write_index": true } } } }),
    )
}

pub(crate) fn index_created(alias: &str) -> Step {
    let index = format!("{alias}-v1");
    step(
        "PUT",
        &format!("/{index}"),
        200,
        json!({ "acknowledged": true, "shards_acknowledged": true, "index": index }),
    )
}

pub(crate) fn index_not_found(index: &str) -> Value {
    let cause = json!({
        "type": "index_not_found_exception",
        "reason": format!("no such index [{index}]"),
        "resource.type": "index_or_alias",
        "resource.id": index,
        "index_uuid": "_na_",
        "index": index
    });
    let mut error = cause.clone();
    error["root_cause"] = json!([cause]);
    json!({ "error": error, "status": 404 })
}

pub(crate) fn item(id: &str, status: u16, result: Option<&str>, error: Option<Value>) -> Value {
    let mut update = json!({ "_index": "cloudpf-acme-products-v1", "_id": id, "status": status });
    if let Some(result) = result {
        update["result"] = json!(result);
        update["_version"] = json!(2);
        update["_seq_no"] = json!(7);
        update["_primary_term"] = json!(1);
        update["_shards"] = json!({ "total": 2, "successful": 1, "failed": 0 });
    }
    if let Some(error) = error {
        update["error"] = error;
    }
    json!({ "update": update })
}

pub(crate) fn bulk_reply(items: Vec<Value>) -> Value {
    let errors = items
        .iter()
        .any(|i| i["update"]["status"].as_u64().unwrap() >= 300);
    json!({ "took": 12, "errors": errors, "items": items })
}

pub(crate) fn rejected_429(id: &str) -> Value {
    item(
        id,
        429,
        None,
        Some(json!({
            "type": "es_rejected_execution_exception",
            "reason": "rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=2048, max_coordinating_and_primary_bytes=104857600]"
        })),
    )
}

/// The steps after a products bulk: the units sold of the upserted products are
/// recounted (here the tenant has no purchases index yet, so every count is zero).
pub(crate) fn units_sold_refresh(ids: &[&str]) -> Vec<Step> {
    vec![
        step(
            "POST",
            &format!("/{PURCHASES}/_search"),
            404,
            index_not_found(PURCHASES),
        ),
        step(
            "POST",
            &format!("/{PRODUCTS}/_bulk"),
            200,
            bulk_reply(
                ids.iter()
                    .map(|id| item(id, 200, Some("noop"), None))
                    .collect(),
            ),
        ),
    ]
}

pub(crate) fn ids_of_bulk(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .step_by(2)
        .map(|l| l["update"]["_id"].as_str().unwrap().to_owned())
        .collect()
}
