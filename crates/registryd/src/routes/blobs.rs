//! Blob handlers: `GET|HEAD /v2/<name>/blobs/<digest>` (with `Range`; from the upstream in a
//! cached repository) and `DELETE`.

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use super::response::{BlobBody, Cached, Redirect};
use crate::error::Error;
use crate::names::{Digest, RepoName};
use crate::service::{CacheStatus, ProxiedBlob, Registry, Source};

/// `GET|HEAD /v2/<name>/blobs/<digest>` → 200, or 206 for a `Range: bytes=a-b`; 416 when the
/// range cannot be served; `BLOB_UNKNOWN` 404; a GET 307 to the object store when it hands
/// out URLs and `storage.redirect` allows it (the client sends its `Range` there).
pub async fn get(
    reg: &Registry,
    name: &RepoName,
    digest: &Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let size = reg.blob_size(name, digest).await?;
    serve(reg, digest, size, head, headers).await
}

/// A stored blob of `size` bytes the repository links: headers only for HEAD, else the whole
/// blob or the `Range` asked for.
async fn serve(
    reg: &Registry,
    digest: &Digest,
    size: u64,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    if head {
        return Ok(BlobBody {
            digest: digest.clone(),
            size,
            range: None,
            body: None,
        }
        .into_response());
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|r| parse_range(r, size))
        .transpose()?;
    if let Some(url) = reg.blob_redirect(digest, size).await? {
        return Ok(Redirect { location: url }.into_response());
    }
    let (start, len) = range.map_or((0, size), |(a, b)| (a, b - a + 1));
    let bytes = reg.blob_range(digest, size, start, len).await?;
    metrics::counter!("registry_bytes_sent_total").increment(len);
    let body = Body::from_stream(bytes);
    Ok(BlobBody {
        digest: digest.clone(),
        size,
        range,
        body: Some(body),
    }
    .into_response())
}

/// `GET|HEAD` of a blob in a cached repository: as [`get`] when it is cached, else fetched
/// from the upstream (streamed as it arrives when the whole blob is asked for), with
/// `Berth-Cache`.
pub async fn get_proxied(
    reg: &Arc<Registry>,
    src: &Source,
    name: &RepoName,
    digest: &Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let whole = !headers.contains_key(header::RANGE);
    let answer = reg.proxied_blob(src, name, digest, head, whole).await?;
    let (status, size, body) = match answer {
        ProxiedBlob::Cached { status, size } => {
            return Ok(
                Cached(status, serve(reg, digest, size, head, headers).await?).into_response(),
            )
        }
        ProxiedBlob::Upstream { size } => (CacheStatus::Miss, size, None),
        ProxiedBlob::Streaming { size, body } => {
            metrics::counter!("registry_bytes_sent_total").increment(size);
            (CacheStatus::Miss, size, Some(Body::from_stream(body)))
        }
    };
    let blob = BlobBody {
        digest: digest.clone(),
        size,
        range: None,
        body,
    };
    Ok(Cached(status, blob).into_response())
}

/// `DELETE /v2/<name>/blobs/<digest>` → 202.
pub async fn delete(reg: &Registry, name: &RepoName, digest: &Digest) -> Result<Response, Error> {
    reg.delete_blob(name, digest).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// One `bytes=` range (`a-b`, `a-`, `-suffix`) within `size`, inclusive.
fn parse_range(value: &str, size: u64) -> Result<(u64, u64), Error> {
    let bad = || Error::RangeInvalid { size };
    let spec = value.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (false, true) => (a.parse().map_err(|_| bad())?, size.saturating_sub(1)),
        (false, false) => (
            a.parse().map_err(|_| bad())?,
            b.parse::<u64>()
                .map_err(|_| bad())?
                .min(size.saturating_sub(1)),
        ),
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| bad())?;
            if n == 0 {
                return Err(bad());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (true, true) => return Err(bad()),
    };
    if size == 0 || start > end || start >= size {
        return Err(bad());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_within_the_blob() {
        assert_eq!(parse_range("bytes=0-3", 10).unwrap(), (0, 3));
        assert_eq!(parse_range("bytes=5-", 10).unwrap(), (5, 9));
        assert_eq!(parse_range("bytes=-3", 10).unwrap(), (7, 9));
        assert_eq!(parse_range("bytes=8-100", 10).unwrap(), (8, 9));
        for bad in [
            "bytes=10-12",
            "bytes=5-2",
            "items=0-1",
            "bytes=a-b",
            "bytes=-",
            "bytes=-0",
            "bytes=0-1,3-4",
        ] {
            assert!(
                matches!(parse_range(bad, 10), Err(Error::RangeInvalid { size: 10 })),
                "{bad}"
            );
        }
    }
}
