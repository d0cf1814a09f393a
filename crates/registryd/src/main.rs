//! The `registryd` binary: parses the command line, sets up logging, loads the configuration,
//! binds, and serves until SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use registryd::Config;

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
    /// Without a command: serve.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Runs one garbage collection now (safe while a registryd serves the same data) and prints
    /// what it freed.
    Gc(registryd::service::GcCommand),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
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
    let cfg = Config::load(&args.config)?;
    if let Some(Command::Gc(gc)) = args.command {
        gc.run(&cfg).await.context("garbage collection")?;
        return Ok(());
    }
    let addr = cfg.listen_addr()?;
    let tls = cfg
        .http
        .tls
        .as_ref()
        .map(|t| registryd::tls::acceptor(&t.certificate, &t.key))
        .transpose()?;
    let app = registryd::build(&cfg)
        .await
        .context("building the registry")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        scheme = if tls.is_some() { "https" } else { "http" },
        "listening on {local}"
    );
    registryd::serve(listener, app, tls, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("SIGINT handler: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("SIGTERM handler: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: signal received, draining requests");
}
