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

use clap::builder::{PossibleValuesParser, TypedValueParser};
use cloudpf_model::Entity;

/// `products` or `purchases` as a flag value: listed in `--help`, and clap's error names
/// both for anything else.
pub fn entity_parser() -> impl TypedValueParser<Value = Entity> {
    PossibleValuesParser::new(Entity::NAMES).try_map(|name| name.parse::<Entity>())
}
