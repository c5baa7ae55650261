//! Helpers shared by the pipeline tests: fixtures, sample items, lake readers.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_cdc::{Batch, Pipeline};
use cloudpf_lake::{LocalDirSink, ObjectSink};
use cloudpf_model::{
    Currency, LineItem, Money, Op, Product, Purchase, PurchaseStatus, TenantId, Timestamp,
};

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Batch {
    let bytes = std::fs::read(fixture_path(name)).expect("fixture exists");
    Batch::from_slice(&bytes).expect("fixture is an event")
}

pub fn tenant(t: &str) -> TenantId {
    TenantId::parse(t).unwrap()
}

pub fn at(text: &str) -> DateTime<Utc> {
    Timestamp::parse(text).unwrap().utc()
}

pub fn product(t: &str, id: &str, name: &str, price: &str) -> Product {
    Product {
        tenant_id: tenant(t),
        product_id: id.to_owned(),
        name: name.to_owned(),
        description: format!("{name}, described"),
        category: "Outdoor".to_owned(),
        brand: "Northpeak".to_owned(),
        price: Money::parse(price).unwrap(),
        currency: Currency::parse("EUR").unwrap(),
        stock: 5,
        tags: vec!["camping".to_owned()],
        attributes: Default::default(),
        is_active: true,
        created_at: Timestamp::parse("2025-11-20T08:00:00Z").unwrap(),
        updated_at: None,
    }
}

pub fn purchase(t: &str, id: &str, created: &str, lines: &[(&str, i64, &str)]) -> Purchase {
    let items: Vec<LineItem> = lines
        .iter()
        .map(|(pid, q, price)| LineItem {
            product_id: (*pid).to_owned(),
            name: format!("Item {pid}"),
            quantity: *q,
            unit_price: Money::parse(price).unwrap(),
        })
        .collect();
    let total = items.iter().fold(Money::ZERO, |acc, i| {
        acc.checked_add(i.line_total().unwrap()).unwrap()
    });
    Purchase {
        tenant_id: tenant(t),
        purchase_id: id.to_owned(),
        customer_id: "c-1".to_owned(),
        items,
        total_amount: total,
        currency: Currency::parse("EUR").unwrap(),
        status: PurchaseStatus::Paid,
        payment_method: "card".to_owned(),
        shipping_country: "DE".to_owned(),
        shipping_city: "Berlin".to_owned(),
        created_at: Timestamp::parse(created).unwrap(),
        updated_at: None,
    }
}

/// Stream records of product changes, as Lambda would deliver them.
pub fn product_record(
    stream: &mut StreamWriter,
    op: Op,
    new: Option<&Product>,
    old: Option<&Product>,
    when: &str,
) -> aws_lambda_events::event::dynamodb::EventRecord {
    let keys = events::product_keys(new.or(old).unwrap());
    stream.record(
        op,
        keys,
        new.map(events::product_item),
        old.map(events::product_item),
        at(when),
    )
}

pub fn purchase_record(
    stream: &mut StreamWriter,
    op: Op,
    new: Option<&Purchase>,
    old: Option<&Purchase>,
    when: &str,
) -> aws_lambda_events::event::dynamodb::EventRecord {
    let keys = events::purchase_keys(new.or(old).unwrap());
    stream.record(
        op,
        keys,
        new.map(events::purchase_item),
        old.map(events::purchase_item),
        at(when),
    )
}

pub fn batch(records: Vec<aws_lambda_events::event::dynamodb::EventRecord>) -> Batch {
    Batch::from_event(events::event(records))
}

pub fn local(dir: &Path) -> Pipeline {
    Pipeline::local(dir)
}

/// Every object under `prefix`, as (key, decompressed text).
pub async fn lake_objects(dir: &Path, prefix: &str) -> Vec<(String, String)> {
    let sink = LocalDirSink::new(dir);
    let mut out = Vec::new();
    for key in sink.list(prefix).await.unwrap() {
        let bytes = sink.get(&key).await.unwrap().unwrap();
        let text = if key.as_str().ends_with(".gz") {
            let mut s = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut s)
                .unwrap();
            s
        } else {
            String::from_utf8(bytes).unwrap()
        };
        out.push((key.to_string(), text));
    }
    out
}

/// Every file under `dir` with its bytes, for byte-for-byte comparisons.
pub fn snapshot_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The lake's CSV dialect: quotes and backslashes escaped with a backslash.
pub fn csv_rows(text: &str) -> Vec<csv::StringRecord> {
    let mut r = csv::ReaderBuilder::new()
        .double_quote(false)
        .escape(Some(b'\\'))
        .from_reader(text.as_bytes());
    r.records().map(|r| r.unwrap()).collect()
}
