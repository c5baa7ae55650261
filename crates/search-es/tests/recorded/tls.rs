//! HTTPS to a cluster whose certificate a private authority signed, as `cloudpf tenants
//! add --provision` deploys them: the cluster's `ca_certificate` is trusted for it, and a
//! certificate from any other authority, or for another host name, is refused before a
//! request (or a password) is sent.

use cloudpf_search::SearchError;
use cloudpf_search_es::RawCluster;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::json;

use crate::common::{Server, step};

/// A new authority and a certificate it signed for `host`: (authority PEM, certificate
/// PEM, key PEM).
fn identity(host: &str) -> (String, String, String) {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let node_key = KeyPair::generate().unwrap();
    let node = CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .signed_by(&node_key, &issuer)
        .unwrap();
    (ca_pem, node.pem(), node_key.serialize_pem())
}

fn trusting(ca: String) -> RawCluster {
    RawCluster {
        ca_certificate: Some(ca),
        snapshot_bucket: Some("cloudpf-prod-snapshots".into()),
        ..RawCluster::default()
    }
}

#[tokio::test]
async fn a_cluster_whose_certificate_its_ca_certificate_signed_is_reached_over_https() {
    let (ca, cert, key) = identity("localhost");
    let server = Server::start_tls(
        vec![
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
        ],
        &cert,
        &key,
    )
    .await;
    assert!(server.url.starts_with("https://"));
    let done = server
        .engine_with(trusting(ca))
        .setup_snapshots()
        .await
        .unwrap();
    assert_eq!(done, ["local"]);
    server.assert_done();
}

async fn refused(server: &Server, ca: String) {
    let error = server
        .engine_with(trusting(ca))
        .setup_snapshots()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SearchError::Unavailable(m) if m.contains("cluster local")),
        "{error:?}"
    );
    assert!(server.seen().is_empty(), "a request reached the node");
}

#[tokio::test]
async fn a_certificate_signed_by_another_authority_is_refused() {
    let (_, cert, key) = identity("localhost");
    let (other_ca, _, _) = identity("localhost");
    let server = Server::start_tls(vec![], &cert, &key).await;
    refused(&server, other_ca).await;
}

#[tokio::test]
async fn a_certificate_for_another_host_name_is_refused() {
    let (ca, cert, key) = identity("alpine.es.cloudpf-prod.internal");
    let server = Server::start_tls(vec![], &cert, &key).await;
    refused(&server, ca).await;
}
