//! One module per subcommand.

pub mod compact;
pub mod demo;
pub mod es_setup;
pub mod lake;
pub mod poll;
pub mod replay;
pub mod report;
pub mod seed;
pub mod serve;

use cloudpf_engines::vars;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use cloudpf_model::Entity;

/// `products` or `purchases` as a flag value: listed in `--help`, and clap's error names
/// both for anything else.
pub fn entity_parser() -> impl TypedValueParser<Value = Entity> {
    PossibleValuesParser::new(Entity::NAMES).try_map(|name| name.parse::<Entity>())
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
