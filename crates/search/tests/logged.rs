//! Issue #15: logged durability. A writer in logged mode acknowledges a batch once it is in
//! the index's write-ahead log and commits later; these tests check that nothing
//! acknowledged is lost when the writer stops before committing (or crashes in the middle
//! of an append, or between a commit and emptying the log), that the sequence guard sees
//! uncommitted changes, that changes become searchable within the bound, and that the
//! background commit does nothing when nothing was written.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use cloudpf_model::SeqNo;
use cloudpf_search::suite::{product, purchase, tenant};
use cloudpf_search::{
    DocChange, Durability, EngineOptions, Entity, ProductQuery, PurchaseQuery, SearchEngine,
    TantivyEngine, Versioned,
};

const HOUR: Duration = Duration::from_secs(3600);

fn logged(dir: &Path, commit_within: Duration) -> TantivyEngine {
    TantivyEngine::with_options(
        dir,
        EngineOptions {
            durability: Durability::Logged { commit_within },
            ..EngineOptions::default()
        },
    )
}

/// An engine that logs and commits only when something else than age asks it to, with
/// `options` otherwise.
fn logged_with(dir: &Path, options: EngineOptions) -> TantivyEngine {
    TantivyEngine::with_options(
        dir,
        EngineOptions {
            durability: Durability::Logged {
                commit_within: HOUR,
            },
            ..options
        },
    )
}

fn upsert(id: &str, name: &str, seq: u64) -> Versioned<cloudpf_model::Product> {
    Versioned {
        key: id.to_owned(),
        seq: SeqNo::parse(&seq.to_string()).unwrap(),
        change: DocChange::Upsert(product("shop-a", id, name, "Outdoor", "Acme", "9.00", 1)),
    }
}

async fn names(engine: &TantivyEngine, text: &str) -> Vec<String> {
    let q = ProductQuery {
        text: text.into(),
        limit: 10,
        ..ProductQuery::default()
    };
    let r = engine.search_products(&tenant("shop-a"), &q).await.unwrap();
    let mut names: Vec<String> = r.hits.into_iter().map(|h| h.product.name).collect();
    names.sort();
    names
}

fn log_of(dir: &Path, entity: Entity) -> std::path::PathBuf {
    dir.join("index").join("shop-a").join(format!(
        "{entity}-v{}.wal",
        cloudpf_search::embedded::schema::SCHEMA_VERSION
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_batch_survives_a_writer_that_stops_before_committing() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("shop-a");
    {
        let engine = logged(dir.path(), HOUR);
        let outcome = engine
            .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
            .await
            .unwrap();
        assert_eq!(outcome.applied, 1);
        // Acknowledged, not committed: the index does not show it yet.
        assert!(names(&engine, "lantern").await.is_empty());
        // The process stops here: no flush, no commit.
    }
    let reader = TantivyEngine::new(dir.path());
    assert!(names(&reader, "lantern").await.is_empty());

    let next = logged(dir.path(), HOUR);
    next.flush().await.unwrap();
    assert_eq!(names(&next, "lantern").await, ["Trail Lantern"]);
    assert_eq!(
        std::fs::metadata(log_of(dir.path(), Entity::Products))
            .unwrap()
            .len(),
        0
    );
    // Another process sees the commit once it refreshes.
    reader.refresh().await.unwrap();
    assert_eq!(names(&reader, "lantern").await, ["Trail Lantern"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_batch_of_a_restarted_writer_replays_the_log_first() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("shop-a");
    {
        let engine = logged(dir.path(), HOUR);
        engine
            .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
            .await
            .unwrap();
    }
    let next = logged(dir.path(), HOUR);
    // A redelivered older change of the same product is stale against the replayed log.
    let outcome = next
        .apply_products(
            &a,
            vec![upsert("p1", "Old Lantern", 5), upsert("p2", "Tent Peg", 11)],
        )
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.stale), (1, 1));
    next.flush().await.unwrap();
    assert_eq!(names(&next, "lantern").await, ["Trail Lantern"]);
    assert_eq!(names(&next, "peg").await, ["Tent Peg"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_change_is_stale_against_a_logged_one_not_yet_committed() {
    let dir = tempfile::tempdir().unwrap();
    let engine = logged(dir.path(), HOUR);
    let a = tenant("shop-a");
    engine
        .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
        .await
        .unwrap();
    let outcome = engine
        .apply_products(
            &a,
            vec![
                upsert("p1", "Old Lantern", 9),
                upsert("p1", "Same Lantern", 10),
            ],
        )
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.stale), (0, 2));
    let removal = Versioned {
        key: "p1".to_owned(),
        seq: SeqNo::parse("12").unwrap(),
        change: DocChange::Delete,
    };
    assert_eq!(
        engine
            .apply_products(&a, vec![removal])
            .await
            .unwrap()
            .applied,
        1
    );
    engine.flush().await.unwrap();
    assert!(names(&engine, "lantern").await.is_empty());
    assert_eq!(engine.count(&a, Entity::Products).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_replayed_after_its_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("shop-a");
    let log = log_of(dir.path(), Entity::Products);
    let kept;
    {
        let engine = logged(dir.path(), HOUR);
        engine
            .apply_products(
                &a,
                vec![
                    upsert("p1", "Trail Lantern", 10),
                    upsert("p2", "Tent Peg", 11),
                ],
            )
            .await
            .unwrap();
        kept = std::fs::read(&log).unwrap();
        engine.flush().await.unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 0);
        // A newer change committed after the log was emptied.
        engine
            .apply_products(&a, vec![upsert("p1", "Storm Lantern", 20)])
            .await
            .unwrap();
        engine.flush().await.unwrap();
    }
    // A crash between a commit and emptying its log leaves the log behind.
    std::fs::write(&log, &kept).unwrap();
    let next = logged(dir.path(), HOUR);
    next.flush().await.unwrap();
    assert_eq!(next.count(&a, Entity::Products).await.unwrap(), 2);
    assert_eq!(names(&next, "lantern").await, ["Storm Lantern"]);
    let p1 = next.get_product(&a, "p1").await.unwrap().unwrap();
    assert_eq!(p1.seq.as_str(), "20");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_cut_short_by_a_crash_during_its_append_is_dropped_and_earlier_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("shop-a");
    let log = log_of(dir.path(), Entity::Products);
    {
        let engine = logged(dir.path(), HOUR);
        engine
            .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
            .await
            .unwrap();
        engine
            .apply_products(&a, vec![upsert("p2", "Tent Peg", 11)])
            .await
            .unwrap();
    }
    let len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let next = logged(dir.path(), HOUR);
    next.flush().await.unwrap();
    assert_eq!(names(&next, "lantern").await, ["Trail Lantern"]);
    assert!(names(&next, "peg").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_purchases_are_recovered_with_their_amounts() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("shop-a");
    let p = purchase(
        "shop-a",
        "o1",
        "c1",
        "2025-06-02T10:00:00Z",
        cloudpf_model::PurchaseStatus::Paid,
        &[("p1", "Trail Lantern", 3, "19.99")],
    );
    {
        let engine = logged(dir.path(), HOUR);
        let change = Versioned {
            key: "o1".to_owned(),
            seq: SeqNo::parse("7").unwrap(),
            change: DocChange::Upsert(p.clone()),
        };
        engine.apply_purchases(&a, vec![change]).await.unwrap();
    }
    let next = logged(dir.path(), HOUR);
    next.flush().await.unwrap();
    let stored = next.get_purchase(&a, "o1").await.unwrap().unwrap();
    assert_eq!(stored.doc, p);
    let found = next
        .search_purchases(
            &a,
            &PurchaseQuery {
                text: "lantern".into(),
                limit: 10,
                ..PurchaseQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.total, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresher_commits_logged_changes_once_due_and_does_nothing_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let engine = logged(dir.path(), Duration::from_millis(50));
    let a = tenant("shop-a");
    for _ in 0..10 {
        engine.refresh().await.unwrap();
    }
    assert_eq!(engine.work_done().background_commits, 0);

    engine
        .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while names(&engine, "lantern").await.is_empty() {
        assert!(Instant::now() < deadline, "not committed by the refresher");
        engine.refresh().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.work_done().background_commits, 1);
    let settled = engine.work_done();
    for _ in 0..20 {
        engine.refresh().await.unwrap();
    }
    assert_eq!(engine.work_done(), settled, "idle refreshes did work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_an_idle_index_commits_what_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let engine = logged_with(
        dir.path(),
        EngineOptions {
            idle_close: Duration::ZERO,
            ..EngineOptions::default()
        },
    );
    let a = tenant("shop-a");
    engine
        .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
        .await
        .unwrap();
    engine.refresh().await.unwrap();
    assert_eq!(engine.open_indexes(), 0);
    assert_eq!(engine.work_done().background_commits, 1);
    let reader = TantivyEngine::new(dir.path());
    assert_eq!(names(&reader, "lantern").await, ["Trail Lantern"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_went_quiet_is_closed_and_the_next_batch_opens_one_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = logged_with(
        dir.path(),
        EngineOptions {
            writer_idle_close: Duration::ZERO,
            ..EngineOptions::default()
        },
    );
    let a = tenant("shop-a");
    engine
        .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
        .await
        .unwrap();
    assert_eq!(engine.open_writers(), 1);
    // Uncommitted changes keep their writer.
    engine.refresh().await.unwrap();
    assert_eq!(engine.open_writers(), 1);
    assert_eq!(engine.work_done().writers_closed, 0);

    engine.flush().await.unwrap();
    engine.refresh().await.unwrap();
    assert_eq!(engine.open_writers(), 0);
    assert_eq!(engine.open_indexes(), 1, "the index stays open for reading");
    assert_eq!(engine.work_done().writers_closed, 1);
    assert_eq!(names(&engine, "lantern").await, ["Trail Lantern"]);

    engine
        .apply_products(&a, vec![upsert("p2", "Storm Lantern", 11)])
        .await
        .unwrap();
    assert_eq!(engine.open_writers(), 1);
    engine.flush().await.unwrap();
    assert_eq!(
        names(&engine, "lantern").await,
        ["Storm Lantern", "Trail Lantern"]
    );
    engine.refresh().await.unwrap();
    let settled = engine.work_done();
    assert_eq!(settled.writers_closed, 2);
    for _ in 0..20 {
        engine.refresh().await.unwrap();
    }
    assert_eq!(engine.work_done(), settled, "idle refreshes did work");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_closed_to_make_room_commits_first_and_its_reopened_guard_sees_that() {
    let dir = tempfile::tempdir().unwrap();
    let engine = logged_with(
        dir.path(),
        EngineOptions {
            max_open: 1,
            ..EngineOptions::default()
        },
    );
    let a = tenant("shop-a");
    engine
        .apply_products(&a, vec![upsert("p1", "Trail Lantern", 20)])
        .await
        .unwrap();
    // Opening the purchases index closes the products index, which commits.
    let order = purchase(
        "shop-a",
        "o1",
        "c1",
        "2025-06-02T10:00:00Z",
        cloudpf_model::PurchaseStatus::Paid,
        &[("p1", "Trail Lantern", 1, "9.00")],
    );
    let change = Versioned {
        key: "o1".to_owned(),
        seq: SeqNo::parse("21").unwrap(),
        change: DocChange::Upsert(order),
    };
    engine.apply_purchases(&a, vec![change]).await.unwrap();
    assert_eq!(engine.open_indexes(), 1);
    let reader = TantivyEngine::new(dir.path());
    assert_eq!(names(&reader, "lantern").await, ["Trail Lantern"]);
    // Reopened, the products index knows p1 at 20: an older change is stale.
    let outcome = engine
        .apply_products(&a, vec![upsert("p1", "Old Lantern", 15)])
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.stale), (0, 1));
    engine.flush().await.unwrap();
    assert_eq!(names(&engine, "lantern").await, ["Trail Lantern"]);
    assert_eq!(
        engine
            .get_purchase(&a, "o1")
            .await
            .unwrap()
            .unwrap()
            .seq
            .as_str(),
        "21"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_that_commits_each_batch_replays_a_log_a_logged_run_left() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("shop-a");
    {
        let engine = logged(dir.path(), HOUR);
        engine
            .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
            .await
            .unwrap();
    }
    let each = TantivyEngine::new(dir.path());
    let outcome = each
        .apply_products(&a, vec![upsert("p1", "Old Lantern", 5)])
        .await
        .unwrap();
    assert_eq!((outcome.applied, outcome.stale), (0, 1));
    assert_eq!(names(&each, "lantern").await, ["Trail Lantern"]);
    assert_eq!(
        std::fs::metadata(log_of(dir.path(), Entity::Products))
            .unwrap()
            .len(),
        0
    );

    // And a flush alone finds a log of an index it never opened.
    drop(each);
    {
        let engine = logged(dir.path(), HOUR);
        engine
            .apply_products(&a, vec![upsert("p2", "Tent Peg", 11)])
            .await
            .unwrap();
    }
    let each = TantivyEngine::new(dir.path());
    each.flush().await.unwrap();
    assert_eq!(names(&each, "peg").await, ["Tent Peg"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_waiting_changes_are_committed_without_waiting_for_their_age() {
    let dir = tempfile::tempdir().unwrap();
    let engine = logged(dir.path(), HOUR);
    let a = tenant("shop-a");
    let batch: Vec<_> = (0..10_000u64)
        .map(|i| upsert(&format!("p{i}"), &format!("Lantern {i}"), 100 + i))
        .collect();
    engine.apply_products(&a, batch).await.unwrap();
    assert_eq!(engine.count(&a, Entity::Products).await.unwrap(), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_no_longer_decodes_is_set_aside_and_the_index_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant("shop-a");
    let log = log_of(dir.path(), Entity::Products);
    {
        let engine = logged(dir.path(), HOUR);
        engine
            .apply_products(&a, vec![upsert("p1", "Trail Lantern", 10)])
            .await
            .unwrap();
    }
    // A whole frame (right length and checksum) whose entry another version wrote.
    let payload = br#"[{"k":"p1","s":"11","d":"{\"not\":\"an item\"}"}]"#;
    let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
    frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    std::fs::write(&log, &frame).unwrap();

    let next = logged(dir.path(), HOUR);
    let outcome = next
        .apply_products(&a, vec![upsert("p2", "Tent Peg", 12)])
        .await
        .unwrap();
    assert_eq!(outcome.applied, 1);
    next.flush().await.unwrap();
    assert_eq!(names(&next, "peg").await, ["Tent Peg"]);
    let aside: Vec<_> = std::fs::read_dir(log.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".wal.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(log.with_file_name(&aside[0])).unwrap(), frame);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_bound_of_open_writers_the_least_recently_written_commits_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = logged_with(
        dir.path(),
        EngineOptions {
            max_writers: 2,
            ..EngineOptions::default()
        },
    );
    for (i, shop) in ["shop-a", "shop-b", "shop-c"].into_iter().enumerate() {
        let p = product(shop, "p1", "Trail Lantern", "Outdoor", "Acme", "9.00", 1);
        let change = Versioned {
            key: "p1".to_owned(),
            seq: SeqNo::parse(&(10 + i).to_string()).unwrap(),
            change: DocChange::Upsert(p),
        };
        engine
            .apply_products(&tenant(shop), vec![change])
            .await
            .unwrap();
    }
    let reader = TantivyEngine::new(dir.path());
    let count = |shop: &'static str| {
        let reader = reader.clone();
        async move { reader.count(&tenant(shop), Entity::Products).await.unwrap() }
    };
    assert_eq!(count("shop-a").await, 1, "the oldest was committed");
    assert_eq!(count("shop-b").await, 0);
    assert_eq!(count("shop-c").await, 0);
    engine.flush().await.unwrap();
    reader.refresh().await.unwrap();
    assert_eq!(count("shop-c").await, 1);
}
