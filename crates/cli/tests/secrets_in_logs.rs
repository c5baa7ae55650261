//! Issue #10: a run's logs never hold an API key (valid or not) nor any part of a
//! record's image (customer ids, names, cities), even at debug level, so logs can be
//! shipped and read without exposing shops or their customers.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

mod common;

use std::process::Command;

use chrono::{TimeZone, Utc};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_model::{Currency, LineItem, Money, Op, Purchase, PurchaseStatus, TenantId, Timestamp};
use common::{Server, request};
use serde_json::{Value, json};

const TENANT: &str = "alpine-outfitters";
/// Every value of the records below carries this marker, so any of it in a log is found.
const MARK: &str = "leakcheck";

/// `cloudpf` at debug level: (stdout, the log on stderr).
fn cloudpf_debug(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cloudpf"))
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn purchase(id: &str) -> Purchase {
    Purchase {
        tenant_id: TenantId::parse(TENANT).unwrap(),
        purchase_id: format!("{MARK}-order-{id}"),
        customer_id: format!("{MARK}-customer-{id}"),
        items: vec![LineItem {
            product_id: format!("{MARK}-product"),
            name: format!("{MARK} lamp"),
            quantity: 1,
            unit_price: Money::parse("10.00").unwrap(),
        }],
        total_amount: Money::parse("10.00").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        status: PurchaseStatus::Paid,
        payment_method: format!("{MARK}-card"),
        shipping_country: "DE".into(),
        shipping_city: format!("{MARK}ville"),
        created_at: Timestamp::parse("2026-01-05T10:00:00Z").unwrap(),
        updated_at: None,
    }
}

#[test]
fn no_api_key_and_no_record_image_appears_in_any_log() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let d = data.to_str().unwrap();
    let (summary, mut logs) = cloudpf_debug(&[
        "demo",
        "--data-dir",
        d,
        "--tenants",
        "1",
        "--products",
        "40",
        "--purchases",
        "20",
    ]);
    let keys: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-keys.json")).unwrap()).unwrap();
    let search = keys[TENANT]["search_key"].as_str().unwrap();
    let admin = keys[TENANT]["admin_key"].as_str().unwrap();
    let wrong = format!("cpfs_{MARK}_not_a_key");
    // The demo's summary shows a search key on purpose (storefront pages embed search
    // keys); an admin key is never printed.
    assert!(!summary.contains(admin), "{summary}");

    let server = Server::start_with_env(&data, &[("RUST_LOG", "debug")]);
    // A good purchase and a poisoned one (its price cannot be money), through a replay
    // that the running server picks up.
    let mut stream = StreamWriter::new("purchases");
    let at = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
    let good = purchase("1");
    let bad = purchase("2");
    let mut records = Vec::new();
    for p in [&good, &bad] {
        let r = stream.record(
            Op::Insert,
            events::purchase_keys(p),
            Some(events::purchase_item(p)),
            None,
            at,
        );
        records.push(serde_json::to_value(r).unwrap());
    }
    records[1]["dynamodb"]["NewImage"]["total_amount"] = json!({"N": "NaN"});
    let file = root.path().join("purchases.json");
    std::fs::write(&file, json!({ "Records": records }).to_string()).unwrap();
    let (report, replay_log) = cloudpf_debug(&[
        "replay",
        "--table",
        "purchases",
        "--data-dir",
        d,
        file.to_str().unwrap(),
    ]);
    assert!(report.contains("\"dead_lettered\": 1"), "{report}");
    logs += &replay_log;

    let path = |p: &str| p.replace("{t}", TENANT);
    let bearer = format!("Bearer {admin}");
    let calls: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            path("/search/{t}/products?q=lamp"),
            vec![("X-API-Key", search)],
        ),
        (
            path("/search/{t}/autocomplete?q=lam"),
            vec![("X-API-Key", search)],
        ),
        (
            path(&format!("/search/{{t}}/purchases?q={MARK}")),
            vec![("Authorization", &bearer)],
        ),
        (path("/search/{t}/purchases"), vec![("X-API-Key", &wrong)]),
        (path("/search/{t}/purchases"), vec![("X-API-Key", search)]),
        (
            path("/analytics/{t}?from=2026-01-01&to=2026-01-31"),
            vec![("X-API-Key", admin)],
        ),
        (
            "/search/other-shop/products?q=x".into(),
            vec![("X-API-Key", admin)],
        ),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // The good purchase is searchable: the server did read and serve the images.
        let (status, body) = request(&server.addr, "GET", &calls[2].0, &calls[2].1, b"");
        assert_eq!(status, 200, "{body}");
        if body.contains(&format!("{MARK}-customer-1")) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not searchable: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for (p, headers) in &calls {
        let (status, _) = request(&server.addr, "GET", p, headers, b"");
        assert!(status < 500, "{p}: {status}");
    }
    let (status, _) = request(
        &server.addr,
        "POST",
        &path("/analytics/{t}/report"),
        &[("X-API-Key", admin), ("Content-Type", "application/json")],
        format!(r#"{{"report": "top_products", "from": "2026-01-01", "to": "2026-01-31", "filters": {{"country": "{MARK}"}}}}"#).as_bytes(),
    );
    assert_eq!(status, 200);
    logs += &server.stop().1.join("\n");

    assert!(
        logs.contains("record dead-lettered"),
        "the poisoned record was logged as dead-lettered (so logs were captured)"
    );
    for (what, secret) in [
        ("search key", search),
        ("admin key", admin),
        ("wrong key", &wrong),
    ] {
        let line = logs.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "the {what} is in the logs: {line:?}");
    }
    let lower = logs.to_lowercase();
    if let Some(at) = lower.find(MARK) {
        let from = at.saturating_sub(200);
        panic!(
            "a record image or query text is in the logs: …{}…",
            &logs[from..(at + 100).min(logs.len())]
        );
    }
}
