//! Issue #10: load and soak, bounded and on loopback only. A server takes mixed search and
//! autocomplete load while another process ingests and a dashboard runs reports; then it
//! is stopped with SIGTERM in the middle of the load. What must hold: no error answer, a
//! resident memory that stays flat after warm-up, a clean exit, every acknowledged change
//! searchable afterwards, and no partial lake object.
//!
//! `CLOUDPF_SOAK_SECS` sets the load's length (default 20 s: CI's budget; run it for
//! minutes by hand).
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

mod common;

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_model::{Currency, Money, Op, Product, TenantId, Timestamp};
use common::{Server, cloudpf, request};
use serde_json::Value;

const TENANT: &str = "alpine-outfitters";

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn batch(stream: &mut StreamWriter, round: usize) -> Value {
    let at = Utc.with_ymd_and_hms(2026, 1, 5, 10, 0, 0).unwrap();
    let records: Vec<_> = (0..20)
        .map(|i| {
            let p = Product {
                tenant_id: TenantId::parse(TENANT).unwrap(),
                product_id: format!("soak-{round}-{i}"),
                // A fixed-width round word: no round's word is a prefix of another's.
                name: format!("Soakproof Lantern Q{round:04} N{i}"),
                description: String::new(),
                category: "Outdoor".into(),
                brand: "Acme".into(),
                price: Money::parse("12.50").unwrap(),
                currency: Currency::parse("EUR").unwrap(),
                stock: 3,
                tags: vec![],
                attributes: Default::default(),
                is_active: true,
                created_at: Timestamp::parse("2026-01-05T10:00:00Z").unwrap(),
                updated_at: None,
            };
            stream.record(
                Op::Insert,
                events::product_keys(&p),
                Some(events::product_item(&p)),
                None,
                at,
            )
        })
        .collect();
    serde_json::to_value(events::event(records)).unwrap()
}

/// Every lake object is a complete gzip stream and no temporary file is left.
fn assert_no_partial_objects(dir: &Path) {
    let mut pending = vec![dir.join("lake")];
    let mut objects = 0;
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let name = path.to_string_lossy();
            assert!(name.ends_with(".gz"), "a stray file in the lake: {name}");
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
                .read_to_string(&mut text)
                .unwrap_or_else(|e| panic!("{name} is not a complete gzip object: {e}"));
            objects += 1;
        }
    }
    assert!(objects > 0);
}

#[test]
fn mixed_load_with_ingestion_and_reports_has_no_errors_flat_memory_and_a_clean_stop() {
    let secs: u64 = std::env::var("CLOUDPF_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let d = data.to_str().unwrap().to_owned();
    let out = cloudpf(&[
        "demo",
        "--data-dir",
        &d,
        "--tenants",
        "1",
        "--products",
        "400",
        "--purchases",
        "200",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The load is the point here, not the per-key rate limit.
    let mut tenants = std::fs::read_to_string(data.join("tenants.toml")).unwrap();
    tenants.push_str(
        "\n[rate_limits.search]\nper_second = 1000000\nburst = 1000000\n\n[rate_limits.admin]\nper_second = 1000000\nburst = 1000000\n",
    );
    std::fs::write(data.join("tenants.toml"), tenants).unwrap();
    let keys: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-keys.json")).unwrap()).unwrap();
    let search = keys[TENANT]["search_key"].as_str().unwrap().to_owned();
    let admin = keys[TENANT]["admin_key"].as_str().unwrap().to_owned();

    let server = Server::start(&data);
    let addr = server.addr.clone();
    let pid = server.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));

    let mut clients = Vec::new();
    for worker in 0..3 {
        let (addr, search, stop, served, errors) = (
            addr.clone(),
            search.clone(),
            stop.clone(),
            served.clone(),
            errors.clone(),
        );
        clients.push(std::thread::spawn(move || {
            let queries = ["lan", "soakproof lan", "hikng", "boots", "kitchen kni", "s"];
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                let q = queries[i % queries.len()].replace(' ', "+");
                let path = if i % 2 == 0 {
                    format!("/search/{TENANT}/autocomplete?q={q}")
                } else {
                    format!("/search/{TENANT}/products?q={q}")
                };
                let (status, body) = request(&addr, "GET", &path, &[("X-API-Key", &search)], b"");
                if stop.load(Ordering::Relaxed) && status == 0 {
                    break; // the server is shutting down: a refused connection is expected
                }
                if status == 200 {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("{path}: {status} {body}"));
                }
                i += 1;
            }
        }));
    }
    let reports = {
        let (addr, admin, stop, errors) =
            (addr.clone(), admin.clone(), stop.clone(), errors.clone());
        std::thread::spawn(move || {
            let body = br#"{"report": "summary", "from": "2025-01-01", "to": "2025-12-31"}"#;
            while !stop.load(Ordering::Relaxed) {
                let headers = [
                    ("X-API-Key", admin.as_str()),
                    ("Content-Type", "application/json"),
                ];
                let (status, text) = request(
                    &addr,
                    "POST",
                    &format!("/analytics/{TENANT}/report"),
                    &headers,
                    body,
                );
                if stop.load(Ordering::Relaxed) && status == 0 {
                    break;
                }
                // A dashboard over its tenant's share is told to retry: not an error.
                if status != 200 && status != 429 {
                    errors
                        .lock()
                        .unwrap()
                        .push(format!("report: {status} {text}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // Ingestion in another process, as the poller or a Lambda would; each replay that
    // exits 0 has acknowledged its batch.
    let started = Instant::now();
    let mut stream = StreamWriter::new("products");
    let mut acknowledged = Vec::new();
    let mut rss = Vec::new();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(secs) {
        let file = root.path().join(format!("batch-{round}.json"));
        std::fs::write(&file, batch(&mut stream, round).to_string()).unwrap();
        let out = cloudpf(&[
            "replay",
            "--table",
            "products",
            "--data-dir",
            &d,
            file.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        acknowledged.push(round);
        round += 1;
        if let Some(kib) = rss_kib(pid) {
            rss.push((started.elapsed(), kib));
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // SIGTERM in the middle of the load: in-flight requests finish, the process exits 0.
    let (exit, log) = {
        // Clients finish the request they have in flight, which must still be answered.
        stop.store(true, Ordering::Relaxed);
        server.stop()
    };
    assert!(
        exit.is_some_and(|e| e.success()),
        "{exit:?}\n{}",
        log.join("\n")
    );
    for c in clients {
        c.join().unwrap();
    }
    reports.join().unwrap();
    let errors = errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} error answers, e.g. {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert!(served.load(Ordering::Relaxed) > 100, "the load barely ran");
    assert!(
        log.iter().all(|l| !l.contains("panicked")),
        "{}",
        log.join("\n")
    );

    // Resident memory after warm-up (the first third) grows by at most a quarter plus
    // 32 MiB, whatever the load's length: no leak per request, batch or report.
    let warm: Vec<u64> = rss
        .iter()
        .filter(|(t, _)| *t >= Duration::from_secs(secs / 3))
        .map(|(_, k)| *k)
        .collect();
    assert!(warm.len() >= 3, "too few memory samples: {rss:?}");
    let (first, peak) = (warm[0], *warm.iter().max().unwrap());
    assert!(
        peak <= first + first / 4 + 32 * 1024,
        "resident memory grew from {first} KiB to {peak} KiB after warm-up: {rss:?}"
    );

    // Restarted, the server serves every acknowledged batch, and the lake has no partial
    // object.
    let server = Server::start(&data);
    for round in &acknowledged {
        let path = format!("/search/{TENANT}/products?q=soakproof+lantern+q{round:04}&size=50");
        let (status, body) = request(&server.addr, "GET", &path, &[("X-API-Key", &search)], b"");
        assert_eq!(status, 200, "{body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        let ids: Vec<&str> = json["hits"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["product"]["product_id"].as_str())
            .collect();
        for i in 0..20 {
            let id = format!("soak-{round}-{i}");
            assert!(
                ids.contains(&id.as_str()),
                "acknowledged {id} is lost: {ids:?}"
            );
        }
    }
    drop(server);
    assert_no_partial_objects(&data);
}
