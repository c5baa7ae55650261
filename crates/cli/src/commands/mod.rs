//! One module per subcommand.

pub mod backfill;
pub mod cluster_tls;
pub mod compact;
pub mod demo;
pub mod es_setup;
pub mod keys;
pub mod lake;
pub mod offboard;
pub mod poll;
pub mod reindex;
pub mod replay;
pub mod report;
pub mod seed;
pub mod serve;
pub mod tenants;

use std::path::Path;
use std::sync::Arc;

use cloudpf_cdc::Pipeline;
use cloudpf_engines::vars;
use cloudpf_lake::LocalDirSink;
use cloudpf_search::{COMMIT_WITHIN, Durability, EngineOptions, TantivyEngine};

use clap::builder::{PossibleValuesParser, TypedValueParser};
use cloudpf_model::Entity;

/// A new API key: `prefix` and 160 random bits in hex (`cpfs_…` search, `cpfa_…` admin).
pub fn random_key(prefix: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for API keys: {e}"))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// `products` or `purchases` as a flag value: listed in `--help`, and clap's error names
/// both for anything else.
pub fn entity_parser() -> impl TypedValueParser<Value = Entity> {
    PossibleValuesParser::new(Entity::NAMES).try_map(|name| name.parse::<Entity>())
}

/// When an applied batch counts as durable, for the commands that write the embedded
/// index for a while (`replay`, `demo`, `poll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DurabilityArg {
    /// Each batch goes to the index's write-ahead log (one fsync) and the index commits
    /// once the oldest uncommitted change is 0.4 s old: many batches share a commit.
    Logged,
    /// A Tantivy commit per batch, as the CDC Lambdas do (a frozen Lambda container runs
    /// nothing in the background). Slower; kept to compare and to mirror Lambda exactly.
    EachBatch,
}

impl DurabilityArg {
    pub fn engine_options(self) -> EngineOptions {
        EngineOptions {
            durability: match self {
                DurabilityArg::Logged => Durability::Logged {
                    commit_within: COMMIT_WITHIN,
                },
                DurabilityArg::EachBatch => Durability::EachBatch,
            },
            ..EngineOptions::default()
        }
    }
}

/// The embedded defaults (Tantivy index, lake and dead letters under `data_dir`) with
/// the given durability.
pub fn local_pipeline(data_dir: &Path, durability: DurabilityArg) -> Pipeline {
    Pipeline::new(
        Arc::new(TantivyEngine::with_options(
            data_dir,
            durability.engine_options(),
        )),
        Arc::new(LocalDirSink::new(data_dir)),
    )
}

/// The two DynamoDB tables, for the commands that talk to DynamoDB (`seed` creates them
/// if missing, `poll` reads their streams).
#[derive(Debug, Clone, clap::Args)]
pub struct TableArgs {
    /// The products table.
    #[arg(long, default_value = "products", env = vars::PRODUCTS_TABLE.name)]
    pub products_table: String,
    /// The purchases table.
    #[arg(long, default_value = "purchases", env = vars::PURCHASES_TABLE.name)]
    pub purchases_table: String,
}
