//! A thin reqwest client for registryd's HTTP API, with push helpers and spec-error checks.

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::content::{Content, Image};

/// registryd at `base` (`http://127.0.0.1:PORT`). Requests carry the bearer token given to them.
#[derive(Clone)]
pub struct Registry {
    pub base: String,
    pub http: reqwest::Client,
}

impl Registry {
    pub fn new(base: &str) -> Registry {
        Registry::build(base, reqwest::Client::builder())
    }

    /// A client that opens a new connection for every request (no keep-alive pool), for tests
    /// whose subject is not connection reuse.
    pub fn unpooled(base: &str) -> Registry {
        Registry::build(base, reqwest::Client::builder().pool_max_idle_per_host(0))
    }

    /// A client whose requests carry `Authorization: Basic` for `user` (unless a request is
    /// given a token), for registries behind htpasswd.
    pub fn basic(base: &str, user: &str, password: &str) -> Registry {
        use base64::Engine;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut headers = reqwest::header::HeaderMap::new();
        let value = reqwest::header::HeaderValue::from_str(&format!("Basic {credentials}"))
            .unwrap_or_else(|e| panic!("credentials of {user} make no header: {e}"));
        headers.insert(reqwest::header::AUTHORIZATION, value);
        Registry::build(base, reqwest::Client::builder().default_headers(headers))
    }

    fn build(base: &str, builder: reqwest::ClientBuilder) -> Registry {
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}"));
        Registry {
            base: base.trim_end_matches('/').into(),
            http,
        }
    }

    /// `base + path`; a `path` that is already absolute (`http…`, as in some `Location`s) is kept.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.into()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// A request to `path` with `Authorization: Bearer token` when a token is given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    /// Sends a request built by [`Registry::request`].
    pub async fn send(&self, req: RequestBuilder) -> Response {
        req.send()
            .await
            .unwrap_or_else(|e| panic!("request to registryd failed: {e}"))
    }

    /// `GET path` with the token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send(self.request(Method::GET, path, token)).await
    }

    /// `HEAD path` with the token.
    pub async fn head(&self, path: &str, token: Option<&str>) -> Response {
        self.send(self.request(Method::HEAD, path, token)).await
    }

    /// Monolithic upload `POST /v2/<repo>/blobs/uploads/?digest=` (the raw response).
    pub async fn post_blob(&self, repo: &str, blob: &Content, token: Option<&str>) -> Response {
        let req = self
            .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"), token)
            .query(&[("digest", &blob.digest)])
            .header("Content-Type", "application/octet-stream")
            .body(blob.bytes.clone());
        self.send(req).await
    }

    /// Monolithic upload that must answer 201.
    pub async fn push_blob(&self, repo: &str, blob: &Content, token: Option<&str>) {
        let resp = self.post_blob(repo, blob, token).await;
        let status = resp.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "pushing blob {} to {repo}: {}",
            blob.digest,
            body_text(resp).await
        );
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with the content's media type (the raw response).
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Content,
        token: Option<&str>,
    ) -> Response {
        let req = self
            .request(
                Method::PUT,
                &format!("/v2/{repo}/manifests/{reference}"),
                token,
            )
            .header("Content-Type", manifest.media_type.as_str())
            .body(manifest.bytes.clone());
        self.send(req).await
    }

    /// Manifest PUT that must answer 201.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        manifest: &Content,
        token: Option<&str>,
    ) {
        let resp = self.put_manifest(repo, reference, manifest, token).await;
        let status = resp.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "pushing manifest {reference} to {repo}: {}",
            body_text(resp).await
        );
    }

    /// Pushes every blob of `image` then its manifest under `reference`.
    pub async fn push_image(
        &self,
        repo: &str,
        reference: &str,
        image: &Image,
        token: Option<&str>,
    ) {
        for blob in image.blobs() {
            self.push_blob(repo, blob, token).await;
        }
        self.push_manifest(repo, reference, &image.manifest, token)
            .await;
    }
}

impl Registry {
    /// The digest `repo:reference` resolves to (an OCI image manifest read whole), or the
    /// status when it does not.
    pub async fn served_digest(&self, repo: &str, reference: &str) -> Result<String, StatusCode> {
        let resp = self
            .send(
                self.request(
                    Method::GET,
                    &format!("/v2/{repo}/manifests/{reference}"),
                    None,
                )
                .header("Accept", "application/vnd.oci.image.manifest.v1+json"),
            )
            .await;
        match resp.status() {
            StatusCode::OK => Ok(header(&resp, "Docker-Content-Digest")),
            status => Err(status),
        }
    }

    /// The bytes of blob `digest` of `repo`, following a redirect to the store.
    pub async fn blob_bytes(&self, repo: &str, digest: &str) -> Vec<u8> {
        let resp = self.get(&format!("/v2/{repo}/blobs/{digest}"), None).await;
        let resp = match resp.status() {
            StatusCode::TEMPORARY_REDIRECT => reqwest::get(header(&resp, "Location"))
                .await
                .unwrap_or_else(|e| panic!("following the redirect for {digest}: {e}")),
            _ => resp,
        };
        assert_eq!(resp.status(), StatusCode::OK, "GET blob {digest}");
        resp.bytes()
            .await
            .unwrap_or_else(|e| panic!("reading blob {digest}: {e}"))
            .to_vec()
    }
}

/// The body as text (for assertion messages).
pub async fn body_text(resp: Response) -> String {
    resp.text()
        .await
        .unwrap_or_else(|e| format!("<unreadable body: {e}>"))
}

/// A header's value as text, or "" when absent.
pub fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Asserts `resp` is the spec's error: `status`, and a JSON body `{"errors":[{"code": code, "message", …}]}`
/// whose first error has `code`. Returns the body.
pub async fn expect_error(resp: Response, status: StatusCode, code: &str) -> Value {
    let got = resp.status();
    let url = resp.url().clone();
    let text = body_text(resp).await;
    assert_eq!(
        got, status,
        "{url}: expected {status} {code}, got {got}: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{url}: error body is not JSON ({e}): {text}"));
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{url}: no `errors` array in {text}"));
    assert!(!errors.is_empty(), "{url}: empty `errors` in {text}");
    assert_eq!(errors[0]["code"], code, "{url}: wrong error code in {text}");
    assert!(
        errors[0]["message"].is_string(),
        "{url}: error without a message: {text}"
    );
    body
}

/// The `key="value"` parameters of a `WWW-Authenticate: Bearer …` challenge (empty when the
/// header is absent or not a Bearer challenge).
pub fn bearer_params(resp: &Response) -> std::collections::BTreeMap<String, String> {
    let value = header(resp, "WWW-Authenticate");
    let Some(rest) = value.strip_prefix("Bearer ") else {
        return Default::default();
    };
    let mut params = std::collections::BTreeMap::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once("=\"") {
        let Some((val, tail)) = after.split_once('"') else {
            break;
        };
        params.insert(
            key.trim().trim_start_matches(',').trim().to_string(),
            val.to_string(),
        );
        rest = tail.trim_start_matches(',').trim();
    }
    params
}

/// Every error code of the distribution spec.
pub const SPEC_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
    "RANGE_INVALID",
];

/// Asserts `resp` (not to a HEAD) is a client error (4xx, never 5xx) carrying the spec's JSON
/// with one of the spec's codes; returns the status and the code.
pub async fn expect_client_error(resp: Response, what: &str) -> (StatusCode, String) {
    let status = resp.status();
    let text = body_text(resp).await;
    assert!(
        status.is_client_error(),
        "{what}: expected a 4xx, got {status}: {text}"
    );
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{what}: {status} body is not the spec's JSON ({e}): {text}"));
    let code = body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        SPEC_CODES.contains(&code.as_str()),
        "{what}: {status} with a code outside the spec: {text}"
    );
    (status, code)
}
