//! One module per subcommand.

pub mod compact;
pub mod demo;
pub mod es_setup;
pub mod poll;
pub mod replay;
pub mod report;
pub mod seed;
pub mod serve;
