//! The CDC function as AWS runs it with the Elasticsearch backend (issue #17): its
//! tenants file in S3, each cluster's credentials in Secrets Manager (both moto, over
//! the wire), and records routed to a scripted Elasticsearch node. The file is followed
//! while the function is warm: a change of route is used by the next invocation, an
//! unchanged file is not rebuilt, and a broken one leaves the last good one in use. A
//! cluster whose secret cannot be read holds back only its own shops' records.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine as _;
use cloudpf_cdc::Entity;
use cloudpf_lambdas::{CdcPipeline, LambdaConfig, handle};
use serde_json::{Value, json};

/// What a scripted node saw: method, path and `Authorization` of each request.
type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

/// An Elasticsearch node that knows the tenant's aliases and accepts every bulk item.
async fn node(
    answer: State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = uri.path().to_owned();
    answer
        .lock()
        .unwrap()
        .push((method.to_string(), path.clone(), auth));
    if let Some(alias) = path.strip_prefix("/_alias/") {
        let body =
            json!({ format!("{alias}-v1"): { "aliases": { alias: { "is_write_index": true } } } });
        return (StatusCode::OK, body.to_string());
    }
    if path.ends_with("/_bulk") {
        let text = String::from_utf8_lossy(&body);
        let items: Vec<Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l.get("update").and_then(|u| u.get("_id")).cloned())
            .map(|id| json!({ "update": { "_id": id, "status": 200, "result": "updated", "_version": 2 } }))
            .collect();
        return (
            StatusCode::OK,
            json!({ "took": 1, "errors": false, "items": items }).to_string(),
        );
    }
    if path.ends_with("/_search") {
        // No purchases index yet: every units-sold count is zero.
        let index = path.trim_start_matches('/').trim_end_matches("/_search");
        let error = json!({ "type": "index_not_found_exception", "reason": format!("no such index [{index}]"), "index": index });
        return (
            StatusCode::NOT_FOUND,
            json!({ "error": { "root_cause": [error.clone()], "type": "index_not_found_exception", "reason": error["reason"] }, "status": 404 }).to_string(),
        );
    }
    (StatusCode::OK, "{}".to_owned())
}

async fn start_node() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let app = Router::new().fallback(node).with_state(seen.clone());
    (cloudpf_testkit::http::serve(app).await, seen)
}

async fn aws(url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await
}

fn event(name: &str) -> Box<serde_json::value::RawValue> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn tenants_file(cluster: &str, url: &str, secret: &str) -> String {
    format!(
        r#"
[[tenants]]
id = "acme"
search_cluster = "{cluster}"
keys = []

[elasticsearch.clusters.{cluster}]
url = "{url}"
credentials_secret = "{secret}"
"#
    )
}

struct Stack {
    shared: SdkConfig,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Stack {
    async fn put_tenants(&self, text: &str) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key("config/tenants.toml")
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }

    async fn secret(&self, name: &str, value: Value) {
        aws_sdk_secretsmanager::Client::new(&self.shared)
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap();
    }

    async fn pipeline(&self) -> CdcPipeline {
        let bucket = self.bucket.clone();
        let config = LambdaConfig::from_vars(|name| {
            match name {
                "CLOUDPF_LAKE_BUCKET" => Some(bucket.clone()),
                "CLOUDPF_SEARCH_BACKEND" => Some("elasticsearch".into()),
                "CLOUDPF_TENANTS_FILE" => Some(format!("s3://{bucket}/config/tenants.toml")),
                "CLOUDPF_S3_FORCE_PATH_STYLE" => Some("true".into()),
                // Checked on every invocation, so the test needs no clock.
                "CLOUDPF_TENANTS_REFRESH_SECONDS" => Some("0".into()),
                _ => None,
            }
        })
        .unwrap();
        cloudpf_lambdas::pipeline(&config, &self.shared)
            .await
            .unwrap()
    }
}

async fn stack() -> Option<Stack> {
    let url = cloudpf_testkit::moto_endpoint()?;
    let shared = aws(&url).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    let bucket = cloudpf_testkit::unique("cloudpf-es-lambda");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    Some(Stack { shared, s3, bucket })
}

fn bulks(seen: &Seen) -> Vec<Option<String>> {
    bulks_of(seen, "acme")
}

/// The `Authorization` of each bulk request for `tenant`'s products.
fn bulks_of(seen: &Seen, tenant: &str) -> Vec<Option<String>> {
    let path = format!("/cloudpf-{tenant}-products/_bulk");
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(method, p, _)| method == "POST" && *p == path)
        .map(|(_, _, auth)| auth.clone())
        .collect()
}

#[tokio::test]
async fn records_reach_the_cluster_the_s3_tenants_file_names_with_the_secret_managers_credentials_and_follow_its_changes()
 {
    let Some(stack) = stack().await else { return };
    let (alpine_url, alpine) = start_node().await;
    let (beta_url, beta) = start_node().await;
    let alpine_secret = cloudpf_testkit::unique("cloudpf/test/es/alpine");
    let beta_secret = cloudpf_testkit::unique("cloudpf/test/es/beta");
    stack
        .secret(
            &alpine_secret,
            json!({ "username": "elastic", "password": "alpine-pw-1" }),
        )
        .await;
    stack
        .secret(&beta_secret, json!({ "api_key": "YmV0YTprZXk=" }))
        .await;
    stack
        .put_tenants(&tenants_file("alpine", &alpine_url, &alpine_secret))
        .await;

    let pipeline = stack.pipeline().await;
    let CdcPipeline::Reloading(reloading) = &pipeline else {
        panic!("the elasticsearch backend follows the tenants file");
    };
    let pipeline_ref = &pipeline;
    let run = move || async move {
        let current = pipeline_ref.current().await;
        handle(
            &event("products-lifecycle.json"),
            Entity::Products,
            &current,
        )
        .await
        .unwrap()
    };

    let response = run().await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:alpine-pw-1")
    );
    let sent = bulks(&alpine);
    assert!(!sent.is_empty(), "acme's records reach its cluster");
    assert!(
        sent.iter()
            .all(|auth| auth.as_deref() == Some(basic.as_str()))
    );
    assert_eq!(reloading.builds(), 1);

    // Unchanged: checked, not rebuilt.
    run().await;
    assert_eq!(reloading.builds(), 1);
    assert!(reloading.checks() >= 1);

    // The shop moves to another cluster: the next invocation goes there, with that
    // cluster's API key, and nothing more reaches the old one.
    let before = bulks(&alpine).len();
    stack
        .put_tenants(&tenants_file("beta", &beta_url, &beta_secret))
        .await;
    let response = run().await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(reloading.builds(), 2);
    let sent = bulks(&beta);
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|auth| auth.as_deref() == Some("ApiKey YmV0YTprZXk="))
    );
    assert_eq!(bulks(&alpine).len(), before);

    // A broken file is not used: the last good routes stay.
    stack.put_tenants("[[tenants]\nid = ").await;
    let response = run().await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(reloading.builds(), 2);
    assert!(bulks(&beta).len() > sent.len());

    // A file naming a secret that cannot be read yet (created a moment later, or a
    // throttled read) is used, with that cluster unavailable: the shop's records are
    // kept in the stream (a batch item failure), nothing is sent without credentials,
    // and the file is built again at the next check, without another edit.
    let gamma_secret = cloudpf_testkit::unique("cloudpf/test/es/gamma");
    stack
        .put_tenants(&tenants_file("gamma", &alpine_url, &gamma_secret))
        .await;
    let before = bulks(&alpine).len();
    let response = run().await;
    assert_eq!(response.batch_item_failures.len(), 1, "{response:?}");
    assert_eq!(reloading.builds(), 3);
    assert_eq!(bulks(&alpine).len(), before);
    stack
        .secret(
            &gamma_secret,
            json!({ "username": "elastic", "password": "gamma-pw" }),
        )
        .await;
    let response = run().await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(reloading.builds(), 4);
    let gamma = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:gamma-pw")
    );
    let sent = bulks(&alpine);
    assert!(sent.len() > before);
    assert!(
        sent[before..]
            .iter()
            .all(|auth| auth.as_deref() == Some(gamma.as_str()))
    );
}

/// The lifecycle fixture for acme, then the same changes for globex (later sequence
/// numbers): one batch of a shard that two shops share.
fn two_shops_event() -> Box<serde_json::value::RawValue> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/products-lifecycle.json");
    let text = std::fs::read_to_string(path).unwrap();
    let globex_text = text
        .replace("\"acme\"", "\"globex\"")
        .replace("\"SequenceNumber\": \"1111", "\"SequenceNumber\": \"2222");
    assert!(globex_text.contains("globex") && globex_text.contains("\"2222"));
    let acme: Value = serde_json::from_str(&text).unwrap();
    let globex: Value = serde_json::from_str(&globex_text).unwrap();
    let mut records = acme["Records"].as_array().unwrap().clone();
    records.extend(globex["Records"].as_array().unwrap().iter().cloned());
    serde_json::value::to_raw_value(&json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn a_cluster_whose_secret_cannot_be_read_holds_back_only_its_own_shops_records() {
    // Issue #17: one unreadable secret used to fail the function's start, so every shop
    // of every cluster waited.
    let Some(stack) = stack().await else { return };
    let (alpine_url, alpine) = start_node().await;
    let (beta_url, beta) = start_node().await;
    let alpine_secret = cloudpf_testkit::unique("cloudpf/test/es/alpine-late");
    let beta_secret = cloudpf_testkit::unique("cloudpf/test/es/beta");
    stack
        .secret(&beta_secret, json!({ "api_key": "YmV0YTprZXk=" }))
        .await;
    stack
        .put_tenants(&format!(
            r#"
[[tenants]]
id = "acme"
search_cluster = "alpine"
keys = []

[[tenants]]
id = "globex"
search_cluster = "beta"
keys = []

[elasticsearch.clusters.alpine]
url = "{alpine_url}"
credentials_secret = "{alpine_secret}"

[elasticsearch.clusters.beta]
url = "{beta_url}"
credentials_secret = "{beta_secret}"
"#
        ))
        .await;

    let pipeline = stack.pipeline().await;
    let CdcPipeline::Reloading(reloading) = &pipeline else {
        panic!("the elasticsearch backend follows the tenants file");
    };
    let event = two_shops_event();
    let run = || async {
        let current = pipeline.current().await;
        handle(&event, Entity::Products, &current).await.unwrap()
    };

    // globex is indexed; acme's records are kept in the stream from its first one.
    let response = run().await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.as_deref())
        .collect();
    assert_eq!(failed, ["111100000000000000001"]);
    assert!(!bulks_of(&beta, "globex").is_empty());
    assert!(
        alpine.lock().unwrap().is_empty(),
        "nothing is sent without credentials"
    );

    // The secret appears: the next invocation reads it, without a change of the file;
    // once whole, the file is not built again.
    let before = reloading.builds();
    stack
        .secret(
            &alpine_secret,
            json!({ "username": "elastic", "password": "late-pw" }),
        )
        .await;
    let response = run().await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(reloading.builds(), before + 1);
    run().await;
    assert_eq!(reloading.builds(), before + 1);
    let late = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("elastic:late-pw")
    );
    let sent = bulks_of(&alpine, "acme");
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|auth| auth.as_deref() == Some(late.as_str()))
    );
}
