//! The Prometheus recorder (installed once per process) and the names of authd's metrics.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Token requests, labelled by `grant` (basic, password, refresh_token) and `outcome`.
pub const TOKEN_REQUESTS: &str = "authd_token_requests_total";
/// Reload attempts, labelled by `result` (ok, error).
pub const RELOADS: &str = "authd_config_reloads_total";
/// 1 when the configuration in force is the file's current content, 0 after a failed reload.
pub const CONFIG_OK: &str = "authd_config_last_reload_ok";

/// Seconds spent in one bcrypt verification (cache misses only).
pub const BCRYPT_SECONDS: &str = "authd_bcrypt_seconds";
/// Logins answered from the cache of recent successes, without bcrypt.
pub const BCRYPT_CACHE_HITS: &str = "authd_bcrypt_cache_hits_total";
/// Seconds spent signing one token.
pub const SIGN_SECONDS: &str = "authd_sign_seconds";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder handle, installing the recorder on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Only fails when another recorder is installed; its handle then still renders ours.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
