//! The shared state of a running authd: the current configuration (swapped atomically on
//! reload), the failure counters, and the metrics handle.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::throttle::Throttle;

/// What every request and the reloader share.
pub struct App {
    /// The configuration in force; a request takes one snapshot and keeps it to the end.
    pub config: ArcSwap<Config>,
    /// The file it is (re)loaded from.
    pub config_path: PathBuf,
    /// Failure counters; they outlive reloads.
    pub throttle: Throttle,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

impl App {
    /// State for a freshly loaded `config`.
    pub fn new(config: Config, config_path: PathBuf, metrics: PrometheusHandle) -> Arc<Self> {
        Arc::new(App {
            config: ArcSwap::from_pointee(config),
            config_path,
            throttle: Throttle::default(),
            metrics,
        })
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("config_path", &self.config_path)
            .finish_non_exhaustive()
    }
}
