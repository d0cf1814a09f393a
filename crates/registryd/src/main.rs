//! The `registryd` binary: parses the command line, sets up logging, loads the configuration,
//! binds, and serves until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use registryd::Config;
use server::logging::LogFormat;

/// jemalloc, whose background thread gives freed memory back to the system within seconds: after
/// a flood of connections the daemon's resident memory returns near its idle figure (glibc's
/// malloc and mimalloc kept much of it).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Berth's container registry (OCI distribution API).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The configuration file (registry:2 key names), e.g. registry.yaml.
    #[arg(
        long,
        short,
        global = true,
        env = "REGISTRYD_CONFIG",
        default_value = "registry.yaml"
    )]
    config: PathBuf,
    /// Log lines as text or as one JSON object per line (to stderr; level via RUST_LOG).
    #[arg(long, global = true, env = "REGISTRYD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Without a command: serve.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Runs one garbage collection now (safe while a registryd serves the same data) and prints
    /// what it freed.
    Gc(registryd::service::GcCommand),
    /// Copies everything one registry holds into another (e.g. SQLite and a data folder into
    /// PostgreSQL and an S3 bucket), verified by digest; run it again to resume.
    Migrate(registryd::service::MigrateCommand),
}

fn main() -> ExitCode {
    let args = Args::parse();
    server::logging::init(args.log_format);
    let result = tokio::runtime::Runtime::new()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("registryd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    server::raise_fd_limit();
    if let Some(Command::Migrate(migrate)) = &args.command {
        migrate.run().await.context("migrate")?;
        return Ok(());
    }
    let cfg = Config::load(&args.config)?;
    if let Some(Command::Gc(gc)) = args.command {
        gc.run(&cfg).await.context("garbage collection")?;
        return Ok(());
    }
    let listen_on = cfg.listen_on()?;
    let tls = cfg
        .http
        .tls
        .as_ref()
        .map(|t| registryd::app::tls_acceptor(&t.certificate, &t.key))
        .transpose()?;
    let app = registryd::build(&cfg)
        .await
        .context("building the registry")?;
    let listener = listen_on.bind()?;
    registryd::serve(listener, app, tls, server::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
