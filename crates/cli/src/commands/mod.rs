//! One module per subcommand.

pub mod demo;
pub mod poll;
pub mod replay;
pub mod seed;
pub mod serve;
