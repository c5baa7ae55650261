//! Issue #10: the hostile input catalogue. One table of requests and one of stream
//! records that a hostile tenant, a curious visitor or a broken client would send, run
//! against the real binary: each gets its clear 4xx or dead letter with a reason, nothing
//! is written where it does not belong, and after every case the server still answers.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_model::{Currency, Money, Op, Product, TenantId, Timestamp};
use common::{Server, cloudpf, request};
use serde_json::{Value, json};

const TENANT: &str = "alpine-outfitters";

fn product(id: &str, name: &str) -> Product {
    Product {
        tenant_id: TenantId::parse(TENANT).unwrap(),
        product_id: id.to_owned(),
        name: name.to_owned(),
        description: "A sturdy thing".to_owned(),
        category: "Outdoor".to_owned(),
        brand: "Acme".to_owned(),
        price: Money::parse("10.00").unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        stock: 1,
        tags: vec![],
        attributes: Default::default(),
        is_active: true,
        created_at: Timestamp::parse("2026-01-01T10:00:00Z").unwrap(),
        updated_at: None,
    }
}

/// A products stream record (Lambda's JSON) of `p`, its new image changed by `edit`.
fn record(stream: &mut StreamWriter, p: &Product, edit: impl FnOnce(&mut Value)) -> Value {
    let at = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
    let r = stream.record(
        Op::Insert,
        events::product_keys(p),
        Some(events::product_item(p)),
        None,
        at,
    );
    let mut v = serde_json::to_value(r).unwrap();
    edit(&mut v["dynamodb"]["NewImage"]);
    v
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.insert(path.strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out
}

/// `text` percent-encoded for a query string, as a browser sends it.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// (case, method, path, key, body, expected status, expected error code)
type HostileRequest<'a> = (&'a str, &'a str, String, &'a str, Vec<u8>, u16, &'a str);

fn nested_map(depth: usize) -> Value {
    let mut v = json!({"S": "bottom"});
    for _ in 0..depth {
        v = json!({"M": {"k": v}});
    }
    v
}

#[test]
fn hostile_requests_and_records_get_clear_refusals_and_the_server_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let out = cloudpf(&[
        "demo",
        "--data-dir",
        data.to_str().unwrap(),
        "--tenants",
        "1",
        "--products",
        "60",
        "--purchases",
        "20",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-keys.json")).unwrap()).unwrap();
    let search = keys[TENANT]["search_key"].as_str().unwrap();
    let admin = keys[TENANT]["admin_key"].as_str().unwrap();
    let server = Server::start(&data);
    let alive = |case: &str| {
        let (status, body) = request(&server.addr, "GET", "/health", &[], b"");
        assert_eq!(status, 200, "after {case}: {body}");
        let path = format!("/search/{TENANT}/products?q=tent");
        let (status, body) = request(&server.addr, "GET", &path, &[("X-API-Key", search)], b"");
        assert_eq!(status, 200, "after {case}: {body}");
    };

    // ---- requests ----
    let long_q = "a".repeat(10_000);
    let many_terms = ["ab"; 1000].join("+");
    // The most words that fit in 200 characters, one past the 10-word limit many times.
    let dotted = ["a"; 100].join(".");
    let nested_body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let big_body = format!(
        r#"{{"report": "summary", "pad": "{}"}}"#,
        "x".repeat(100_000)
    );
    let s = format!("/search/{TENANT}");
    let a = format!("/analytics/{TENANT}/report");
    let none = Vec::new;
    let requests: Vec<HostileRequest> = vec![
        (
            "10,000-character q",
            "GET",
            format!("{s}/products?q={long_q}"),
            search,
            none(),
            400,
            "query_too_long",
        ),
        (
            "1,000 terms",
            "GET",
            format!("{s}/products?q={many_terms}"),
            search,
            none(),
            400,
            "query_too_long",
        ),
        (
            "100 terms joined by dots",
            "GET",
            format!("{s}/autocomplete?q={dotted}"),
            search,
            none(),
            400,
            "too_many_terms",
        ),
        (
            "invalid UTF-8 in q",
            "GET",
            format!("{s}/products?q=%FF%FE"),
            search,
            none(),
            400,
            "invalid_parameter",
        ),
        (
            "negative price",
            "GET",
            format!("{s}/products?min_price=-1"),
            search,
            none(),
            400,
            "invalid_number",
        ),
        (
            "NaN price",
            "GET",
            format!("{s}/products?max_price=NaN"),
            search,
            none(),
            400,
            "invalid_number",
        ),
        (
            "39-digit price",
            "GET",
            format!("{s}/products?max_price={}", "9".repeat(39)),
            search,
            none(),
            400,
            "invalid_number",
        ),
        (
            "date past year 9999",
            "GET",
            format!("{s}/purchases?from=+275760-09-13"),
            admin,
            none(),
            400,
            "invalid_date",
        ),
        (
            "date that is no date",
            "GET",
            format!("{s}/purchases?to=2026-02-30"),
            admin,
            none(),
            400,
            "invalid_date",
        ),
        (
            "tenant ../",
            "GET",
            "/search/../products?q=a".into(),
            search,
            none(),
            400,
            "invalid_tenant_id",
        ),
        (
            "tenant %2e%2e",
            "GET",
            "/search/%2e%2e/products?q=a".into(),
            search,
            none(),
            400,
            "invalid_tenant_id",
        ),
        (
            "tenant %2F",
            "GET",
            "/search/..%2F..%2Fetc/products?q=a".into(),
            search,
            none(),
            400,
            "invalid_tenant_id",
        ),
        (
            "tenant uppercase",
            "GET",
            "/search/ALPINE-OUTFITTERS/products?q=a".into(),
            search,
            none(),
            400,
            "invalid_tenant_id",
        ),
        (
            "tenant unicode",
            "GET",
            "/search/%C3%BCnicode/products?q=a".into(),
            search,
            none(),
            400,
            "invalid_tenant_id",
        ),
        (
            "tenant NUL",
            "GET",
            "/search/alpine%00/products?q=a".into(),
            search,
            none(),
            400,
            "invalid_tenant_id",
        ),
        (
            "tenant invalid UTF-8",
            "GET",
            "/search/%FF/products?q=a".into(),
            search,
            none(),
            400,
            "invalid_tenant_id",
        ),
        (
            "malformed JSON",
            "POST",
            a.clone(),
            admin,
            b"{\"report\": ".to_vec(),
            400,
            "invalid_body",
        ),
        (
            "deeply nested JSON",
            "POST",
            a.clone(),
            admin,
            nested_body.into_bytes(),
            400,
            "invalid_body",
        ),
        (
            "oversized JSON",
            "POST",
            a.clone(),
            admin,
            big_body.into_bytes(),
            413,
            "payload_too_large",
        ),
        (
            "JSON that is not UTF-8",
            "POST",
            a.clone(),
            admin,
            b"{\"report\": \"\xff\"}".to_vec(),
            400,
            "invalid_body",
        ),
    ];
    for (case, method, path, key, body, status, code) in &requests {
        let headers = [("X-API-Key", *key), ("Content-Type", "application/json")];
        let (got, text) = request(&server.addr, method, path, &headers, body);
        assert_eq!(got, *status, "{case}: {text}");
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(json["error"]["code"], *code, "{case}: {text}");
        alive(case);
    }
    // Query syntax and regex characters are just text: an answer, not an error.
    for q in [
        "title:(a OR b) AND c*~2^3",
        ".*[a-z]+(?i)\\d{1,3}",
        "\"unclosed",
        "a\\",
        "%2A%3F",
    ] {
        let path = format!("{s}/products?q={}", encode(q));
        let (got, text) = request(&server.addr, "GET", &path, &[("X-API-Key", search)], b"");
        assert_eq!(got, 200, "{q}: {text}");
        alive(q);
    }

    // ---- stream records, replayed into the running server's data directory ----
    let before = files(&data);
    let mut stream = StreamWriter::new("products");
    let huge_name = "Supercalifragilisticexpialidocious ".repeat(600);
    let good = product("p-good", "Hostile Test Lantern");
    let mut huge = product("p-huge", &huge_name);
    huge.description = "d".repeat(20_000);
    let mut attrs = serde_json::Map::new();
    for i in 0..2000 {
        attrs.insert(format!("a{i}"), json!({"S": "v"}));
    }
    // (case, record, dead-lettered?)
    let records: Vec<(&str, Value, bool)> = vec![
        ("a valid product", record(&mut stream, &good, |_| {}), false),
        (
            "20 KB name and description",
            record(&mut stream, &huge, |_| {}),
            false,
        ),
        (
            "2,000 attributes",
            record(&mut stream, &product("p-attrs", "Attr Lamp"), |i| {
                i["attributes"] = json!({"M": attrs})
            }),
            false,
        ),
        (
            "attributes nested as deep as DynamoDB allows",
            record(&mut stream, &product("p-deep", "Deep Lamp"), |i| {
                i["attributes"] = json!({"M": {"x": nested_map(30)}})
            }),
            false,
        ),
        (
            "negative price",
            record(&mut stream, &product("p-neg", "Neg"), |i| {
                i["price"] = json!({"N": "-5"})
            }),
            true,
        ),
        (
            "NaN price",
            record(&mut stream, &product("p-nan", "Nan"), |i| {
                i["price"] = json!({"N": "NaN"})
            }),
            true,
        ),
        (
            "39-digit price",
            record(&mut stream, &product("p-39", "Big"), |i| {
                i["price"] = json!({"N": "9".repeat(39)})
            }),
            true,
        ),
        (
            "created_at past year 9999",
            record(&mut stream, &product("p-date", "Late"), |i| {
                i["created_at"] = json!({"S": "+275760-09-13T00:00:00Z"})
            }),
            true,
        ),
        (
            "created_at not a date",
            record(&mut stream, &product("p-date2", "Bad"), |i| {
                i["created_at"] = json!({"S": "yesterday"})
            }),
            true,
        ),
    ];
    let mut all: Vec<(&str, Value, bool)> = records;
    // An event time past year 9999 (defect 4 of issue #10: it made an invalid lake key
    // that was retried for ever while the index had applied the batch).
    let mut late = record(&mut stream, &product("p-late-event", "Late Event"), |_| {});
    late["dynamodb"]["ApproximateCreationDateTime"] = json!(400_000_000_000.0_f64);
    all.push(("event time past year 9999", late, true));
    for bad in ["../etc", "%2e%2e", "UPPER", "ünïcode", "a\u{0}b", ""] {
        let mut v = record(&mut stream, &product("p-t", "Tenant Trick"), |i| {
            i["tenant_id"] = json!({"S": bad});
        });
        v["dynamodb"]["Keys"]["tenant_id"] = json!({"S": bad});
        all.push(("a hostile tenant id", v, true));
    }
    let expected_letters = all.iter().filter(|(_, _, dead)| *dead).count();
    let event = json!({"Records": all.iter().map(|(_, v, _)| v.clone()).collect::<Vec<_>>()});
    let file = root.path().join("hostile.json");
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();
    let out = cloudpf(&[
        "replay",
        "--table",
        "products",
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["report"]["dead_lettered"], expected_letters,
        "{report}"
    );
    assert_eq!(
        report["report"]["applied"],
        all.len() - expected_letters,
        "{report}"
    );
    alive("the hostile records");

    // Dead letters: one per refused record, each with its reason.
    let new: Vec<PathBuf> = files(&data).difference(&before).cloned().collect();
    let letters: Vec<Value> = new
        .iter()
        .filter(|p| p.starts_with("dlq"))
        .map(|p| serde_json::from_slice(&std::fs::read(data.join(p)).unwrap()).unwrap())
        .collect();
    assert_eq!(letters.len(), expected_letters, "{new:?}");
    for letter in &letters {
        let reason = letter["reason"].as_str().unwrap_or("");
        assert!(
            reason.len() > 10,
            "a dead letter without a reason: {letter}"
        );
    }
    // Nothing outside the data directory, nothing under any tenant but the real one.
    let top: BTreeSet<String> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        top,
        BTreeSet::from(["data".to_owned(), "hostile.json".to_owned()])
    );
    for path in &new {
        let text = path.to_string_lossy();
        if let Some(rest) = text.split("tenant_id=").nth(1) {
            assert!(rest.starts_with(&format!("{TENANT}/")), "{text}");
        }
        if let Some(rest) = text.strip_prefix("index/") {
            assert!(rest.starts_with(&format!("{TENANT}/")), "{text}");
        }
    }
    // The accepted ones are served: the 20 KB name through autocomplete, which once
    // overflowed the stack (issue #10, defect 1).
    for (path, needle) in [
        (format!("{s}/autocomplete?q=supercal"), "p-huge"),
        (format!("{s}/autocomplete?q=hostile+test+lan"), "p-good"),
        (format!("{s}/products?q=attr+lamp"), "p-attrs"),
        (format!("{s}/products?q=deep+lamp"), "p-deep"),
    ] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, body) = request(&server.addr, "GET", &path, &[("X-API-Key", search)], b"");
            assert_eq!(status, 200, "{path}: {body}");
            if body.contains(needle) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{needle} not served by {path}: {body}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    // An event file that is not UTF-8, or not an event, is refused as a whole, clearly.
    std::fs::write(&file, b"{\"Records\": [\xff]}").unwrap();
    let out = cloudpf(&[
        "replay",
        "--table",
        "products",
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    alive("an event file that is not UTF-8");
}
