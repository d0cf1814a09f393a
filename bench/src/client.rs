//! A registry client as Docker's token protocol shapes it: a token fetched from authd once (for
//! the scopes the client will use), then distribution-API calls with `Authorization: Bearer`.

use std::net::SocketAddr;

use base64::Engine;
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::content::{BigBlob, SmallBlob, MANIFEST_TYPE};
use crate::error::BenchError;
use crate::http::{origin_form, request, Answer, Conn, Keep, Payload};

/// Who asks authd for tokens, and for which service.
#[derive(Clone, Debug)]
pub struct Login {
    pub authd: SocketAddr,
    pub service: String,
    pub user: String,
    pub password: String,
}

impl Login {
    /// `Basic …` for the user.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.user, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The `/auth` path asking for `scopes` (space-separated, as one `scope` value each).
    pub fn auth_path(&self, scopes: &str) -> String {
        let mut path = format!("/auth?service={}", self.service);
        for scope in scopes.split_whitespace() {
            path.push_str("&scope=");
            path.push_str(scope);
        }
        path
    }

    /// A token for `scopes` fetched over `conn` (a connection to authd).
    ///
    /// # Errors
    /// The request failed or authd did not answer 200 with a `token`.
    pub async fn token(&self, conn: &mut Conn, scopes: &str) -> Result<String, BenchError> {
        let basic = self.basic();
        let req = request(
            Method::GET,
            &self.auth_path(scopes),
            &[("authorization", &basic)],
            Payload::empty(),
        )?;
        let answer = conn
            .send(req, Keep::Body)
            .await?
            .expect("token request", StatusCode::OK)?;
        let json: serde_json::Value = serde_json::from_slice(&answer.body)
            .map_err(|e| BenchError::protocol("token answer", e.to_string()))?;
        json["token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| BenchError::protocol("token answer", "no `token` field"))
    }
}

/// One client of one registry: a keep-alive connection and a Bearer token.
pub struct Client {
    conn: Conn,
    bearer: String,
}

impl Client {
    /// A client of the registry at `registry` holding a token for `scopes`.
    ///
    /// # Errors
    /// The token could not be fetched.
    pub async fn login(
        registry: SocketAddr,
        login: &Login,
        scopes: &str,
    ) -> Result<Client, BenchError> {
        let mut client = Client {
            conn: Conn::new(registry),
            bearer: String::new(),
        };
        client.renew(login, scopes).await?;
        Ok(client)
    }

    /// A client of a registry without auth (no `Authorization` header).
    pub fn anonymous(registry: SocketAddr) -> Client {
        Client {
            conn: Conn::new(registry),
            bearer: String::new(),
        }
    }

    /// Replaces the token with one for `scopes` (a connection to authd is opened for it).
    ///
    /// # Errors
    /// The token could not be fetched.
    pub async fn renew(&mut self, login: &Login, scopes: &str) -> Result<(), BenchError> {
        let token = login.token(&mut Conn::new(login.authd), scopes).await?;
        self.bearer = format!("Bearer {token}");
        Ok(())
    }

    async fn call(
        &mut self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Payload,
        keep: Keep,
    ) -> Result<Answer, BenchError> {
        let mut all = Vec::with_capacity(headers.len() + 1);
        if !self.bearer.is_empty() {
            all.push(("authorization", self.bearer.as_str()));
        }
        all.extend_from_slice(headers);
        self.conn
            .send(request(method, uri, &all, body)?, keep)
            .await
    }

    /// `HEAD /v2/REPO/blobs/DIGEST`: whether the blob is there.
    pub async fn has_blob(&mut self, repo: &str, digest: &str) -> Result<bool, BenchError> {
        let uri = format!("/v2/{repo}/blobs/{digest}");
        let answer = self
            .call(Method::HEAD, &uri, &[], Payload::empty(), Keep::Body)
            .await?;
        match answer.status {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            other => Err(BenchError::protocol(
                "blob HEAD",
                format!("answered {other}"),
            )),
        }
    }

    /// `POST /v2/REPO/blobs/uploads/`: the new session's location (origin form).
    async fn start_upload(&mut self, repo: &str) -> Result<String, BenchError> {
        let uri = format!("/v2/{repo}/blobs/uploads/");
        let answer = self
            .call(Method::POST, &uri, &[], Payload::empty(), Keep::Body)
            .await?;
        location_of(answer.expect("upload POST", StatusCode::ACCEPTED)?)
    }

    /// `PUT LOCATION?digest=…` with `body`: closes the upload; expects 201.
    async fn finish_upload(
        &mut self,
        location: &str,
        digest: &str,
        body: Payload,
    ) -> Result<(), BenchError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let uri = format!("{location}{sep}digest={digest}");
        let headers = [("content-type", "application/octet-stream")];
        self.call(Method::PUT, &uri, &headers, body, Keep::Body)
            .await?
            .expect("upload PUT", StatusCode::CREATED)?;
        Ok(())
    }

    /// Monolithic push: `POST` a session, then one `PUT` carrying the whole blob.
    pub async fn push_monolithic(&mut self, repo: &str, blob: &BigBlob) -> Result<(), BenchError> {
        let location = self.start_upload(repo).await?;
        self.finish_upload(
            &location,
            &blob.digest,
            Payload::new(blob.parts.iter().cloned()),
        )
        .await
    }

    /// A small blob pushed as a client does: `HEAD` first, then `POST` + `PUT` when missing.
    pub async fn push_small(&mut self, repo: &str, blob: &SmallBlob) -> Result<(), BenchError> {
        if self.has_blob(repo, &blob.digest).await? {
            return Ok(());
        }
        let location = self.start_upload(repo).await?;
        self.finish_upload(&location, &blob.digest, Payload::new([blob.data.clone()]))
            .await
    }

    /// Chunked push: `POST`, one `PATCH` per `chunk` bytes (with `Content-Range`), empty `PUT`.
    pub async fn push_chunked(
        &mut self,
        repo: &str,
        blob: &BigBlob,
        chunk: usize,
    ) -> Result<(), BenchError> {
        let mut location = self.start_upload(repo).await?;
        let mut offset = 0u64;
        for piece in blob.chunks(chunk) {
            let end = offset + piece.len() as u64;
            let range = format!("{offset}-{}", end - 1);
            let length = piece.len().to_string();
            let headers = [
                ("content-type", "application/octet-stream"),
                ("content-range", range.as_str()),
                ("content-length", length.as_str()),
            ];
            let answer = self
                .call(
                    Method::PATCH,
                    &location,
                    &headers,
                    Payload::new([piece]),
                    Keep::Body,
                )
                .await?;
            location = location_of(answer.expect("upload PATCH", StatusCode::ACCEPTED)?)?;
            offset = end;
        }
        self.finish_upload(&location, &blob.digest, Payload::empty())
            .await
    }

    /// `GET /v2/REPO/blobs/DIGEST`, counting the bytes; returns how many came.
    pub async fn pull_blob(&mut self, repo: &str, digest: &str) -> Result<u64, BenchError> {
        let uri = format!("/v2/{repo}/blobs/{digest}");
        let answer = self
            .call(Method::GET, &uri, &[], Payload::empty(), Keep::Count)
            .await?;
        Ok(answer.expect("blob GET", StatusCode::OK)?.len)
    }

    /// `POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=FROM`; expects 201 (mounted).
    pub async fn mount(&mut self, repo: &str, from: &str, digest: &str) -> Result<(), BenchError> {
        let uri = format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}");
        self.call(Method::POST, &uri, &[], Payload::empty(), Keep::Body)
            .await?
            .expect("blob mount", StatusCode::CREATED)?;
        Ok(())
    }

    /// `PUT /v2/REPO/manifests/REFERENCE` of an OCI image manifest; expects 201.
    pub async fn put_manifest(
        &mut self,
        repo: &str,
        reference: &str,
        manifest: &Bytes,
    ) -> Result<(), BenchError> {
        let uri = format!("/v2/{repo}/manifests/{reference}");
        let headers = [("content-type", MANIFEST_TYPE)];
        let body = Payload::new([manifest.clone()]);
        self.call(Method::PUT, &uri, &headers, body, Keep::Body)
            .await?
            .expect("manifest PUT", StatusCode::CREATED)?;
        Ok(())
    }

    /// `HEAD /v2/REPO/manifests/REFERENCE` accepting OCI manifests: the manifest's digest (its
    /// `Docker-Content-Digest`), as a client asks before deleting by tag.
    pub async fn manifest_digest(
        &mut self,
        repo: &str,
        reference: &str,
    ) -> Result<String, BenchError> {
        let uri = format!("/v2/{repo}/manifests/{reference}");
        let headers = [("accept", MANIFEST_TYPE)];
        let answer = self
            .call(Method::HEAD, &uri, &headers, Payload::empty(), Keep::Body)
            .await?
            .expect("manifest HEAD", StatusCode::OK)?;
        match answer.header("docker-content-digest") {
            "" => Err(BenchError::protocol(
                "manifest HEAD",
                "no Docker-Content-Digest",
            )),
            digest => Ok(digest.to_owned()),
        }
    }

    /// `DELETE /v2/REPO/manifests/DIGEST`; expects 202.
    pub async fn delete_manifest(&mut self, repo: &str, digest: &str) -> Result<(), BenchError> {
        let uri = format!("/v2/{repo}/manifests/{digest}");
        self.call(Method::DELETE, &uri, &[], Payload::empty(), Keep::Body)
            .await?
            .expect("manifest DELETE", StatusCode::ACCEPTED)?;
        Ok(())
    }

    /// `GET /v2/REPO/manifests/REFERENCE` accepting OCI manifests; returns the body's length.
    pub async fn get_manifest(&mut self, repo: &str, reference: &str) -> Result<u64, BenchError> {
        let uri = format!("/v2/{repo}/manifests/{reference}");
        let answer = self
            .call(
                Method::GET,
                &uri,
                &[("accept", MANIFEST_TYPE)],
                Payload::empty(),
                Keep::Body,
            )
            .await?;
        Ok(answer.expect("manifest GET", StatusCode::OK)?.len)
    }

    /// `GET URI` (a listing: tags list or catalog); expects 200 and returns the body's length.
    pub async fn get_listing(&mut self, uri: &str) -> Result<u64, BenchError> {
        let answer = self
            .call(Method::GET, uri, &[], Payload::empty(), Keep::Body)
            .await?;
        Ok(answer.expect("listing GET", StatusCode::OK)?.len)
    }
}

/// The `Location` of an answer, in origin form.
fn location_of(answer: Answer) -> Result<String, BenchError> {
    origin_form(answer.header("location"))
}
