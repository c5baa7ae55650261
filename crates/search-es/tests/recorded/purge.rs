//! Offboarding (issue #13): a purged tenant's indexes are deleted by name, the ones
//! behind its aliases and the versions a rebuild left, and nothing of another tenant.

use cloudpf_search::SearchEngine;
use serde_json::json;

use crate::common::{Server, step, tenant};
use crate::steps::{PRODUCTS, PURCHASES, alias_missing};

#[tokio::test]
async fn purging_a_tenant_deletes_every_index_of_both_entities_by_name() {
    let server = Server::start(vec![
        step(
            "GET",
            &format!("/_alias/{PRODUCTS}"),
            200,
            json!({ "cloudpf-acme-products-v1": { "aliases": { PRODUCTS: {} } } }),
        ),
        // A rebuild's old version is still there; another tenant's index never matches
        // the pattern, and an index that only looks alike is left alone.
        step(
            "GET",
            "/_cat/indices/cloudpf-acme-products-v*",
            200,
            json!([
                { "index": "cloudpf-acme-products-v0" },
                { "index": "cloudpf-acme-products-v1" },
                { "index": "cloudpf-acme-products-vintage" }
            ]),
        ),
        step(
            "DELETE",
            "/cloudpf-acme-products-v0,cloudpf-acme-products-v1",
            200,
            json!({ "acknowledged": true }),
        ),
        alias_missing(PURCHASES),
        step(
            "GET",
            "/_cat/indices/cloudpf-acme-purchases-v*",
            200,
            json!([]),
        ),
    ])
    .await;
    let removed = server.engine().purge_tenant(&tenant("acme")).await.unwrap();
    server.assert_done();
    assert_eq!(
        removed,
        ["cloudpf-acme-products-v0", "cloudpf-acme-products-v1"]
    );
}
