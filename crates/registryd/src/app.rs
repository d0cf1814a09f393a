//! Wiring: [`build`] turns a [`Config`] into an [`App`] (the axum [`Router`] with its state,
//! routes and request observer), and [`serve`] runs it on an already-bound listener, plain or
//! TLS, until shutdown, then lets the queued database writes commit.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::{Error, InternalCause};
use crate::routes::{dispatch, endpoint_of, Subject};
use crate::service::{spawn_maintenance, Registry};
use crate::tls;

/// How long in-flight requests may drain after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Shared by every request.
pub struct AppState {
    /// The registry's behaviour over its storage; shared with the maintenance tasks.
    pub registry: Arc<Registry>,
    /// The configured auth scheme, consulted once per request.
    pub auth: Authenticator,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

/// What [`serve`] runs.
pub struct App {
    /// Every route, with its state.
    pub router: Router,
    /// The registry behind it, flushed when serving stops.
    pub registry: Arc<Registry>,
}

/// Opens storage, loads the auth scheme and builds the router.
///
/// # Errors
/// `Config` for unreadable auth files; `Db`/`Migrate`/`Io` when the data directory is unusable.
pub async fn build(cfg: &Config) -> Result<App, Error> {
    let auth = Authenticator::from_config(cfg.auth.as_ref())?;
    if matches!(auth, Authenticator::Open) {
        tracing::warn!("NO AUTH SECTION IN THE CONFIG: this registry is OPEN, anyone can push, pull and delete");
    }
    let registry = Registry::open(
        &cfg.storage.filesystem.rootdirectory,
        cfg.storage.delete.enabled,
    )
    .await?
    .with_upload_limits(cfg.storage.uploadlimits.clone());
    let registry = Arc::new(registry);
    spawn_maintenance(&registry, &cfg.storage.maintenance);
    let state = Arc::new(AppState {
        registry: registry.clone(),
        auth,
        metrics: crate::metrics::handle(),
    });
    let router = Router::new()
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/metrics",
            get(|State(s): State<Arc<AppState>>| crate::metrics::render(s.metrics.clone())),
        )
        .fallback(|req: Request| async move { Error::NotFound(req.uri().path().to_owned()) })
        .layer(middleware::from_fn(crate::drain::drain_unread_body))
        .layer(middleware::from_fn(observe))
        .with_state(state);
    Ok(App { router, registry })
}

/// Per request: the API version header, one log line, request metrics, and the log of any
/// internal cause hidden from the client.
async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = if path.starts_with("/v2") {
        endpoint_of(&method, req.uri()).map_or("invalid", |e| e.label())
    } else {
        "other"
    };
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    metrics::counter!("registry_http_requests_total", "route" => route, "method" => method_label(&method), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("registry_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
    if let Some(InternalCause(cause)) = resp.extensions().get::<InternalCause>() {
        tracing::error!(%method, %path, status, error = %cause, "internal error");
    }
    let subject = resp
        .extensions()
        .get::<Subject>()
        .map_or("", |s| s.0.as_str());
    tracing::info!(%method, %path, route, status, subject, elapsed_ms = elapsed.as_millis() as u64, "request");
    resp
}

/// The method as a metrics label: the standard ones by name, anything else as `OTHER`, so a
/// client cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves, then lets
/// in-flight requests drain for at most 30 s and the writes they queued commit.
///
/// # Errors
/// `Io` when the server fails.
pub async fn serve(
    listener: TcpListener,
    app: App,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signalled = async move {
        shutdown.await;
        let _ = tx.send(true);
    };
    let mut drain_rx = rx.clone();
    let deadline = async move {
        let _ = drain_rx.wait_for(|s| *s).await;
        tokio::time::sleep(DRAIN).await;
        tracing::warn!("drain timeout: closing remaining connections");
    };
    let App { router, registry } = app;
    let server = async move {
        match tls {
            None => {
                let mut rx = rx;
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = rx.wait_for(|s| *s).await;
                    })
                    .await
                    .map_err(Error::Io)
            }
            Some(acceptor) => tls::serve(listener, acceptor, router, rx).await,
        }
    };
    tokio::spawn(signalled);
    let served = tokio::select! {
        r = server => r,
        () = deadline => Ok(()),
    };
    // Writes queued without waiting (upload sessions' rows) are committed before the process
    // goes; whatever was acknowledged already is.
    registry.flush().await?;
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(
            method_label(&Method::from_bytes(b"RANDOM123").unwrap()),
            "OTHER"
        );
    }
}
