//! Manifest handlers: `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::response::{Cached, Created, ManifestBody};
use crate::error::Error;
use crate::names::{Reference, RepoName};
use crate::service::{declared_type, Registry, MAX_MANIFEST};

/// `GET|HEAD …/manifests/<reference>` → 200 with its media type and digest; in a cached
/// repository also `Berth-Cache` (filled from the upstream on a miss, with the client's
/// `Accept`).
pub async fn get(
    reg: &Registry,
    name: &RepoName,
    reference: &Reference,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let Some(src) = reg.source_of(name) else {
        return Ok(ManifestBody(reg.get_manifest(name, reference, !head).await?).into_response());
    };
    // Docker sends one `Accept` line per media type: the upstream gets them all.
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let accept = HeaderValue::from_str(&accept)
        .ok()
        .filter(|_| !accept.is_empty());
    let (found, status) = reg
        .proxied_manifest(&src, name, reference, !head, accept.as_ref())
        .await?;
    Ok(Cached(status, ManifestBody(found)).into_response())
}

/// `PUT …/manifests/<reference>` → 201 with `Location`, `Docker-Content-Digest` and, for a
/// manifest with a subject, `OCI-Subject`. Over 4 MiB → 413 `SIZE_INVALID`.
pub async fn put(
    reg: &Registry,
    name: &RepoName,
    reference: &Reference,
    req: Request,
) -> Result<Response, Error> {
    let content_type = declared_type(
        req.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let body = axum::body::to_bytes(req.into_body(), MAX_MANIFEST)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                Error::ManifestTooLarge(MAX_MANIFEST)
            } else {
                Error::ManifestInvalid(format!("reading the body: {e}"))
            }
        })?;
    let (digest, subject) = reg
        .put_manifest(name, reference, content_type.as_deref(), &body)
        .await?;
    Ok(Created::manifest(name, digest, subject).into_response())
}

/// `DELETE …/manifests/<digest>` deletes the manifest; `…/manifests/<tag>` just the tag → 202.
pub async fn delete(
    reg: &Registry,
    name: &RepoName,
    reference: &Reference,
) -> Result<Response, Error> {
    reg.delete_manifest(name, reference).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
