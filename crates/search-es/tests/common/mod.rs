//! A scripted stand-in for an Elasticsearch node: it expects requests in a given order
//! (method and path), answers each with the recorded response, and keeps every request
//! it saw so that tests can assert what the engine sent.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use cloudpf_model::TenantId;
use cloudpf_search_es::{
    ElasticsearchEngine, EsConfig, EsRoutes, RawCluster, RetryPolicy, TaskWait,
};
use serde_json::Value;

/// One expected request and the response to give it.
#[derive(Debug, Clone)]
pub struct Step {
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

pub fn step(method: &'static str, path: &str, status: u16, body: Value) -> Step {
    Step {
        method,
        path: path.to_owned(),
        status,
        body,
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

impl Seen {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// The lines of an NDJSON body.
    pub fn lines(&self) -> Vec<Value> {
        self.body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[derive(Debug, Default)]
struct Script {
    steps: Mutex<VecDeque<Step>>,
    seen: Mutex<Vec<Seen>>,
    mismatches: Mutex<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub url: String,
    script: Arc<Script>,
}

async fn answer(
    State(script): State<Arc<Script>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let seen = Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    script.seen.lock().unwrap().push(seen.clone());
    let next = script.steps.lock().unwrap().pop_front();
    let json = [(header::CONTENT_TYPE, "application/json")];
    match next {
        Some(step) if step.method == seen.method && step.path == seen.path => (
            StatusCode::from_u16(step.status).unwrap(),
            json,
            step.body.to_string(),
        ),
        other => {
            let problem = format!(
                "unexpected {} {}; expected {:?}",
                seen.method,
                seen.path,
                other.map(|s| format!("{} {}", s.method, s.path))
            );
            script.mismatches.lock().unwrap().push(problem.clone());
            // 400, which the engine never retries, so a wrong request fails fast.
            (
                StatusCode::BAD_REQUEST,
                json,
                serde_json::json!({ "error": { "type": "test_script_mismatch", "reason": problem }, "status": 400 })
                    .to_string(),
            )
        }
    }
}

impl Server {
    pub async fn start(steps: Vec<Step>) -> Self {
        let script = Arc::new(Script {
            steps: Mutex::new(steps.into()),
            ..Script::default()
        });
        let app = Router::new().fallback(answer).with_state(script.clone());
        Self {
            url: cloudpf_testkit::http::serve(app).await,
            script,
        }
    }

    /// [`Server::start`] over HTTPS with the PEM certificate `cert` (which must name
    /// `localhost`) and its key.
    pub async fn start_tls(steps: Vec<Step>, cert: &str, key: &str) -> Self {
        let script = Arc::new(Script {
            steps: Mutex::new(steps.into()),
            ..Script::default()
        });
        let app = Router::new().fallback(answer).with_state(script.clone());
        Self {
            url: cloudpf_testkit::http::serve_tls(app, cert, key).await,
            script,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().unwrap().clone()
    }

    /// Fails the test if a request came out of order or a step was never requested.
    pub fn assert_done(&self) {
        let mismatches = self.script.mismatches.lock().unwrap().clone();
        assert!(mismatches.is_empty(), "{mismatches:#?}");
        let left: Vec<String> = self
            .script
            .steps
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect();
        assert!(left.is_empty(), "steps never requested: {left:?}");
    }

    /// An engine routing `acme` to this server, retrying after 1 ms, at most 3 sends,
    /// polling tasks every 1–2 ms for at most 5 s.
    pub fn engine(&self) -> ElasticsearchEngine {
        self.engine_with(RawCluster::default())
    }

    /// [`Server::engine`] with the cluster's other settings from `cluster`.
    pub fn engine_with(&self, cluster: RawCluster) -> ElasticsearchEngine {
        let mut config = EsConfig::default();
        config.clusters.insert(
            "local".into(),
            RawCluster {
                url: self.url.clone(),
                ..cluster
            },
        );
        let routes =
            EsRoutes::with_env(&config, [(tenant("acme"), "local".to_owned())], |_| None).unwrap();
        ElasticsearchEngine::with_options(
            routes,
            RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
            },
            Duration::from_secs(5),
        )
        .unwrap()
        .with_task_wait(TaskWait {
            max_wait: Duration::from_secs(5),
            first_poll: Duration::from_millis(1),
            max_poll: Duration::from_millis(2),
        })
    }
}

pub fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}
