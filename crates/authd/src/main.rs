//! The `authd` binary: serve (`authd --config auth.yaml`), `hash-password`, `check`, `gen-cert`.

use std::io::{BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use authd::{app::App, certs, check, config, reload};
use clap::{Parser, Subcommand};
use server::logging::LogFormat;

/// jemalloc, whose background thread gives freed memory back to the system within seconds: after
/// a flood of connections the daemon's resident memory returns near its idle figure (glibc's
/// malloc and mimalloc kept much of it).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Berth's token server: Docker token authentication with a docker_auth-compatible auth.yaml.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Configuration file to serve with.
    #[arg(long, short, env = "AUTHD_CONFIG", default_value = "auth.yaml")]
    config: PathBuf,
    /// Log lines as text or as one JSON object per line (to stderr; level via RUST_LOG).
    #[arg(long, global = true, env = "AUTHD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a bcrypt hash of a password read from stdin (or typed at a prompt).
    HashPassword {
        /// bcrypt cost (4..=31).
        #[arg(long, default_value_t = 10)]
        cost: u32,
    },
    /// Show what a configuration grants an account for some scopes, and which rule decided.
    Check {
        /// Configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// Account name ("" for anonymous).
        #[arg(long)]
        account: String,
        /// Client address the rules see.
        #[arg(long, default_value = "127.0.0.1")]
        ip: IpAddr,
        /// Service (default: the first of token.services, else "registry").
        #[arg(long)]
        service: Option<String>,
        /// Scope, e.g. repository:team/app:pull,push (repeatable).
        #[arg(long, required = true)]
        scope: Vec<String>,
    },
    /// Write a token signing key and certificate, a TLS CA, and a TLS server certificate.
    GenCert {
        /// Output directory; only absent files are written.
        #[arg(long)]
        out: PathBuf,
        /// Extra DNS name for the server certificate (repeatable).
        #[arg(long)]
        dns: Vec<String>,
        /// Extra IP address for the server certificate (repeatable).
        #[arg(long)]
        ip: Vec<IpAddr>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
        /// Make an RSA-2048 token signing key (RS256 tokens) instead of ECDSA P-256 (ES256).
        #[arg(long)]
        rsa: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    server::logging::init(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.config),
        Some(Command::HashPassword { cost }) => {
            let password = read_password()?;
            println!("{}", authd::authn::hash_password(&password, cost)?);
            Ok(())
        }
        Some(Command::Check {
            config,
            account,
            ip,
            service,
            scope,
        }) => {
            let config = config::load(&config)?;
            let service = service
                .or_else(|| config.token.services.as_ref()?.first().cloned())
                .unwrap_or_else(|| "registry".to_owned());
            let mut scopes = Vec::new();
            for s in &scope {
                scopes.extend(authd::issue::requested_scopes(s)?);
            }
            print!(
                "{}",
                check::report(&config, &account, ip, &service, &scopes)
            );
            Ok(())
        }
        Some(Command::GenCert {
            out,
            dns,
            ip,
            force,
            rsa,
        }) => {
            let written = certs::generate(&certs::CertRequest {
                out,
                dns,
                ips: ip,
                force,
                rsa,
            })?;
            for path in written {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (input is shown): ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    anyhow::ensure!(!password.is_empty(), "empty password");
    Ok(password.to_owned())
}

#[tokio::main]
async fn serve(path: PathBuf) -> anyhow::Result<()> {
    server::raise_fd_limit();
    let config = config::load(&path)?;
    config.log_warnings();
    let listener = config.addr.bind()?;
    let metrics = config.debug_addr.map(server::bind).transpose()?;
    let app = App::new(config, path, server::metrics::handle());
    let watcher = tokio::spawn(reload::watch(app.clone()));
    authd::server::serve(listener, metrics, app, server::shutdown_signal()).await?;
    watcher.abort();
    tracing::info!("stopped");
    Ok(())
}
