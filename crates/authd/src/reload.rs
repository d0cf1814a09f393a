//! Hot reload: every second the files of the configuration in force (auth.yaml, htpasswd, keys,
//! certificates) are fingerprinted; a change, or SIGHUP, loads the file again. A good load is
//! swapped in atomically for the next request; a broken one is logged with its reason and the
//! last good configuration keeps serving. Both show in `/metrics`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::app::App;
use crate::config;
use crate::error::Error;
use crate::metrics::{CONFIG_OK, RELOADS};

/// How often files are checked.
pub const POLL: Duration = Duration::from_secs(1);

/// A digest of the files' contents (a missing file counts as a distinct state).
type Fingerprint = [u8; 32];

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.as_os_str().as_encoded_bytes());
        match std::fs::read(f) {
            Ok(bytes) => {
                h.update([1]);
                h.update((bytes.len() as u64).to_be_bytes());
                h.update(&bytes);
            }
            Err(_) => h.update([0]),
        }
    }
    h.finalize().into()
}

/// Loads the configuration file again and swaps it in.
///
/// # Errors
/// The load error; the configuration in force is then unchanged.
pub fn reload(app: &App) -> Result<(), Error> {
    let result = config::load(&app.config_path);
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(RELOADS, "result" => outcome).increment(1);
    metrics::gauge!(CONFIG_OK).set(if result.is_ok() { 1.0 } else { 0.0 });
    let fresh = result?;
    let old = app.config.load();
    if fresh.addr != old.addr || fresh.tls.is_some() != old.tls.is_some() {
        tracing::warn!("server.addr or TLS on/off changed: takes effect at the next restart");
    }
    app.config.store(Arc::new(fresh));
    tracing::info!(config = %app.config_path.display(), "configuration reloaded");
    Ok(())
}

/// Watches for changes and SIGHUP until the returned future is dropped. The SIGHUP handler is
/// installed before this returns (inside a runtime), so a signal sent once the server is up is
/// never the default "terminate".
pub fn watch(app: Arc<App>) -> impl std::future::Future<Output = ()> + Send {
    let mut hangup = hangup_signal();
    async move {
        metrics::gauge!(CONFIG_OK).set(1.0);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = current_fingerprint(&app).await;
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = recv(&mut hangup) => true,
            };
            let now = current_fingerprint(&app).await;
            if !forced && now == seen {
                continue;
            }
            let worker = app.clone();
            match tokio::task::spawn_blocking(move || reload(&worker)).await {
                Ok(Ok(())) => seen = current_fingerprint(&app).await,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "configuration NOT reloaded; the last good one keeps serving");
                    seen = now;
                }
                Err(e) => tracing::error!(error = %e, "reload task failed"),
            }
        }
    }
}

async fn current_fingerprint(app: &Arc<App>) -> Fingerprint {
    let files = app.config.load().files.clone();
    tokio::task::spawn_blocking(move || fingerprint(&files))
        .await
        .unwrap_or_default()
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}
#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn recv(sig: &mut Hangup) -> Option<()> {
    match sig {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
#[cfg(not(unix))]
async fn recv(_: &mut Hangup) -> Option<()> {
    std::future::pending().await
}
