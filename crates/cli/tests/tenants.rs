//! `cloudpf tenants` (issue #17): adding a shop gives it working keys, edits are
//! validated and never overwrite someone else's, and `--provision` / `--deprovision`
//! create and delete the shop's search cluster stack and TLS identity around its route
//! (CloudFormation, Secrets Manager and the S3 tenants file on moto).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cloudpf_search_es::{ElasticsearchEngine, EsConfig, EsRoutes, RawCluster};
use common::{Server, cloudpf, failed, get, ok};
use serde_json::Value;

#[test]
fn an_added_shop_searches_with_its_printed_key_and_a_removed_one_is_gone_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.toml");
    let file = file.to_str().unwrap();
    let added = ok(&cloudpf(&[
        "tenants",
        "add",
        "acme",
        "--cors-origin",
        "https://shop.example",
        "--tenants-file",
        file,
    ]));
    let keys: Value = serde_json::from_str(&added).unwrap();
    let search_key = keys["search_key"].as_str().unwrap().to_owned();
    assert_eq!(keys["tenant"], "acme");
    assert_ne!(keys["search_key"], keys["admin_key"]);
    ok(&cloudpf(&[
        "tenants",
        "add",
        "globex",
        "--tenants-file",
        file,
    ]));

    // The key printed once is the one the API accepts; the other shop's is not.
    let server = Server::start(dir.path());
    let (status, body) = get(&server.addr, "/search/acme/products?q=tent", &search_key);
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&server.addr, "/search/globex/products?q=tent", &search_key);
    assert_eq!(status, 403);
    drop(server);

    let listed = ok(&cloudpf(&["tenants", "list", "--tenants-file", file]));
    assert!(
        listed.contains("acme\tcluster=-\tkeys=search,admin"),
        "{listed}"
    );

    assert!(
        failed(&cloudpf(&[
            "tenants",
            "add",
            "acme",
            "--tenants-file",
            file
        ]))
        .contains("already in")
    );
    assert!(
        failed(&cloudpf(&[
            "tenants",
            "add",
            "Not A Shop",
            "--tenants-file",
            file
        ]))
        .contains("tenant id")
    );
    assert!(
        failed(&cloudpf(&[
            "tenants",
            "add",
            "initech",
            "--cluster",
            "nowhere",
            "--tenants-file",
            file
        ]))
        .contains("\"nowhere\" is not in")
    );
    let bad_origin = failed(&cloudpf(&[
        "tenants",
        "add",
        "initech",
        "--cors-origin",
        "shop.example/",
        "--tenants-file",
        file,
    ]));
    assert!(bad_origin.contains("CORS origin"), "{bad_origin}");

    // A file whose routes the Lambdas would refuse is not written.
    let before = std::fs::read_to_string(file).unwrap();
    std::fs::write(
        file,
        format!("{before}\n[elasticsearch.tenants.zeta]\ncluster = \"missing\"\n"),
    )
    .unwrap();
    let refused = failed(&cloudpf(&[
        "tenants",
        "add",
        "initech",
        "--tenants-file",
        file,
    ]));
    assert!(
        refused.contains("search clusters are not valid"),
        "{refused}"
    );
    assert!(!std::fs::read_to_string(file).unwrap().contains("initech"));
    std::fs::write(file, &before).unwrap();

    ok(&cloudpf(&[
        "tenants",
        "remove",
        "acme",
        "--tenants-file",
        file,
    ]));
    let listed = ok(&cloudpf(&["tenants", "list", "--tenants-file", file]));
    assert!(
        !listed.contains("acme") && listed.contains("globex"),
        "{listed}"
    );
    assert!(
        !std::fs::read_to_string(file)
            .unwrap()
            .contains(&common_hash(&search_key))
    );
    assert!(
        failed(&cloudpf(&[
            "tenants",
            "remove",
            "acme",
            "--tenants-file",
            file
        ]))
        .contains("not in")
    );
}

fn common_hash(key: &str) -> String {
    cloudpf_search_api::tenants::hash_key(key)
}

async fn moto() -> Option<(String, aws_config::SdkConfig)> {
    let url = cloudpf_testkit::moto_endpoint()?;
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&url)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    Some((url, shared))
}

async fn tenants_text(s3: &aws_sdk_s3::Client, bucket: &str) -> String {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key("config/tenants.toml")
        .send()
        .await
        .unwrap();
    String::from_utf8(object.body.collect().await.unwrap().into_bytes().to_vec()).unwrap()
}

async fn stack_status(shared: &aws_config::SdkConfig, name: &str) -> Option<String> {
    let cf = aws_sdk_cloudformation::Client::new(shared);
    let described = cf.describe_stacks().stack_name(name).send().await.ok()?;
    described
        .stacks()
        .first()
        .and_then(|s| s.stack_status())
        .map(|s| s.as_str().to_owned())
}

#[tokio::test]
async fn provisioning_deploys_a_cluster_stack_with_its_tls_identity_routes_it_in_the_s3_tenants_file_and_deprovisioning_undoes_both()
 {
    let Some((url, shared)) = moto().await else {
        return;
    };
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    let bucket = cloudpf_testkit::unique("cloudpf-tenants");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let file = format!("s3://{bucket}/config/tenants.toml");
    let main = cloudpf_testkit::unique("cloudpf-t");
    // The main stack's exports the cluster stack imports, with its KMS key.
    let cf = aws_sdk_cloudformation::Client::new(&shared);
    let main_template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/main-stack-exports.yaml"
    ))
    .unwrap();
    cf.create_stack()
        .stack_name(&main)
        .template_body(main_template)
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("Environment")
                .parameter_value(&main)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        stack_status(&shared, &main).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&shared);
    let tls_secret = format!("cloudpf/{main}/es-tls/alpine");
    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/search-cluster-outputs.yaml"
    );
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--tenants-file", &file, "--force-path-style"]);
        std::process::Command::new(env!("CARGO_BIN_EXE_cloudpf"))
            .args(&all)
            .env("AWS_ENDPOINT_URL", &url)
            .output()
            .unwrap()
    };

    let added = ok(&run(&[
        "tenants",
        "add",
        "alpine",
        "--provision",
        "--main-stack",
        &main,
        "--template",
        template,
    ]));
    let keys: Value = serde_json::from_str(&added).unwrap();
    assert_eq!(keys["tenant"], "alpine");
    let stack = format!("{main}-search-alpine");
    assert_eq!(
        stack_status(&shared, &stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );

    // The route written from the stack's outputs: where the cluster is (HTTPS), the
    // name of its credentials, its snapshot bucket, the authority of its certificate.
    let text = tenants_text(&s3, &bucket).await;
    let written: toml::Value = toml::from_str(&text).unwrap();
    let cluster = &written["elasticsearch"]["clusters"]["alpine"];
    assert_eq!(
        cluster["url"].as_str(),
        Some(format!("https://alpine.es.cloudpf-{main}.internal:9200").as_str())
    );
    let ca = cluster["ca_certificate"].as_str().unwrap().to_owned();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    // The node's identity is in its own secret, under the authority the route trusts:
    // an engine configured from the route reaches a node serving that certificate.
    let stored = secrets
        .get_secret_value()
        .secret_id(&tls_secret)
        .send()
        .await
        .unwrap();
    let identity: Value = serde_json::from_str(stored.secret_string().unwrap()).unwrap();
    assert_eq!(identity["ca_certificate"].as_str(), Some(ca.as_str()));
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    let node = axum::Router::new().fallback(move || async move {
        counted.fetch_add(1, Ordering::SeqCst);
        (
            [("content-type", "application/json")],
            r#"{"acknowledged": true}"#,
        )
    });
    let node_url = cloudpf_testkit::http::serve_tls(
        node,
        identity["certificate"].as_str().unwrap(),
        identity["private_key"].as_str().unwrap(),
    )
    .await;
    let mut es = EsConfig::default();
    es.clusters.insert(
        "alpine".into(),
        RawCluster {
            url: node_url,
            ca_certificate: Some(ca),
            snapshot_bucket: cluster["snapshot_bucket"].as_str().map(str::to_owned),
            ..RawCluster::default()
        },
    );
    let engine = ElasticsearchEngine::new(EsRoutes::with_env(&es, [], |_| None).unwrap()).unwrap();
    assert_eq!(engine.setup_snapshots().await.unwrap(), ["alpine"]);
    assert_eq!(requests.load(Ordering::SeqCst), 2);
    assert_eq!(
        cluster["credentials_secret"].as_str(),
        Some(format!("cloudpf/{main}/es/alpine").as_str())
    );
    assert_eq!(
        cluster["snapshot_bucket"].as_str(),
        Some(format!("{main}-snapshots").as_str())
    );
    assert_eq!(
        written["tenants"][0]["search_cluster"].as_str(),
        Some("alpine")
    );

    // A second shop on alpine's cluster: alpine can no longer take the cluster with it.
    ok(&run(&["tenants", "add", "harbor", "--cluster", "alpine"]));
    let deprovision = [
        "tenants",
        "remove",
        "alpine",
        "--deprovision",
        "--main-stack",
        main.as_str(),
    ];
    let refused = failed(&run(&deprovision));
    assert!(refused.contains("also serves harbor"), "{refused}");
    assert_eq!(
        stack_status(&shared, &stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    ok(&run(&["tenants", "remove", "harbor"]));

    ok(&run(&deprovision));
    let status = stack_status(&shared, &stack).await;
    assert!(
        matches!(status.as_deref(), None | Some("DELETE_COMPLETE")),
        "{status:?}"
    );
    let listed = ok(&run(&["tenants", "list"]));
    assert!(listed.is_empty(), "{listed}");
    let text = tenants_text(&s3, &bucket).await;
    assert!(!text.contains("alpine"), "{text}");
    let gone = secrets
        .get_secret_value()
        .secret_id(&tls_secret)
        .send()
        .await;
    assert!(
        gone.is_err_and(|e| e
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception())),
        "the node's TLS secret outlived it"
    );

    // A shared cluster: deployed and added on its own, then shops are routed to it; it
    // cannot be removed while it serves one.
    let with_stack = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--main-stack", main.as_str(), "--template", template]);
        run(&all)
    };
    ok(&with_stack(&[
        "tenants",
        "add-cluster",
        "shared",
        "--cpu",
        "1024",
    ]));
    let shared_stack = format!("{main}-search-shared");
    assert_eq!(
        stack_status(&shared, &shared_stack).await.as_deref(),
        Some("CREATE_COMPLETE")
    );
    let written: toml::Value = toml::from_str(&tenants_text(&s3, &bucket).await).unwrap();
    let cluster = &written["elasticsearch"]["clusters"]["shared"];
    assert_eq!(
        cluster["url"].as_str(),
        Some(format!("https://shared.es.cloudpf-{main}.internal:9200").as_str())
    );
    assert!(cluster["ca_certificate"].as_str().is_some());
    ok(&run(&["tenants", "add", "harbor", "--cluster", "shared"]));
    let refused = failed(&with_stack(&["tenants", "remove-cluster", "shared"]));
    assert!(refused.contains("still serves harbor"), "{refused}");
    ok(&run(&["tenants", "remove", "harbor"]));
    ok(&with_stack(&["tenants", "remove-cluster", "shared"]));
    // A cluster the file does not name is not deleted without --force (the wrong file).
    let unnamed = failed(&with_stack(&["tenants", "remove-cluster", "shared"]));
    assert!(unnamed.contains("--force"), "{unnamed}");
    let status = stack_status(&shared, &shared_stack).await;
    assert!(
        matches!(status.as_deref(), None | Some("DELETE_COMPLETE")),
        "{status:?}"
    );
    let text = tenants_text(&s3, &bucket).await;
    assert!(!text.contains("shared"), "{text}");
    let gone = secrets
        .get_secret_value()
        .secret_id(format!("cloudpf/{main}/es-tls/shared"))
        .send()
        .await;
    assert!(gone.is_err(), "the shared node's TLS secret outlived it");
}
