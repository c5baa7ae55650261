//! Logging setup: `RUST_LOG` wins; otherwise the command's default level.
//!
//! Whatever the level, DataFusion logs at most `info` unless `RUST_LOG` names it: its
//! debug output prints query plans with their bound values, which are a shop's own
//! report filters (issue #10: logs carry no tenant data).

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

pub fn init(format: LogFormat, default_level: &str) {
    let asked = std::env::var("RUST_LOG").unwrap_or_default();
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    if !asked.contains("datafusion")
        && let Ok(quiet) = "datafusion=info".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
