//! Backfill (issue #13) over the wire against moto server (`./tests/run` starts it): items
//! written before a table's stream was read reach the index and the lake as the handlers
//! would have put them there, whatever the stream does meanwhile.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ExportFormat, ExportStatus, KeySchemaElement,
    KeyType, PointInTimeRecoverySpecification, ScalarAttributeType, StreamSpecification,
    StreamViewType,
};
use cloudpf_aws::{
    Backfill, BackfillConfig, BackfillFrom, BackfillReport, Poller, PollerConfig, tables,
};
use cloudpf_cdc::{Batch, Pipeline, handle_products, handle_purchases};
use cloudpf_lake::{ObjectKey, ObjectSink};
use cloudpf_model::{Entity, Money, Product, TenantId, dynamo};

/// A table's items by tenant and key.
type Items = BTreeMap<(String, String), HashMap<String, AttributeValue>>;
use cloudpf_search::{SearchEngine, TantivyEngine};
use cloudpf_testkit::{moto_endpoint, unique};
use common::{aws, bucket, gunzip, objects, same_objects};

/// A table as a shop had it before adopting cloudpf: no stream yet.
async fn table_without_stream(shared: &SdkConfig, name: &str, sort_key: &str) {
    let ddb = aws_sdk_dynamodb::Client::new(shared);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(attr("tenant_id"))
        .attribute_definitions(attr(sort_key))
        .key_schema(key("tenant_id", KeyType::Hash))
        .key_schema(key(sort_key, KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

/// Step one of the onboarding runbook: the stream is enabled before the backfill.
async fn enable_stream(shared: &SdkConfig, name: &str) {
    aws_sdk_dynamodb::Client::new(shared)
        .update_table()
        .table_name(name)
        .stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

fn history() -> cloudpf_demo::History {
    let tenants = [
        TenantId::parse("backfill-a").unwrap(),
        TenantId::parse("backfill-b").unwrap(),
    ];
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
        .unwrap()
        .to_utc();
    cloudpf_demo::generate_history(17, &tenants, 24, 20, now)
}

/// Writes a recorded history into the tables, as the shop's application did: they hold
/// its final state.
async fn write_history(
    shared: &SdkConfig,
    history: &cloudpf_demo::History,
    products: &str,
    purchases: &str,
) {
    for batch in &history.product_batches {
        tables::write_records(shared, products, &batch.records)
            .await
            .unwrap();
    }
    for batch in &history.purchase_batches {
        tables::write_records(shared, purchases, &batch.records)
            .await
            .unwrap();
    }
}

/// The oracle: the index the handlers build from the whole history.
async fn index_of_history(history: &cloudpf_demo::History) -> (tempfile::TempDir, TantivyEngine) {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::local(dir.path());
    for batch in &history.product_batches {
        let report = handle_products(Batch::from_event(batch.clone()), &pipeline).await;
        assert_eq!(report.failed_from, None);
    }
    for batch in &history.purchase_batches {
        let report = handle_purchases(Batch::from_event(batch.clone()), &pipeline).await;
        assert_eq!(report.failed_from, None);
    }
    pipeline.search().flush().await.unwrap();
    drop(pipeline);
    let engine = TantivyEngine::new(dir.path());
    (dir, engine)
}

fn config(
    table: &str,
    entity: Entity,
    from: BackfillFrom,
    dir: &std::path::Path,
) -> BackfillConfig {
    BackfillConfig {
        table: table.to_owned(),
        entity,
        from,
        tenants: Vec::new(),
        page_size: 7,
        parallel: 3,
        checkpoint_dir: dir.join("checkpoints"),
    }
}

async fn backfill(
    shared: &SdkConfig,
    pipeline: &Pipeline,
    config: BackfillConfig,
) -> BackfillReport {
    let report = Backfill::new(shared, pipeline.clone(), config)
        .run(&|_, _| {})
        .await
        .unwrap();
    assert!(report.failed_parts.is_empty(), "{report:?}");
    report
}

/// Every current item of a table, by tenant and key, read straight from DynamoDB.
async fn table_items(shared: &SdkConfig, table: &str, key: &str) -> Items {
    let ddb = aws_sdk_dynamodb::Client::new(shared);
    let mut out = BTreeMap::new();
    let mut start = None;
    loop {
        let page = ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in page.items() {
            let s = |k: &str| item[k].as_s().unwrap().clone();
            out.insert((s("tenant_id"), s(key)), item.clone());
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return out;
        }
    }
}

fn product_of(item: &HashMap<String, AttributeValue>) -> Product {
    decoded(item).unwrap()
}

/// The product an item holds, if the handlers accept it: the demo's history keeps a few
/// hostile items (a price of "call us") that they dead-letter.
fn decoded(item: &HashMap<String, AttributeValue>) -> Option<Product> {
    let p: Product = dynamo::from_item(serde_dynamo::Item::from(item.clone())).ok()?;
    p.validate().is_ok().then_some(p)
}

/// The items the handlers accept, and how many they dead-letter.
fn valid(items: &Items) -> (Items, u64) {
    let good: BTreeMap<_, _> = items
        .iter()
        .filter(|(_, i)| decoded(i).is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let bad = (items.len() - good.len()) as u64;
    (good, bad)
}

/// The products of the index for every key of `keys`, as the index returns them.
async fn indexed_products(
    engine: &dyn SearchEngine,
    keys: &[(String, String)],
) -> Vec<Option<Product>> {
    let mut out = Vec::new();
    for (tenant, id) in keys {
        let tenant = TenantId::parse(tenant).unwrap();
        out.push(
            engine
                .get_product(&tenant, id)
                .await
                .unwrap()
                .map(|s| s.doc),
        );
    }
    out
}

/// The price the index holds for a product.
async fn indexed_price(engine: &dyn SearchEngine, (tenant, id): &(String, String)) -> Money {
    let tenant = TenantId::parse(tenant).unwrap();
    engine
        .get_product(&tenant, id)
        .await
        .unwrap()
        .unwrap()
        .doc
        .price
}

/// Writes a product into its table, as the shop's application would.
async fn put_product(ddb: &aws_sdk_dynamodb::Client, table: &str, p: &Product) {
    ddb.put_item()
        .table_name(table)
        .set_item(Some(dynamo::product_item(p).into()))
        .send()
        .await
        .unwrap();
}

/// Deletes a product from its table, as the shop's application would.
async fn delete_product(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    (tenant, id): &(String, String),
) {
    let key = HashMap::from([
        ("tenant_id".to_owned(), AttributeValue::S(tenant.clone())),
        ("product_id".to_owned(), AttributeValue::S(id.clone())),
    ]);
    ddb.delete_item()
        .table_name(table)
        .set_key(Some(key))
        .send()
        .await
        .unwrap();
}

/// Every line of the products change log in the lake, with the object it is in.
async fn product_log(sink: &dyn ObjectSink) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for key in sink.list("lake/products/json/").await.unwrap() {
        for line in gunzip(&sink.get(&key).await.unwrap().unwrap()).lines() {
            out.push((key.to_string(), serde_json::from_str(line).unwrap()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_written_before_its_stream_was_read_backfills_to_the_state_its_history_reaches() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let (products, purchases) = (unique("products"), unique("purchases"));
    table_without_stream(&shared, &products, "product_id").await;
    table_without_stream(&shared, &purchases, "purchase_id").await;
    let history = history();
    write_history(&shared, &history, &products, &purchases).await;
    enable_stream(&shared, &products).await;
    enable_stream(&shared, &purchases).await;

    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new(
        Arc::new(TantivyEngine::new(dir.path())),
        Arc::new(s3.clone()),
    );
    let scan = BackfillFrom::Table { segments: 3 };
    let first_products = backfill(
        &shared,
        &pipeline,
        config(&products, Entity::Products, scan.clone(), dir.path()),
    )
    .await;
    let first_purchases = backfill(
        &shared,
        &pipeline,
        config(&purchases, Entity::Purchases, scan.clone(), dir.path()),
    )
    .await;
    pipeline.search().flush().await.unwrap();

    // The oracle: the handlers fed the whole history.
    let (_oracle_dir, oracle) = index_of_history(&history).await;
    let all_products = table_items(&shared, &products, "product_id").await;
    let (product_items, hostile) = valid(&all_products);
    assert!(hostile > 0, "the demo history keeps a hostile product");
    let purchase_items = table_items(&shared, &purchases, "purchase_id").await;
    assert_eq!(first_products.items, all_products.len() as u64);
    assert_eq!(
        (first_products.applied, first_products.dead_lettered),
        (product_items.len() as u64, hostile),
        "hostile items are dead-lettered, like their stream records"
    );
    assert_eq!(
        first_purchases.applied + first_purchases.dead_lettered,
        purchase_items.len() as u64
    );
    for tenant in ["backfill-a", "backfill-b"] {
        let t = TenantId::parse(tenant).unwrap();
        for entity in Entity::ALL {
            assert_eq!(
                pipeline.search().count(&t, entity).await.unwrap(),
                oracle.count(&t, entity).await.unwrap(),
                "{tenant} {entity}"
            );
        }
    }
    let keys: Vec<_> = product_items.keys().cloned().collect();
    assert_eq!(
        indexed_products(pipeline.search().as_ref(), &keys).await,
        indexed_products(&oracle, &keys).await,
        "every backfilled product is the one the history ends with"
    );
    for (tenant, id) in purchase_items.keys() {
        let t = TenantId::parse(tenant).unwrap();
        assert_eq!(
            pipeline
                .search()
                .get_purchase(&t, id)
                .await
                .unwrap()
                .map(|s| s.doc),
            oracle.get_purchase(&t, id).await.unwrap().map(|s| s.doc),
            "purchase {tenant}/{id}"
        );
    }
    // Searchable, not only stored.
    let some = product_of(product_items.values().next().unwrap());
    let word = some.name.split_whitespace().next().unwrap().to_owned();
    let query = cloudpf_search::ProductQuery {
        text: word,
        limit: 10,
        ..Default::default()
    };
    assert!(
        pipeline
            .search()
            .search_products(&some.tenant_id, &query)
            .await
            .unwrap()
            .total
            > 0
    );

    // The lake holds each backfilled item once, as an INSERT.
    let log = product_log(&s3).await;
    assert_eq!(log.len(), product_items.len());
    assert!(log.iter().all(|(_, l)| l["op"] == "INSERT"));

    // Running it again changes nothing: every item is already there, and each page is
    // rewritten under the same lake keys with the same bytes.
    let lake_before = objects(&s3).await;
    let again = backfill(
        &shared,
        &pipeline,
        config(&products, Entity::Products, scan.clone(), dir.path()),
    )
    .await;
    assert_eq!(
        (again.applied, again.stale, again.dead_lettered),
        (0, product_items.len() as u64, hostile)
    );
    same_objects(&objects(&s3).await, &lake_before, "a second run");

    // A change on the stream afterwards wins over the backfilled copy, and a backfill
    // after it does not undo it.
    let (changed_key, item) = product_items.iter().next().unwrap();
    let mut changed = product_of(item);
    changed.price = Money::parse("999.99").unwrap();
    let ddb = aws_sdk_dynamodb::Client::new(&shared);
    put_product(&ddb, &products, &changed).await;
    let poller = Poller::new(
        &shared,
        pipeline.clone(),
        PollerConfig::new(&products, &purchases, dir.path().join("checkpoints")),
    );
    let polled = poller.run_until_idle().await.unwrap();
    assert_eq!(
        polled.applied, 1,
        "only the change made after the stream was enabled is on it"
    );
    backfill(
        &shared,
        &pipeline,
        config(&products, Entity::Products, scan, dir.path()),
    )
    .await;
    assert_eq!(
        indexed_price(pipeline.search().as_ref(), changed_key).await,
        changed.price
    );

    // A backfill of one shop reads only that shop (a query, not a scan).
    let fresh = tempfile::tempdir().unwrap();
    let local = Pipeline::local(fresh.path());
    let mut one = config(
        &products,
        Entity::Products,
        BackfillFrom::Table { segments: 1 },
        fresh.path(),
    );
    one.tenants = vec![TenantId::parse("backfill-b").unwrap()];
    let report = backfill(&shared, &local, one).await;
    let b_items = all_products
        .keys()
        .filter(|(t, _)| t == "backfill-b")
        .count() as u64;
    assert_eq!(report.items, b_items);
    assert_eq!(
        local
            .search()
            .count(&TenantId::parse("backfill-a").unwrap(), Entity::Products)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_racing_live_updates_and_removals_ends_with_the_newest_values() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let (products, purchases) = (unique("products"), unique("purchases"));
    table_without_stream(&shared, &products, "product_id").await;
    tables::ensure_table(&shared, &purchases, "purchase_id")
        .await
        .unwrap();
    let history = history();
    for batch in &history.product_batches {
        tables::write_records(&shared, &products, &batch.records)
            .await
            .unwrap();
    }
    enable_stream(&shared, &products).await;
    let (before, _) = valid(&table_items(&shared, &products, "product_id").await);

    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new(
        Arc::new(TantivyEngine::new(dir.path())),
        Arc::new(s3.clone()),
    );
    let poller = Poller::new(
        &shared,
        pipeline.clone(),
        PollerConfig::new(&products, &purchases, dir.path().join("poller")),
    );
    let writes_done = AtomicBool::new(false);
    // The shop keeps selling while it is onboarded: every third product is repriced, every
    // seventh removed, while the backfill reads one item per page and the stream is polled.
    let live = async {
        let ddb = aws_sdk_dynamodb::Client::new(&shared);
        for (n, (key, item)) in before.iter().enumerate() {
            if n % 7 == 0 {
                delete_product(&ddb, &products, key).await;
            } else if n % 3 == 0 {
                let mut p = product_of(item);
                p.price = Money::parse(&format!("{}.01", 500 + n)).unwrap();
                put_product(&ddb, &products, &p).await;
            }
            tokio::task::yield_now().await;
        }
        writes_done.store(true, Ordering::SeqCst);
    };
    let stream = async {
        while !writes_done.load(Ordering::SeqCst) {
            poller.pass().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut racing = config(
        &products,
        Entity::Products,
        BackfillFrom::Table { segments: 2 },
        dir.path(),
    );
    racing.page_size = 1;
    racing.parallel = 2;
    let (report, (), ()) = tokio::join!(backfill(&shared, &pipeline, racing), live, stream);
    assert!(report.items > 0);
    poller.run_until_idle().await.unwrap();
    pipeline.search().flush().await.unwrap();

    let after = table_items(&shared, &products, "product_id").await;
    assert!(after.len() < before.len(), "some products were removed");
    let keys: Vec<_> = before.keys().cloned().collect();
    let want: Vec<Option<Product>> = keys
        .iter()
        .map(|k| after.get(k).and_then(decoded))
        .collect();
    assert_eq!(
        indexed_products(pipeline.search().as_ref(), &keys).await,
        want
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_backfill_resumes_where_it_stopped_without_duplicates() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let products = unique("products");
    table_without_stream(&shared, &products, "product_id").await;
    let history = history();
    for batch in &history.product_batches {
        tables::write_records(&shared, &products, &batch.records)
            .await
            .unwrap();
    }
    let items = table_items(&shared, &products, "product_id").await;

    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new(
        Arc::new(TantivyEngine::new(dir.path())),
        Arc::new(s3.clone()),
    );
    let mut cfg = config(
        &products,
        Entity::Products,
        BackfillFrom::Table { segments: 2 },
        dir.path(),
    );
    cfg.page_size = 4;
    cfg.parallel = 1;
    let interrupted = Backfill::new(&shared, pipeline.clone(), cfg.clone());
    let first = interrupted
        .run(&|done, _| {
            if done >= 8 {
                interrupted.stop();
            }
        })
        .await
        .unwrap();
    assert!(first.stopped);
    assert!(
        first.items >= 8 && first.items < items.len() as u64,
        "{first:?}"
    );

    let mut progress = Vec::new();
    let seen = std::sync::Mutex::new(&mut progress);
    let second = Backfill::new(&shared, pipeline.clone(), cfg)
        .run(&|done, _| seen.lock().unwrap().push(done))
        .await
        .unwrap();
    assert!(
        !second.stopped && second.failed_parts.is_empty(),
        "{second:?}"
    );
    assert_eq!(second.parts_resumed, 1, "{second:?}");
    assert_eq!(
        first.items + second.items,
        items.len() as u64,
        "no item read twice"
    );
    assert_eq!(
        progress.first(),
        Some(&first.items),
        "progress goes on from where it stopped"
    );
    pipeline.search().flush().await.unwrap();

    let mut per_key: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, line) in product_log(&s3).await {
        let key = (
            line["keys"]["tenant_id"].as_str().unwrap().to_owned(),
            line["keys"]["product_id"].as_str().unwrap().to_owned(),
        );
        *per_key.entry(key).or_default() += 1;
    }
    let (good, _) = valid(&items);
    assert_eq!(
        per_key.keys().cloned().collect::<Vec<_>>(),
        good.keys().cloned().collect::<Vec<_>>()
    );
    assert!(
        per_key.values().all(|n| *n == 1),
        "each item is in the lake once"
    );
    let keys: Vec<_> = good.keys().cloned().collect();
    assert!(
        indexed_products(pipeline.search().as_ref(), &keys)
            .await
            .iter()
            .all(Option::is_some)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_in_time_export_backfills_and_never_undoes_what_the_stream_changed_since() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let exports = bucket(&shared).await;
    let (products, purchases) = (unique("products"), unique("purchases"));
    tables::ensure_table(&shared, &products, "product_id")
        .await
        .unwrap();
    tables::ensure_table(&shared, &purchases, "purchase_id")
        .await
        .unwrap();
    let history = history();
    for batch in &history.product_batches {
        tables::write_records(&shared, &products, &batch.records)
            .await
            .unwrap();
    }
    let all_exported = table_items(&shared, &products, "product_id").await;
    let (exported, hostile) = valid(&all_exported);

    // ExportTableToPointInTime (moto writes the data file; the manifests are written here
    // as DynamoDB writes them, since moto does not).
    let ddb = aws_sdk_dynamodb::Client::new(&shared);
    ddb.update_continuous_backups()
        .table_name(&products)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let arn = ddb
        .describe_table()
        .table_name(&products)
        .send()
        .await
        .unwrap()
        .table()
        .unwrap()
        .table_arn()
        .unwrap()
        .to_owned();
    let export = ddb
        .export_table_to_point_in_time()
        .table_arn(arn)
        .s3_bucket(exports.bucket())
        .s3_prefix("shop")
        .export_format(ExportFormat::DynamodbJson)
        .send()
        .await
        .unwrap();
    let export_arn = export
        .export_description()
        .unwrap()
        .export_arn()
        .unwrap()
        .to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let d = ddb
            .describe_export()
            .export_arn(&export_arn)
            .send()
            .await
            .unwrap();
        match d.export_description().unwrap().export_status() {
            Some(ExportStatus::Completed) => break,
            Some(ExportStatus::Failed) => panic!("{d:?}"),
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "export did not complete"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let data = exports.list("shop/AWSDynamoDB/").await.unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    let data_key = data[0].to_string();
    let dir_key = data_key[..data_key.find("data/").unwrap()].to_owned();
    let summary = serde_json::json!({
        "version": "2020-06-30",
        "exportTime": "2026-11-21T08:00:00Z",
        "s3Bucket": exports.bucket(),
        "s3Prefix": "shop",
        "manifestFilesS3Key": format!("{dir_key}manifest-files.json"),
        "itemCount": all_exported.len(),
        "outputFormat": "DYNAMODB_JSON",
    });
    let files = serde_json::json!({"itemCount": all_exported.len(), "md5Checksum": "", "etag": "", "dataFileS3Key": data_key});
    let put = |name: &str, body: String| {
        let key = ObjectKey::parse(&format!("{dir_key}{name}")).unwrap();
        let exports = exports.clone();
        async move { exports.put(&key, body.into_bytes()).await.unwrap() }
    };
    put("manifest-summary.json", summary.to_string()).await;
    put("manifest-files.json", format!("{files}\n")).await;

    // After the export, the shop changes a price and removes a product; the stream carries
    // both and the handlers apply them before the backfill reads the (older) export.
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new(
        Arc::new(TantivyEngine::new(dir.path())),
        Arc::new(s3.clone()),
    );
    let mut entries = exported.iter();
    let (repriced_key, item) = entries.next().unwrap();
    let mut repriced = product_of(item);
    repriced.price = Money::parse("1234.50").unwrap();
    put_product(&ddb, &products, &repriced).await;
    let (removed_key, _) = entries.next().unwrap();
    delete_product(&ddb, &products, removed_key).await;
    let poller = Poller::new(
        &shared,
        pipeline.clone(),
        PollerConfig::new(&products, &purchases, dir.path().join("poller")),
    );
    poller.run_until_idle().await.unwrap();

    let from = BackfillFrom::Export {
        store: Arc::new(exports.clone()),
        dir: dir_key.clone(),
        location: format!("s3://{}/{dir_key}", exports.bucket()),
    };
    let report = backfill(
        &shared,
        &pipeline,
        config(&products, Entity::Products, from, dir.path()),
    )
    .await;
    assert_eq!(report.items, all_exported.len() as u64);
    assert_eq!(report.dead_lettered, hostile);
    pipeline.search().flush().await.unwrap();

    let now = table_items(&shared, &products, "product_id").await;
    let keys: Vec<_> = exported.keys().cloned().collect();
    let want: Vec<Option<Product>> = keys.iter().map(|k| now.get(k).and_then(decoded)).collect();
    assert_eq!(
        indexed_products(pipeline.search().as_ref(), &keys).await,
        want
    );
    assert_eq!(
        indexed_price(pipeline.search().as_ref(), repriced_key).await,
        repriced.price
    );
    assert!(
        pipeline
            .search()
            .get_product(&TenantId::parse(&removed_key.0).unwrap(), &removed_key.1)
            .await
            .unwrap()
            .is_none()
    );
}
