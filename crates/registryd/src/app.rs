//! Wiring: [`build`] turns a [`Config`] into an [`App`] (the axum [`Router`] with its state,
//! routes and request observer), and [`serve`] runs it with the shared accept loop (crate
//! `server`) on an already-bound listener, plain or TLS, until shutdown, then lets the queued
//! database writes commit. `/metrics` is on the main router unless `http.debug.addr` gives it
//! a listener of its own; the web pages ([`crate::ui`]) are under `/ui/` unless `ui.enabled` is
//! false.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{any, get};
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::{Error, InternalCause};
use crate::routes::{dispatch, endpoint_of, Subject};
use crate::service::{spawn_maintenance, Proxy, Registry};

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
    /// Timeouts, connection cap, header bound.
    pub limits: server::Limits,
    /// The `http.debug.addr` listener that serves `/metrics` instead of the main one.
    pub metrics: Option<TcpListener>,
}

/// Opens storage, loads the auth scheme, binds `http.debug.addr` if set and builds the router.
///
/// # Errors
/// `Config` for unreadable auth files or an unusable debug address; `Db`/`Migrate`/`Io` when
/// the data directory is unusable.
pub async fn build(cfg: &Config) -> Result<App, Error> {
    let limits = cfg.limits()?;
    let metrics = cfg
        .debug_addr()?
        .map(server::bind)
        .transpose()
        .map_err(|e| Error::Config(format!("http.debug.addr: {e}")))?;
    let auth = Authenticator::from_config(cfg.auth.as_ref())?;
    if matches!(auth, Authenticator::Open) {
        tracing::warn!("NO AUTH SECTION IN THE CONFIG: this registry is OPEN, anyone can push, pull and delete");
    }
    let registry = Registry::from_config(&cfg.storage, cfg.database.as_ref())
        .await?
        .with_upload_limits(cfg.storage.uploadlimits.clone())
        .with_proxy(Proxy::from_config(&cfg.proxy)?);
    let registry = Arc::new(registry);
    spawn_maintenance(&registry, &cfg.storage.maintenance);
    let state = Arc::new(AppState {
        registry: registry.clone(),
        auth,
        metrics: server::metrics::handle(),
    });
    let router = Router::new();
    let router = if metrics.is_none() {
        router.route(
            "/metrics",
            get(|State(s): State<Arc<AppState>>| server::metrics::render(s.metrics.clone())),
        )
    } else {
        router
    };
    let router = if cfg.ui.enabled {
        let ui = crate::ui::UiState::new(&cfg.ui, cfg.auth.as_ref(), cfg.http.tls.is_some())?;
        router.merge(crate::ui::router(Arc::new(ui)))
    } else {
        router
    };
    let router = router
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|req: Request| async move { Error::NotFound(req.uri().path().to_owned()) })
        .layer(middleware::from_fn(crate::drain::drain_unread_body))
        .layer(middleware::from_fn(observe))
        .with_state(state);
    Ok(App {
        router,
        registry,
        limits,
        metrics,
    })
}

/// A TLS acceptor for the PEM certificate chain and key of `http.tls`.
///
/// # Errors
/// `Config` when the files are unreadable, empty or do not match.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let certified = server::tls::load_certified_key(cert, key)
        .map_err(|e| Error::Config(format!("http.tls: {e}")))?;
    server::tls::acceptor(
        Arc::new(server::tls::Fixed(Arc::new(certified))),
        &server::tls_policy::TlsPolicy::default(),
    )
    .map_err(|e| Error::Config(format!("http.tls: {e}")))
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
/// in-flight requests drain (within `limits.drain`) and the writes they queued commit.
///
/// # Errors
/// `Io` when the listener has no address or the last writes cannot commit.
pub async fn serve(
    listener: impl Into<server::Listener>,
    app: App,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let App {
        router,
        registry,
        limits,
        metrics,
    } = app;
    let stop = server::Stop::on(shutdown);
    if let Some(listener) = metrics {
        let at = listener.local_addr()?;
        tracing::info!(%at, "serving /metrics on {at}");
        let router = server::metrics::router(server::metrics::handle());
        tokio::spawn(server::serve(
            listener,
            router,
            None,
            limits,
            stop.clone().wait(),
        ));
    }
    let listener = listener.into();
    let local = listener.local()?;
    tracing::info!(
        scheme = if tls.is_some() { "https" } else { "http" },
        "listening on {local}"
    );
    server::serve(listener, router, tls, limits, stop.wait()).await;
    // Writes queued without waiting (upload sessions' rows) are committed before the process
    // goes; whatever was acknowledged already is.
    registry.flush().await?;
    Ok(())
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
