//! The `cloudpf` binary as a developer uses it: demo, replay, serve, across processes.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, cloudpf, get};

fn demo(dir: &Path) -> String {
    let out = cloudpf(&[
        "demo",
        "--data-dir",
        dir.to_str().unwrap(),
        "--tenants",
        "2",
        "--products",
        "120",
        "--purchases",
        "60",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The search key `demo` made for `shop`.
fn demo_search_key(dir: &Path, shop: &str) -> String {
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("demo-keys.json")).unwrap()).unwrap();
    keys[shop]["search_key"].as_str().unwrap().to_owned()
}

#[test]
fn issue_14_the_demo_at_a_terminal_prints_no_line_per_batch_and_json_logs_keep_them() {
    let demo_logs = |format: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cloudpf"))
            .env_remove("RUST_LOG")
            .env_remove("CLOUDPF_LOG_FORMAT")
            .args(["--log-format", format, "demo", "--data-dir"])
            .arg(dir.path())
            .args(["--tenants", "1", "--products", "30", "--purchases", "10"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    };
    let text = demo_logs("text");
    assert!(!text.contains("batch processed"), "{text}");
    // With --serve: the serving process logs at info, but still no line per batch.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let server = Server::spawn(
        &[
            "demo",
            "--serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            d,
            "--tenants",
            "1",
            "--products",
            "30",
            "--purchases",
            "10",
        ],
        &[],
    );
    let (_, serving) = server.stop();
    assert!(
        !serving.iter().any(|l| l.contains("batch processed")),
        "{serving:#?}"
    );
    let json = demo_logs("json");
    assert!(
        json.lines().any(|l| l.contains("\"batch processed\"")),
        "{json}"
    );
}

#[test]
fn demo_builds_every_area_and_running_it_again_applies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let first = demo(dir.path());
    assert!(first.contains("1 dead-lettered"), "{first}");
    for area in [
        "index/alpine-outfitters/products-v1",
        "lake/purchases/csv/tenant_id=harbor-home",
        "dlq/products",
        "events/products/000001.json",
        "demo-keys.json",
        "tenants.toml",
    ] {
        assert!(dir.path().join(area).exists(), "{area} missing");
    }
    let second = demo(dir.path());
    assert!(second.contains(", 0 applied,"), "{second}");
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("demo-keys.json")).unwrap()).unwrap();
    let tenants = std::fs::read_to_string(dir.path().join("tenants.toml")).unwrap();
    let search_key = keys["alpine-outfitters"]["search_key"].as_str().unwrap();
    assert!(
        !tenants.contains(search_key),
        "the tenants file holds hashes, never keys"
    );
    // Regression, issue #10: the plain keys were world-readable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("demo-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "demo-keys.json is {mode:o}");
    }
}

#[test]
fn replay_reports_the_partial_batch_response_and_fails_on_unparsable_files() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/products-lifecycle.json");
    let out = cloudpf(&[
        "replay",
        "--table",
        "products",
        "--data-dir",
        dir.path().to_str().unwrap(),
        fixture.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["report"]["applied"], 3);
    assert_eq!(
        report["response"],
        serde_json::json!({"batchItemFailures": []})
    );

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"not\": \"an event\"}").unwrap();
    let out = cloudpf(&[
        "replay",
        "--table",
        "products",
        "--data-dir",
        dir.path().to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a DynamoDB stream event"));
}

#[test]
fn a_replay_in_another_process_is_searchable_through_a_running_server_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let key = demo_search_key(dir.path(), "alpine-outfitters");
    let server = Server::start(dir.path());

    let (status, body) = get(
        &server.addr,
        "/search/alpine-outfitters/autocomplete?q=zephyr",
        &key,
    );
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"queries":[],"suggestions":[]}"#)
    );

    let event = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/products-lifecycle.json"),
    )
    .unwrap()
    .replace("\"acme\"", "\"alpine-outfitters\"")
    .replace("Trailblazer", "Zephyr");
    let first_record_only: serde_json::Value = {
        let mut v: serde_json::Value = serde_json::from_str(&event).unwrap();
        let records = v["Records"].as_array_mut().unwrap();
        records.truncate(1);
        v
    };
    let file = dir.path().join("zephyr.json");
    std::fs::write(&file, first_record_only.to_string()).unwrap();
    let out = cloudpf(&[
        "replay",
        "--table",
        "products",
        "--data-dir",
        dir.path().to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(1);
    loop {
        let (_, suggestions) = get(
            &server.addr,
            "/search/alpine-outfitters/autocomplete?q=zephyr",
            &key,
        );
        let (_, products) = get(
            &server.addr,
            "/search/alpine-outfitters/products?q=zephir",
            &key,
        );
        if suggestions.contains("Zephyr Waterproof Hiking Boots")
            && products.contains("\"total\":1")
        {
            eprintln!("visible {:?} after the replay finished", started.elapsed());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not visible within 1 s: {suggestions} {products}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn the_server_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let mut server = Server::start(dir.path());
    let (status, _) = get(&server.addr, "/health", "");
    assert_eq!(status, 200);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn report_prints_a_report_of_the_local_lake_as_csv_and_refuses_bad_specs() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let data = dir.path().to_str().unwrap();
    // Demo purchases are at most 90 days old.
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        (today - chrono::Days::new(120)).to_string(),
        today.to_string(),
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "--data-dir",
            data,
            "--tenant",
            "alpine-outfitters",
            "--from",
            &from,
            "--to",
            &to,
        ];
        args.extend_from_slice(extra);
        cloudpf(&args)
    };
    let out = run(&["--report", "summary"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "orders,revenue,units,average_order_value,customers,all_orders,cancelled_orders,refunded_orders"
        )
    );
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(row[0].parse::<u64>().unwrap() > 0, "{text}");
    assert!(row[1].contains('.'), "revenue is an exact decimal: {text}");

    let by_category = run(&["--report", "by_category", "--status", "paid"]);
    assert!(by_category.status.success());
    assert!(
        String::from_utf8(by_category.stdout)
            .unwrap()
            .starts_with("category,units,revenue,orders\n")
    );

    for (extra, message) in [
        (&["--report", "sql"][..], "report must be one of"),
        (
            &["--report", "summary", "--category", "x"][..],
            "line-level reports only",
        ),
        (
            &["--report", "summary", "--status", "lost"][..],
            "unknown status",
        ),
    ] {
        let out = run(extra);
        assert!(!out.status.success(), "{extra:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
    }
}

/// `cloudpf` with only the service-specific AWS endpoints set, as docker-compose sets them
/// (DynamoDB, DynamoDB Streams and S3 may each live elsewhere).
fn cloudpf_with_service_endpoints(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cloudpf"))
        .args(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_ENDPOINT_URL_DYNAMODB", url)
        .env("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", url)
        .env("AWS_ENDPOINT_URL_S3", url)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

#[test]
fn the_compose_data_path_seed_poll_report_works_with_service_specific_endpoints() {
    let Some(url) = cloudpf_testkit::moto_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (shared, poller) = (dir.path().join("shared"), dir.path().join("poller"));
    let (products, purchases, bucket) = (
        cloudpf_testkit::unique("products"),
        cloudpf_testkit::unique("purchases"),
        cloudpf_testkit::unique("lake"),
    );
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    ok(cloudpf_with_service_endpoints(
        &url,
        &[
            "seed",
            "--data-dir",
            shared.to_str().unwrap(),
            "--tenants",
            "1",
            "--products",
            "40",
            "--purchases",
            "30",
            "--products-table",
            &products,
            "--purchases-table",
            &purchases,
            "--lake-bucket",
            &bucket,
            "--force-path-style",
        ],
    ));
    let polled = ok(cloudpf_with_service_endpoints(
        &url,
        &[
            "poll",
            "--until-idle",
            "--data-dir",
            poller.to_str().unwrap(),
            "--products-table",
            &products,
            "--purchases-table",
            &purchases,
            "--lake-bucket",
            &bucket,
            "--force-path-style",
        ],
    ));
    let summary = String::from_utf8_lossy(&polled.stderr);
    assert!(summary.contains(" applied"), "{summary}");

    // The reports read what the poller wrote to the bucket.
    let today = chrono::Utc::now().date_naive();
    let report = ok(cloudpf_with_service_endpoints(
        &url,
        &[
            "report",
            "--lake-bucket",
            &bucket,
            "--tenant",
            "alpine-outfitters",
            "--report",
            "summary",
            "--from",
            &(today - chrono::Days::new(120)).to_string(),
            "--to",
            &today.to_string(),
        ],
    ));
    let csv = String::from_utf8(report.stdout).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert!(
        row[5].parse::<u64>().unwrap() > 0,
        "purchases reached the lake: {csv}"
    );
}

#[test]
fn issue_13_backfilling_seeded_tables_gives_the_reports_that_polling_their_streams_gives() {
    let Some(url) = cloudpf_testkit::moto_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (polled, backfilled) = (dir.path().join("polled"), dir.path().join("backfilled"));
    let (products, purchases) = (
        cloudpf_testkit::unique("products"),
        cloudpf_testkit::unique("purchases"),
    );
    let ok = |args: &[&str]| {
        let out = cloudpf_with_service_endpoints(&url, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let tables = [
        "--products-table",
        &products,
        "--purchases-table",
        &purchases,
    ];
    let seed_dir = dir.path().join("seed");
    ok(&[
        &[
            "seed",
            "--data-dir",
            seed_dir.to_str().unwrap(),
            "--tenants",
            "1",
            "--products",
            "30",
            "--purchases",
            "60",
        ][..],
        &tables[..],
    ]
    .concat());
    // The oracle: every change of the history, read from the streams.
    ok(&[
        &[
            "poll",
            "--until-idle",
            "--data-dir",
            polled.to_str().unwrap(),
        ][..],
        &tables[..],
    ]
    .concat());
    // The shop's tables as they are now, read by scan segments.
    for table in ["products", "purchases"] {
        let out = ok(&[
            &[
                "backfill",
                "--table",
                table,
                "--segments",
                "3",
                "--page-size",
                "9",
                "--data-dir",
                backfilled.to_str().unwrap(),
            ][..],
            &tables[..],
        ]
        .concat());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(report["items"].as_u64().unwrap() > 0, "{report}");
        assert_eq!(report["failed_parts"], serde_json::json!([]), "{report}");
    }
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (
        (today - chrono::Days::new(400)).to_string(),
        today.to_string(),
    );
    for name in ["summary", "by_status", "by_category", "top_products"] {
        let report = |data: &Path| {
            let out = ok(&[
                "report",
                "--data-dir",
                data.to_str().unwrap(),
                "--tenant",
                "alpine-outfitters",
                "--report",
                name,
                "--from",
                &from,
                "--to",
                &to,
            ]);
            String::from_utf8(out.stdout).unwrap()
        };
        let (want, got) = (report(&polled), report(&backfilled));
        assert!(want.lines().count() > 1, "{name}: {want}");
        assert_eq!(got, want, "{name} over the backfilled lake");
    }
}

/// Every file under `dir` (relative path) with its text, and every directory's path.
fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            if path.is_dir() {
                out.push((rel, String::new()));
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                out.push((rel, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
    }
    out
}

/// Every object of a bucket, with its bytes.
async fn bucket_objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for object in page.unwrap().contents() {
            let key = object.key().unwrap().to_owned();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
            out.push((key, body.body.collect().await.unwrap().to_vec()));
        }
    }
    out
}

#[test]
fn issue_13_a_purged_shop_leaves_no_file_object_or_index_behind_and_a_late_record_does_not_bring_it_back()
 {
    let Some(url) = cloudpf_testkit::moto_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_dir = data.to_str().unwrap();
    let tenants_file = data.join("tenants.toml");
    let (products, purchases, bucket) = (
        cloudpf_testkit::unique("products"),
        cloudpf_testkit::unique("purchases"),
        cloudpf_testkit::unique("lake"),
    );
    let ok = |args: &[&str]| {
        let out = cloudpf_with_service_endpoints(&url, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let tables = [
        "--products-table",
        &products,
        "--purchases-table",
        &purchases,
    ];
    let lake = [
        "--data-dir",
        data_dir,
        "--lake-bucket",
        &bucket,
        "--force-path-style",
    ];
    let file = ["--tenants-file", tenants_file.to_str().unwrap()];
    ok(&[
        &[
            "seed",
            "--tenants",
            "2",
            "--products",
            "20",
            "--purchases",
            "30",
        ][..],
        &tables,
        &lake,
    ]
    .concat());
    ok(&[&["poll", "--until-idle"][..], &tables, &lake].concat());
    let keys: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-keys.json")).unwrap()).unwrap();
    let shops: Vec<String> = keys.as_object().unwrap().keys().cloned().collect();
    let (gone, stays) = (shops[0].as_str(), shops[1].as_str());

    // What a leaving shop takes with it: its current catalog and purchases.
    let out_dir = dir.path().join("export");
    let exported: serde_json::Value = serde_json::from_str(&ok(&[
        &[
            "tenants",
            "export",
            gone,
            "--out",
            out_dir.to_str().unwrap(),
        ][..],
        &lake,
        &file,
    ]
    .concat()))
    .unwrap();
    for name in ["products", "purchases"] {
        let text = std::fs::read_to_string(out_dir.join(format!("{gone}-{name}.jsonl"))).unwrap();
        let docs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(!docs.is_empty(), "{name}");
        assert_eq!(exported[name]["documents"], docs.len());
        assert!(
            docs.iter().all(|d| d["tenant_id"] == gone),
            "{name}: only the shop's own"
        );
    }

    // A backfill run for the shop leaves its checkpoint, which the purge must take too.
    ok(&[
        &["backfill", "--table", "products", "--tenant", gone][..],
        &tables,
        &lake,
    ]
    .concat());
    let checkpoints = tree(&data.join("checkpoints"));
    assert!(
        checkpoints
            .iter()
            .any(|(p, t)| p.contains(gone) || t.contains(gone)),
        "the backfill left no checkpoint naming {gone}: {checkpoints:?}"
    );
    let purge = || -> serde_json::Value {
        serde_json::from_str(&ok(&[
            &[
                "tenants",
                "remove",
                gone,
                "--purge",
                "--settle-seconds",
                "0",
            ][..],
            &lake,
            &file,
        ]
        .concat()))
        .unwrap()
    };
    let report = purge();
    assert_eq!(report["removed_from_tenants_file"], true);
    assert!(
        !report["checkpoints"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert_eq!(report["demo_keys"], true);
    assert!(
        !report["indexes"].as_array().unwrap().is_empty(),
        "{report}"
    );
    assert!(
        !report["lake_objects"].as_array().unwrap().is_empty(),
        "{report}"
    );

    // Listed: nothing of the shop is left in the data directory or the bucket but the
    // marker that keeps it out; the other shop keeps everything.
    let marker = format!("tenants/purged/{gone}.json");
    let files = tree(&data);
    let traces: Vec<&String> = files
        .iter()
        .filter(|(path, text)| path.contains(gone) || text.contains(gone))
        .map(|(path, _)| path)
        .collect();
    assert!(traces.is_empty(), "left behind: {traces:?}");
    assert!(files.iter().any(|(p, _)| p == &format!("index/{stays}")));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let shared = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&url)
            .load(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    let objects = rt.block_on(bucket_objects(&s3, &bucket));
    let traces: Vec<&String> = objects
        .iter()
        .filter(|(k, body)| k.contains(gone) || String::from_utf8_lossy(body).contains(gone))
        .map(|(k, _)| k)
        .filter(|k| **k != marker)
        .collect();
    assert!(traces.is_empty(), "left in the bucket: {traces:?}");
    assert!(
        objects
            .iter()
            .any(|(k, _)| k.contains(&format!("tenant_id={stays}/")))
    );

    // A change of the purged shop still arriving on the stream is dead-lettered with the
    // reason, and brings back neither its index nor its partitions.
    // A product of the other shop written again as the purged shop's, named `name`.
    let put_as_gone = |name: Option<&str>| {
        rt.block_on(async {
            let ddb = aws_sdk_dynamodb::Client::new(&shared);
            let scan = ddb.scan().table_name(&products).send().await.unwrap();
            let mut item = scan.items()[0].clone();
            let text = aws_sdk_dynamodb::types::AttributeValue::S;
            item.insert("tenant_id".into(), text(gone.to_owned()));
            if let Some(name) = name {
                item.insert("name".into(), text(name.to_owned()));
            }
            ddb.put_item()
                .table_name(&products)
                .set_item(Some(item))
                .send()
                .await
                .unwrap();
        });
    };
    put_as_gone(None);
    ok(&[&["poll", "--until-idle"][..], &tables, &lake].concat());
    assert!(
        !data.join("index").join(gone).exists(),
        "no index came back"
    );
    let objects = rt.block_on(bucket_objects(&s3, &bucket));
    assert!(
        !objects
            .iter()
            .any(|(k, _)| k.contains(&format!("tenant_id={gone}/")))
    );
    let letters: Vec<String> = objects
        .iter()
        .filter(|(k, _)| k.starts_with("dlq/"))
        .map(|(_, body)| String::from_utf8_lossy(body).into_owned())
        .filter(|text| text.contains(gone))
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert!(
        letters[0].contains(&format!("tenant {gone} was purged")),
        "{}",
        letters[0]
    );

    // Run again (an operator repeating an interrupted purge): it succeeds, and takes the
    // dead letter of the late record too.
    let again = purge();
    assert_eq!(again["removed_from_tenants_file"], false, "{again}");
    let objects = rt.block_on(bucket_objects(&s3, &bucket));
    assert!(
        !objects
            .iter()
            .any(|(k, body)| k.starts_with("dlq/") && String::from_utf8_lossy(body).contains(gone)),
        "the second purge left the late record's dead letter"
    );

    // The id added again is a new shop: its records are indexed, not dead-lettered.
    ok(&[&["tenants", "add", gone][..], &lake, &file].concat());
    assert!(
        !rt.block_on(bucket_objects(&s3, &bucket))
            .iter()
            .any(|(k, _)| *k == marker),
        "adding the id again left the purge marker"
    );
    put_as_gone(Some("Returning lantern"));
    ok(&[&["poll", "--until-idle"][..], &tables, &lake].concat());
    assert!(
        data.join("index").join(gone).exists(),
        "the new shop's record was not indexed"
    );
}

#[test]
fn issue_13_cloudpf_reindex_switches_a_served_shop_to_a_rebuilt_index_while_every_search_answers() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let key = demo_search_key(dir.path(), "alpine-outfitters");
    let server = Server::start(dir.path());
    let path = "/search/alpine-outfitters/products?q=a&size=5";
    let total =
        |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["total"].clone();
    let (status, body) = get(&server.addr, path, &key);
    assert_eq!(status, 200, "{body}");
    let before = total(&body);
    assert!(before.as_u64().unwrap() > 0);

    let stop = std::sync::atomic::AtomicBool::new(false);
    let answered = std::thread::scope(|scope| {
        let searching = scope.spawn(|| {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, body) = get(&server.addr, path, &key);
                assert_eq!(status, 200, "a search during the rebuild failed: {body}");
                assert_eq!(
                    total(&body),
                    before,
                    "a search during the rebuild lost products"
                );
                answered += 1;
            }
            answered
        });
        let out = cloudpf(&[
            "reindex",
            "--tenant",
            "alpine-outfitters",
            "--settle-seconds",
            "1",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report[0]["to"], "products-v1-g1", "{report}");
        assert_eq!(report[1]["to"], "purchases-v1-g1", "{report}");
        // Searches go on across the switch (the server reopens within its refresh tick).
        std::thread::sleep(Duration::from_millis(700));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        searching.join().unwrap()
    });
    assert!(answered > 0);
    let index = dir.path().join("index/alpine-outfitters");
    assert!(index.join("products-v1-g1/meta.json").exists());
    assert!(
        !index.join("products-v1").exists(),
        "the old index is removed"
    );
    let (status, body) = get(&server.addr, path, &key);
    assert_eq!((status, total(&body)), (200, before));
}

#[test]
fn issue_14_a_yes_no_variable_reads_the_same_in_the_cli_as_in_the_lambdas() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let report = |value: &str| {
        Command::new(env!("CARGO_BIN_EXE_cloudpf"))
            .args([
                "report",
                "--data-dir",
                data,
                "--tenant",
                "acme",
                "--report",
                "summary",
            ])
            .args(["--from", "2026-01-01", "--to", "2026-01-31"])
            .env("CLOUDPF_S3_FORCE_PATH_STYLE", value)
            .output()
            .unwrap()
    };
    // The Lambdas refuse a typo instead of reading it as "no"; so does the CLI.
    let typo = report("ture");
    assert!(!typo.status.success());
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(
        stderr.contains("CLOUDPF_S3_FORCE_PATH_STYLE") || stderr.contains("--force-path-style"),
        "{stderr}"
    );
    assert!(stderr.contains("must be true or false"), "{stderr}");
    for fine in ["true", "false", ""] {
        let out = report(fine);
        assert!(
            out.status.success(),
            "{fine:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
