//! Which gzip level for the lake (issue #15): the time to compress a handler batch's
//! purchases CSV and JSON objects and a compacted tenant-day, and the bytes each level
//! leaves (printed once per object: Athena bills the compressed bytes it scans).
//!
//! `cargo bench -p cloudpf-lake --bench gzip`
#![allow(clippy::unwrap_used)]

use std::io::Write;

use cloudpf_lake::encode::{Placement, purchase_csv, purchase_json_lines};
use cloudpf_model::{
    Change, Currency, LineItem, Money, Op, Purchase, PurchaseStatus, SeqNo, TenantId, Timestamp,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;

const WORDS: [&str; 12] = [
    "Alpine",
    "Trail",
    "Wireless",
    "Headphones",
    "Stove",
    "Tent",
    "Ceramic",
    "Mug",
    "Olive",
    "Sand",
    "Pro",
    "Kit",
];
const COUNTRIES: [&str; 6] = ["DE", "FR", "US", "GB", "IT", "ES"];
const STATUSES: [PurchaseStatus; 4] = [
    PurchaseStatus::Placed,
    PurchaseStatus::Paid,
    PurchaseStatus::Shipped,
    PurchaseStatus::Cancelled,
];

/// `n` purchase changes of one tenant and day, varied like the demo's.
fn changes(n: usize) -> Vec<Change<Purchase>> {
    let tenant = TenantId::parse("alpine-outfitters").unwrap();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |m: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % m as u64) as usize
    };
    (0..n)
        .map(|i| {
            let items = (0..1 + next(3))
                .map(|_| {
                    let p = next(5000);
                    LineItem {
                        product_id: format!("p-{p:05}"),
                        name: format!(
                            "{} {} {} – {}",
                            WORDS[p % 12],
                            WORDS[(p / 12) % 12],
                            WORDS[(p / 144) % 12],
                            WORDS[(p / 7) % 12]
                        ),
                        quantity: 1 + next(3) as i64,
                        unit_price: Money::parse(&format!("{}.{:02}", 5 + next(300), next(100)))
                            .unwrap(),
                    }
                })
                .collect::<Vec<_>>();
            let total = items
                .iter()
                .map(|i| i.line_total().unwrap())
                .fold(Money::ZERO, |a, b| a.checked_add(b).unwrap());
            let created = Timestamp::parse(&format!(
                "2026-11-20T{:02}:{:02}:{:02}Z",
                next(24),
                next(60),
                next(60)
            ))
            .unwrap();
            let purchase = Purchase {
                tenant_id: tenant.clone(),
                purchase_id: format!("o-{:07}", next(1_000_000)),
                customer_id: format!("c-{:05}", next(20_000)),
                items,
                total_amount: total,
                currency: Currency::parse("EUR").unwrap(),
                status: STATUSES[next(4)],
                payment_method: "card".into(),
                shipping_country: COUNTRIES[next(6)].into(),
                shipping_city: format!("City {}", next(200)),
                created_at: created,
                updated_at: None,
            };
            Change {
                op: Op::Insert,
                tenant: tenant.clone(),
                key: purchase.purchase_id.clone(),
                seq: SeqNo::parse(&format!("4960000000000000{:07}", i + 1)).unwrap(),
                event_time: created,
                new_image: Some(purchase),
                old_image: None,
            }
        })
        .collect()
}

fn gzip(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::new(level));
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn levels(c: &mut Criterion) {
    let batch = changes(100);
    let day = changes(3_000);
    let placed = |cs: &[Change<Purchase>]| -> Vec<u8> {
        let placed: Vec<_> = cs.iter().map(|c| (c, Placement::Present)).collect();
        purchase_csv(&placed).unwrap()
    };
    let json = |cs: &[Change<Purchase>]| -> Vec<u8> {
        let placed: Vec<_> = cs.iter().map(|c| (c, Placement::Present)).collect();
        purchase_json_lines(&placed).unwrap()
    };
    let objects = [
        ("batch of 100, csv", placed(&batch)),
        ("batch of 100, json", json(&batch)),
        ("compacted day of 3000, csv", placed(&day)),
        ("compacted day of 3000, json", json(&day)),
    ];
    let mut group = c.benchmark_group("gzip");
    for (name, text) in &objects {
        group.throughput(Throughput::Bytes(text.len() as u64));
        for level in [1, 3, 6, 9] {
            let size = gzip(text, level).len();
            eprintln!(
                "{name}: {} bytes, level {level}: {size} bytes ({:.1}%)",
                text.len(),
                100.0 * size as f64 / text.len() as f64
            );
            group.bench_with_input(BenchmarkId::new(*name, level), text, |b, text| {
                b.iter(|| gzip(text, level));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, levels);
criterion_main!(benches);
