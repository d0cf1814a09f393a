//! An HTTP front for a Basic-auth upstream that sends blob downloads elsewhere, as Docker Hub,
//! ghcr and ECR send clients to object storage: a blob `GET` is answered `307` to a "CDN" on
//! another host name (`localhost:PORT/cdn/…`), which serves the bytes and records the
//! `Authorization` each of its requests carried. Everything else is passed to the upstream.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::authd::User;

/// A running front on a 127.0.0.1 port of its own; it stops when dropped.
pub struct RedirectingFront {
    pub port: u16,
    state: Arc<State>,
    accept: tokio::task::JoinHandle<()>,
}

struct State {
    port: u16,
    upstream: SocketAddr,
    /// What the CDN fetches the redirected blobs with (its own access, not the client's).
    reader: User,
    http: reqwest::Client,
    /// The `Authorization` of each request the CDN answered (`None`: none sent).
    cdn_auth: Mutex<Vec<Option<String>>>,
}

impl RedirectingFront {
    /// Fronts the registry at `upstream`, the CDN reading blobs from it as `reader`.
    pub async fn start(upstream: SocketAddr, reader: &User) -> RedirectingFront {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the front: {e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("front address: {e}"))
            .port();
        let state = Arc::new(State {
            port,
            upstream,
            reader: reader.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_else(|e| panic!("cannot build an HTTP client: {e}")),
            cdn_auth: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            // Owned here: aborting the accept task aborts every connection's task.
            let mut connections = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&shared);
                let service = hyper::service::service_fn(move |req| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(state.answer(req).await) }
                });
                connections.spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        RedirectingFront {
            port,
            state,
            accept,
        }
    }

    /// The `Authorization` of each request the CDN answered so far (`None`: none sent).
    pub fn cdn_requests(&self) -> Vec<Option<String>> {
        self.state
            .cdn_auth
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }
}

impl Drop for RedirectingFront {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl State {
    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let target = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_string(), ToString::to_string);
        if let Some(blob) = target.strip_prefix("/cdn") {
            let auth = req
                .headers()
                .get(hyper::header::AUTHORIZATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            if let Ok(mut seen) = self.cdn_auth.lock() {
                seen.push(auth);
            }
            let fetch = self
                .http
                .get(format!("http://{}{blob}", self.upstream))
                .basic_auth(&self.reader.name, Some(&self.reader.password));
            return self.relay(fetch).await;
        }
        if req.method() == hyper::Method::GET && target.contains("/blobs/sha256:") {
            let location = format!("http://localhost:{}/cdn{target}", self.port);
            return Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(hyper::header::LOCATION, location)
                .body(Full::default())
                .unwrap_or_default();
        }
        let method = req.method().clone();
        let headers = req.headers().clone();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let mut forward = self
            .http
            .request(method, format!("http://{}{target}", self.upstream))
            .body(body);
        for (name, value) in &headers {
            if name != hyper::header::HOST {
                forward = forward.header(name, value);
            }
        }
        self.relay(forward).await
    }

    /// Sends `req` and answers with what came back (status, headers, whole body); 502 when the
    /// upstream cannot be reached.
    async fn relay(&self, req: reqwest::RequestBuilder) -> Response<Full<Bytes>> {
        let Ok(resp) = req.send().await else {
            let mut bad = Response::new(Full::default());
            *bad.status_mut() = StatusCode::BAD_GATEWAY;
            return bad;
        };
        let mut answer = Response::builder().status(resp.status());
        for (name, value) in resp.headers() {
            // The body goes out whole, framed anew.
            if name != hyper::header::TRANSFER_ENCODING && name != hyper::header::CONNECTION {
                answer = answer.header(name, value);
            }
        }
        let body = resp.bytes().await.unwrap_or_default();
        answer.body(Full::new(body)).unwrap_or_default()
    }
}
