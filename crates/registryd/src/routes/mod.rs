//! HTTP: `/v2/…` requests are parsed into an [`Endpoint`], authorized once by the [`Authorized`]
//! extractor, and dispatched to a thin handler per spec area (blobs, uploads, manifests,
//! listings). Handlers call [`crate::service::Registry`] and return typed responses from
//! [`response`]; they hold no SQL and no filesystem calls.

mod blobs;
mod listing;
mod manifests;
pub mod response;
mod uploads;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::Grants;
use crate::endpoint::Endpoint;
use crate::error::Error;

/// The endpoint a request names, after its credentials were checked against it.
pub struct Authorized {
    /// What the request asks for.
    pub endpoint: Endpoint,
    /// What its credentials allow beyond that (mount sources).
    pub grants: Grants,
}

impl FromRequestParts<Arc<AppState>> for Authorized {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Error> {
        let mut endpoint = endpoint_of(&parts.method, &parts.uri)?;
        // containerd's mirror requests name the upstream host in `?ns=`: such a pull reads (and
        // is authorized on) the cached repository of that upstream.
        if let Some(name) = endpoint.pull_name_mut() {
            if let Some(ns) = params(&parts.uri)?.ns {
                if let Some(cached) = state.registry.route_ns(name, &ns)? {
                    *name = cached;
                }
            }
        }
        let grants = state
            .auth
            .authorize(&parts.headers, endpoint.required_access().as_ref())
            .await?;
        Ok(Self { endpoint, grants })
    }
}

/// Parses the request line into an endpoint (also used by the request logger for its label).
///
/// # Errors
/// As [`Endpoint::parse`]; `NotFound` outside `/v2/`.
pub fn endpoint_of(method: &axum::http::Method, uri: &Uri) -> Result<Endpoint, Error> {
    let path = uri.path();
    let rest = path
        .strip_prefix("/v2/")
        .or_else(|| (path == "/v2").then_some(""))
        .ok_or_else(|| Error::NotFound(path.to_owned()))?;
    Endpoint::parse(method, rest)
}

/// The query parameters any endpoint reads.
#[derive(Debug, Default, Deserialize)]
pub struct Params {
    /// Digest of a monolithic upload or of the final PUT.
    pub digest: Option<String>,
    /// Digest to mount from another repository.
    pub mount: Option<String>,
    /// The repository to mount from.
    pub from: Option<String>,
    /// Page size.
    pub n: Option<String>,
    /// Last entry of the previous page.
    pub last: Option<String>,
    /// Referrers filter.
    #[serde(rename = "artifactType")]
    pub artifact_type: Option<String>,
    /// The registry host a containerd mirror request is for.
    pub ns: Option<String>,
}

fn params(uri: &Uri) -> Result<Params, Error> {
    Query::<Params>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| Error::BadParameter(e.body_text()))
}

/// Who made a request, for the request log line (set on every `/v2/` response).
#[derive(Debug, Clone)]
pub struct Subject(pub String);

/// The one handler behind `/v2/` and `/v2/{*rest}`.
pub async fn dispatch(
    State(app): State<Arc<AppState>>,
    authorized: Authorized,
    req: Request,
) -> Response {
    let subject = Subject(authorized.grants.subject().to_owned());
    let mut resp = route(&app, authorized, req).await.into_response();
    resp.extensions_mut().insert(subject);
    resp
}

async fn route(
    app: &AppState,
    Authorized {
        mut endpoint,
        grants,
    }: Authorized,
    req: Request,
) -> Result<Response, Error> {
    let p = params(req.uri())?;
    let reg = &app.registry;
    if let Some(name) = endpoint.push_name() {
        reg.check_push(name)?;
    }
    // Pulls of names no prefix claims may be served from the default upstream's cache.
    if let Endpoint::GetManifest { name, .. }
    | Endpoint::GetBlob { name, .. }
    | Endpoint::TagsList { name } = &mut endpoint
    {
        if let Some(cached) = reg.pull_name(name).await? {
            *name = cached;
        }
    }
    match endpoint {
        Endpoint::Base => {
            Ok((StatusCode::OK, [("content-type", "application/json")], "{}").into_response())
        }
        Endpoint::Catalog => listing::catalog(reg, &p).await,
        Endpoint::TagsList { name } => listing::tags(reg, &name, &p).await,
        Endpoint::Referrers { name, digest } => listing::referrers(reg, &name, &digest, &p).await,
        Endpoint::GetManifest {
            name,
            reference,
            head,
        } => manifests::get(reg, &name, &reference, head, req.headers()).await,
        Endpoint::PutManifest { name, reference } => {
            manifests::put(reg, &name, &reference, req).await
        }
        Endpoint::DeleteManifest { name, reference } => {
            manifests::delete(reg, &name, &reference).await
        }
        Endpoint::GetBlob { name, digest, head } => match reg.source_of(&name) {
            Some(src) => blobs::get_proxied(reg, &src, &name, &digest, head, req.headers()).await,
            None => blobs::get(reg, &name, &digest, head, req.headers()).await,
        },
        Endpoint::DeleteBlob { name, digest } => blobs::delete(reg, &name, &digest).await,
        Endpoint::StartUpload { name } => uploads::start(reg, &name, &p, &grants, req).await,
        Endpoint::UploadStatus { name, uuid } => uploads::status(reg, &name, uuid).await,
        Endpoint::PatchUpload { name, uuid } => uploads::patch(reg, &name, uuid, req).await,
        Endpoint::FinishUpload { name, uuid } => uploads::finish(reg, &name, uuid, &p, req).await,
        Endpoint::CancelUpload { name, uuid } => uploads::cancel(reg, &name, uuid).await,
    }
}
