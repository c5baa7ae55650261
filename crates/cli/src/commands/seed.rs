//! `cloudpf seed`: the demo shops written into DynamoDB itself (tables created with
//! streams on, and the lake bucket if asked), so that the streams, not a shortcut, carry the history to the poller and
//! the indexes. The local stand-in for a shop's application; docker-compose's init runs it.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DurationRound, TimeDelta, Utc};
use cloudpf_aws::tables;
use cloudpf_engines::vars;
use cloudpf_model::{Document, Product, Purchase};

use super::demo;
use super::lake::LakeArgs;

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    // Created if missing.
    #[command(flatten)]
    tables: super::TableArgs,
    /// Where the demo shops' keys (`demo-keys.json`) and tenants file go.
    #[arg(long, default_value = "data", env = vars::DATA_DIR.name)]
    data_dir: PathBuf,
    /// Number of demo shops.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    tenants: u16,
    /// Products per shop.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    products: u32,
    /// Purchases per shop.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    purchases: u32,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Address the API will listen on (for the CORS origins of the tenants file).
    #[arg(long, default_value = "127.0.0.1:8080", env = vars::ADDR.name)]
    addr: String,
    // With --lake-bucket: the lake bucket is created unless it exists.
    #[command(flatten)]
    lake: LakeArgs,
    /// Route the shops to Elasticsearch in the tenants file: a URL with `{tenant}` gives
    /// each shop its own cluster (`http://es-{tenant}:9200`), one without a shared one.
    #[arg(long, env = vars::ELASTICSEARCH_URL.name)]
    elasticsearch_url: Option<String>,
}

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let shared = aws_config::load_from_env().await;
    tables::ensure_table(&shared, &args.tables.products_table, Product::KEY).await?;
    tables::ensure_table(&shared, &args.tables.purchases_table, Purchase::KEY).await?;
    if let Some(sink) = args.lake.s3_sink().await {
        sink.ensure_bucket()
            .await
            .with_context(|| format!("creating bucket {}", sink.bucket()))?;
    }
    let tenants = demo::tenant_ids(args.tenants)?;
    let now = Utc::now().duration_trunc(TimeDelta::hours(1))?;
    let history = cloudpf_demo::generate_history(
        args.seed,
        &tenants,
        args.products as usize,
        args.purchases as usize,
        now,
    );
    let mut written = [0usize; 2];
    for (n, (table, batches)) in [
        (&args.tables.products_table, &history.product_batches),
        (&args.tables.purchases_table, &history.purchase_batches),
    ]
    .into_iter()
    .enumerate()
    {
        for event in batches {
            written[n] += tables::write_records(&shared, table, &event.records).await?;
        }
    }
    let keys = demo::load_or_create_keys(&dir.join(demo::KEYS_FILE), &tenants)?;
    demo::write_tenants_file(
        &dir.join("tenants.toml"),
        &keys,
        &args.addr,
        args.elasticsearch_url.as_deref(),
    )?;
    eprintln!(
        "cloudpf seed: {} product and {} purchase changes written to {} and {} for {} shop(s); keys in {}",
        written[0],
        written[1],
        args.tables.products_table,
        args.tables.purchases_table,
        tenants.len(),
        dir.join(demo::KEYS_FILE).display()
    );
    Ok(())
}
