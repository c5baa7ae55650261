//! `cloudpf`: the one command-line entry point.

mod commands;
mod telemetry;

use std::io::Write;

use clap::{Parser, Subcommand};
use cloudpf_engines::vars;

/// mimalloc instead of glibc's malloc: searches allocate and free many small buffers on
/// several threads, where glibc's per-thread arenas kept freed memory resident and its
/// locking showed up on profiles (issue #11).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cloudpf",
    version,
    about = "Multi-tenant CDC search: DynamoDB Streams → search index + lake"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = telemetry::LogFormat::Text, env = vars::LOG_FORMAT.name)]
    log_format: telemetry::LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate demo shops and feed their change history through the CDC handlers.
    Demo(commands::demo::DemoArgs),
    /// Feed a saved Lambda DynamoDB event file through a table's handler.
    Replay(commands::replay::ReplayArgs),
    /// Read the tables' DynamoDB Streams and feed the handlers (the local stand-in for Lambda).
    Poll(commands::poll::PollArgs),
    /// Feed the items a table already holds (a scan, or a point-in-time export) through its
    /// handler, below any stream change: onboarding a shop that already has data.
    Backfill(commands::backfill::BackfillArgs),
    /// Write demo shops into DynamoDB tables (created with streams) for `poll` to pick up.
    Seed(commands::seed::SeedArgs),
    /// Rebuild a shop's index into a new one while searches keep answering, catch up with
    /// the writes made meanwhile, switch, and remove the old one.
    Reindex(commands::reindex::ReindexArgs),
    /// Create (or rebuild and swap) the Elasticsearch indexes of the routed tenants.
    EsSetup(commands::es_setup::EsSetupArgs),
    /// Run one report of the analytics catalog over the lake and print it as CSV.
    Report(commands::report::ReportArgs),
    /// Rewrite each tenant-day's small lake objects into one (locally or in S3).
    Compact(commands::compact::CompactArgs),
    /// Serve the search API over existing data.
    Serve(commands::serve::ServeArgs),
    /// List, add and remove shops in the tenants file (and deploy their search clusters).
    Tenants(commands::tenants::TenantsArgs),
    /// Create, list and revoke a shop's API keys in the tenants file.
    Keys(commands::keys::KeysArgs),
    /// Print the SHA-256 of an API key read from stdin, for the tenants file.
    HashKey,
}

/// No transparent huge pages for this process. mimalloc returns freed memory to the OS
/// and touching it again made the kernel zero a whole 2 MB page each time
/// (`clear_page_erms`: 10–56 % of CDC replay profiles, issue #15). Without them, one
/// 20,000-record replay took 1.5–1.9 s instead of 2.7–3.4 s, and the search benchmark
/// (issue #11) served as much or slightly more with 25 % less resident memory
/// (docs/benchmarks.md). mimalloc's `MIMALLOC_ALLOW_THP=0` does the same; set here so
/// every deployment gets it without an environment variable. Best effort: a kernel
/// without the flag keeps its default.
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("cloudpf: transparent huge pages stay on: {e}");
    }
}

fn main() -> anyhow::Result<()> {
    disable_transparent_huge_pages();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Searches run on the blocking pool (as many at once as the engine's
        // query_concurrency), beside writes and autocomplete builds. Tokio's default of 512
        // gave 150+ threads under load (issue #11).
        .max_blocking_threads((cores * 4).max(8))
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A person running the demo at a terminal watches its progress bars, summary and
    // serving line; one log line per 100-record batch would bury them. JSON logs (for
    // a machine) and RUST_LOG keep every line.
    let default_filter = match (&cli.command, cli.log_format) {
        (Command::Demo(d), telemetry::LogFormat::Text) if d.serve => "info,cloudpf_cdc=warn",
        (Command::Demo(_), telemetry::LogFormat::Text) => "warn",
        _ => "info",
    };
    telemetry::init(cli.log_format, default_filter);
    match cli.command {
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Replay(args) => commands::replay::run(args).await,
        Command::Serve(args) => commands::serve::run(args).await,
        Command::Poll(args) => commands::poll::run(args).await,
        Command::Seed(args) => commands::seed::run(args).await,
        Command::Backfill(args) => commands::backfill::run(args).await,
        Command::EsSetup(args) => commands::es_setup::run(args).await,
        Command::Reindex(args) => commands::reindex::run(args).await,
        Command::Report(args) => commands::report::run(args).await,
        Command::Compact(args) => commands::compact::run(args).await,
        Command::Tenants(args) => commands::tenants::run(args).await,
        Command::Keys(args) => commands::keys::run(args).await,
        Command::HashKey => {
            // From stdin, so the key stays out of shell history and process lists.
            let mut key = String::new();
            std::io::stdin().read_line(&mut key)?;
            let key = key.trim();
            anyhow::ensure!(!key.is_empty(), "no key on stdin");
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", cloudpf_search_api::tenants::hash_key(key))?;
            Ok(())
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn the_process_runs_without_transparent_huge_pages() {
        super::disable_transparent_huge_pages();
        assert!(rustix::thread::transparent_huge_pages_are_disabled().unwrap());
    }
}
