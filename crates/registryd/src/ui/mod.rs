//! The web pages for people, under `/ui/` (`ui.enabled`, on by default): repositories, the tags
//! of one, one image or index, deleting — behind the same accounts and ACL as `docker login`.
//! Server-rendered HTML (maud), one stylesheet and a few lines of plain JavaScript served from
//! here; no external assets.
//!
//! Layers: handlers here and in the page modules ([`repos`], [`tags`], [`image`], [`delete`],
//! [`login`]) call [`crate::service::Registry`] through the [`viewer::Viewer`], which knows who
//! is asking ([`session`]) and what they may see (tokens from authd via [`tokens`], checked by
//! [`crate::auth`]). Every page answers with [`security_headers`]: a Content-Security-Policy
//! allowing only this origin's style and script, no framing, no referrer.

mod assets;
mod delete;
mod error;
mod image;
mod image_doc;
mod layout;
mod login;
mod paths;
mod repos;
pub mod session;
mod tags;
pub mod tokens;
mod viewer;

use std::sync::Arc;

use axum::extract::{Path, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use quick_cache::sync::Cache;
use serde::Deserialize;
use token::Claims;

use crate::app::AppState;
use crate::config::ui::Ui;
use crate::config::Auth;
use crate::error::Error;
use error::PageError;
use paths::RepoPath;
use viewer::Viewer;

/// Tokens from authd remembered for the pages.
const TOKEN_CACHE: usize = 10_000;

/// What the pages share.
pub struct UiState {
    /// Live logins.
    pub sessions: session::Sessions,
    /// authd's token endpoint, on a token registry.
    pub tokens: Option<tokens::TokenClient>,
    /// Verified tokens by (session id, or "" for anonymous; scope), with when to stop using
    /// each (unix seconds).
    pub token_cache: Cache<(String, String), (Arc<Claims>, u64)>,
    /// The forms' CSRF token when nobody is logged in (see [`Viewer::csrf`]).
    pub open_csrf: String,
    /// Served over HTTPS: cookies are `Secure`.
    pub secure: bool,
}

impl std::fmt::Debug for UiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiState").finish_non_exhaustive()
    }
}

impl UiState {
    /// The pages' state for `cfg`, over HTTPS when `secure`.
    ///
    /// # Errors
    /// `Config` when the HTTP client for authd cannot be built.
    pub fn new(cfg: &Ui, auth: Option<&Auth>, secure: bool) -> Result<Self, Error> {
        let tokens = match auth {
            Some(Auth::Token(t)) => Some(
                tokens::TokenClient::new(cfg.tokenurl.as_deref().unwrap_or(&t.realm), &t.service)
                    .map_err(|e| Error::Config(format!("ui: {e}")))?,
            ),
            _ => None,
        };
        Ok(Self {
            sessions: session::Sessions::new(cfg.sessionlifetime),
            tokens,
            token_cache: Cache::new(TOKEN_CACHE),
            open_csrf: session::random_token(),
            secure,
        })
    }
}

/// The `/ui/` routes, sharing `ui`.
pub fn router(ui: Arc<UiState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(repos::list))
        .route("/ui/open", get(repos::open))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/static/{file}", get(assets::get))
        .route("/ui/r/{*path}", get(repo_page).post(repo_action))
        .route(
            "/ui/{*rest}",
            get(|| async { PageError::NotFound("No such page.".into()) }),
        )
        .layer(middleware::from_fn(security_headers))
        .layer(Extension(ui))
}

/// `?last=…&deleted=…` of a repository's pages.
#[derive(Debug, Default, Deserialize)]
struct RepoQuery {
    #[serde(default)]
    last: String,
    deleted: Option<String>,
}

/// `GET /ui/r/…`.
async fn repo_page(
    viewer: Viewer,
    Path(path): Path<String>,
    Query(q): Query<RepoQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let host = pull_host(&headers);
    Ok(match RepoPath::parse(&path)? {
        RepoPath::Tags(name) => {
            tags::page(&viewer, &name, &q.last, &host, q.deleted.as_deref()).await?
        }
        RepoPath::Manifest(name, reference) => {
            image::page(&viewer, &name, &reference, &host).await?
        }
        RepoPath::Delete(name, reference) => delete::confirm(&viewer, &name, &reference).await?,
    }
    .into_response())
}

/// `POST /ui/r/…/delete`.
async fn repo_action(
    viewer: Viewer,
    Path(path): Path<String>,
    form: login::PostedForm,
) -> Result<Response, PageError> {
    match RepoPath::parse(&path)? {
        RepoPath::Delete(name, reference) => {
            delete::delete(&viewer, &name, &reference, login::csrf_of(&form)).await
        }
        _ => Err(PageError::NotAllowed("Nothing to post here.".into())),
    }
}

/// The registry's host as `docker pull` names it: the request's `Host`, when it looks like one.
fn pull_host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("REGISTRY")
        .to_owned()
}

/// Headers every `/ui/` answer carries.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
