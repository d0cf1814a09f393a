//! The upload protocol's steps as [`Registry`] methods: start a session, send chunks, ask the
//! status, finish with a digest.

use reqwest::{Method, Response, StatusCode};

use crate::content::Content;
use crate::registry::{body_text, header, Registry};

impl Registry {
    /// `POST /v2/<repo>/blobs/uploads/` → 202 with `Docker-Upload-UUID`; returns the upload URL.
    pub async fn start_upload(&self, repo: &str, token: &str) -> String {
        self.start_upload_as(repo, Some(token)).await
    }

    /// [`Registry::start_upload`] with the client's own credentials when `token` is `None`.
    async fn start_upload_as(&self, repo: &str, token: Option<&str>) -> String {
        let path = format!("/v2/{repo}/blobs/uploads/");
        let resp = self.send(self.request(Method::POST, &path, token)).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "POST {path}");
        assert!(
            !header(&resp, "Docker-Upload-UUID").is_empty(),
            "POST {path}: no Docker-Upload-UUID"
        );
        let location = header(&resp, "Location");
        assert!(location.contains(&path), "POST {path}: Location {location}");
        location
    }

    /// `PATCH location` with a chunk and, if given, its `Content-Range`.
    pub async fn patch_chunk(
        &self,
        location: &str,
        token: &str,
        bytes: &[u8],
        content_range: Option<&str>,
    ) -> Response {
        let mut req = self
            .request(Method::PATCH, location, Some(token))
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec());
        if let Some(range) = content_range {
            req = req.header("Content-Range", range);
        }
        self.send(req).await
    }

    /// `PUT location?digest=` with a last chunk (maybe empty).
    pub async fn finish_upload(
        &self,
        location: &str,
        token: &str,
        digest: &str,
        bytes: &[u8],
    ) -> Response {
        self.finish_upload_as(location, Some(token), digest, bytes)
            .await
    }

    /// [`Registry::finish_upload`] with the client's own credentials when `token` is `None`.
    async fn finish_upload_as(
        &self,
        location: &str,
        token: Option<&str>,
        digest: &str,
        bytes: &[u8],
    ) -> Response {
        let req = self
            .request(Method::PUT, location, token)
            .query(&[("digest", digest)])
            .header("Content-Type", "application/octet-stream")
            .body(bytes.to_vec());
        self.send(req).await
    }

    /// Uploads `blob` in two steps, `POST` then `PUT ?digest=` with all its bytes, which must
    /// answer 201: the upload every registry takes (registry:2 has no one-request `POST`).
    pub async fn upload_blob(&self, repo: &str, blob: &Content, token: Option<&str>) {
        let location = self.start_upload_as(repo, token).await;
        let resp = self
            .finish_upload_as(&location, token, &blob.digest, &blob.bytes)
            .await;
        let status = resp.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "uploading blob {} to {repo}: {}",
            blob.digest,
            body_text(resp).await
        );
    }

    /// `GET /v2/<repo>/blobs/<digest>` serves `blob`'s bytes exactly.
    pub async fn assert_blob(&self, repo: &str, blob: &Content, token: &str) {
        let path = format!("/v2/{repo}/blobs/{}", blob.digest);
        let body = self
            .get(&path, Some(token))
            .await
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(body.as_ref(), blob.bytes.as_slice(), "GET {path}");
    }

    /// The status of `HEAD /v2/<repo>/blobs/<digest>`.
    pub async fn blob_status(&self, repo: &str, digest: &str, token: Option<&str>) -> StatusCode {
        self.head(&format!("/v2/{repo}/blobs/{digest}"), token)
            .await
            .status()
    }
}

/// An upload's `Range` header without a `bytes=` prefix (`0-99`).
pub fn upload_range(resp: &Response) -> String {
    header(resp, "Range")
        .trim_start_matches("bytes=")
        .to_string()
}
