//! `cloudpf demo`: demo shops, their change history as Lambda events through the real
//! handlers, and the shops' API keys.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use chrono::{DurationRound, TimeDelta, Utc};
use cloudpf_cdc::{Batch, BatchReport, Pipeline};
use cloudpf_engines::vars;
use cloudpf_lake::{Dataset, LocalDirSink, ObjectSink};
use cloudpf_model::TenantId;
use cloudpf_search::Entity;
use cloudpf_search_api::RawConfig;
use cloudpf_search_api::tenants::{RawKey, RawTenant, RawTenantsFile, Scope, hash_key};
use cloudpf_search_es::{EsConfig, RawCluster};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

const TENANT_NAMES: &[&str] = &["alpine-outfitters", "harbor-home", "pixel-gadgets"];

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Data directory (indexes, lake, dead letters, keys).
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    pub data_dir: PathBuf,
    /// Number of demo shops.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub tenants: u16,
    /// Products per shop.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub products: u32,
    /// Purchases per shop.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub purchases: u32,
    /// Days before now over which purchases are spread.
    #[arg(long, default_value_t = cloudpf_demo::DEFAULT_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Seed of the generator: the same seed within the same hour gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// When a batch counts as durable.
    #[arg(long, value_enum, default_value_t = super::DurabilityArg::Logged)]
    pub durability: super::DurabilityArg,
    /// Then serve the search API over the demo data.
    #[arg(long)]
    pub serve: bool,
    /// Address of the API with --serve.
    #[arg(long, default_value = "127.0.0.1:8080", env = vars::ADDR.name)]
    pub addr: String,
}

/// Where a demo's data directory keeps its shops' keys.
pub const KEYS_FILE: &str = "demo-keys.json";

/// The demo shops' API keys in plain text, for local use only ([`KEYS_FILE`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoKeys {
    pub search_key: String,
    pub admin_key: String,
}

pub fn tenant_ids(count: u16) -> anyhow::Result<Vec<TenantId>> {
    (0..usize::from(count))
        .map(|i| {
            let name = TENANT_NAMES
                .get(i)
                .map(|s| (*s).to_owned())
                .unwrap_or_else(|| format!("shop-{}", i + 1));
            TenantId::parse(&name).map_err(anyhow::Error::from)
        })
        .collect()
}

/// Keys from an earlier run are kept, so re-running the demo does not invalidate them.
pub fn load_or_create_keys(
    path: &Path,
    tenants: &[TenantId],
) -> anyhow::Result<BTreeMap<String, DemoKeys>> {
    let mut keys: BTreeMap<String, DemoKeys> = match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a keys file", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    for t in tenants {
        if !keys.contains_key(t.as_str()) {
            keys.insert(
                t.to_string(),
                DemoKeys {
                    search_key: super::random_key("cpfs_")?,
                    admin_key: super::random_key("cpfa_")?,
                },
            );
        }
    }
    write_private(path, &serde_json::to_vec_pretty(&keys)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(keys)
}

/// Writes a file only its owner may read (0600 on Unix): it holds usable keys (issue #10).
/// The mode is set on the file itself too, so an older world-readable one is tightened.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(bytes)?;
        file.sync_all()
    }
}

fn progress(total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg:9} [{bar:40}] {pos}/{len} batches ({eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

#[derive(Debug, Default)]
struct Totals {
    records: usize,
    applied: usize,
    dead_lettered: usize,
    lake_objects: usize,
}

impl Totals {
    fn add(&mut self, r: &BatchReport) {
        self.records += r.records;
        self.applied += r.applied;
        self.dead_lettered += r.dead_lettered;
        self.lake_objects += r.lake_objects;
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tenants = tenant_ids(args.tenants)?;
    // Anchor on the hour, so two runs within it generate identical history.
    let now = Utc::now().duration_trunc(TimeDelta::hours(1))?;
    let history = cloudpf_demo::generate_history_over(
        args.seed,
        &tenants,
        args.products as usize,
        args.purchases as usize,
        now,
        args.days,
    );

    let pipeline = super::local_pipeline(dir, args.durability);
    let events_dir = dir.join("events");
    let mut totals = Totals::default();
    for (table, batches) in [
        (Entity::Products, &history.product_batches),
        (Entity::Purchases, &history.purchase_batches),
    ] {
        let table_dir = events_dir.join(table.as_str());
        std::fs::create_dir_all(&table_dir)?;
        let bar = progress(batches.len());
        bar.set_message(table.as_str());
        for (i, event) in batches.iter().enumerate() {
            // Through JSON and back, exactly as Lambda hands the event to the handler;
            // the file is kept for `cloudpf replay`.
            let json = serde_json::to_vec(event)?;
            std::fs::write(table_dir.join(format!("{:06}.json", i + 1)), &json)?;
            let batch = Batch::from_slice(&json)?;
            let report = cloudpf_cdc::handle(table, batch, &pipeline).await;
            if let Some(seq) = &report.failed_from {
                bar.abandon();
                bail!(
                    "{table} batch {} failed from sequence number {seq}; see the log",
                    i + 1
                );
            }
            totals.add(&report);
            bar.inc(1);
        }
        bar.finish();
    }

    pipeline.search().flush().await?;
    let keys = load_or_create_keys(&dir.join(KEYS_FILE), &tenants)?;
    write_tenants_file(&dir.join("tenants.toml"), &keys, &args.addr, None)?;
    print_summary(dir, &tenants, &pipeline, &totals, &keys, &args.addr).await?;
    // Close the demo's index writers, so that `cloudpf replay` (or the poller) in another
    // terminal can write while the API serves.
    drop(pipeline);
    if args.serve {
        let raw = RawConfig {
            addr: Some(args.addr.clone()),
            data_dir: Some(dir.clone()),
            ..RawConfig::default()
        };
        let config = raw.validate()?;
        let analytics = cloudpf_analytics::DataFusionEngine::new(&config.data_dir);
        let lake: Arc<dyn ObjectSink> = Arc::new(LocalDirSink::new(dir));
        super::serve::serve(config, analytics, lake).await?;
    }
    Ok(())
}

/// The tenants file of the demo shops: hashed keys, CORS for pages on the API's own
/// origin (the storefront widget), and with `elasticsearch_url` each shop's cluster: a
/// URL with `{tenant}` gives every shop its own cluster (one container per tenant),
/// one without puts them all on one shared cluster.
pub fn write_tenants_file(
    path: &Path,
    keys: &BTreeMap<String, DemoKeys>,
    addr: &str,
    elasticsearch_url: Option<&str>,
) -> anyhow::Result<()> {
    let port = addr.rsplit_once(':').map_or("8080", |(_, p)| p);
    let tenants = keys
        .iter()
        .map(|(id, k)| RawTenant {
            id: id.clone(),
            cors_origins: vec![
                format!("http://localhost:{port}"),
                format!("http://127.0.0.1:{port}"),
            ],
            keys: vec![
                RawKey::new(Scope::Search, hash_key(&k.search_key)),
                RawKey::new(Scope::Admin, hash_key(&k.admin_key)),
            ],
            search_cluster: elasticsearch_url.map(|url| cluster_name(url, id)),
        })
        .collect();
    let elasticsearch = elasticsearch_url.map(|url| EsConfig {
        clusters: keys
            .keys()
            .map(|id| {
                let cluster = RawCluster {
                    url: url.replace("{tenant}", id),
                    ..RawCluster::default()
                };
                (cluster_name(url, id), cluster)
            })
            .collect(),
        tenants: BTreeMap::new(),
    });
    let text = toml::to_string_pretty(&RawTenantsFile {
        tenants,
        elasticsearch,
        rate_limits: None,
    })?;
    std::fs::write(
        path,
        format!("# Written by `cloudpf demo`: the demo shops and their hashed API keys.\n{text}"),
    )?;
    Ok(())
}

fn cluster_name(url: &str, tenant: &str) -> String {
    if url.contains("{tenant}") {
        tenant.to_owned()
    } else {
        "shared".to_owned()
    }
}

async fn print_summary(
    dir: &Path,
    tenants: &[TenantId],
    pipeline: &Pipeline,
    totals: &Totals,
    keys: &BTreeMap<String, DemoKeys>,
    addr: &str,
) -> anyhow::Result<()> {
    let sink = LocalDirSink::new(dir);
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\ncloudpf demo: {} stream records, {} applied, {} dead-lettered, {} lake objects written",
        totals.records, totals.applied, totals.dead_lettered, totals.lake_objects
    )?;
    writeln!(
        out,
        "{:<20} {:>9} {:>10} {:>12}",
        "tenant", "products", "purchases", "lake objects"
    )?;
    for t in tenants {
        let products = pipeline.search().count(t, Entity::Products).await?;
        let purchases = pipeline.search().count(t, Entity::Purchases).await?;
        let mut objects = 0;
        for ds in Dataset::ALL {
            objects += sink.list(&ds.tenant_prefix(t)).await?.len();
        }
        writeln!(
            out,
            "{:<20} {products:>9} {purchases:>10} {objects:>12}",
            t.as_str()
        )?;
    }
    let dead = sink.list("dlq/").await?.len();
    writeln!(out, "\ndata directory: {}", dir.display())?;
    writeln!(out, "  index/   Tantivy indexes, one per tenant and entity")?;
    writeln!(
        out,
        "  lake/    gzipped CSV and JSON partitions (the S3 layout)"
    )?;
    writeln!(
        out,
        "  dlq/     {dead} dead letter(s), one JSON file per rejected record"
    )?;
    writeln!(
        out,
        "  events/  the Lambda events fed through the handlers (try `cloudpf replay`)"
    )?;
    writeln!(
        out,
        "  demo-keys.json  API keys of {} demo tenant(s), in plain text",
        keys.len()
    )?;
    writeln!(
        out,
        "  tenants.toml    the tenants file of the API (hashed keys)"
    )?;
    if let Some((tenant, k)) = keys.iter().next() {
        // A search key is public by design (storefront pages embed it); admin keys stay in the file.
        writeln!(
            out,
            "\ntry: curl -H 'X-API-Key: {}' 'http://{addr}/search/{tenant}/products?q=lpatop'",
            k.search_key
        )?;
    }
    Ok(())
}
