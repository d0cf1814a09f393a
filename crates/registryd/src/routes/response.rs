//! Every response that carries spec headers is a type here, built from service results, with a
//! unit test of its headers. Handlers return these and nothing hand-assembled.

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::names::{Digest, RepoName};
use crate::service::{CacheStatus, StoredManifest, UploadProgress};

const DIGEST_HEADER: &str = "docker-content-digest";
/// How a proxied manifest or blob was served: `hit`, `miss`, `revalidated`, `stale`.
const CACHE_HEADER: &str = "berth-cache";
const UUID_HEADER: &str = "docker-upload-uuid";

fn set(resp: &mut Response, name: impl TryInto<HeaderName>, value: &str) {
    if let (Ok(n), Ok(v)) = (name.try_into(), HeaderValue::from_str(value)) {
        resp.headers_mut().insert(n, v);
    }
}

/// The `Range` header value for `size` bytes received: `0-<last>` (`0-0` when empty, as
/// distribution answers).
#[must_use]
pub fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// Where an upload session lives.
#[must_use]
pub fn upload_location(name: &RepoName, uuid: &uuid::Uuid) -> String {
    format!("/v2/{name}/blobs/uploads/{uuid}")
}

/// A blob's bytes (GET) or just its headers (HEAD), whole or one range.
pub struct BlobBody {
    /// The blob's digest (`Docker-Content-Digest`, `ETag`).
    pub digest: Digest,
    /// Size of the whole blob.
    pub size: u64,
    /// The inclusive byte range served, for a 206.
    pub range: Option<(u64, u64)>,
    /// Absent for HEAD.
    pub body: Option<Body>,
}

impl IntoResponse for BlobBody {
    fn into_response(self) -> Response {
        let (status, len) = match self.range {
            Some((a, b)) => (StatusCode::PARTIAL_CONTENT, b - a + 1),
            None => (StatusCode::OK, self.size),
        };
        let mut resp = (status, self.body.unwrap_or_else(Body::empty)).into_response();
        set(&mut resp, header::CONTENT_TYPE, "application/octet-stream");
        set(&mut resp, header::CONTENT_LENGTH, &len.to_string());
        set(&mut resp, header::ACCEPT_RANGES, "bytes");
        set(&mut resp, header::ETAG, &format!("\"{}\"", self.digest));
        set(&mut resp, header::CACHE_CONTROL, "max-age=31536000");
        set(&mut resp, DIGEST_HEADER, self.digest.as_str());
        if let Some((a, b)) = self.range {
            set(
                &mut resp,
                header::CONTENT_RANGE,
                &format!("bytes {a}-{b}/{}", self.size),
            );
        }
        resp
    }
}

/// A proxied manifest or blob answer with its `Berth-Cache` header (and `Warning` when stale).
pub struct Cached<R>(pub CacheStatus, pub R);

impl<R: IntoResponse> IntoResponse for Cached<R> {
    fn into_response(self) -> Response {
        let mut resp = self.1.into_response();
        set(&mut resp, CACHE_HEADER, self.0.as_str());
        if self.0 == CacheStatus::Stale {
            set(&mut resp, header::WARNING, "110 - \"Response is Stale\"");
        }
        resp
    }
}

/// A manifest (GET) or its headers (HEAD).
pub struct ManifestBody(pub StoredManifest);

impl IntoResponse for ManifestBody {
    fn into_response(self) -> Response {
        let m = self.0;
        let mut resp =
            (StatusCode::OK, m.body.map_or_else(Body::empty, Body::from)).into_response();
        set(&mut resp, header::CONTENT_TYPE, &m.media_type);
        set(&mut resp, header::CONTENT_LENGTH, &m.size.to_string());
        set(&mut resp, header::ETAG, &format!("\"{}\"", m.digest));
        set(&mut resp, DIGEST_HEADER, m.digest.as_str());
        resp
    }
}

/// An upload session's state: 202 after POST/PATCH, 204 for a status GET.
pub struct UploadState {
    /// The repository, for `Location`.
    pub name: RepoName,
    /// Session id and bytes received (`Docker-Upload-UUID`, `Range`).
    pub progress: UploadProgress,
    /// 202 after POST/PATCH, 204 for a status GET.
    pub status: StatusCode,
}

impl IntoResponse for UploadState {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        set(
            &mut resp,
            header::LOCATION,
            &upload_location(&self.name, &self.progress.uuid),
        );
        set(&mut resp, header::RANGE, &range_header(self.progress.size));
        set(&mut resp, UUID_HEADER, &self.progress.uuid.to_string());
        set(&mut resp, header::CONTENT_LENGTH, "0");
        resp
    }
}

/// 307 to where the object store serves a blob (a presigned URL), as registry:2 answers.
pub struct Redirect {
    /// The URL.
    pub location: String,
}

impl IntoResponse for Redirect {
    fn into_response(self) -> Response {
        let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
        set(&mut resp, header::LOCATION, &self.location);
        set(&mut resp, header::CONTENT_LENGTH, "0");
        resp
    }
}

/// 201 for a stored blob or manifest.
pub struct Created {
    /// Where to GET it.
    pub location: String,
    /// `Docker-Content-Digest`.
    pub digest: Digest,
    /// For manifests pushed with a `subject` (`OCI-Subject`).
    pub subject: Option<Digest>,
}

impl Created {
    /// A blob stored in `name`.
    #[must_use]
    pub fn blob(name: &RepoName, digest: Digest) -> Self {
        Self {
            location: format!("/v2/{name}/blobs/{digest}"),
            digest,
            subject: None,
        }
    }

    /// A manifest stored in `name`.
    #[must_use]
    pub fn manifest(name: &RepoName, digest: Digest, subject: Option<Digest>) -> Self {
        Self {
            location: format!("/v2/{name}/manifests/{digest}"),
            digest,
            subject,
        }
    }
}

impl IntoResponse for Created {
    fn into_response(self) -> Response {
        let mut resp = StatusCode::CREATED.into_response();
        set(&mut resp, header::LOCATION, &self.location);
        set(&mut resp, DIGEST_HEADER, self.digest.as_str());
        set(&mut resp, header::CONTENT_LENGTH, "0");
        if let Some(s) = &self.subject {
            set(&mut resp, "oci-subject", s.as_str());
        }
        resp
    }
}

/// A JSON listing: tags, catalog or referrers, with `Link` for the next page and
/// `OCI-Filters-Applied` when the referrers were filtered.
pub struct Listing {
    /// The JSON document.
    pub body: serde_json::Value,
    /// `application/json`, or the OCI index type for referrers.
    pub content_type: &'static str,
    /// The next page's URL (`Link: <…>; rel="next"`).
    pub next: Option<String>,
    /// `OCI-Filters-Applied`, when a filter was applied.
    pub filters_applied: Option<&'static str>,
}

impl IntoResponse for Listing {
    fn into_response(self) -> Response {
        let mut resp = (StatusCode::OK, self.body.to_string()).into_response();
        set(&mut resp, header::CONTENT_TYPE, self.content_type);
        if let Some(next) = &self.next {
            set(&mut resp, header::LINK, &format!("<{next}>; rel=\"next\""));
        }
        if let Some(f) = self.filters_applied {
            set(&mut resp, "oci-filters-applied", f);
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> RepoName {
        RepoName::parse("team/app").unwrap()
    }

    #[test]
    fn a_redirect_is_a_307_to_the_url() {
        let r = Redirect {
            location: "http://127.0.0.1:3900/b/blobs?X-Amz-Signature=ab".into(),
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            r.headers()[header::LOCATION],
            "http://127.0.0.1:3900/b/blobs?X-Amz-Signature=ab"
        );
    }

    #[test]
    fn blob_headers_whole_and_ranged() {
        let d = Digest::of(b"abc");
        let r = BlobBody {
            digest: d.clone(),
            size: 3,
            range: None,
            body: None,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "3");
        assert_eq!(r.headers()[DIGEST_HEADER], d.as_str());
        assert_eq!(r.headers()[header::ETAG], format!("\"{d}\"").as_str());
        let r = BlobBody {
            digest: d,
            size: 3,
            range: Some((1, 2)),
            body: None,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "2");
        assert_eq!(r.headers()[header::CONTENT_RANGE], "bytes 1-2/3");
    }

    #[test]
    fn manifest_headers_carry_type_digest_length() {
        let d = Digest::of(b"{}");
        let m = StoredManifest {
            digest: d.clone(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 2,
            body: None,
        };
        let r = ManifestBody(m).into_response();
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(r.headers()[header::CONTENT_LENGTH], "2");
        assert_eq!(r.headers()[DIGEST_HEADER], d.as_str());
    }

    #[test]
    fn upload_state_headers() {
        let uuid = uuid::Uuid::nil();
        let r = UploadState {
            name: name(),
            progress: UploadProgress { uuid, size: 10 },
            status: StatusCode::ACCEPTED,
        }
        .into_response();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(
            r.headers()[header::LOCATION],
            format!("/v2/team/app/blobs/uploads/{uuid}").as_str()
        );
        assert_eq!(r.headers()[header::RANGE], "0-9");
        assert_eq!(r.headers()[UUID_HEADER], uuid.to_string().as_str());
        assert_eq!(range_header(0), "0-0");
    }

    #[test]
    fn created_sets_location_digest_and_subject() {
        let d = Digest::of(b"x");
        let r = Created::blob(&name(), d.clone()).into_response();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(
            r.headers()[header::LOCATION],
            format!("/v2/team/app/blobs/{d}").as_str()
        );
        assert!(r.headers().get("oci-subject").is_none());
        let r = Created::manifest(&name(), d.clone(), Some(d.clone())).into_response();
        assert_eq!(r.headers()["oci-subject"], d.as_str());
    }

    #[test]
    fn listing_sets_link_and_filters() {
        let r = Listing {
            body: serde_json::json!({}),
            content_type: "application/json",
            next: Some("/v2/x?n=1".into()),
            filters_applied: Some("artifactType"),
        }
        .into_response();
        assert_eq!(r.headers()[header::LINK], "</v2/x?n=1>; rel=\"next\"");
        assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    }
}
