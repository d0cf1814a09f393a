//! The HTTP surface: `/auth` and its alias `/auth/token` (GET and POST, as docker_auth routes
//! them), `/healthz`, `/metrics` (unless it has a listener of its own); every route is thin and
//! calls [`crate::flow`]. `token` parses token requests, `errors` renders failures.

mod errors;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tower_http::timeout::TimeoutLayer;

use crate::app::App;
use crate::error::Error;

/// Longest a request may take before it is answered 408 (and shutdown stops waiting for it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The router, with `app` as state; `/metrics` is on it when `public_metrics` (no
/// `server.debug.addr`).
pub fn router(app: Arc<App>, public_metrics: bool) -> Router {
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
        .route("/auth", auth.clone())
        // docker_auth's alias, for realms written as `…/auth/token` (registry 2.8 examples).
        .route("/auth/token", auth)
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(token::MAX_PARAMS))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .with_state(app)
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
