//! The Prometheus recorder (installed once per process) and the `/metrics` route, which a
//! daemon mounts on its main listener or on a separate one (`http.debug.addr`,
//! `server.debug.addr`) to keep it off the public address.

use std::sync::OnceLock;

use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder's handle, installing it on first use. When another recorder is
/// already global (tests embedding several apps), the handle still renders, possibly empty.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::debug!("a metrics recorder was already installed");
            }
            handle
        })
        .clone()
}

/// `GET /metrics` in the Prometheus text format, and `GET /healthz`, for a listener of its own.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(move || render(handle.clone())))
        .route("/healthz", get(|| async { "ok\n" }))
}

/// The Prometheus text format of everything recorded.
pub async fn render(handle: PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}
