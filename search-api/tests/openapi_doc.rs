//! What schemathesis found the OpenAPI document did not say (tests/api_check), checked
//! here so a plain `cargo test` keeps the document true without a running server.
#![allow(clippy::unwrap_used)] // a test that cannot read its inputs should fail loudly

use cloudpf_search_api::openapi::ApiDoc;
use serde_json::Value;
use utoipa::OpenApi;

fn doc() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

fn responses<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let r = &doc["paths"][path][method]["responses"];
    assert!(r.is_object(), "{method} {path} has no responses");
    r
}

#[test]
fn a_csv_report_download_is_documented_as_csv() {
    let doc = doc();
    let ok = &responses(&doc, "/analytics/{tenant_id}/report", "post")["200"]["content"];
    assert!(ok["application/json"].is_object(), "{ok}");
    assert!(ok["text/csv"].is_object(), "{ok}");
}

#[test]
fn metrics_are_documented_as_openmetrics_text() {
    let doc = doc();
    let ok = &responses(&doc, "/metrics", "get")["200"]["content"];
    assert!(ok["application/openmetrics-text"].is_object(), "{ok}");
}

#[test]
fn every_keyed_endpoint_documents_the_errors_its_layers_answer() {
    let doc = doc();
    let keyed = [
        ("/search/{tenant_id}", "get"),
        ("/search/{tenant_id}/products", "get"),
        ("/search/{tenant_id}/autocomplete", "get"),
        ("/search/{tenant_id}/purchases", "get"),
        ("/analytics/{tenant_id}", "get"),
        ("/analytics/{tenant_id}/report", "post"),
    ];
    for (path, method) in keyed {
        let r = responses(&doc, path, method);
        for status in ["400", "401", "403", "408", "429", "503"] {
            let body = &r[status]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                body.as_str(),
                Some("#/components/schemas/ErrorBody"),
                "{method} {path}: {status} undocumented or not an ErrorBody"
            );
        }
        assert!(
            r["429"]["headers"]["Retry-After"].is_object(),
            "{method} {path}: 429 without Retry-After"
        );
    }
    let report = responses(&doc, "/analytics/{tenant_id}/report", "post");
    assert!(report["413"].is_object(), "a body over the limit is a 413");
    let ready = responses(&doc, "/ready", "get");
    assert!(ready["503"]["content"]["application/json"].is_object());
}

#[test]
fn query_parameters_document_the_constraints_the_api_enforces() {
    let doc = doc();
    let params = |path: &str| -> Vec<Value> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone()
    };
    let find = |path: &str, name: &str| {
        params(path)
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))
    };
    assert_eq!(
        find("/search/{tenant_id}/autocomplete", "q")["required"],
        true
    );
    let size = find("/search/{tenant_id}/autocomplete", "size");
    assert_eq!(size["schema"]["maximum"], cloudpf_search::MAX_SUGGESTIONS);
    assert_eq!(find("/analytics/{tenant_id}", "from")["required"], true);
    assert_eq!(
        find("/search/{tenant_id}/products", "in_stock")["schema"]["type"],
        "boolean"
    );
}
