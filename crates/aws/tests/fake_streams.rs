//! The poller against a scripted DynamoDB Streams endpoint, for what moto cannot show:
//! a closed parent shard and its child, an expired iterator, throttling, a table that
//! fails, a checkpoint past the stream's retention, and empty pages before records.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;

use axum::response::{IntoResponse, Response};
use cloudpf_aws::{Poller, PollerConfig};
use cloudpf_cdc::Pipeline;
use cloudpf_model::TenantId;
use cloudpf_search::{SearchEngine, TantivyEngine};
use cloudpf_testkit::http::{AwsCall, AwsJson, serve};
use serde_json::{Value, json};

const ARN: &str =
    "arn:aws:dynamodb:us-east-1:000000000000:table/products/stream/2026-01-01T00:00:00.000";
const PURCHASES_ARN: &str =
    "arn:aws:dynamodb:us-east-1:000000000000:table/purchases/stream/2026-01-01T00:00:00.000";

/// What the fake stream holds and what happened to it.
#[derive(Default)]
struct Script {
    /// Per shard: its records, whether it is closed.
    shards: HashMap<String, (Vec<Value>, bool)>,
    /// GetRecords calls to answer with ExpiredIteratorException, per shard.
    expire: HashMap<String, u32>,
    /// GetRecords calls to answer with LimitExceededException, per shard.
    throttle: HashMap<String, u32>,
    /// Every GetShardIterator call: (shard, after sequence number).
    iterator_calls: Vec<(String, Option<String>)>,
    /// Tables whose DescribeTable answers InternalServerError.
    broken_tables: Vec<String>,
    /// Per shard: records up to this sequence number are trimmed (past retention).
    trimmed_through: HashMap<String, u64>,
    /// Per shard: GetRecords calls to answer with an empty page that still has a next
    /// iterator at the same position.
    empty_pages: HashMap<String, u32>,
    /// GetRecords calls, per shard.
    get_records_calls: HashMap<String, u32>,
    /// The purchases stream's shard with records, when the script has one.
    purchases_shard: Option<String>,
    /// GetRecords answers this late, after telling that a request arrived.
    slow_get_records: Option<(Arc<tokio::sync::Notify>, std::time::Duration)>,
}

fn product_record(seq: &str, id: &str, price: &str) -> Value {
    let image = json!({
        "tenant_id": {"S": "fake-shop"}, "product_id": {"S": id}, "name": {"S": format!("Lamp {id}")},
        "category": {"S": "Home"}, "price": {"N": price}, "currency": {"S": "EUR"},
        "created_at": {"S": "2026-01-01T10:00:00Z"}
    });
    json!({
        "eventID": seq, "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1767261600.0,
            "Keys": {"tenant_id": {"S": "fake-shop"}, "product_id": {"S": id}},
            "NewImage": image, "SequenceNumber": seq, "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    })
}

fn purchase_record(seq: &str, id: &str) -> Value {
    let image = json!({
        "tenant_id": {"S": "fake-shop"}, "purchase_id": {"S": id}, "customer_id": {"S": "c-1"},
        "items": {"L": [{"M": {"product_id": {"S": "p-1"}, "name": {"S": "Lamp p-1"},
                              "quantity": {"N": "1"}, "unit_price": {"N": "10.00"}}}]},
        "total_amount": {"N": "10.00"}, "currency": {"S": "EUR"}, "status": {"S": "paid"},
        "created_at": {"S": "2026-01-01T10:00:00Z"}
    });
    json!({
        "eventID": seq, "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1767261600.0,
            "Keys": {"tenant_id": {"S": "fake-shop"}, "purchase_id": {"S": id}},
            "NewImage": image, "SequenceNumber": seq, "SizeBytes": 100,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    })
}

fn error(kind: &str) -> Response {
    AwsJson::V1_0.error("com.amazonaws.dynamodb.v20120810", kind)
}

fn ok(body: Value) -> Response {
    AwsJson::V1_0.ok(&body)
}

fn seq_num(v: &Value) -> u64 {
    v["dynamodb"]["SequenceNumber"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn endpoint(
    State(script): State<Arc<Mutex<Script>>>,
    AwsCall { operation, body }: AwsCall,
) -> Response {
    let operation = operation.as_str();
    let (response, slow) = {
        let mut s = script.lock().unwrap();
        let slow = (operation == "GetRecords").then(|| s.slow_get_records.clone());
        (respond(&mut s, operation, &body), slow.flatten())
    };
    if let Some((arrived, delay)) = slow {
        arrived.notify_one();
        tokio::time::sleep(delay).await;
    }
    response
}

fn respond(s: &mut Script, operation: &str, body: &Value) -> Response {
    match operation {
        "DescribeTable" => {
            let table = body["TableName"].as_str().unwrap_or_default();
            if s.broken_tables.iter().any(|t| t == table) {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [("content-type", "application/x-amz-json-1.0")],
                    json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
                           "message": "scripted failure"})
                    .to_string(),
                )
                    .into_response();
            }
            let arn = if table == "products" {
                ARN
            } else {
                PURCHASES_ARN
            };
            ok(json!({"Table": {"TableName": table, "LatestStreamArn": arn}}))
        }
        "DescribeStream" if body["StreamArn"] == PURCHASES_ARN => {
            // The purchases stream has no shards unless the script gives it one.
            let shards: Vec<Value> = s
                .purchases_shard
                .iter()
                .map(|id| json!({"ShardId": id, "SequenceNumberRange": {"StartingSequenceNumber": "500"}}))
                .collect();
            ok(json!({"StreamDescription": {
                "StreamArn": PURCHASES_ARN, "StreamStatus": "ENABLED", "Shards": shards
            }}))
        }
        "DescribeStream" => ok(json!({"StreamDescription": {
            "StreamArn": ARN, "StreamStatus": "ENABLED",
            // The child is listed first: the poller must still finish its parent first.
            "Shards": [
                {"ShardId": "shard-child", "ParentShardId": "shard-parent",
                 "SequenceNumberRange": {"StartingSequenceNumber": "300"}},
                {"ShardId": "shard-parent",
                 "SequenceNumberRange": {"StartingSequenceNumber": "100", "EndingSequenceNumber": "200"}},
            ]
        }})),
        "GetShardIterator" => {
            let shard = body["ShardId"].as_str().unwrap().to_owned();
            let after = body["SequenceNumber"].as_str().map(str::to_owned);
            s.iterator_calls.push((shard.clone(), after.clone()));
            let trimmed = s.trimmed_through.get(&shard).copied().unwrap_or(0);
            let position = match &after {
                // As DynamoDB: a position older than the trim horizon cannot be read.
                Some(seq) if seq.parse::<u64>().unwrap() < trimmed => {
                    return error("TrimmedDataAccessException");
                }
                Some(seq) => seq.clone(),
                None => trimmed.to_string(),
            };
            ok(json!({"ShardIterator": format!("{shard}|{position}")}))
        }
        "GetRecords" => {
            let it = body["ShardIterator"].as_str().unwrap();
            let (shard, after) = it.split_once('|').unwrap();
            *s.get_records_calls.entry(shard.to_owned()).or_default() += 1;
            if let Some(n) = s.expire.get_mut(shard).filter(|n| **n > 0) {
                *n -= 1;
                return error("ExpiredIteratorException");
            }
            if let Some(n) = s.throttle.get_mut(shard).filter(|n| **n > 0) {
                *n -= 1;
                return error("LimitExceededException");
            }
            if let Some(n) = s.empty_pages.get_mut(shard).filter(|n| **n > 0) {
                *n -= 1;
                return ok(json!({"Records": [], "NextShardIterator": it}));
            }
            let after: u64 = after.parse().unwrap_or(0);
            let (records, closed) = s.shards.get(shard).cloned().unwrap();
            let limit = body["Limit"].as_u64().unwrap_or(100) as usize;
            let page: Vec<Value> = records
                .into_iter()
                .filter(|r| seq_num(r) > after)
                .take(limit)
                .collect();
            let last = page.last().map_or(after, seq_num);
            let exhausted = !s.shards[shard].0.iter().any(|r| seq_num(r) > last);
            let next = if closed && exhausted && page.is_empty() {
                Value::Null
            } else {
                json!(format!("{shard}|{last}"))
            };
            ok(json!({"Records": page, "NextShardIterator": next}))
        }
        other => error(&format!("UnknownOperation{other}")),
    }
}

async fn start(script: Script) -> (String, Arc<Mutex<Script>>) {
    let script = Arc::new(Mutex::new(script));
    let app = Router::new()
        .route("/", axum::routing::post(endpoint))
        .with_state(script.clone());
    (serve(app).await, script)
}

async fn aws(url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
            "test", "test", None, None, "fake",
        ))
        // One attempt: the poller's own handling is under test, not the SDK's retries.
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1))
        .load()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_shard_is_finished_before_its_child_and_expired_iterators_and_throttling_are_survived()
 {
    let mut script = Script::default();
    script.shards.insert(
        "shard-parent".into(),
        (
            vec![
                product_record("101", "p-1", "10.00"),
                product_record("102", "p-2", "20.00"),
            ],
            true,
        ),
    );
    script.shards.insert(
        "shard-child".into(),
        (
            vec![
                product_record("301", "p-1", "11.00"),
                product_record("302", "p-3", "30.00"),
            ],
            false,
        ),
    );
    script.expire.insert("shard-child".into(), 1);
    script.throttle.insert("shard-child".into(), 2);
    let (url, script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();

    let pipeline = Pipeline::local(dir.path());
    let mut config = PollerConfig::new("products", "purchases", dir.path().join("checkpoints"));
    config.batch_size = 1;
    let poller = Poller::new(&shared, pipeline, config);
    let report = poller.pass().await;
    assert_eq!(
        (report.records, report.applied, report.failed_batches),
        (4, 4, 0),
        "{report:?}"
    );

    let (calls, expired_left, throttled_left) = {
        let s = script.lock().unwrap();
        (
            s.iterator_calls.clone(),
            s.expire["shard-child"],
            s.throttle["shard-child"],
        )
    };
    assert_eq!(
        (expired_left, throttled_left),
        (0, 0),
        "the scripted errors were all met"
    );
    let first_child = calls.iter().position(|(s, _)| s == "shard-child").unwrap();
    assert!(
        calls[..first_child]
            .iter()
            .any(|(s, _)| s == "shard-parent"),
        "{calls:?}"
    );
    // The expired iterator was renewed from the child's checkpoint (none yet: its start).
    let child_from_start = calls
        .iter()
        .filter(|c| *c == &("shard-child".to_owned(), None))
        .count();
    assert!(child_from_start >= 2, "{calls:?}");
    drop(poller);

    let engine = TantivyEngine::new(dir.path());
    let tenant = TenantId::parse("fake-shop").unwrap();
    let p1 = engine.get_product(&tenant, "p-1").await.unwrap().unwrap();
    assert_eq!(
        p1.doc.price.to_string(),
        "11.00",
        "the child's change is newer than the parent's"
    );
    assert!(engine.get_product(&tenant, "p-3").await.unwrap().is_some());

    // Restarted: the parent is finished and the child checkpointed, nothing is read again.
    let again = Poller::new(
        &shared,
        Pipeline::local(dir.path()),
        PollerConfig::new("products", "products", dir.path().join("checkpoints")),
    );
    drop(engine);
    let report = again.run_until_idle().await.unwrap();
    assert_eq!(report.records, 0, "{report:?}");
    let checkpoint: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("checkpoints/products.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        checkpoint["shards"]["shard-parent"],
        json!({"last_seq": "102", "finished": true})
    );
    assert_eq!(
        checkpoint["shards"]["shard-child"],
        json!({"last_seq": "302", "finished": false})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lake_that_stays_down_ends_a_run_until_idle_with_an_error_and_moves_no_checkpoint() {
    let mut script = Script::default();
    script.shards.insert(
        "shard-parent".into(),
        (vec![product_record("101", "p-1", "10.00")], true),
    );
    script.shards.insert("shard-child".into(), (vec![], false));
    let (url, _script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();
    // The fake endpoint speaks no S3: every put fails, as during an S3 outage.
    let lake = cloudpf_aws::S3Sink::new(
        &shared,
        cloudpf_aws::S3SinkConfig {
            bucket: "lake".into(),
            prefix: String::new(),
            kms_key_id: None,
            force_path_style: true,
        },
    );
    let pipeline = Pipeline::new(Arc::new(TantivyEngine::new(dir.path())), Arc::new(lake));
    let mut config = PollerConfig::new("products", "purchases", dir.path().join("checkpoints"));
    config.idle_sleep = std::time::Duration::from_millis(5);
    let error = Poller::new(&shared, pipeline, config)
        .run_until_idle()
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "still failing after {} passes (last: a batch item failure); the log says more, the checkpoints keep what was applied",
            cloudpf_aws::poller::MAX_FAILING_PASSES
        )
    );
    let checkpoint: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("checkpoints/products.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        checkpoint["shards"]["shard-parent"],
        json!({"last_seq": null, "finished": false}),
        "nothing is acknowledged before it is durable"
    );
}

fn config(dir: &std::path::Path) -> PollerConfig {
    let mut config = PollerConfig::new("products", "purchases", dir.join("checkpoints"));
    config.idle_sleep = std::time::Duration::from_millis(5);
    config.empty_page_backoff = std::time::Duration::from_millis(1);
    config
}

fn checkpoint(dir: &std::path::Path, table: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join(format!("checkpoints/{table}.json"))).unwrap())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_table_that_fails_does_not_stop_the_other_table_from_being_polled() {
    let mut script = Script::default();
    script.broken_tables.push("products".into());
    script.purchases_shard = Some("shard-orders".into());
    script.shards.insert(
        "shard-orders".into(),
        (
            vec![purchase_record("501", "o-1"), purchase_record("502", "o-2")],
            false,
        ),
    );
    let (url, _script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(&shared, Pipeline::local(dir.path()), config(dir.path()));

    let report = poller.pass().await;
    assert_eq!(
        (report.records, report.applied, report.errors),
        (2, 2, 1),
        "{report:?}"
    );
    let last = report.last_error.unwrap();
    assert!(last.starts_with("table products: "), "{last}");
    let engine = TantivyEngine::new(dir.path());
    let tenant = TenantId::parse("fake-shop").unwrap();
    assert!(engine.get_purchase(&tenant, "o-2").await.unwrap().is_some());
    assert_eq!(
        checkpoint(dir.path(), "purchases")["shards"]["shard-orders"]["last_seq"],
        "502"
    );

    // A table that stays broken ends a run with its error named, not with a hang.
    let error = poller.run_until_idle().await.unwrap_err().to_string();
    assert!(
        error.starts_with("still failing after 10 passes (last: table products: "),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_checkpoint_past_the_streams_retention_resumes_at_the_trim_horizon_and_counts_the_gap_once()
 {
    let mut script = Script::default();
    script.shards.insert(
        "shard-parent".into(),
        (
            (101..=106)
                .map(|n| product_record(&n.to_string(), &format!("p-{n}"), "10.00"))
                .collect(),
            true,
        ),
    );
    script.shards.insert("shard-child".into(), (vec![], false));
    // The poller stopped after 102; then records through 104 aged out of the stream.
    script.trimmed_through.insert("shard-parent".into(), 104);
    let (url, script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("checkpoints")).unwrap();
    std::fs::write(
        dir.path().join("checkpoints/products.json"),
        json!({"stream_arn": ARN, "shards": {"shard-parent": {"last_seq": "102", "finished": false}}})
            .to_string(),
    )
    .unwrap();
    let poller = Poller::new(&shared, Pipeline::local(dir.path()), config(dir.path()));

    let report = poller.run_until_idle().await.unwrap();
    assert_eq!(
        (
            report.records,
            report.applied,
            report.trimmed_gaps,
            report.errors
        ),
        (2, 2, 1, 0),
        "{report:?}"
    );
    let engine = TantivyEngine::new(dir.path());
    let tenant = TenantId::parse("fake-shop").unwrap();
    assert!(
        engine
            .get_product(&tenant, "p-106")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        engine
            .get_product(&tenant, "p-103")
            .await
            .unwrap()
            .is_none(),
        "103 and 104 were trimmed: lost, and said so"
    );
    assert_eq!(
        checkpoint(dir.path(), "products")["shards"]["shard-parent"],
        json!({"last_seq": "106", "finished": true, "trimmed_gap": {"after": "102"}})
    );
    // The gap is counted and logged once: the next run finds nothing new and no gap.
    let again = poller.run_until_idle().await.unwrap();
    assert_eq!(again, cloudpf_aws::PollReport::default());
    assert!(
        script
            .lock()
            .unwrap()
            .iterator_calls
            .contains(&("shard-parent".to_owned(), Some("102".to_owned()))),
        "the checkpoint was tried first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_shard_gone_from_the_stream_before_it_was_finished_is_counted_as_a_gap() {
    let mut script = Script::default();
    script.shards.insert(
        "shard-parent".into(),
        (vec![product_record("101", "p-1", "10.00")], true),
    );
    script.shards.insert("shard-child".into(), (vec![], false));
    let (url, _script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("checkpoints")).unwrap();
    std::fs::write(
        dir.path().join("checkpoints/products.json"),
        json!({"stream_arn": ARN, "shards": {"shard-grandparent": {"last_seq": "7", "finished": false}}})
            .to_string(),
    )
    .unwrap();
    let poller = Poller::new(&shared, Pipeline::local(dir.path()), config(dir.path()));
    let report = poller.run_until_idle().await.unwrap();
    assert_eq!((report.records, report.trimmed_gaps), (1, 1), "{report:?}");
    assert_eq!(
        checkpoint(dir.path(), "products")["shards"]["shard-grandparent"],
        json!({"last_seq": "7", "finished": true, "trimmed_gap": {"after": "7"}})
    );
    assert_eq!(poller.run_until_idle().await.unwrap().trimmed_gaps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_empty_pages_before_a_shards_records_are_read_past_within_a_bound() {
    let mut script = Script::default();
    script.shards.insert("shard-parent".into(), (vec![], true));
    script.shards.insert(
        "shard-child".into(),
        (vec![product_record("301", "p-1", "11.00")], false),
    );
    script.empty_pages.insert("shard-child".into(), 2);
    let (url, script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let poller = Poller::new(&shared, Pipeline::local(dir.path()), config(dir.path()));

    let report = poller.pass().await;
    assert_eq!((report.records, report.applied), (1, 1), "{report:?}");

    // A shard that only ever answers empty pages ends the pass after the bound.
    script
        .lock()
        .unwrap()
        .empty_pages
        .insert("shard-child".into(), u32::MAX);
    let before = script.lock().unwrap().get_records_calls["shard-child"];
    let report = poller.run_until_idle().await.unwrap();
    assert_eq!(report, cloudpf_aws::PollReport::default());
    let calls = script.lock().unwrap().get_records_calls["shard-child"] - before;
    assert_eq!(calls, PollerConfig::new("", "", "".into()).max_empty_pages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_shutdown_during_a_batch_finishes_and_checkpoints_that_batch_and_reads_no_further()
 {
    let mut script = Script::default();
    script.shards.insert(
        "shard-parent".into(),
        (
            vec![
                product_record("101", "p-1", "10.00"),
                product_record("102", "p-2", "20.00"),
                product_record("103", "p-3", "30.00"),
            ],
            true,
        ),
    );
    script.shards.insert("shard-child".into(), (vec![], false));
    let arrived = Arc::new(tokio::sync::Notify::new());
    script.slow_get_records = Some((arrived.clone(), std::time::Duration::from_millis(300)));
    let (url, _script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.batch_size = 1;
    let poller = Poller::new(&shared, Pipeline::local(dir.path()), config);

    // Shutdown comes while the first page is on its way.
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        poller.run(async move { arrived.notified().await }),
    )
    .await
    .expect("run returns after shutdown");
    assert_eq!((report.records, report.applied), (1, 1), "{report:?}");
    assert_eq!(
        checkpoint(dir.path(), "products")["shards"]["shard-parent"],
        json!({"last_seq": "101", "finished": false}),
        "the batch in flight is applied and acknowledged, no later one is started"
    );
    drop(poller);
    let engine = TantivyEngine::new(dir.path());
    let tenant = TenantId::parse("fake-shop").unwrap();
    assert!(engine.get_product(&tenant, "p-1").await.unwrap().is_some());
    assert!(engine.get_product(&tenant, "p-2").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_busy_shard_yields_after_its_page_budget_so_the_other_table_is_polled_in_the_same_pass()
 {
    let mut script = Script::default();
    script.shards.insert(
        "shard-parent".into(),
        (
            (101..=110)
                .map(|n| product_record(&n.to_string(), &format!("p-{n}"), "10.00"))
                .collect(),
            true,
        ),
    );
    script.shards.insert("shard-child".into(), (vec![], false));
    script.purchases_shard = Some("shard-orders".into());
    script.shards.insert(
        "shard-orders".into(),
        (vec![purchase_record("501", "o-1")], false),
    );
    let (url, _script) = start(script).await;
    let shared = aws(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.batch_size = 1;
    config.max_pages_per_shard = 3;
    let poller = Poller::new(&shared, Pipeline::local(dir.path()), config);

    let first = poller.pass().await;
    assert_eq!(first.records, 3 + 1, "{first:?}");
    assert_eq!(
        checkpoint(dir.path(), "products")["shards"]["shard-parent"]["last_seq"],
        "103"
    );
    assert_eq!(
        checkpoint(dir.path(), "purchases")["shards"]["shard-orders"]["last_seq"],
        "501"
    );
    // Later passes read on from there; nothing is skipped or read twice.
    let rest = poller.run_until_idle().await.unwrap();
    assert_eq!((rest.records, rest.applied), (7, 7), "{rest:?}");
}
