//! Hot reload: every second the files of the configuration in force (auth.yaml, htpasswd, keys,
//! certificates) are fingerprinted and compared with their content as it was loaded; a
//! difference, or SIGHUP, loads the file again. A good load is
//! swapped in atomically for the next request; a broken one is logged with its reason and the
//! last good configuration keeps serving. Both show in `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::config;
use crate::config::sources::{fingerprint, Fingerprint};
use crate::error::Error;
use crate::metrics::{CONFIG_OK, RELOADS};

/// How often files are checked.
pub const POLL: Duration = Duration::from_secs(1);

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
    if fresh.addr != old.addr
        || fresh.tls.is_some() != old.tls.is_some()
        || fresh.path_prefix != old.path_prefix
    {
        tracing::warn!(
            "server.addr, path_prefix or TLS on/off changed: takes effect at the next restart"
        );
    }
    fresh.log_warnings();
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
        // The on-disk state whose load failed, so a broken edit is reported once.
        let mut failed: Option<Fingerprint> = None;
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                Some(()) = recv(&mut hangup) => true,
            };
            let (files, loaded) = {
                let config = app.config.load();
                (config.files.clone(), config.fingerprint)
            };
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&files)).await else {
                continue;
            };
            if !forced && (now == loaded || failed == Some(now)) {
                continue;
            }
            let worker = app.clone();
            match tokio::task::spawn_blocking(move || reload(&worker)).await {
                Ok(Ok(())) => failed = None,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "configuration NOT reloaded; the last good one keeps serving");
                    failed = Some(now);
                }
                Err(e) => tracing::error!(error = %e, "reload task failed"),
            }
        }
    }
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
