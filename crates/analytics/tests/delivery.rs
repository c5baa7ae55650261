//! Delivery semantics (issue #10): whatever way DynamoDB Streams and Lambda deliver a
//! history of purchase changes (records twice within a batch, batches again after they
//! succeeded, retries from the failed record after a lake write failed part way, bisected
//! batches, the batches of several shards interleaved, each key's changes in order as
//! DynamoDB guarantees), the search index and the lake's current-state views
//! (`purchase_lines`, `purchases_current`, run on DataFusion) end exactly where one clean
//! in-order delivery ends, and where the history itself says. The histories correct
//! `created_at` dates, remove purchases with and without old images, modify them without
//! old images, and repeat identical line items.
//!
//! A compaction of the lake runs again and again while the batches are delivered, some
//! runs killed between writing their compacted objects and removing the small ones, and
//! the views still end where the history says (issue #15).
//!
//! `PROPTEST_CASES` overrides the number of cases (default 24).
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use cloudpf_analytics::{DataFusionEngine, ReportTable};
use cloudpf_cdc::source::events::{self, StreamWriter};
use cloudpf_cdc::{Batch, Pipeline, handle_purchases};
use cloudpf_lake::purge::current_documents;
use cloudpf_lake::{
    CompactOptions, Compactor, Dataset, LocalDirSink, ObjectKey, ObjectSink, SinkError,
};
use cloudpf_model::{Currency, LineItem, Money, Op, Purchase, PurchaseStatus, TenantId, Timestamp};
use cloudpf_search::{Entity, SearchEngine, TantivyEngine};
use proptest::prelude::*;

const KEYS: [&str; 3] = ["o-1", "o-2", "o-3"];
const DAYS: [&str; 3] = ["2025-11-20", "2025-11-21", "2025-11-22"];
const STATUSES: [PurchaseStatus; 3] = [
    PurchaseStatus::Placed,
    PurchaseStatus::Paid,
    PurchaseStatus::Cancelled,
];
/// Line items to pick from; picking one twice gives an order two identical lines.
const ITEMS: [(&str, i64, &str); 3] = [("p1", 1, "10.00"), ("p2", 2, "2.50"), ("p1", 3, "10.00")];

/// One step of the history of the key `key`.
#[derive(Debug, Clone)]
enum Step {
    /// INSERT if the purchase does not exist, else MODIFY (its old image kept or not).
    Write {
        key: usize,
        day: usize,
        status: usize,
        items: Vec<usize>,
        old_image: bool,
    },
    /// REMOVE if the purchase exists (with or without its old image), else nothing.
    Remove { key: usize, old_image: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..KEYS.len(), 0..DAYS.len(), 0..STATUSES.len(),
              prop::collection::vec(0..ITEMS.len(), 0..4), prop::bool::weighted(0.8))
            .prop_map(|(key, day, status, items, old_image)| Step::Write {
                key, day, status, items, old_image,
            }),
        1 => (0..KEYS.len(), any::<bool>())
            .prop_map(|(key, old_image)| Step::Remove { key, old_image }),
    ]
}

fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

fn purchase(key: usize, day: usize, status: usize, items: &[usize]) -> Purchase {
    let items: Vec<LineItem> = items
        .iter()
        .map(|&i| {
            let (product, quantity, price) = ITEMS[i];
            LineItem {
                product_id: product.into(),
                name: format!("Product {product}"),
                quantity,
                unit_price: Money::parse(price).unwrap(),
            }
        })
        .collect();
    let total = items
        .iter()
        .map(|i| i.line_total().unwrap())
        .fold(Money::ZERO, |a, b| a.checked_add(b).unwrap());
    Purchase {
        tenant_id: tenant(),
        purchase_id: KEYS[key].into(),
        customer_id: format!("c-{key}"),
        items,
        total_amount: total,
        currency: Currency::parse("EUR").unwrap(),
        status: STATUSES[status],
        payment_method: "card".into(),
        shipping_country: "DE".into(),
        shipping_city: "Berlin".into(),
        created_at: Timestamp::parse(&format!("{}T10:00:00Z", DAYS[day])).unwrap(),
        updated_at: None,
    }
}

/// The stream records of a history, in order, with the key of each, and the last state
/// of every key (the oracle).
fn records(steps: &[Step]) -> (Vec<(usize, EventRecord)>, BTreeMap<usize, Purchase>) {
    let mut stream = StreamWriter::new("purchases");
    let mut state: BTreeMap<usize, Purchase> = BTreeMap::new();
    let mut out = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        // Event times run over the same days, so a REMOVE without an old image lands
        // in a partition that may hold the purchase.
        let at = Timestamp::parse(&format!("{}T12:00:00Z", DAYS[n % DAYS.len()]))
            .unwrap()
            .utc();
        match step {
            Step::Write {
                key,
                day,
                status,
                items,
                old_image,
            } => {
                let new = purchase(*key, *day, *status, items);
                let old = state.insert(*key, new.clone());
                let op = if old.is_some() {
                    Op::Modify
                } else {
                    Op::Insert
                };
                let old = old.filter(|_| *old_image);
                let record = stream.record(
                    op,
                    events::purchase_keys(&new),
                    Some(events::purchase_item(&new)),
                    old.as_ref().map(events::purchase_item),
                    at,
                );
                out.push((*key, record));
            }
            Step::Remove { key, old_image } => {
                let Some(old) = state.remove(key) else {
                    continue;
                };
                let record = stream.record(
                    Op::Remove,
                    events::purchase_keys(&old),
                    None,
                    old_image.then(|| events::purchase_item(&old)),
                    at,
                );
                out.push((*key, record));
            }
        }
    }
    (out, state)
}

/// A local lake whose puts fail while the queue says so, like S3 having a bad minute.
#[derive(Debug)]
struct FlakyLake {
    inner: LocalDirSink,
    failures: Mutex<VecDeque<bool>>,
}

#[async_trait]
impl ObjectSink for FlakyLake {
    async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError> {
        let fail = self.failures.lock().unwrap().pop_front().unwrap_or(false);
        if fail {
            return Err(SinkError::Unavailable("injected failure".into()));
        }
        self.inner.put(key, body).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>, SinkError> {
        self.inner.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, SinkError> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), SinkError> {
        self.inner.delete(key).await
    }
}

/// A compaction killed after writing its compacted objects: every removal fails.
#[derive(Debug)]
struct KilledBeforeRemoving(LocalDirSink);

#[async_trait]
impl ObjectSink for KilledBeforeRemoving {
    async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError> {
        self.0.put(key, body).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Option<Vec<u8>>, SinkError> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, SinkError> {
        self.0.list(prefix).await
    }
    async fn delete(&self, _: &ObjectKey) -> Result<(), SinkError> {
        Err(SinkError::Unavailable("killed".into()))
    }
}

/// How the stream is delivered: which shard each key's changes go to, the choices of
/// the delivery (which shard next, batch sizes, duplicates, replays, bisection), which
/// lake writes fail and which of the concurrent compaction runs are killed.
#[derive(Debug, Clone)]
struct Delivery {
    shard_of_key: [usize; 3],
    choices: Vec<u8>,
    failures: Vec<bool>,
    kills: Vec<bool>,
}

fn delivery() -> impl Strategy<Value = Delivery> {
    (
        [0..3usize, 0..3usize, 0..3usize],
        prop::collection::vec(any::<u8>(), 0..48),
        prop::collection::vec(prop::bool::weighted(0.3), 0..16),
        prop::collection::vec(prop::bool::weighted(0.3), 0..8),
    )
        .prop_map(|(shard_of_key, choices, failures, kills)| Delivery {
            shard_of_key,
            choices,
            failures,
            kills,
        })
}

fn batch(records: &[EventRecord]) -> Batch {
    Batch::from_event(events::event(records.to_vec()))
}

/// Delivers `records` as Lambda may: per shard in order, shards interleaved, batches
/// of 1-4 records, a record sometimes twice in its batch, a batch sometimes again after
/// it succeeded, and after a failure a retry from the failed record, sometimes of half
/// the batch (bisection).
async fn deliver_messily(dir: &Path, records: &[(usize, EventRecord)], plan: &Delivery) {
    let sink = Arc::new(FlakyLake {
        inner: LocalDirSink::new(dir),
        failures: Mutex::new(plan.failures.iter().copied().collect()),
    });
    let pipeline = Pipeline::new(Arc::new(TantivyEngine::new(dir)), sink);
    let mut shards: Vec<Vec<EventRecord>> = vec![Vec::new(); 3];
    for (key, record) in records {
        shards[plan.shard_of_key[*key]].push(record.clone());
    }
    let mut choices = plan.choices.iter().copied().chain(std::iter::repeat(1));
    let mut next = || usize::from(choices.next().unwrap_or(1));
    let mut cursor = [0usize; 3];
    let mut bisected: [Option<usize>; 3] = [None; 3];
    let mut replays = 0;
    for _ in 0..500 {
        let active: Vec<usize> = (0..3).filter(|&s| cursor[s] < shards[s].len()).collect();
        if active.is_empty() {
            return;
        }
        let s = active[next() % active.len()];
        let size = bisected[s].take().unwrap_or_else(|| 1 + next() % 4);
        let end = (cursor[s] + size).min(shards[s].len());
        let mut records = shards[s][cursor[s]..end].to_vec();
        if next() % 5 == 0 {
            let i = next() % records.len();
            records.insert(i, records[i].clone());
        }
        let report = handle_purchases(batch(&records), &pipeline).await;
        match report.failed_from {
            Some(seq) => {
                let at = shards[s]
                    .iter()
                    .position(|r| r.change.sequence_number.as_deref() == Some(&seq))
                    .unwrap();
                assert!(at >= cursor[s] && at < end, "failed_from outside the batch");
                if next() % 2 == 0 {
                    bisected[s] = Some(((end - at) / 2).max(1));
                }
                cursor[s] = at;
            }
            None if replays < 4 && next() % 6 == 0 => replays += 1,
            None => cursor[s] = end,
        }
    }
    panic!("the delivery did not finish");
}

/// Compacts the lake under `dir` again and again until `done` (and once after); the
/// n-th run that finds something to compact is killed before removing anything when
/// `kills[n]` says so. The number of runs that compacted or were killed.
async fn compact_meanwhile(dir: &Path, done: &AtomicBool, kills: &[bool]) -> usize {
    let mut runs = 0;
    loop {
        let finished = done.load(Ordering::SeqCst);
        let sink: Arc<dyn ObjectSink> = if kills.get(runs).copied().unwrap_or(false) {
            Arc::new(KilledBeforeRemoving(LocalDirSink::new(dir)))
        } else {
            Arc::new(LocalDirSink::new(dir))
        };
        let summary = Compactor::new(sink, CompactOptions::default())
            .run(|_, _| {})
            .await
            .unwrap();
        if !summary.compacted.is_empty() || !summary.failed.is_empty() {
            runs += 1;
        }
        if finished {
            return runs;
        }
        tokio::task::yield_now().await;
    }
}

/// One batch of every record, in order, with nothing failing.
async fn deliver_cleanly(dir: &Path, records: &[(usize, EventRecord)]) -> Pipeline {
    let pipeline = Pipeline::local(dir);
    let all: Vec<EventRecord> = records.iter().map(|(_, r)| r.clone()).collect();
    if !all.is_empty() {
        let report = handle_purchases(batch(&all), &pipeline).await;
        assert_eq!((report.failed_from, report.dead_lettered), (None, 0));
    }
    pipeline
}

/// A line of `purchase_lines`: purchase, dt, line number, status, product, quantity,
/// line total, order total. Money is compared as amounts (`10.000000` = `10.00`).
type Line = (
    String,
    String,
    Option<i64>,
    String,
    Option<String>,
    Option<i64>,
    Option<Money>,
    Money,
);
/// A row of `purchases_current`: purchase, dt, customer, status, created_at, total.
type Order = (String, String, String, String, String, Money);

fn cell(row: &[Option<String>], i: usize) -> Option<String> {
    row[i].clone()
}

fn money(text: Option<String>) -> Option<Money> {
    text.map(|t| Money::parse(&t).unwrap())
}

async fn query(engine: &DataFusionEngine, sql: &str) -> ReportTable {
    engine.query(sql).await.unwrap()
}

async fn view_lines(engine: &DataFusionEngine) -> Vec<Line> {
    let table = query(
        engine,
        "SELECT purchase_id, dt, line_number, status, product_id, quantity, line_total, \
         total_amount FROM purchase_lines WHERE tenant_id = 'acme' \
         ORDER BY purchase_id, dt, line_number",
    )
    .await;
    table
        .rows
        .iter()
        .map(|r| {
            (
                cell(r, 0).unwrap(),
                cell(r, 1).unwrap(),
                cell(r, 2).map(|n| n.parse().unwrap()),
                cell(r, 3).unwrap(),
                cell(r, 4).filter(|p| !p.is_empty()),
                cell(r, 5).map(|n| n.parse().unwrap()),
                money(cell(r, 6)),
                money(cell(r, 7)).unwrap(),
            )
        })
        .collect()
}

async fn view_orders(engine: &DataFusionEngine) -> Vec<Order> {
    let table = query(
        engine,
        "SELECT purchase_id, dt, customer_id, status, created_at, total_amount \
         FROM purchases_current WHERE tenant_id = 'acme' ORDER BY purchase_id, dt",
    )
    .await;
    table
        .rows
        .iter()
        .map(|r| {
            let text = |i| cell(r, i).unwrap();
            (
                text(0),
                text(1),
                text(2),
                text(3),
                text(4),
                money(cell(r, 5)).unwrap(),
            )
        })
        .collect()
}

fn oracle_lines(state: &BTreeMap<usize, Purchase>) -> Vec<Line> {
    let mut out = Vec::new();
    for p in state.values() {
        let head = |n, product, quantity, total| {
            (
                p.purchase_id.clone(),
                p.created_at.date().to_string(),
                n,
                p.status.as_str().to_owned(),
                product,
                quantity,
                total,
                p.total_amount,
            )
        };
        if p.items.is_empty() {
            out.push(head(None, None, None, None));
        }
        for (i, item) in p.items.iter().enumerate() {
            out.push(head(
                Some(i as i64 + 1),
                Some(item.product_id.clone()),
                Some(item.quantity),
                item.line_total(),
            ));
        }
    }
    out
}

fn oracle_orders(state: &BTreeMap<usize, Purchase>) -> Vec<Order> {
    state
        .values()
        .map(|p| {
            (
                p.purchase_id.clone(),
                p.created_at.date().to_string(),
                p.customer_id.clone(),
                p.status.as_str().to_owned(),
                p.created_at.to_rfc3339(),
                p.total_amount,
            )
        })
        .collect()
}

/// The index's purchases: each key's stored document and the sequence number that wrote it.
async fn index_contents(search: &dyn SearchEngine) -> Vec<Option<(Purchase, String)>> {
    let mut out = Vec::new();
    for key in KEYS {
        let stored = search.get_purchase(&tenant(), key).await.unwrap();
        out.push(stored.map(|s| (s.doc, s.seq.to_string())));
    }
    out
}

async fn check(steps: Vec<Step>, plan: Delivery) -> Result<(), TestCaseError> {
    let (records, state) = records(&steps);
    let clean_dir = tempfile::tempdir().unwrap();
    let messy_dir = tempfile::tempdir().unwrap();
    let clean = deliver_cleanly(clean_dir.path(), &records).await;
    let done = AtomicBool::new(false);
    tokio::join!(
        async {
            deliver_messily(messy_dir.path(), &records, &plan).await;
            done.store(true, Ordering::SeqCst);
        },
        compact_meanwhile(messy_dir.path(), &done, &plan.kills),
    );
    let messy = TantivyEngine::new(messy_dir.path());

    // The index: the same documents at the same versions, and the history's last state.
    let want_index = index_contents(clean.search().as_ref()).await;
    prop_assert_eq!(&index_contents(&messy).await, &want_index);
    let docs: Vec<Option<Purchase>> = want_index.into_iter().map(|d| d.map(|(p, _)| p)).collect();
    let oracle: Vec<Option<Purchase>> = (0..KEYS.len()).map(|k| state.get(&k).cloned()).collect();
    prop_assert_eq!(docs, oracle);
    prop_assert_eq!(
        messy.count(&tenant(), Entity::Purchases).await.unwrap(),
        state.len() as u64
    );

    // The lake's current-state views: the same rows either way, and the oracle's.
    let clean_lake = DataFusionEngine::new(clean_dir.path());
    let messy_lake = DataFusionEngine::new(messy_dir.path());
    let want_lines = oracle_lines(&state);
    prop_assert_eq!(&view_lines(&clean_lake).await, &want_lines);
    prop_assert_eq!(&view_lines(&messy_lake).await, &want_lines);
    let want_orders = oracle_orders(&state);
    prop_assert_eq!(&view_orders(&clean_lake).await, &want_orders);
    prop_assert_eq!(&view_orders(&messy_lake).await, &want_orders);

    // The shop's export (issue #13) reads the same state back from the change logs.
    let want_export: BTreeMap<String, serde_json::Value> = state
        .values()
        .map(|p| (p.purchase_id.clone(), serde_json::to_value(p).unwrap()))
        .collect();
    for dir in [clean_dir.path(), messy_dir.path()] {
        let sink = LocalDirSink::new(dir);
        let got = current_documents(&sink, &tenant(), Dataset::PurchasesJson)
            .await
            .unwrap();
        prop_assert_eq!(&got, &want_export);
    }

    // A last compaction that is not killed leaves one object per partition, same views.
    let summary = Compactor::new(
        Arc::new(LocalDirSink::new(messy_dir.path())),
        CompactOptions::default(),
    )
    .run(|_, _| {})
    .await
    .unwrap();
    prop_assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    let objects = LocalDirSink::new(messy_dir.path())
        .list("lake/")
        .await
        .unwrap();
    let mut partitions: Vec<&str> = objects
        .iter()
        .map(|k| k.as_str().rsplit_once('/').unwrap().0)
        .collect();
    let all = partitions.len();
    partitions.dedup();
    prop_assert_eq!(all, partitions.len(), "more than one object in a partition");
    prop_assert_eq!(&view_lines(&messy_lake).await, &want_lines);
    prop_assert_eq!(&view_orders(&messy_lake).await, &want_orders);
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn issue_10_any_delivery_of_a_history_ends_in_the_index_and_views_of_one_clean_delivery(
        steps in prop::collection::vec(step(), 1..14),
        plan in delivery(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(check(steps, plan))?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_queries_refuse_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let engine = DataFusionEngine::new(dir.path());
    for sql in [
        "CREATE TABLE x AS SELECT 1",
        "COPY (SELECT 1) TO 'out.csv'",
        "SET datafusion.execution.batch_size = 1",
    ] {
        assert!(engine.query(sql).await.is_err(), "{sql}");
    }
    assert!(!dir.path().join("out.csv").exists());
}
