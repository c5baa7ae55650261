//! The AWS path over the wire against moto server (`./tests/run` starts it and sets
//! `AWS_ENDPOINT_URL`): the S3 sink, and the stream poller end to end.
#![allow(clippy::unwrap_used)] // a test that cannot set itself up should fail loudly

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use cloudpf_aws::{PollReport, Poller, PollerConfig, S3Sink, tables};
use cloudpf_cdc::{Batch, Pipeline, handle_products, handle_purchases};
use cloudpf_lake::{LocalDirSink, ObjectSink};
use cloudpf_model::{Money, Product, Purchase, PurchaseStatus, TenantId, dynamo};
use cloudpf_search::Entity;
use cloudpf_search::{SearchEngine, TantivyEngine};
use cloudpf_testkit::{moto_endpoint, unique};
use common::{aws, bucket, gunzip, objects, same_objects};

fn fixture(name: &str) -> Batch {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    Batch::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_sink_writes_the_local_sinks_keys_and_bytes_and_a_retry_overwrites() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let (local_dir, s3_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let local = Pipeline::local(local_dir.path());
    let remote = Pipeline::new(
        Arc::new(TantivyEngine::new(s3_dir.path())),
        Arc::new(s3.clone()),
    );
    for p in [&local, &remote] {
        assert_eq!(
            handle_products(fixture("products-lifecycle.json"), p)
                .await
                .failed_from,
            None
        );
        assert_eq!(
            handle_products(fixture("aws-example-dynamodb-event.json"), p)
                .await
                .failed_from,
            None
        );
    }
    let local_objects = objects(&LocalDirSink::new(local_dir.path())).await;
    let s3_objects = objects(&s3).await;
    assert!(
        local_objects
            .iter()
            .any(|(k, _)| k.starts_with("lake/products/json/tenant_id=acme/dt=2025-11-23/"))
    );
    assert!(
        local_objects
            .iter()
            .any(|(k, _)| k.starts_with("dlq/products/"))
    );
    same_objects(&s3_objects, &local_objects, "S3 against the local lake");

    let retry = handle_products(fixture("products-lifecycle.json"), &remote).await;
    assert_eq!(retry.failed_from, None);
    same_objects(
        &objects(&s3).await,
        &local_objects,
        "a retried batch overwrites its own objects",
    );

    let head = s3
        .client()
        .head_object()
        .bucket(s3.bucket())
        .key(&local_objects[0].0)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );
}

async fn create_table(shared: &SdkConfig, name: &str, sort_key: &str) {
    tables::ensure_table(shared, name, sort_key).await.unwrap();
}

fn sdk_item(item: serde_dynamo::Item) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    item.into()
}

async fn put_product(ddb: &aws_sdk_dynamodb::Client, table: &str, p: &Product) {
    ddb.put_item()
        .table_name(table)
        .set_item(Some(sdk_item(dynamo::product_item(p))))
        .send()
        .await
        .unwrap();
}

async fn put_purchase(ddb: &aws_sdk_dynamodb::Client, table: &str, p: &Purchase) {
    ddb.put_item()
        .table_name(table)
        .set_item(Some(sdk_item(dynamo::purchase_item(p))))
        .send()
        .await
        .unwrap();
}

fn catalog() -> (Vec<Product>, Vec<Purchase>) {
    let tenant = TenantId::parse("moto-shop").unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let history = cloudpf_demo::generate_history(3, std::slice::from_ref(&tenant), 4, 0, now);
    let products = history.catalogs[0].products.clone();
    let purchase = |id: &str, p: &Product, status| Purchase {
        tenant_id: tenant.clone(),
        purchase_id: id.to_owned(),
        customer_id: "c-1".to_owned(),
        items: vec![cloudpf_model::LineItem {
            product_id: p.product_id.clone(),
            name: p.name.clone(),
            quantity: 2,
            unit_price: p.price,
        }],
        total_amount: p.price.times(2).unwrap(),
        currency: p.currency,
        status,
        payment_method: "card".to_owned(),
        shipping_country: "DE".to_owned(),
        shipping_city: "Berlin".to_owned(),
        created_at: cloudpf_model::Timestamp::parse("2026-10-30T09:00:00Z").unwrap(),
        updated_at: None,
    };
    let purchases = vec![
        purchase("o-1", &products[0], PurchaseStatus::Paid),
        purchase("o-2", &products[1], PurchaseStatus::Placed),
    ];
    (products, purchases)
}

async fn poll(
    shared: &SdkConfig,
    dir: &std::path::Path,
    s3: &S3Sink,
    products: &str,
    purchases: &str,
) -> PollReport {
    let pipeline = Pipeline::new(Arc::new(TantivyEngine::new(dir)), Arc::new(s3.clone()));
    let poller = Poller::new(
        shared,
        pipeline,
        PollerConfig::new(products, purchases, dir.join("checkpoints")),
    );
    poller.run_until_idle().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_applies_inserts_modifies_and_removes_once_even_across_a_restart() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let (products_table, purchases_table) = (unique("products"), unique("purchases"));
    create_table(&shared, &products_table, "product_id").await;
    create_table(&shared, &purchases_table, "purchase_id").await;
    let ddb = aws_sdk_dynamodb::Client::new(&shared);
    let (products, purchases) = catalog();
    for p in &products {
        put_product(&ddb, &products_table, p).await;
    }
    let mut repriced = products[0].clone();
    repriced.price = Money::parse("12.34").unwrap();
    put_product(&ddb, &products_table, &repriced).await;
    let key = |p: &Product| {
        HashMap::from([
            (
                "tenant_id".to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S(p.tenant_id.to_string()),
            ),
            (
                "product_id".to_owned(),
                aws_sdk_dynamodb::types::AttributeValue::S(p.product_id.clone()),
            ),
        ])
    };
    ddb.delete_item()
        .table_name(&products_table)
        .set_key(Some(key(&products[3])))
        .send()
        .await
        .unwrap();
    for p in &purchases {
        put_purchase(&ddb, &purchases_table, p).await;
    }
    let mut cancelled = purchases[1].clone();
    cancelled.status = PurchaseStatus::Cancelled;
    put_purchase(&ddb, &purchases_table, &cancelled).await;

    let dir = tempfile::tempdir().unwrap();
    let first = poll(&shared, dir.path(), &s3, &products_table, &purchases_table).await;
    assert_eq!(
        (
            first.records,
            first.applied,
            first.dead_lettered,
            first.failed_batches
        ),
        (9, 9, 0, 0),
        "{first:?}"
    );

    let engine = TantivyEngine::new(dir.path());
    let tenant = TenantId::parse("moto-shop").unwrap();
    assert_eq!(
        engine
            .get_product(&tenant, &products[0].product_id)
            .await
            .unwrap()
            .unwrap()
            .doc
            .price
            .to_string(),
        "12.34"
    );
    assert_eq!(
        engine
            .get_product(&tenant, &products[3].product_id)
            .await
            .unwrap(),
        None,
        "the REMOVE reached the index"
    );
    assert_eq!(
        engine
            .get_purchase(&tenant, "o-2")
            .await
            .unwrap()
            .unwrap()
            .doc
            .status,
        PurchaseStatus::Cancelled
    );
    drop(engine);

    let lake = objects(&s3).await;
    let product_lines: Vec<serde_json::Value> = lake
        .iter()
        .filter(|(k, _)| k.starts_with("lake/products/json/tenant_id=moto-shop/"))
        .flat_map(|(_, b)| {
            gunzip(b)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let ops: Vec<&str> = product_lines
        .iter()
        .map(|l| l["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops.iter().filter(|o| **o == "INSERT").count(), 4);
    assert_eq!(ops.iter().filter(|o| **o == "MODIFY").count(), 1);
    assert_eq!(ops.iter().filter(|o| **o == "REMOVE").count(), 1);
    let csv: String = lake
        .iter()
        .filter(|(k, _)| k.starts_with("lake/purchases/csv/tenant_id=moto-shop/dt=2026-10-30/"))
        .map(|(_, b)| gunzip(b))
        .collect();
    assert!(
        csv.contains(r#","cancelled","#) && csv.contains(r#","paid","#),
        "{csv}"
    );

    // A restarted poller resumes from its checkpoints: nothing is read, nothing written.
    let again = poll(&shared, dir.path(), &s3, &products_table, &purchases_table).await;
    assert_eq!(again, PollReport::default());
    same_objects(&objects(&s3).await, &lake, "after a restart");

    // And a new change after the restart is applied exactly once.
    let mut fresh = products[1].clone();
    fresh.product_id = "p-new".to_owned();
    put_product(&ddb, &products_table, &fresh).await;
    let after = poll(&shared, dir.path(), &s3, &products_table, &purchases_table).await;
    assert_eq!((after.records, after.applied), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_written_to_dynamodb_reaches_the_index_as_if_fed_to_the_handlers() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let (products_table, purchases_table) = (unique("products"), unique("purchases"));
    for _ in 0..2 {
        // Creating tables that exist is fine: `cloudpf seed` runs again on every start.
        create_table(&shared, &products_table, "product_id").await;
        create_table(&shared, &purchases_table, "purchase_id").await;
    }
    let tenant = TenantId::parse("seeded-shop").unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let history = cloudpf_demo::generate_history(7, std::slice::from_ref(&tenant), 30, 20, now);
    for (table, batches) in [
        (&products_table, &history.product_batches),
        (&purchases_table, &history.purchase_batches),
    ] {
        for event in batches {
            tables::write_records(&shared, table, &event.records)
                .await
                .unwrap();
        }
    }
    let through_streams = tempfile::tempdir().unwrap();
    let report = poll(
        &shared,
        through_streams.path(),
        &s3,
        &products_table,
        &purchases_table,
    )
    .await;

    // The same history fed straight to the handlers, as `cloudpf demo` does. The demo
    // holds one malformed product on purpose: both paths dead-letter it.
    let direct = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::local(direct.path());
    let mut dead_lettered = 0;
    for event in &history.product_batches {
        dead_lettered += handle_products(Batch::from_event(event.clone()), &pipeline)
            .await
            .dead_lettered;
    }
    for event in &history.purchase_batches {
        dead_lettered += handle_purchases(Batch::from_event(event.clone()), &pipeline)
            .await
            .dead_lettered;
    }
    assert_eq!(
        (report.dead_lettered, report.failed_batches),
        (dead_lettered, 0),
        "{report:?}"
    );
    let streamed = TantivyEngine::new(through_streams.path());
    for entity in [Entity::Products, Entity::Purchases] {
        let want = pipeline.search().count(&tenant, entity).await.unwrap();
        assert!(want > 0, "{entity}");
        assert_eq!(
            streamed.count(&tenant, entity).await.unwrap(),
            want,
            "{entity}"
        );
    }
    let product = &history.catalogs[0].products[0];
    let want = pipeline
        .search()
        .get_product(&tenant, &product.product_id)
        .await
        .unwrap()
        .map(|s| s.doc);
    let got = streamed
        .get_product(&tenant, &product.product_id)
        .await
        .unwrap()
        .map(|s| s.doc);
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_10_a_missing_products_table_does_not_stop_the_purchases_stream_from_being_polled() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    // The products table is never created: every pass fails on it.
    let (products_table, purchases_table) = (unique("missing"), unique("purchases"));
    create_table(&shared, &purchases_table, "purchase_id").await;
    let ddb = aws_sdk_dynamodb::Client::new(&shared);
    let (_, purchases) = catalog();
    for p in &purchases {
        put_purchase(&ddb, &purchases_table, p).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::new(
        Arc::new(TantivyEngine::new(dir.path())),
        Arc::new(s3.clone()),
    );
    let poller = Poller::new(
        &shared,
        pipeline,
        PollerConfig::new(
            &products_table,
            &purchases_table,
            dir.path().join("checkpoints"),
        ),
    );
    let report = poller.pass().await;
    assert_eq!(
        (report.records, report.applied, report.errors),
        (2, 2, 1),
        "{report:?}"
    );
    let last = report.last_error.unwrap_or_default();
    assert!(
        last.starts_with(&format!("table {products_table}: ")) && last.contains("ResourceNotFound"),
        "{last}"
    );
    drop(poller);
    let engine = TantivyEngine::new(dir.path());
    let tenant = TenantId::parse("moto-shop").unwrap();
    assert!(engine.get_purchase(&tenant, "o-2").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_in_s3_leaves_the_objects_the_local_compaction_leaves() {
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = Arc::new(bucket(&shared).await);
    let local_dir = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalDirSink::new(local_dir.path()));
    for sink in [local.clone() as Arc<dyn ObjectSink>, s3.clone()] {
        let dir = tempfile::tempdir().unwrap();
        let pipeline = Pipeline::new(Arc::new(TantivyEngine::new(dir.path())), sink);
        assert_eq!(
            handle_purchases(fixture("purchases-batch.json"), &pipeline)
                .await
                .failed_from,
            None
        );
    }
    // The same rows again under other names, as a retry bisected differently writes them.
    for (key, body) in objects(local.as_ref()).await {
        if !key.starts_with("lake/") {
            continue;
        }
        let again = cloudpf_lake::ObjectKey::parse(&key.replacen("-0000", "-1000", 1)).unwrap();
        local.put(&again, body.clone()).await.unwrap();
        s3.put(&again, body).await.unwrap();
    }
    let before = objects(s3.as_ref()).await;
    same_objects(&before, &objects(local.as_ref()).await, "before compacting");

    let options = cloudpf_lake::CompactOptions::default();
    let in_s3 = cloudpf_lake::Compactor::new(s3.clone(), options.clone())
        .run(|_, _| {})
        .await
        .unwrap();
    let here = cloudpf_lake::Compactor::new(local.clone(), options)
        .run(|_, _| {})
        .await
        .unwrap();
    assert!(in_s3.failed.is_empty(), "{:?}", in_s3.failed);
    assert!(in_s3.objects_removed() > in_s3.objects_written());
    assert_eq!(in_s3.objects_written(), here.objects_written());
    let after = objects(s3.as_ref()).await;
    same_objects(&after, &objects(local.as_ref()).await, "after compacting");
    assert!(after.len() < before.len());

    // Removing what is already gone succeeds, as a rerun after a kill does.
    let gone = cloudpf_lake::ObjectKey::parse(&before[0].0).unwrap();
    s3.delete(&gone).await.unwrap();
    s3.delete(&gone).await.unwrap();
}

/// Two operators edit the tenants file at once (issue #17): the second write, made over
/// the version both read, is refused instead of silently dropping the first one's change;
/// in S3 (a conditional put on the ETag) and in a local file alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_file_edit_over_a_version_someone_else_replaced_is_refused() {
    use cloudpf_aws::{TenantsFile, TenantsFileError};
    let Some(url) = moto_endpoint() else { return };
    let shared = aws(&url).await;
    let s3 = bucket(&shared).await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("tenants.toml");
    for location in [
        format!("s3://{}/config/tenants.toml", s3.bucket()),
        local.display().to_string(),
    ] {
        let file = TenantsFile::new(&location, &shared, true);
        assert!(matches!(
            file.read().await,
            Err(TenantsFileError::Missing(_))
        ));
        let first = file.write("# v1\n", None).await.unwrap();
        // Creating it again is refused: it exists now.
        assert!(matches!(
            file.write("# other\n", None).await,
            Err(TenantsFileError::Changed(_))
        ));
        let (text, seen) = file.read().await.unwrap();
        assert_eq!((text.as_str(), &seen), ("# v1\n", &first));
        assert_eq!(file.version().await.unwrap(), first);
        // Local modification times may not tick between two quick writes; the length does.
        let second = file.write("# version two\n", Some(&seen)).await.unwrap();
        assert_ne!(second, first);
        // A second operator still holding the first version loses nothing of the first's.
        let stale = file.write("# stale edit\n", Some(&first)).await;
        assert!(
            matches!(stale, Err(TenantsFileError::Changed(_))),
            "{location}: {stale:?}"
        );
        assert_eq!(
            file.read().await.unwrap().0,
            "# version two\n",
            "{location}"
        );
    }
    // A local edit keeps the file's permissions (a server running as another user still
    // reads it).
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o644)).unwrap();
    let file = TenantsFile::new(&local.display().to_string(), &shared, true);
    let (_, seen) = file.read().await.unwrap();
    file.write("# three\n", Some(&seen)).await.unwrap();
    let mode = std::fs::metadata(&local).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // Issue #13: editors racing over the same version of a local file. The check and the
    // rename happen under a lock, so exactly one of each race wins and the file holds
    // its text.
    for round in 0..20 {
        let (_, seen) = file.read().await.unwrap();
        let edits: Vec<_> = (0..4)
            .map(|n| {
                let file = TenantsFile::new(&local.display().to_string(), &shared, true);
                let seen = seen.clone();
                tokio::spawn(async move {
                    let text = format!("# round {round} editor {n}\n");
                    file.write(&text, Some(&seen)).await.map(|_| text)
                })
            })
            .collect();
        let mut won = Vec::new();
        for edit in edits {
            match edit.await.unwrap() {
                Ok(text) => won.push(text),
                Err(TenantsFileError::Changed(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: {won:?}");
        assert_eq!(file.read().await.unwrap().0, won[0]);
    }
}
