//! The Athena engine's protocol path: against a scripted Athena endpoint (start, poll,
//! pagination, a failed query, a timeout that cancels) and, under ./tests/run, moto.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use cloudpf_analytics::{
    AnalyticsEngine, AnalyticsError, AthenaConfig, AthenaEngine, Filters, Granularity, Report,
    ReportRequest,
};
use cloudpf_model::TenantId;
use cloudpf_testkit::http::{AwsCall, AwsJson, serve};
use serde_json::{Value, json};

#[derive(Default)]
struct Script {
    /// The state GetQueryExecution reports, in order; the last one repeats.
    states: Vec<(&'static str, &'static str)>,
    polls: usize,
    started: Vec<Value>,
    stopped: Vec<String>,
}

fn ok(body: Value) -> Response {
    AwsJson::V1_1.ok(&body)
}

fn row(values: &[Option<&str>]) -> Value {
    json!({"Data": values.iter().map(|v| v.map_or(json!({}), |v| json!({"VarCharValue": v}))).collect::<Vec<_>>()})
}

async fn endpoint(
    State(script): State<Arc<Mutex<Script>>>,
    AwsCall { operation, body }: AwsCall,
) -> Response {
    let mut s = script.lock().unwrap();
    match operation.as_str() {
        "StartQueryExecution" => {
            s.started.push(body);
            ok(json!({"QueryExecutionId": "q-1"}))
        }
        "GetQueryExecution" => {
            let (state, reason) = s.states[s.polls.min(s.states.len() - 1)];
            s.polls += 1;
            ok(
                json!({"QueryExecution": {"QueryExecutionId": "q-1", "Status": {"State": state, "StateChangeReason": reason}}}),
            )
        }
        "GetQueryResults" => {
            let columns = json!({"ColumnInfo": [{"Name": "orders", "Type": "bigint"}, {"Name": "revenue", "Type": "decimal"}]});
            if body["NextToken"].is_null() {
                ok(json!({
                    "ResultSet": {"Rows": [row(&[Some("orders"), Some("revenue")]), row(&[Some("2"), Some("74.98")])], "ResultSetMetadata": columns},
                    "NextToken": "page-2"
                }))
            } else {
                ok(
                    json!({"ResultSet": {"Rows": [row(&[Some("3"), None])], "ResultSetMetadata": columns}}),
                )
            }
        }
        "StopQueryExecution" => {
            s.stopped.push(
                body["QueryExecutionId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            ok(json!({}))
        }
        other => (
            axum::http::StatusCode::BAD_REQUEST,
            format!("unexpected {other}"),
        )
            .into_response(),
    }
}

async fn aws(url: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_athena::config::Credentials::new(
            "test", "test", None, None, "fake",
        ))
        .load()
        .await
}

async fn scripted(
    states: Vec<(&'static str, &'static str)>,
    timeout: Duration,
) -> (AthenaEngine, Arc<Mutex<Script>>) {
    let script = Arc::new(Mutex::new(Script {
        states,
        ..Script::default()
    }));
    let app = Router::new()
        .route("/", axum::routing::post(endpoint))
        .with_state(script.clone());
    let url = serve(app).await;
    let config = AthenaConfig {
        workgroup: "cloudpf-dev".into(),
        database: "cloudpf_dev".into(),
        timeout,
        first_poll: Duration::from_millis(5),
    };
    (AthenaEngine::new(&aws(&url).await, config), script)
}

fn summary() -> ReportRequest {
    ReportRequest {
        report: Report::Summary,
        from: NaiveDate::from_ymd_opt(2025, 11, 20).unwrap(),
        to: NaiveDate::from_ymd_opt(2025, 11, 22).unwrap(),
        limit: 10,
        granularity: Granularity::Day,
        filters: Filters::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_started_with_bound_parameters_polled_and_paged() {
    let (engine, script) = scripted(
        vec![("QUEUED", ""), ("RUNNING", ""), ("SUCCEEDED", "")],
        Duration::from_secs(10),
    )
    .await;
    let table = engine
        .run(&TenantId::parse("acme").unwrap(), &summary())
        .await
        .unwrap();
    assert_eq!(table.columns, ["orders", "revenue"]);
    assert_eq!(
        table.rows,
        [
            vec![Some("2".to_owned()), Some("74.98".to_owned())],
            vec![Some("3".to_owned()), None]
        ]
    );
    let s = script.lock().unwrap();
    assert_eq!(s.polls, 3);
    let started = &s.started[0];
    assert_eq!(started["WorkGroup"], "cloudpf-dev");
    assert_eq!(started["QueryExecutionContext"]["Database"], "cloudpf_dev");
    assert_eq!(
        started["ExecutionParameters"],
        json!(["'acme'", "'2025-11-20'", "'2025-11-22'", "''", "''"])
    );
    assert_eq!(
        started["QueryString"],
        Report::Summary.sql(),
        "the SQL under athena/ is what runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_and_cancelled_queries_become_clear_errors() {
    let (engine, _) = scripted(
        vec![("RUNNING", ""), ("FAILED", "SYNTAX_ERROR: line 3:1")],
        Duration::from_secs(10),
    )
    .await;
    let err = engine
        .run(&TenantId::parse("acme").unwrap(), &summary())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AnalyticsError::Failed(m) if m == "athena query failed: SYNTAX_ERROR: line 3:1"),
        "{err}"
    );
    let (engine, _) = scripted(
        vec![("CANCELLED", "stopped by user")],
        Duration::from_secs(10),
    )
    .await;
    let err = engine
        .run(&TenantId::parse("acme").unwrap(), &summary())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AnalyticsError::Failed(m) if m.contains("cancelled")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_outlives_the_timeout_is_cancelled() {
    let (engine, script) = scripted(vec![("RUNNING", "")], Duration::from_millis(60)).await;
    let err = engine
        .run(&TenantId::parse("acme").unwrap(), &summary())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AnalyticsError::Unavailable(m) if m.contains("was cancelled")),
        "{err}"
    );
    assert_eq!(script.lock().unwrap().stopped, ["q-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_athena_engine_speaks_to_moto_server() {
    let Some(url) = cloudpf_testkit::moto_endpoint() else {
        return;
    };
    let shared = aws(&url).await;
    let config = AthenaConfig {
        workgroup: "primary".into(),
        database: "cloudpf_test".into(),
        timeout: Duration::from_secs(10),
        first_poll: Duration::from_millis(10),
    };
    // moto runs no SQL: it answers start, status and results, which is the protocol path.
    let table = AthenaEngine::new(&shared, config)
        .run(&TenantId::parse("acme").unwrap(), &summary())
        .await
        .unwrap();
    assert!(table.rows.is_empty(), "{table:?}");
}
