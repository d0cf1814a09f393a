//! The HTTP surface: `/auth` and its alias `/auth/token` (GET and POST, as docker_auth routes
//! them, under `server.path_prefix`), `/healthz`, `/metrics` (unless it has a listener of its
//! own), `Strict-Transport-Security` when `server.hsts` is on; every route is thin and calls
//! [`crate::flow`]. `token` parses token requests, `errors` renders failures.

mod errors;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;
use crate::error::Error;

/// Longest a request may take before it is answered 408 (and shutdown stops waiting for it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The router, with `app` as state: the token routes under `prefix` (`server.path_prefix`),
/// `/healthz` and (when `public_metrics`, i.e. no `server.debug.addr`) `/metrics` at the root.
pub fn router(app: Arc<App>, public_metrics: bool, prefix: &str) -> Router {
    let router = Router::new();
    let router = if public_metrics {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    let auth = get(token::get)
        .post(token::post)
        .fallback(method_not_allowed);
    router
        .route(&format!("{prefix}/auth"), auth.clone())
        // docker_auth's alias, for realms written as `…/auth/token` (registry 2.8 examples).
        .route(&format!("{prefix}/auth/token"), auth)
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(middleware::map_response_with_state(app.clone(), hsts))
        .layer(DefaultBodyLimit::max(token::MAX_PARAMS))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(app)
}

/// docker_auth's header when `server.hsts` is on (two years, subdomains included), on every
/// answer as docker_auth sends it; clients heed it over HTTPS only (RFC 6797 §8.1).
async fn hsts(State(app): State<Arc<App>>, mut response: Response) -> Response {
    if app.config.load().hsts {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(app): State<Arc<App>>) -> String {
    server::metrics::render(app.metrics.clone()).await
}

async fn not_found() -> Error {
    Error::NotFound
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
