//! The Prometheus recorder behind `GET /metrics`. Metric names used in the crate:
//! `registry_http_requests_total{route,method,status}`, `registry_http_request_duration_seconds`,
//! `registry_bytes_received_total`, `registry_bytes_sent_total`, `registry_uploads_in_progress`,
//! `registry_db_commits_total`, `registry_gc_runs_total`, `registry_gc_blobs_freed_total`,
//! `registry_gc_bytes_freed_total`, `registry_gc_manifests_deleted_total`.

use std::sync::OnceLock;

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

/// `GET /metrics`: the Prometheus text format.
pub async fn render(handle: PrometheusHandle) -> String {
    handle.run_upkeep();
    handle.render()
}
