//! Snapshots: `es-setup` registers the cluster's S3 repository (its own prefix of the
//! bucket) and the nightly policy, and a refusal is an error that says which.

use cloudpf_search_es::{RawCluster, snapshot_policy_body, snapshot_repository_body};
use serde_json::json;

use crate::common::{Server, step};

fn with_bucket() -> RawCluster {
    RawCluster {
        snapshot_bucket: Some("cloudpf-prod-snapshots".into()),
        ..RawCluster::default()
    }
}

#[tokio::test]
async fn a_cluster_with_a_snapshot_bucket_gets_its_repository_and_nightly_policy() {
    let server = Server::start(vec![
        step(
            "PUT",
            "/_snapshot/cloudpf-s3",
            200,
            json!({ "acknowledged": true }),
        ),
        step(
            "PUT",
            "/_slm/policy/cloudpf-nightly",
            200,
            json!({ "acknowledged": true }),
        ),
    ])
    .await;
    let done = server
        .engine_with(with_bucket())
        .setup_snapshots()
        .await
        .unwrap();
    assert_eq!(done, ["local"]);
    server.assert_done();
    let seen = server.seen();
    assert_eq!(
        seen[0].json(),
        snapshot_repository_body("cloudpf-prod-snapshots", "local")
    );
    assert_eq!(seen[0].json()["settings"]["base_path"], "local");
    assert_eq!(seen[1].json(), snapshot_policy_body("cloudpf"));
    assert_eq!(seen[1].json()["config"]["indices"], json!(["cloudpf-*"]));
}

#[tokio::test]
async fn a_cluster_without_a_snapshot_bucket_is_left_alone() {
    let server = Server::start(vec![]).await;
    let done = server.engine().setup_snapshots().await.unwrap();
    assert!(done.is_empty());
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_repository_the_cluster_cannot_verify_is_an_error_naming_it() {
    let refused = step(
        "PUT",
        "/_snapshot/cloudpf-s3",
        500,
        json!({
            "error": {
                "root_cause": [{ "type": "repository_verification_exception",
                    "reason": "[cloudpf-s3] path [local] is not accessible on master node" }],
                "type": "repository_verification_exception",
                "reason": "[cloudpf-s3] path [local] is not accessible on master node"
            },
            "status": 500
        }),
    );
    // A 500 is retried (three sends in all), then reported.
    let server = Server::start(vec![refused.clone(), refused.clone(), refused]).await;
    let err = server
        .engine_with(with_bucket())
        .setup_snapshots()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/_snapshot/cloudpf-s3"), "{err}");
    assert!(err.contains("not accessible"), "{err}");
    server.assert_done();
}
