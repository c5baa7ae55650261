//! A cluster whose stored credentials were not read (Secrets Manager throttled, the
//! secret not created yet, or not shaped as credentials) is unavailable on its own: its
//! tenants get a retryable error naming the cluster, and the other clusters serve.

use std::collections::BTreeMap;
use std::time::Duration;

use cloudpf_search::{Entity, SearchEngine, SearchError};
use cloudpf_search_es::{ElasticsearchEngine, EsConfig, EsRoutes, RawCluster, RetryPolicy};
use serde_json::json;

use crate::common::{Server, step, tenant};

#[tokio::test]
async fn a_cluster_without_its_credentials_fails_only_its_own_tenants_and_retryably() {
    let healthy = Server::start(vec![step(
        "POST",
        "/cloudpf-globex-products/_count",
        200,
        json!({ "count": 3 }),
    )])
    .await;
    let mut config = EsConfig::default();
    for (name, url, secret) in [
        ("alpine", "http://127.0.0.1:9", "cloudpf/prod/es/alpine"),
        ("beta", healthy.url.as_str(), "cloudpf/prod/es/beta"),
    ] {
        config.clusters.insert(
            name.into(),
            RawCluster {
                url: url.into(),
                credentials_secret: Some(secret.into()),
                ..RawCluster::default()
            },
        );
    }
    // Only beta's secret was read.
    let stored = BTreeMap::from([(
        "cloudpf/prod/es/beta".to_owned(),
        json!({ "api_key": "YmV0YTprZXk=" }).to_string(),
    )]);
    let routes = EsRoutes::with_sources(
        &config,
        [
            (tenant("acme"), "alpine".to_owned()),
            (tenant("globex"), "beta".to_owned()),
        ],
        |_| None,
        &stored,
    )
    .unwrap();
    let engine = ElasticsearchEngine::with_options(
        routes,
        RetryPolicy {
            max_attempts: 1,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(1),
        },
        Duration::from_secs(5),
    )
    .unwrap();

    let error = engine
        .count(&tenant("acme"), Entity::Products)
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(
        matches!(&error, SearchError::Unavailable(m)
            if m.contains("cluster alpine") && m.contains("\"cloudpf/prod/es/alpine\" was not read")),
        "{error:?}"
    );
    assert_eq!(
        engine
            .count(&tenant("globex"), Entity::Products)
            .await
            .unwrap(),
        3
    );
    healthy.assert_done();
}
