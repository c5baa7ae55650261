//! Offboarding a shop (issue #13): `tenants export` (its current catalog and purchases as
//! JSON Lines, what a shop leaving with its data expects) and the erasure behind
//! `tenants remove --purge`.
//!
//! A purge runs in this order, so that nothing written meanwhile survives it: mark the
//! shop purged in the lake's store (writers dead-letter its records from their next
//! refresh of the markers on), take it out of the tenants file (its keys stop working),
//! wait until every writer has seen the marker, delete its indexes, lake partitions and
//! dead letters, then look once more for anything a batch in flight wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use cloudpf_engines::{Routing, SearchBackend, search_engine, vars};
use cloudpf_lake::purge::{self, PURGED_REFRESH};
use cloudpf_lake::{Dataset, ObjectSink};
use cloudpf_model::TenantId;
use cloudpf_search::{EngineOptions, SearchEngine};
use serde::Serialize;

use super::lake::{LakeArgs, LakeLocation};

/// Where a shop's data is, for the `tenants` actions that read or erase it. The S3
/// addressing style is the `tenants` command's own `--force-path-style`.
#[derive(Debug, clap::Args)]
pub struct ShopDataArgs {
    /// Data directory: indexes, checkpoints, and the lake unless --lake-bucket is given.
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub lake: LakeLocation,
    /// `embedded` (Tantivy under the data directory) or `elasticsearch` (the clusters of
    /// the tenants file).
    #[arg(long, default_value = "embedded", env = vars::SEARCH_BACKEND.name)]
    pub search_backend: SearchBackend,
}

impl ShopDataArgs {
    pub async fn sink(&self, force_path_style: bool) -> std::sync::Arc<dyn ObjectSink> {
        LakeArgs {
            location: self.lake.clone(),
            force_path_style,
        }
        .sink(&self.data_dir)
        .await
    }
}

/// Writes `<out>/<tenant>-products.jsonl` and `<out>/<tenant>-purchases.jsonl`: every
/// current product and purchase of the shop, one JSON document per line, read from the
/// lake's change logs by the rules of its current-state views.
pub async fn export(
    sink: &dyn ObjectSink,
    tenant: &TenantId,
    out: &Path,
) -> anyhow::Result<serde_json::Value> {
    std::fs::create_dir_all(out)?;
    let mut summary = serde_json::Map::new();
    summary.insert("tenant".into(), tenant.as_str().into());
    for (name, dataset) in [
        ("products", Dataset::ProductsJson),
        ("purchases", Dataset::PurchasesJson),
    ] {
        let documents = purge::current_documents(sink, tenant, dataset).await?;
        let path = out.join(format!("{tenant}-{name}.jsonl"));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?,
        );
        for document in documents.values() {
            serde_json::to_writer(&mut file, document)?;
            file.write_all(b"\n")?;
        }
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        summary.insert(
            name.into(),
            serde_json::json!({ "file": path.display().to_string(), "documents": documents.len() }),
        );
    }
    Ok(summary.into())
}

/// What a purge removed.
#[derive(Debug, Default, Serialize)]
pub struct PurgeReport {
    pub tenant: String,
    pub marker: String,
    pub removed_from_tenants_file: bool,
    pub indexes: Vec<String>,
    pub lake_objects: Vec<String>,
    pub dead_letters: Vec<String>,
    pub checkpoints: Vec<String>,
    pub demo_keys: bool,
}

/// The engine holding the shop's indexes, routed by the tenants file as it was before the
/// shop was taken out (`file_text`).
pub async fn engine(
    data: &ShopDataArgs,
    file_text: &str,
    origin: &str,
) -> anyhow::Result<std::sync::Arc<dyn SearchEngine>> {
    let routing = match data.search_backend {
        SearchBackend::Embedded => Routing::default(),
        SearchBackend::Elasticsearch => {
            cloudpf_aws::secrets::with_secrets_from_env(Routing::from_toml(file_text, origin)?)
                .await?
        }
    };
    Ok(search_engine(
        data.search_backend,
        &data.data_dir,
        &routing,
        EngineOptions::default(),
    )?)
}

/// How long a purge waits after marking the shop, by default: every writer lists the
/// markers again within [`PURGED_REFRESH`].
pub fn default_settle() -> Duration {
    PURGED_REFRESH + Duration::from_secs(5)
}

/// Deletes everything of `tenant` that is not the tenants file (which the caller edits
/// between [`purge::mark_purged`] and this): its indexes, lake partitions, dead letters,
/// backfill checkpoints and demo keys, twice (the second pass finds what a batch in
/// flight during the first wrote).
pub async fn erase(
    engine: &dyn SearchEngine,
    sink: &dyn ObjectSink,
    data_dir: &Path,
    tenant: &TenantId,
    report: &mut PurgeReport,
) -> anyhow::Result<()> {
    for _pass in 0..2 {
        report.indexes.extend(engine.purge_tenant(tenant).await?);
        let objects = purge::purge_objects(sink, tenant).await?;
        report.lake_objects.extend(objects.lake_objects);
        report.dead_letters.extend(objects.dead_letters);
    }
    report.checkpoints = purge_backfill_checkpoints(&data_dir.join("checkpoints"), tenant)?;
    report.demo_keys = purge_demo_keys(&data_dir.join(super::demo::KEYS_FILE), tenant)?;
    Ok(())
}

/// Backfill checkpoints of runs that named the shop (`--tenant`); the stream pollers'
/// checkpoints are per shard and hold nothing of a shop.
fn purge_backfill_checkpoints(dir: &Path, tenant: &TenantId) -> anyhow::Result<Vec<String>> {
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let path = entry?.path();
        let is_backfill = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("backfill-") && n.ends_with(".json"));
        if !is_backfill {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let names = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|cp| cp["source"].as_str().map(str::to_owned))
            .and_then(|source| {
                source
                    .split_once("tenants=")
                    .map(|(_, list)| list.split(',').any(|t| t == tenant.as_str()))
            })
            .unwrap_or(false);
        if names {
            std::fs::remove_file(&path)?;
            removed.push(path.display().to_string());
        }
    }
    Ok(removed)
}

/// The shop's entry in a demo data directory's plain-text keys.
fn purge_demo_keys(path: &Path, tenant: &TenantId) -> anyhow::Result<bool> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let mut keys: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if keys.remove(tenant.as_str()).is_none() {
        return Ok(false);
    }
    super::demo::write_private(path, &serde_json::to_vec_pretty(&keys)?)?;
    Ok(true)
}
