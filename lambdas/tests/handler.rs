//! The Lambda handlers invoked with saved event files, as Lambda would invoke them.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use cloudpf_aws::{S3Sink, S3SinkConfig};
use cloudpf_cdc::Entity;
use cloudpf_cdc::Pipeline;
use cloudpf_engines::SearchBackend;
use cloudpf_lake::ObjectSink;
use cloudpf_lambdas::{LambdaConfig, handle};
use cloudpf_search::TantivyEngine;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// A saved event as the Lambda runtime hands it to the function: its deserializer (a
/// `serde_json` deserializer wrapped by `serde_path_to_error`) reads the payload type,
/// here the event's text.
fn event(name: &str) -> Box<RawValue> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    let bytes = std::fs::read(path).unwrap();
    let raw: Box<RawValue> =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(raw.get()).unwrap(),
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        "the runtime's deserializer must hand over the event's whole text"
    );
    raw
}

async fn aws(url: &str, attempts: u32) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(attempts))
        .load()
        .await
}

fn pipeline(dir: &std::path::Path, sink: S3Sink) -> Pipeline {
    Pipeline::new(Arc::new(TantivyEngine::new(dir)), Arc::new(sink))
}

/// A sink over a bucket this test creates.
async fn new_bucket(shared: &SdkConfig, bucket: &str) -> S3Sink {
    let s3 = sink(shared, bucket);
    s3.client()
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    s3
}

fn sink(shared: &SdkConfig, bucket: &str) -> S3Sink {
    S3Sink::new(
        shared,
        S3SinkConfig {
            bucket: bucket.to_owned(),
            prefix: "prod/".to_owned(),
            kms_key_id: None,
            force_path_style: true,
        },
    )
}

#[test]
fn configuration_comes_from_the_environment_and_is_checked() {
    let vars = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name: &str| map.get(name).cloned()
    };
    let c = LambdaConfig::from_vars(vars(&[
        ("CLOUDPF_LAKE_BUCKET", "lake"),
        ("CLOUDPF_LAKE_PREFIX", "prod"),
    ]))
    .unwrap();
    assert_eq!(
        (
            c.lake.bucket.as_str(),
            c.lake.prefix.as_str(),
            c.data_dir.to_str()
        ),
        ("lake", "prod/", Some("/mnt/index"))
    );
    assert_eq!(c.tenants_file, "/mnt/index/tenants.toml");
    assert_eq!(
        LambdaConfig::from_vars(vars(&[])).unwrap_err().to_string(),
        "CLOUDPF_LAKE_BUCKET is required"
    );
    assert_eq!(c.search_backend, SearchBackend::Embedded);
    let es = LambdaConfig::from_vars(vars(&[
        ("CLOUDPF_LAKE_BUCKET", "l"),
        ("CLOUDPF_SEARCH_BACKEND", "elasticsearch"),
    ]));
    assert_eq!(es.unwrap().search_backend, SearchBackend::Elasticsearch);
    let unknown = LambdaConfig::from_vars(vars(&[
        ("CLOUDPF_LAKE_BUCKET", "l"),
        ("CLOUDPF_SEARCH_BACKEND", "solr"),
    ]));
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("must be embedded or elasticsearch")
    );
    let bad = LambdaConfig::from_vars(vars(&[
        ("CLOUDPF_LAKE_BUCKET", "l"),
        ("CLOUDPF_S3_FORCE_PATH_STYLE", "yes"),
    ]));
    assert!(bad.is_err());
    let athena = vars(&[
        ("CLOUDPF_LAKE_BUCKET", "l"),
        ("CLOUDPF_ATHENA_WORKGROUP", "wg"),
        ("CLOUDPF_ATHENA_DATABASE", "db"),
    ]);
    assert_eq!(
        LambdaConfig::from_vars(athena).unwrap().athena,
        Some(cloudpf_lambdas::AthenaSettings {
            workgroup: "wg".to_owned(),
            database: "db".to_owned()
        })
    );
    let renamed = vars(&[
        ("CLOUDPF_LAKE_BUCKET", "l"),
        ("CLOUDPF_INDEX_DIR", "/mnt/elsewhere"),
    ]);
    assert_eq!(
        LambdaConfig::from_vars(renamed).unwrap_err().to_string(),
        "CLOUDPF_INDEX_DIR was renamed CLOUDPF_DATA_DIR"
    );
    let half = vars(&[
        ("CLOUDPF_LAKE_BUCKET", "l"),
        ("CLOUDPF_ATHENA_WORKGROUP", "wg"),
    ]);
    assert!(
        LambdaConfig::from_vars(half)
            .unwrap_err()
            .to_string()
            .contains("go together")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_lake_fails_the_batch_from_its_first_record() {
    // Nothing listens on port 9: every put fails after the SDK's retries.
    let shared = aws("http://127.0.0.1:9", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), sink(&shared, "unreachable"));
    for (file, table, first) in [
        (
            "products-lifecycle.json",
            Entity::Products,
            "111100000000000000001",
        ),
        (
            "purchases-batch.json",
            Entity::Purchases,
            "333300000000000000001",
        ),
    ] {
        let response = handle(&event(file), table, &p).await.unwrap();
        assert_eq!(
            serde_json::to_value(response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": first}]}),
            "{file}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_events_through_both_handlers_land_in_the_bucket_with_no_failures() {
    let Some(url) = cloudpf_testkit::moto_endpoint() else {
        return;
    };
    let shared = aws(&url, 3).await;
    let bucket = format!("lambda-{}", std::process::id());
    let s3 = new_bucket(&shared, &bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), s3.clone());

    let products = handle(&event("products-lifecycle.json"), Entity::Products, &p)
        .await
        .unwrap();
    assert!(products.batch_item_failures.is_empty());
    let purchases = handle(&event("purchases-batch.json"), Entity::Purchases, &p)
        .await
        .unwrap();
    assert!(
        purchases.batch_item_failures.is_empty(),
        "a bad status is dead-lettered, not retried"
    );

    let keys: Vec<String> = s3
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.to_string())
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with("lake/products/json/tenant_id=acme/dt=2025-11-23/")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("lake/purchases/csv/tenant_id=acme/dt=2025-11-23/")),
        "{keys:?}"
    );
    assert!(
        keys.contains(
            &"dlq/purchases/2025-11-01T00-00-00.000/333300000000000000003.json".to_owned()
        ),
        "{keys:?}"
    );
    let raw = s3
        .client()
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        raw.contents()
            .iter()
            .all(|o| o.key().unwrap().starts_with("prod/")),
        "the prefix is applied"
    );
}

/// Every lake object's key in the bucket, and the partitions (key without its name).
async fn lake(s3: &S3Sink) -> (Vec<String>, Vec<String>) {
    let keys: Vec<String> = s3
        .list("lake/")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.to_string())
        .collect();
    let mut partitions: Vec<String> = keys
        .iter()
        .map(|k| k.rsplit_once('/').unwrap().0.to_owned())
        .collect();
    partitions.dedup();
    (keys, partitions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_compaction_leaves_one_object_per_partition_before_the_events_day() {
    let Some(url) = cloudpf_testkit::moto_endpoint() else {
        return;
    };
    let shared = aws(&url, 3).await;
    let bucket = format!("compact-{}", std::process::id());
    let s3 = new_bucket(&shared, &bucket).await;
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), s3.clone());
    handle(&event("products-lifecycle.json"), Entity::Products, &p)
        .await
        .unwrap();
    handle(&event("purchases-batch.json"), Entity::Purchases, &p)
        .await
        .unwrap();
    // Every object again under another name, as a retry bisected differently writes it.
    for key in lake(&s3).await.0 {
        let body = s3
            .get(&cloudpf_lake::ObjectKey::parse(&key).unwrap())
            .await
            .unwrap()
            .unwrap();
        let again = cloudpf_lake::ObjectKey::parse(&key.replacen("-0000", "-1000", 1)).unwrap();
        s3.put(&again, body).await.unwrap();
    }
    let (before, partitions) = lake(&s3).await;
    assert_eq!(before.len(), 2 * partitions.len());

    let raw = event("eventbridge-scheduled-event.json");
    let request: cloudpf_lambdas::CompactionRequest =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
            .unwrap();
    // Partitions of the event's day and later are still being written: left alone.
    let early = cloudpf_lambdas::CompactionRequest {
        before: Some(chrono::NaiveDate::from_ymd_opt(2025, 11, 1).unwrap()),
        ..request.clone()
    };
    let summary = cloudpf_lambdas::compact(&early, Arc::new(s3.clone()), None)
        .await
        .unwrap();
    assert!(summary.compacted.is_empty());
    assert_eq!(lake(&s3).await.0, before);

    let summary = cloudpf_lambdas::compact(&request, Arc::new(s3.clone()), None)
        .await
        .unwrap();
    assert_eq!(summary.objects_removed(), before.len(), "{summary:?}");
    let (after, after_partitions) = lake(&s3).await;
    assert_eq!(after_partitions, partitions);
    assert_eq!(after.len(), partitions.len(), "one object per partition");

    let again = cloudpf_lambdas::compact(&request, Arc::new(s3.clone()), None)
        .await
        .unwrap();
    assert!(again.compacted.is_empty(), "nothing new, nothing written");
    assert_eq!(lake(&s3).await.0, after);
}
