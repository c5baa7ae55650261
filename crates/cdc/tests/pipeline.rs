//! The CDC pipeline end to end on the embedded defaults: Lambda events in, Tantivy index,
//! lake objects and dead letters out.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use cloudpf_cdc::source::events::StreamWriter;
use cloudpf_cdc::{Batch, Pipeline, handle_products, handle_purchases};
use cloudpf_lake::purge::current_documents;
use cloudpf_lake::{Dataset, LocalDirSink, ObjectKey, ObjectSink, SinkError};
use cloudpf_model::{AttrValue, Money, Op, PurchaseStatus};
use cloudpf_search::{Entity, TantivyEngine};
use common::*;

#[tokio::test]
async fn the_documented_aws_example_event_decodes_and_is_dead_lettered_for_lacking_a_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let batch = fixture("aws-example-dynamodb-event.json");
    assert_eq!(batch.len(), 2);
    assert!(
        batch
            .records
            .iter()
            .all(|r| matches!(r, cloudpf_cdc::Incoming::Record(_)))
    );
    assert_eq!(
        batch.records[0].sequence_number(),
        Some("1405400000000002063282832")
    );

    let report = handle_products(batch, &local(dir.path())).await;
    assert_eq!(report.dead_lettered, 2);
    assert_eq!(
        report.failed_from, None,
        "a record that can never succeed must not block the stream"
    );
    let letters = lake_objects(dir.path(), "dlq/products/").await;
    assert_eq!(
        letters.len(),
        1,
        "both records share a sequence number, so one dead letter"
    );
    let letter: serde_json::Value = serde_json::from_str(&letters[0].1).unwrap();
    assert_eq!(letter["reason"], "keys: no tenant_id");
    assert_eq!(
        letter["record"]["dynamodb"]["NewImage"]["asdf1"]["B"],
        "AAEqQQ=="
    );
    assert!(lake_objects(dir.path(), "lake/").await.is_empty());
}

#[tokio::test]
async fn every_dynamodb_attribute_type_decodes_exactly_into_index_and_lake() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let report = handle_products(fixture("products-all-attribute-types.json"), &pipeline).await;
    assert_eq!((report.applied, report.dead_lettered), (1, 0), "{report:?}");

    let stored = pipeline
        .search()
        .get_product(&tenant("acme"), "p-types")
        .await
        .unwrap()
        .unwrap();
    let p = stored.doc;
    assert_eq!(
        p.price,
        Money::parse("1234567890123456789.123456789").unwrap()
    );
    assert_eq!(p.tags, vec!["one", "two"]);
    assert_eq!(
        p.created_at.to_string(),
        "2025-11-23T09:00:00Z",
        "times are normalised to UTC"
    );
    let a = &p.attributes;
    let num = |s: &str| AttrValue::Number(s.to_owned());
    assert_eq!(a["s"], AttrValue::String("text".into()));
    assert_eq!(a["n_int"], num("-17"));
    assert_eq!(a["n_38"], num("12345678901234567890123456789012345678"));
    assert_eq!(a["n_frac"], num("0.1000000000000000000000000000000000001"));
    assert_eq!(a["n_exp"], num("1.5E+100"));
    assert_eq!(a["b"], AttrValue::Binary(vec![0, 1, 42, 65]));
    assert_eq!(
        a["ss"],
        AttrValue::List(vec![
            AttrValue::String("a".into()),
            AttrValue::String("b".into())
        ])
    );
    assert_eq!(
        a["ns"],
        AttrValue::List(vec![
            num("1"),
            num("2.5"),
            num("98765432109876543210987654321098765432")
        ])
    );
    assert_eq!(
        a["bs"],
        AttrValue::List(vec![
            AttrValue::Binary(vec![0, 1, 42, 65]),
            AttrValue::Binary(vec![65, 42, 1, 0])
        ])
    );
    assert_eq!(
        a["l"],
        AttrValue::List(vec![
            AttrValue::String("x".into()),
            num("3.14159265358979323846264338327950288"),
            AttrValue::Bool(false),
            AttrValue::Null
        ])
    );
    let AttrValue::Map(m) = &a["m"] else {
        panic!("m is a map")
    };
    let AttrValue::Map(inner) = &m["inner"] else {
        panic!("inner is a map")
    };
    assert_eq!(inner["deep"], num("0.5"));
    assert_eq!(a["null"], AttrValue::Null);
    assert_eq!(a["bool"], AttrValue::Bool(true));

    // The lake's plain JSON keeps every digit: numbers are written as their exact text.
    let objects = lake_objects(
        dir.path(),
        "lake/products/json/tenant_id=acme/dt=2025-11-23/",
    )
    .await;
    assert_eq!(objects.len(), 1);
    let line = &objects[0].1;
    assert!(
        line.contains(r#""n_38":12345678901234567890123456789012345678"#),
        "{line}"
    );
    assert!(
        line.contains(r#""price":"1234567890123456789.123456789""#),
        "{line}"
    );
    assert!(line.contains(r#""b":"AAEqQQ==""#), "{line}");
    assert!(line.contains(r#""n_exp":1.5E+100"#), "{line}");
}

/// One record of `json` with `NewImage` replaced, keys kept.
fn with_new_image(new_image: serde_json::Value, keys: serde_json::Value) -> Batch {
    let record = serde_json::json!({
        "eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "awsRegion": "eu-west-1",
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:1:table/products/stream/x",
        "dynamodb": {
            "ApproximateCreationDateTime": 1763888400, "Keys": keys, "NewImage": new_image,
            "SequenceNumber": "900", "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    });
    Batch::from_json(serde_json::json!({ "Records": [record] })).expect("a batch")
}

fn good_image() -> serde_json::Value {
    serde_json::json!({
        "tenant_id": {"S": "acme"}, "product_id": {"S": "p-1"}, "name": {"S": "Lamp"},
        "category": {"S": "Home"}, "price": {"N": "10.00"}, "currency": {"S": "EUR"},
        "created_at": {"S": "2025-11-23T09:00:00Z"}
    })
}

fn keys(tenant: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "tenant_id": tenant, "product_id": {"S": "p-1"} })
}

#[tokio::test]
async fn malformed_records_are_dead_lettered_with_a_reason_and_never_indexed() {
    let cases: Vec<(&str, Batch)> = vec![
        (
            "new image: price: \"abc\" is not an exact decimal amount of at most 28 digits",
            {
                let mut img = good_image();
                img["price"] = serde_json::json!({"S": "abc"});
                with_new_image(img, keys(serde_json::json!({"S": "acme"})))
            },
        ),
        (
            "new image: price: invalid type: boolean `true`, expected money",
            {
                let mut img = good_image();
                img["price"] = serde_json::json!({"BOOL": true});
                with_new_image(img, keys(serde_json::json!({"S": "acme"})))
            },
        ),
        ("new image: missing field `name`", {
            let mut img = good_image();
            img.as_object_mut().unwrap().remove("name");
            with_new_image(img, keys(serde_json::json!({"S": "acme"})))
        }),
        ("new image: stock: ", {
            let mut img = good_image();
            img["stock"] = serde_json::json!({"S": "many"});
            with_new_image(img, keys(serde_json::json!({"S": "acme"})))
        }),
        (
            "new image: created_at: \"yesterday\" is not an RFC 3339 timestamp",
            {
                let mut img = good_image();
                img["created_at"] = serde_json::json!({"S": "yesterday"});
                with_new_image(img, keys(serde_json::json!({"S": "acme"})))
            },
        ),
        (
            "keys: invalid tenant_id: tenant id may only contain lowercase letters, digits and '-' (found '.')",
            { with_new_image(good_image(), keys(serde_json::json!({"S": "../etc"}))) },
        ),
        (
            "keys: tenant_id must be a string",
            with_new_image(good_image(), keys(serde_json::json!({"N": "5"}))),
        ),
        (
            "new image: tenant_id/product_id differ from the record keys",
            {
                let mut img = good_image();
                img["tenant_id"] = serde_json::json!({"S": "other"});
                with_new_image(img, keys(serde_json::json!({"S": "acme"})))
            },
        ),
        // An attribute value of the wrong JSON type (a number's text must be a string):
        // the image is read per record, so the rest of the record still names it.
        (
            "new image: invalid type: integer `10`, expected a string",
            {
                let mut img = good_image();
                img["price"] = serde_json::json!({"N": 10});
                with_new_image(img, keys(serde_json::json!({"S": "acme"})))
            },
        ),
    ];
    for (expected, batch) in cases {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = local(dir.path());
        let report = handle_products(batch, &pipeline).await;
        assert_eq!(
            (
                report.dead_lettered,
                report.applied,
                report.failed_from.as_deref()
            ),
            (1, 0, None),
            "{expected}"
        );
        let letters = lake_objects(dir.path(), "dlq/products/").await;
        assert_eq!(letters.len(), 1, "{expected}");
        assert_eq!(letters[0].0, "dlq/products/x/900.json");
        let letter: serde_json::Value = serde_json::from_str(&letters[0].1).unwrap();
        let reason = letter["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(expected),
            "expected {expected:?}, got {reason:?}"
        );
        assert!(
            letter["record"]["dynamodb"].is_object(),
            "the whole record is kept"
        );
        assert_eq!(
            pipeline
                .search()
                .count(&tenant("acme"), Entity::Products)
                .await
                .unwrap(),
            0
        );
        assert!(
            lake_objects(dir.path(), "lake/").await.is_empty(),
            "{expected}"
        );
        assert!(!dir.path().join("etc").exists() && !dir.path().join("index/etc").exists());
    }
}

#[tokio::test]
async fn insert_then_modify_then_remove_leaves_the_right_index_and_lake_state() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let batch = fixture("products-lifecycle.json");
    let mut records = batch.records.into_iter();
    let acme = tenant("acme");

    let report = handle_products(
        Batch {
            records: vec![records.next().unwrap()],
        },
        &pipeline,
    )
    .await;
    assert_eq!(report.applied, 1);
    let p = pipeline
        .search()
        .get_product(&acme, "p-100")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.doc.price.to_string(), "129.90");
    assert_eq!(p.seq.as_str(), "111100000000000000001");

    handle_products(
        Batch {
            records: vec![records.next().unwrap()],
        },
        &pipeline,
    )
    .await;
    let p = pipeline
        .search()
        .get_product(&acme, "p-100")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (p.doc.price.to_string(), p.doc.stock),
        ("99.95".to_owned(), 40)
    );
    assert_eq!(
        pipeline
            .search()
            .count(&acme, Entity::Products)
            .await
            .unwrap(),
        1
    );

    handle_products(
        Batch {
            records: vec![records.next().unwrap()],
        },
        &pipeline,
    )
    .await;
    assert_eq!(
        pipeline.search().get_product(&acme, "p-100").await.unwrap(),
        None
    );
    assert_eq!(
        pipeline
            .search()
            .count(&acme, Entity::Products)
            .await
            .unwrap(),
        0
    );

    // The lake keeps the whole history: three changes, in order, one object per batch.
    let objects = lake_objects(dir.path(), "lake/products/json/tenant_id=acme/").await;
    assert_eq!(objects.len(), 3);
    let lines: Vec<_> = objects.iter().flat_map(|(_, t)| json_lines(t)).collect();
    let ops: Vec<_> = lines.iter().map(|l| l["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["INSERT", "MODIFY", "REMOVE"]);
    assert_eq!(lines[1]["old_image"]["price"], "129.90");
    assert_eq!(lines[1]["new_image"]["price"], "99.95");
    assert_eq!(lines[2]["new_image"], serde_json::Value::Null);
    assert_eq!(lines[2]["old_image"]["price"], "99.95");
    assert_eq!(
        lines[2]["keys"],
        serde_json::json!({"tenant_id": "acme", "product_id": "p-100"})
    );
    assert_eq!(lines[0]["event_time"], "2025-11-23T09:00:00Z");
    assert!(objects.iter().all(|(k, _)| k.contains("/dt=2025-11-23/")));
}

#[tokio::test]
async fn the_export_of_a_shop_follows_inserts_modifies_and_removes_like_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let mut stream = StreamWriter::new("products");
    let tent = product("acme", "p-1", "Alpine Tent", "100.00");
    let mut repriced = tent.clone();
    repriced.price = Money::parse("89.00").unwrap();
    let lamp = product("acme", "p-2", "Camp Lamp", "20.00");
    let gone = product("acme", "p-3", "Old Stove", "30.00");
    let other = product("globex", "p-1", "Beach Umbrella", "25.00");
    let t = "2025-11-23T09:00:00Z";
    let records = vec![
        product_record(&mut stream, Op::Insert, Some(&tent), None, t),
        product_record(&mut stream, Op::Insert, Some(&lamp), None, t),
        product_record(&mut stream, Op::Insert, Some(&gone), None, t),
        product_record(&mut stream, Op::Insert, Some(&other), None, t),
        product_record(
            &mut stream,
            Op::Modify,
            Some(&repriced),
            Some(&tent),
            "2025-11-24T09:00:00Z",
        ),
        product_record(
            &mut stream,
            Op::Remove,
            None,
            Some(&gone),
            "2025-11-25T09:00:00Z",
        ),
    ];
    let first = batch(records.clone());
    handle_products(first.clone(), &pipeline).await;
    // A replayed batch writes nothing twice.
    handle_products(first, &pipeline).await;
    let exported = current_documents(
        &LocalDirSink::new(dir.path()),
        &tenant("acme"),
        Dataset::ProductsJson,
    )
    .await
    .unwrap();
    let mut indexed = std::collections::BTreeMap::new();
    for id in ["p-1", "p-2", "p-3"] {
        if let Some(s) = pipeline
            .search()
            .get_product(&tenant("acme"), id)
            .await
            .unwrap()
        {
            indexed.insert(id.to_owned(), serde_json::to_value(s.doc).unwrap());
        }
    }
    assert_eq!(exported, indexed);
    assert_eq!(exported.keys().collect::<Vec<_>>(), ["p-1", "p-2"]);
    assert_eq!(exported["p-1"]["price"], "89.00");
}

#[tokio::test]
async fn issue_13_records_of_a_purged_shop_are_dead_lettered_instead_of_recreating_it() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path()).with_purged_refresh(std::time::Duration::ZERO);
    let sink = LocalDirSink::new(dir.path());
    cloudpf_lake::purge::mark_purged(&sink, &tenant("gone"), chrono::Utc::now(), None)
        .await
        .unwrap();
    let mut stream = StreamWriter::new("products");
    let t = "2025-11-23T09:00:00Z";
    let late = product("gone", "p-1", "Alpine Tent", "100.00");
    let kept = product("stays", "p-1", "Camp Lamp", "20.00");
    let report = handle_products(
        batch(vec![
            product_record(&mut stream, Op::Insert, Some(&late), None, t),
            product_record(&mut stream, Op::Insert, Some(&kept), None, t),
        ]),
        &pipeline,
    )
    .await;
    assert_eq!(
        (report.applied, report.dead_lettered, report.failed_from),
        (1, 1, None)
    );
    assert!(
        !dir.path().join("index/gone").exists(),
        "no index was recreated"
    );
    assert!(
        lake_objects(dir.path(), "lake/products/json/tenant_id=gone/")
            .await
            .is_empty()
    );
    assert_eq!(
        lake_objects(dir.path(), "lake/products/json/tenant_id=stays/")
            .await
            .len(),
        1
    );
    let letters = lake_objects(dir.path(), "dlq/").await;
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].1.contains("tenant gone was purged"),
        "{}",
        letters[0].1
    );
}

#[tokio::test]
async fn purchases_land_as_csv_rows_per_line_item_and_as_a_change_log() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let mut stream = StreamWriter::new("purchases");
    let placed = purchase(
        "acme",
        "o-1",
        "2025-11-22T23:30:00-02:00",
        &[("p-1", 2, "19.99"), ("p-2", 1, "5.01")],
    );
    let mut cancelled = placed.clone();
    cancelled.status = PurchaseStatus::Cancelled;
    let records = vec![
        purchase_record(
            &mut stream,
            Op::Insert,
            Some(&placed),
            None,
            "2025-11-23T01:30:00Z",
        ),
        purchase_record(
            &mut stream,
            Op::Modify,
            Some(&cancelled),
            Some(&placed),
            "2025-11-23T02:00:00Z",
        ),
    ];
    let report = handle_purchases(batch(records), &pipeline).await;
    assert_eq!((report.applied, report.failed_from), (1 + 1, None));

    // created_at is 2025-11-23T01:30Z in UTC: the business date partitions the purchase.
    let csv = lake_objects(dir.path(), "lake/purchases/csv/").await;
    assert_eq!(csv.len(), 1);
    assert!(
        csv[0]
            .0
            .starts_with("lake/purchases/csv/tenant_id=acme/dt=2025-11-23/"),
        "{}",
        csv[0].0
    );
    let header = csv[0].1.lines().next().unwrap();
    let quoted: Vec<String> = cloudpf_lake::encode::PURCHASE_CSV_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect();
    assert_eq!(header, quoted.join(","));
    let rows = csv_rows(&csv[0].1);
    assert_eq!(rows.len(), 4, "two line items times two changes");
    let col = |name: &str| {
        cloudpf_lake::encode::PURCHASE_CSV_COLUMNS
            .iter()
            .position(|c| *c == name)
            .unwrap()
    };
    assert_eq!(&rows[0][col("line_total")], "39.98");
    assert_eq!(&rows[0][col("total_amount")], "44.99");
    assert_eq!(&rows[0][col("status")], "paid");
    assert_eq!(&rows[3][col("status")], "cancelled");
    assert_eq!(&rows[3][col("op")], "MODIFY");
    assert_eq!(&rows[0][col("created_at")], "2025-11-23T01:30:00Z");

    let stored = pipeline
        .search()
        .get_purchase(&tenant("acme"), "o-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.doc.status, PurchaseStatus::Cancelled);
    let json = lake_objects(
        dir.path(),
        "lake/purchases/json/tenant_id=acme/dt=2025-11-23/",
    )
    .await;
    assert_eq!(json_lines(&json[0].1).len(), 2);
}

#[tokio::test]
async fn replaying_a_batch_changes_neither_the_index_nor_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let first = handle_products(fixture("products-lifecycle.json"), &pipeline).await;
    assert_eq!((first.applied, first.stale), (3, 0));
    let lake_before = snapshot_files(&dir.path().join("lake"));
    let doc_before = pipeline
        .search()
        .get_product(&tenant("acme"), "p-100")
        .await
        .unwrap();

    let again = handle_products(fixture("products-lifecycle.json"), &pipeline).await;
    assert_eq!(
        (again.applied, again.stale, again.failed_from),
        (0, 3, None)
    );
    assert_eq!(
        snapshot_files(&dir.path().join("lake")),
        lake_before,
        "same objects, same bytes"
    );
    assert_eq!(
        pipeline
            .search()
            .get_product(&tenant("acme"), "p-100")
            .await
            .unwrap(),
        doc_before
    );

    // A fresh process (a new Lambda container) sees the same versions on disk.
    drop(pipeline);
    let restarted = local(dir.path());
    let third = handle_products(fixture("products-lifecycle.json"), &restarted).await;
    assert_eq!((third.applied, third.stale), (0, 3));
}

#[tokio::test]
async fn an_older_sequence_number_delivered_after_a_newer_one_does_not_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let mut stream = StreamWriter::new("products");
    let v1 = product("acme", "p-1", "Camping Stove", "30.00");
    let mut v2 = v1.clone();
    v2.price = Money::parse("35.00").unwrap();
    let old = product_record(
        &mut stream,
        Op::Insert,
        Some(&v1),
        None,
        "2025-11-23T09:00:00Z",
    );
    let new = product_record(
        &mut stream,
        Op::Modify,
        Some(&v2),
        Some(&v1),
        "2025-11-23T09:01:00Z",
    );
    let remove = product_record(
        &mut stream,
        Op::Remove,
        None,
        Some(&v2),
        "2025-11-23T09:02:00Z",
    );

    handle_products(batch(vec![new.clone()]), &pipeline).await;
    let late = handle_products(batch(vec![old.clone()]), &pipeline).await;
    assert_eq!((late.applied, late.stale), (0, 1));
    let p = pipeline
        .search()
        .get_product(&tenant("acme"), "p-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.doc.price.to_string(), "35.00");

    // A delete is remembered too: a late upsert cannot resurrect the product.
    handle_products(batch(vec![remove]), &pipeline).await;
    let late = handle_products(batch(vec![old, new]), &pipeline).await;
    assert_eq!((late.applied, late.stale), (0, 2));
    assert_eq!(
        pipeline
            .search()
            .get_product(&tenant("acme"), "p-1")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn one_tenants_records_never_reach_another_tenants_index_or_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let mut stream = StreamWriter::new("products");
    let a = product("shop-a", "same-id", "Alpine Tent", "100.00");
    let b = product("shop-b", "same-id", "Beach Umbrella", "20.00");
    let records = vec![
        product_record(
            &mut stream,
            Op::Insert,
            Some(&a),
            None,
            "2025-11-23T09:00:00Z",
        ),
        product_record(
            &mut stream,
            Op::Insert,
            Some(&b),
            None,
            "2025-11-23T09:00:00Z",
        ),
    ];
    handle_products(batch(records), &pipeline).await;
    let search = pipeline.search();
    let got_a = search
        .get_product(&tenant("shop-a"), "same-id")
        .await
        .unwrap()
        .unwrap();
    let got_b = search
        .get_product(&tenant("shop-b"), "same-id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got_a.doc.name.as_str(), got_b.doc.name.as_str()),
        ("Alpine Tent", "Beach Umbrella")
    );
    assert_eq!(
        search
            .count(&tenant("shop-a"), Entity::Products)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        search
            .count(&tenant("shop-c"), Entity::Products)
            .await
            .unwrap(),
        0
    );

    for (t, other) in [("shop-a", "Beach"), ("shop-b", "Alpine")] {
        let objects = lake_objects(dir.path(), &format!("lake/products/json/tenant_id={t}/")).await;
        assert_eq!(objects.len(), 1);
        assert!(
            !objects[0].1.contains(other),
            "{t}'s partition holds another tenant's record"
        );
    }
    let mut index_dirs: Vec<_> = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    index_dirs.sort();
    assert_eq!(index_dirs, ["shop-a", "shop-b"]);
}

/// A sink that fails every put while `down` is set, like S3 during an outage.
#[derive(Debug)]
struct FlakySink {
    inner: LocalDirSink,
    down: AtomicBool,
}

#[async_trait]
impl ObjectSink for FlakySink {
    async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable("connection reset".into()));
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

#[tokio::test]
async fn a_lake_outage_fails_the_batch_from_its_first_record_and_a_retry_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(FlakySink {
        inner: LocalDirSink::new(dir.path()),
        down: AtomicBool::new(true),
    });
    let pipeline = Pipeline::new(Arc::new(TantivyEngine::new(dir.path())), sink.clone());

    let report = handle_products(fixture("products-lifecycle.json"), &pipeline).await;
    assert_eq!(report.failed_from.as_deref(), Some("111100000000000000001"));
    let response = serde_json::to_value(report.response()).unwrap();
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "111100000000000000001"}]})
    );
    assert!(lake_objects(dir.path(), "lake/").await.is_empty());

    sink.down.store(false, Ordering::SeqCst);
    let retry = handle_products(fixture("products-lifecycle.json"), &pipeline).await;
    assert_eq!(retry.failed_from, None);
    assert_eq!(
        serde_json::to_value(retry.response()).unwrap(),
        serde_json::json!({"batchItemFailures": []})
    );
    assert_eq!(lake_objects(dir.path(), "lake/products/").await.len(), 1);
    assert_eq!(
        pipeline
            .search()
            .get_product(&tenant("acme"), "p-100")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_dead_letter_that_cannot_be_written_is_retried_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(FlakySink {
        inner: LocalDirSink::new(dir.path()),
        down: AtomicBool::new(true),
    });
    let pipeline = Pipeline::new(Arc::new(TantivyEngine::new(dir.path())), sink);
    let report = handle_products(fixture("aws-example-dynamodb-event.json"), &pipeline).await;
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(
        report.failed_from.as_deref(),
        Some("1405400000000002063282832")
    );
}

#[tokio::test]
async fn issue_10_an_event_time_or_created_at_past_year_9999_is_dead_lettered_and_never_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let mut stream = StreamWriter::new("purchases");
    let good = purchase(
        "acme",
        "o-good",
        "2025-11-23T10:00:00Z",
        &[("p-1", 1, "9.99")],
    );
    let gone = purchase(
        "acme",
        "o-gone",
        "2025-11-23T10:00:00Z",
        &[("p-1", 1, "9.99")],
    );
    let future = purchase(
        "acme",
        "o-future",
        "2025-11-23T10:00:00Z",
        &[("p-1", 1, "9.99")],
    );
    let year_14645 = chrono::DateTime::from_timestamp(399_999_999_999, 0).unwrap();
    let insert = |stream: &mut StreamWriter, p: &cloudpf_model::Purchase| {
        purchase_record(stream, Op::Insert, Some(p), None, "2025-11-23T10:00:00Z")
    };
    let mut records = vec![insert(&mut stream, &good), insert(&mut stream, &gone)];
    // A REMOVE without an old image goes to its event date's partition: here dt=+14645-….
    records.push(stream.record(
        Op::Remove,
        cloudpf_cdc::source::events::purchase_keys(&gone),
        None,
        None,
        year_14645,
    ));
    // Valid RFC 3339 text whose UTC instant falls in the year 10000: dt=+10000-01-01.
    let mut late = insert(&mut stream, &future);
    late.change.new_image.insert(
        "created_at".into(),
        serde_dynamo::AttributeValue::S("9999-12-31T23:00:00-05:00".into()),
    );
    records.push(late);
    let report = handle_purchases(batch(records), &pipeline).await;
    assert_eq!(
        (
            report.applied,
            report.dead_lettered,
            report.failed_from.as_deref()
        ),
        (2, 2, None),
        "a value that can never be written must not be retried forever: {report:?}"
    );
    let letters = lake_objects(dir.path(), "dlq/purchases/").await;
    let reasons: Vec<String> = letters
        .iter()
        .map(|(_, text)| {
            let letter: serde_json::Value = serde_json::from_str(text).unwrap();
            letter["reason"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("ApproximateCreationDateTime: 399999999999 ")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.starts_with(
            "new image: created_at: \"9999-12-31T23:00:00-05:00\" is in the year 10000"
        )),
        "{reasons:?}"
    );
    // The index and the lake took the same changes: o-gone stays, o-future never came.
    let search = pipeline.search();
    assert!(
        search
            .get_purchase(&tenant("acme"), "o-gone")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        search
            .get_purchase(&tenant("acme"), "o-future")
            .await
            .unwrap(),
        None
    );
    let lake = lake_objects(dir.path(), "lake/").await;
    assert!(!lake.is_empty());
    assert!(
        lake.iter()
            .all(|(key, text)| key.contains("/dt=2025-11-23/")
                && !text.contains("REMOVE")
                && !text.contains("o-future")),
        "{:?}",
        lake.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );

    // A product's partition is its event date.
    let mut products = StreamWriter::new("products");
    let lamp = product("acme", "p-lamp", "Lamp", "10.00");
    let record = products.record(
        Op::Insert,
        cloudpf_cdc::source::events::product_keys(&lamp),
        Some(cloudpf_cdc::source::events::product_item(&lamp)),
        None,
        year_14645,
    );
    let report = handle_products(batch(vec![record]), &pipeline).await;
    assert_eq!(
        (
            report.applied,
            report.dead_lettered,
            report.failed_from.as_deref()
        ),
        (0, 1, None),
        "{report:?}"
    );
    assert_eq!(
        search.get_product(&tenant("acme"), "p-lamp").await.unwrap(),
        None
    );
    assert!(lake_objects(dir.path(), "lake/products/").await.is_empty());
}

/// A sink that refuses every put whose key contains `refused`, like an S3 prefix the
/// function may not write.
#[derive(Debug)]
struct RefusingSink {
    inner: LocalDirSink,
    refused: &'static str,
}

#[async_trait]
impl ObjectSink for RefusingSink {
    async fn put(&self, key: &ObjectKey, body: Vec<u8>) -> Result<(), SinkError> {
        if key.as_str().contains(self.refused) {
            return Err(SinkError::Unavailable("access denied".into()));
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

#[tokio::test]
async fn issue_10_a_batch_report_counts_the_lake_objects_written_when_another_one_failed() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Arc::new(RefusingSink {
        inner: LocalDirSink::new(dir.path()),
        refused: "/dt=2025-11-24/",
    });
    let pipeline = Pipeline::new(Arc::new(TantivyEngine::new(dir.path())), sink);
    let mut stream = StreamWriter::new("purchases");
    let ok = purchase("acme", "o-1", "2025-11-23T10:00:00Z", &[("p-1", 1, "9.99")]);
    let refused = purchase("acme", "o-2", "2025-11-24T10:00:00Z", &[("p-1", 1, "9.99")]);
    let records = vec![
        purchase_record(
            &mut stream,
            Op::Insert,
            Some(&ok),
            None,
            "2025-11-23T10:00:00Z",
        ),
        purchase_record(
            &mut stream,
            Op::Insert,
            Some(&refused),
            None,
            "2025-11-24T10:00:00Z",
        ),
    ];
    let second_seq = records[1].change.sequence_number.clone();
    let report = handle_purchases(batch(records), &pipeline).await;
    assert_eq!(report.failed_from, second_seq);
    let written = lake_objects(dir.path(), "lake/").await;
    assert_eq!(written.len(), 2, "the CSV and the change log of 2025-11-23");
    assert_eq!(report.lake_objects, written.len());
}

#[tokio::test]
async fn issue_10_dead_letters_of_a_recreated_stream_do_not_overwrite_the_old_streams() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = local(dir.path());
    let mut img = good_image();
    img["price"] = serde_json::json!({"S": "call us"});
    // The same table and sequence number on two streams: the table's stream was
    // disabled and enabled again, and the new stream's numbers start over.
    for (label, name) in [
        ("2025-01-01T00:00:00.000", "Lamp"),
        ("2026-06-01T12:30:00.000", "Desk"),
    ] {
        img["name"] = serde_json::json!({"S": name});
        let mut value = serde_json::json!({
            "eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "eventSourceARN": format!("arn:aws:dynamodb:eu-west-1:1:table/products/stream/{label}"),
            "dynamodb": {
                "ApproximateCreationDateTime": 1763888400,
                "Keys": keys(serde_json::json!({"S": "acme"})), "NewImage": img,
                "SequenceNumber": "900", "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"
            }
        });
        let batch = Batch::from_json(serde_json::json!({ "Records": [value.take()] })).unwrap();
        let report = handle_products(batch, &pipeline).await;
        assert_eq!(report.dead_lettered, 1);
    }
    let letters = lake_objects(dir.path(), "dlq/products/").await;
    let keys: Vec<&str> = letters.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "dlq/products/2025-01-01T00-00-00.000/900.json",
            "dlq/products/2026-06-01T12-30-00.000/900.json"
        ]
    );
    assert!(letters[0].1.contains("Lamp") && letters[1].1.contains("Desk"));
}
