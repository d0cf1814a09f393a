//! Checks on manifest responses shared by the manifest tests: the PUT answer and what GET/HEAD serve.

use reqwest::{Method, Response, StatusCode};

use crate::content::Content;
use crate::registry::{header, Registry};

impl Registry {
    /// `PUT /v2/<repo>/manifests/<reference>` must answer 201 with `Location` (by digest) and
    /// `Docker-Content-Digest`; returns the response for further checks.
    pub async fn put_manifest_ok(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Content,
        token: &str,
    ) -> Response {
        let resp = self
            .put_manifest(repo, reference, manifest, Some(token))
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "PUT {repo}:{reference}");
        assert_eq!(
            header(&resp, "Docker-Content-Digest"),
            manifest.digest,
            "PUT {repo}:{reference}"
        );
        let location = header(&resp, "Location");
        assert!(
            location.ends_with(&format!("/v2/{repo}/manifests/{}", manifest.digest)),
            "PUT {repo}:{reference}: Location {location}"
        );
        resp
    }

    /// GET and HEAD of `reference` serve `manifest` byte for byte with `Content-Type`,
    /// `Docker-Content-Digest`, `Content-Length` and an `ETag` naming the digest.
    pub async fn assert_serves(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Content,
        token: &str,
    ) {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let req = self
            .request(Method::GET, &path, Some(token))
            .header("Accept", manifest.media_type.as_str());
        let resp = self.send(req).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
        assert_eq!(
            header(&resp, "Content-Type"),
            manifest.media_type,
            "GET {path}"
        );
        assert_eq!(
            header(&resp, "Docker-Content-Digest"),
            manifest.digest,
            "GET {path}"
        );
        assert_eq!(
            header(&resp, "Content-Length"),
            manifest.bytes.len().to_string(),
            "GET {path}"
        );
        assert!(
            header(&resp, "ETag").contains(&manifest.digest),
            "GET {path}: ETag {}",
            header(&resp, "ETag")
        );
        let body = resp
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(body.as_ref(), manifest.bytes.as_slice(), "GET {path}");
        let resp = self.head(&path, Some(token)).await;
        assert_eq!(resp.status(), StatusCode::OK, "HEAD {path}");
        assert_eq!(
            header(&resp, "Docker-Content-Digest"),
            manifest.digest,
            "HEAD {path}"
        );
        assert_eq!(
            header(&resp, "Content-Length"),
            manifest.bytes.len().to_string(),
            "HEAD {path}"
        );
        assert_eq!(
            header(&resp, "Content-Type"),
            manifest.media_type,
            "HEAD {path}"
        );
    }
}
