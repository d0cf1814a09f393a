//! Upload handlers: `POST /v2/<name>/blobs/uploads/` (session, monolithic `?digest=`, mount
//! `?mount=&from=`), `GET|PATCH|PUT|DELETE /v2/<name>/blobs/uploads/<uuid>`.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use uuid::Uuid;

use super::response::{upload_location, Created, UploadState};
use super::Params;
use crate::auth::Grants;
use crate::error::Error;
use crate::names::{Digest, RepoName};
use crate::service::{ChunkRange, Registry};

fn digest_param(p: &Params) -> Result<Digest, Error> {
    Ok(Digest::parse(p.digest.as_deref().ok_or_else(|| {
        Error::DigestInvalid("digest parameter missing".into())
    })?)?)
}

/// The chunk's `Content-Range`, if any.
fn content_range(req: &Request) -> Result<Option<ChunkRange>, Error> {
    req.headers()
        .get(header::CONTENT_RANGE)
        .map(|v| ChunkRange::parse(v.to_str().unwrap_or("")))
        .transpose()
}

/// `POST …/blobs/uploads/`: 201 for a mount or a monolithic upload, else 202 with a session.
/// A mount links the blob only from a repository the caller may pull: `from` when it may pull
/// that one, else any (automatic content discovery, also when `from` is omitted). Otherwise it
/// becomes a plain session, so the answer tells nothing about repositories it cannot read.
pub async fn start(
    reg: &Registry,
    name: &RepoName,
    p: &Params,
    grants: &Grants,
    req: Request,
) -> Result<Response, Error> {
    if let Some(mount) = &p.mount {
        let digest = Digest::parse(mount)?;
        let from = p.from.as_deref().map(RepoName::parse).transpose()?;
        let sources = match from {
            Some(f) if grants.allows("repository", f.as_str(), "pull") => Some(vec![f.to_string()]),
            _ => grants.pullable_repositories(),
        };
        if reg.try_mount(name, &digest, sources.as_deref()).await? {
            return Ok(Created::blob(name, digest).into_response());
        }
    } else if p.digest.is_some() {
        let digest = digest_param(p)?;
        let location = format!("/v2/{name}/blobs/uploads/");
        let body = req.into_body().into_data_stream();
        reg.upload_whole(name, grants.subject(), &digest, location, body)
            .await?;
        return Ok(Created::blob(name, digest).into_response());
    }
    let progress = reg.start_upload(name, grants.subject()).await?;
    Ok(UploadState {
        name: name.clone(),
        progress,
        status: StatusCode::ACCEPTED,
    }
    .into_response())
}

/// `GET …/blobs/uploads/<uuid>` → 204 with `Range` and `Location`.
pub async fn status(reg: &Registry, name: &RepoName, uuid: Uuid) -> Result<Response, Error> {
    let progress = reg.upload_status(name, uuid).await?;
    Ok(UploadState {
        name: name.clone(),
        progress,
        status: StatusCode::NO_CONTENT,
    }
    .into_response())
}

/// `PATCH …/blobs/uploads/<uuid>` with an optional `Content-Range` → 202; 416 out of order.
pub async fn patch(
    reg: &Registry,
    name: &RepoName,
    uuid: Uuid,
    req: Request,
) -> Result<Response, Error> {
    let range = content_range(&req)?;
    let location = upload_location(name, &uuid);
    let progress = reg
        .append_chunk(
            name,
            uuid,
            range,
            location,
            req.into_body().into_data_stream(),
        )
        .await?;
    Ok(UploadState {
        name: name.clone(),
        progress,
        status: StatusCode::ACCEPTED,
    }
    .into_response())
}

/// `PUT …/blobs/uploads/<uuid>?digest=` with an optional last chunk → 201.
pub async fn finish(
    reg: &Registry,
    name: &RepoName,
    uuid: Uuid,
    p: &Params,
    req: Request,
) -> Result<Response, Error> {
    let digest = digest_param(p)?;
    let range = content_range(&req)?;
    reg.finish_upload(
        name,
        uuid,
        &digest,
        range,
        upload_location(name, &uuid),
        req.into_body().into_data_stream(),
    )
    .await?;
    Ok(Created::blob(name, digest).into_response())
}

/// `DELETE …/blobs/uploads/<uuid>` → 204.
pub async fn cancel(reg: &Registry, name: &RepoName, uuid: Uuid) -> Result<Response, Error> {
    reg.cancel_upload(name, uuid).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
