//! One upstream registry and the client that speaks to it as Docker's own client does: a request
//! without credentials first, then the 401's challenge answered (a token fetched from the
//! Bearer realm with the configured account or anonymously, or the account sent as Basic), the
//! answer cached per scope until it expires, and the request retried once. Redirects (blobs
//! sent to object storage or a CDN) are followed; credentials are not sent to another host.
//! Every request logs one `upstream fetch` line and counts in the metrics; neither shows
//! credentials or query strings.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderValue, Method, StatusCode};
use reqwest::{Client, Response};

use super::challenge::{Challenge, TokenAnswer};
use super::credentials::Credentials;
use crate::config::proxy::Upstream as UpstreamConfig;
use crate::error::Error;

/// Seconds to wait for a connection to an upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence while reading an upstream's answer.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Tokens cached per upstream at most (one per repository scope).
const MAX_TOKENS: usize = 4096;

/// Why an upstream did not give what was asked.
#[derive(Debug)]
pub enum UpstreamError {
    /// It has no such thing (404).
    NotFound,
    /// It refused the request: our credentials or anonymous access (401/403 after answering
    /// the challenge), or another 4xx (e.g. registry:2's 400 for an `Accept` it cannot serve).
    Refused(StatusCode),
    /// Unreachable, timed out, 5xx, 429, a redirect left unfollowed or a broken answer: what is
    /// cached may be served.
    Unavailable(String),
}

impl UpstreamError {
    /// The client's error for a miss that failed this way; `unknown` for a 404.
    pub fn into_error(self, upstream: &str, unknown: Error) -> Error {
        match self {
            Self::NotFound => unknown,
            Self::Refused(status) => match unknown {
                Error::BlobUnknown(what) => Error::BlobUnknown(format!(
                    "{what}: upstream {upstream} refused the request ({status})"
                )),
                Error::ManifestUnknown(what) => Error::ManifestUnknown(format!(
                    "{what}: upstream {upstream} refused the request ({status})"
                )),
                other => other,
            },
            Self::Unavailable(why) => Error::Upstream(format!(
                "upstream {upstream} is unavailable ({why}) and this is not cached"
            )),
        }
    }
}

/// A cached `Authorization` value.
#[derive(Debug, Clone)]
struct Authorization {
    value: HeaderValue,
    until: Option<Instant>,
}

/// A configured upstream: where it is, how to log in, how long tags stay fresh.
#[derive(Debug)]
pub struct Upstream {
    /// The local name prefix, e.g. `docker.io`.
    pub name: String,
    /// `name` and the other host names containerd's `?ns=` may carry for it, lowercased.
    hosts: Vec<String>,
    /// Base URL without a trailing slash.
    base: String,
    credentials: Option<Credentials>,
    client: Client,
    /// Cached tags are served this long before a revalidating `HEAD`.
    pub ttl: Duration,
    /// Serves names no prefix claims.
    pub default: bool,
    /// `Authorization` values by scope (`repository:<name>:pull`).
    auth: Mutex<HashMap<String, Authorization>>,
}

impl Upstream {
    /// Builds the client for one `proxy.upstreams[]` entry.
    ///
    /// # Errors
    /// `Config` for a bad URL, unreadable CA file or credentials.
    pub fn from_config(cfg: &UpstreamConfig) -> Result<Self, Error> {
        let err = |m: String| Error::Config(format!("proxy.upstreams[{}]: {m}", cfg.name));
        let url = reqwest::Url::parse(&cfg.remoteurl)
            .map_err(|e| err(format!("remoteurl {:?}: {e}", cfg.remoteurl)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(err(format!(
                "remoteurl {:?} is not an http(s) URL",
                cfg.remoteurl
            )));
        }
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let credentials = Credentials::of(cfg, &host)?;
        let mut builder = Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("berth-registryd/", env!("CARGO_PKG_VERSION")))
            .danger_accept_invalid_certs(cfg.insecureskipverify);
        if let Some(ca) = &cfg.cacertificate {
            let pem = std::fs::read(ca).map_err(|e| err(format!("{}: {e}", ca.display())))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| err(format!("{}: {e}", ca.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| err(format!("client: {e}")))?;
        let mut hosts: Vec<String> = std::iter::once(&cfg.name)
            .chain(&cfg.aliases)
            .map(|h| h.to_ascii_lowercase())
            .collect();
        hosts.dedup();
        Ok(Self {
            name: cfg.name.clone(),
            hosts,
            base: cfg.remoteurl.trim_end_matches('/').to_owned(),
            credentials,
            client,
            ttl: cfg.ttl,
            default: cfg.default,
            auth: Mutex::default(),
        })
    }

    /// Whether containerd's `?ns=` names this upstream.
    #[must_use]
    pub fn answers_to(&self, ns: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(ns))
    }

    /// The repository name to ask the upstream for, given the name under our prefix: Docker
    /// Hub's official images live under `library/`, so `docker.io/alpine` asks for
    /// `library/alpine` as Docker's own client does.
    #[must_use]
    pub fn remote_name(&self, local_rest: &str) -> String {
        if self.name == "docker.io" && !local_rest.contains('/') {
            format!("library/{local_rest}")
        } else {
            local_rest.to_owned()
        }
    }

    /// Sends `method` for `/v2/<remote>/<tail>` with `accept`, answering one auth challenge.
    /// 2xx comes back as is; 404, 401/403 and unavailability as [`UpstreamError`].
    ///
    /// # Errors
    /// As described.
    pub async fn send(
        &self,
        method: Method,
        remote: &str,
        tail: &str,
        accept: Option<&HeaderValue>,
    ) -> Result<Response, UpstreamError> {
        let scope = format!("repository:{remote}:pull");
        let path = format!("/v2/{remote}/{tail}");
        let url = format!("{}{path}", self.base);
        let mut answered = false;
        loop {
            let started = Instant::now();
            let mut req = self.client.request(method.clone(), &url);
            if let Some(accept) = accept {
                req = req.header(header::ACCEPT, accept);
            }
            if let Some(auth) = self.cached_auth(&scope) {
                req = req.header(header::AUTHORIZATION, auth);
            }
            let resp = req.send().await;
            let status = resp.as_ref().map_or(0, |r| r.status().as_u16());
            let bytes = resp.as_ref().ok().and_then(Response::content_length);
            self.record(&method, &path, status, bytes, started);
            let resp = resp.map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if !answered => {
                    answered = true;
                    let challenge = resp
                        .headers()
                        .get(header::WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(Challenge::parse)
                        .ok_or(UpstreamError::Refused(StatusCode::UNAUTHORIZED))?;
                    self.answer(&scope, challenge).await?;
                }
                s if s.is_success() => return Ok(resp),
                StatusCode::NOT_FOUND => return Err(UpstreamError::NotFound),
                s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                    self.forget_auth(&scope);
                    return Err(UpstreamError::Refused(s));
                }
                s if s.is_client_error() && s != StatusCode::TOO_MANY_REQUESTS => {
                    return Err(UpstreamError::Refused(s))
                }
                s => return Err(UpstreamError::Unavailable(format!("answered {s}"))),
            }
        }
    }

    /// One `upstream fetch` log line and the request counter.
    fn record(&self, method: &Method, path: &str, status: u16, bytes: Option<u64>, t: Instant) {
        let elapsed_ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(upstream = %self.name, %method, path, status, bytes, elapsed_ms, "upstream fetch");
        let status = if status == 0 {
            "error".to_owned()
        } else {
            status.to_string()
        };
        metrics::counter!("registry_proxy_upstream_requests_total",
            "upstream" => self.name.clone(), "method" => method.to_string(), "status" => status)
        .increment(1);
    }

    fn cached_auth(&self, scope: &str) -> Option<HeaderValue> {
        let map = self.auth.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(scope)
            .filter(|a| a.until.is_none_or(|u| u > Instant::now()))
            .map(|a| a.value.clone())
    }

    fn forget_auth(&self, scope: &str) {
        self.auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(scope);
    }

    fn remember_auth(&self, scope: &str, value: HeaderValue, until: Option<Instant>) {
        let mut map = self.auth.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_TOKENS {
            let now = Instant::now();
            map.retain(|_, a| a.until.is_none_or(|u| u > now));
            if map.len() >= MAX_TOKENS {
                map.clear();
            }
        }
        map.insert(scope.to_owned(), Authorization { value, until });
    }

    /// Answers a challenge for `scope`: fetches a Bearer token, or prepares Basic auth.
    async fn answer(&self, scope: &str, challenge: Challenge) -> Result<(), UpstreamError> {
        let denied = || UpstreamError::Refused(StatusCode::UNAUTHORIZED);
        match challenge {
            Challenge::Basic => {
                let creds = self.credentials.as_ref().ok_or_else(denied)?;
                let value = HeaderValue::from_str(&creds.basic()).map_err(|_| denied())?;
                self.remember_auth(scope, value, None);
                Ok(())
            }
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                let mut url = reqwest::Url::parse(&realm).map_err(|e| {
                    UpstreamError::Unavailable(format!("token realm {realm:?}: {e}"))
                })?;
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(service) = &service {
                        q.append_pair("service", service);
                    }
                    q.append_pair("scope", asked.as_deref().unwrap_or(scope));
                }
                let mut req = self.client.get(url);
                if let Some(c) = &self.credentials {
                    req = req.basic_auth(&c.username, Some(&c.password));
                }
                let started = Instant::now();
                let resp = req.send().await;
                let status = resp.as_ref().map_or(0, |r| r.status().as_u16());
                self.record(&Method::GET, "(token realm)", status, None, started);
                let resp = resp.map_err(|e| UpstreamError::Unavailable(describe(&e)))?;
                match resp.status() {
                    s if s.is_success() => {}
                    s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                        return Err(UpstreamError::Refused(s))
                    }
                    s => {
                        return Err(UpstreamError::Unavailable(format!(
                            "token realm answered {s}"
                        )))
                    }
                }
                let answer: TokenAnswer = resp.json().await.map_err(|e| {
                    UpstreamError::Unavailable(format!("token realm: {}", describe(&e)))
                })?;
                let (token, life) = answer.into_token().ok_or_else(|| {
                    UpstreamError::Unavailable("token realm gave no token".into())
                })?;
                let value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| UpstreamError::Unavailable("token is not a header".into()))?;
                self.remember_auth(scope, value, Some(Instant::now() + life));
                Ok(())
            }
        }
    }
}

/// A client error without its URL (which may carry a token realm's query).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(yaml: &str) -> Upstream {
        Upstream::from_config(&serde_yaml::from_str(yaml).unwrap()).unwrap()
    }

    #[test]
    fn names_and_hosts() {
        let hub = upstream("{name: docker.io, aliases: [Registry-1.Docker.IO], remoteurl: 'https://registry-1.docker.io/'}");
        assert_eq!(hub.remote_name("alpine"), "library/alpine");
        assert_eq!(hub.remote_name("library/alpine"), "library/alpine");
        assert!(hub.answers_to("docker.io") && hub.answers_to("registry-1.docker.io"));
        assert!(!hub.answers_to("ghcr.io"));
        let ghcr = upstream("{name: ghcr.io, remoteurl: 'https://ghcr.io'}");
        assert_eq!(ghcr.remote_name("app"), "app");
        assert_eq!(ghcr.ttl, Duration::from_secs(600));
    }

    #[test]
    fn bad_urls_are_refused() {
        for url in ["ftp://x", "not a url", "http://"] {
            let cfg = serde_yaml::from_str(&format!("{{name: a, remoteurl: '{url}'}}")).unwrap();
            assert!(Upstream::from_config(&cfg).is_err(), "{url}");
        }
    }
}
