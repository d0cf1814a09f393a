//! Requests with a path sent byte for byte (no URL normalisation), for names like `a/../b`.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// The parts of a raw response the tests look at.
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// A new HTTP/1.1 connection to `addr`: its sender and the task driving it.
async fn connect<B>(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<B>,
    tokio::task::JoinHandle<hyper::Result<()>>,
)
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap_or_else(|e| panic!("HTTP handshake with {addr} failed: {e}"));
    (sender, tokio::spawn(conn))
}

/// Sends `method path` to `addr` over a new HTTP/1.1 connection with the path exactly as given
/// (reqwest would resolve `..` and `%2e%2e` segments before sending).
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> RawResponse {
    let (mut sender, conn) = connect(addr).await;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", addr.to_string());
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .unwrap_or_else(|e| panic!("invalid raw request {method} {path}: {e}"));
    let resp = sender
        .send_request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("reading the body of {method} {path} failed: {e}"))
        .to_bytes();
    conn.abort();
    RawResponse {
        status,
        headers,
        body,
    }
}

/// Sends `method path` with `headers` and `body`, reads the answer, then sends `GET /v2/` with
/// `token` on the same connection: both go through one hyper connection handle, which never
/// reconnects, so a second answer proves the first connection survived. Returns the first
/// answer and the second's status (or why the connection could not carry it).
pub async fn then_reuse(
    addr: SocketAddr,
    (method, path): (&str, &str),
    headers: &[(&str, String)],
    body: Vec<u8>,
    token: &str,
) -> (RawResponse, Result<u16, String>) {
    let (mut sender, conn) = connect(addr).await;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let req = req
        .body(http_body_util::Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| panic!("invalid request {method} {path}: {e}"));
    let resp = sender
        .send_request(req)
        .await
        .unwrap_or_else(|e| panic!("{method} {path} failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let first = RawResponse {
        status,
        headers,
        body,
    };

    let second = async {
        sender
            .ready()
            .await
            .map_err(|e| format!("connection not reusable: {e}"))?;
        let req = http::Request::builder()
            .uri("/v2/")
            .header("Host", addr.to_string())
            .header("Authorization", format!("Bearer {token}"))
            .body(http_body_util::Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("second request failed: {e}"))?;
        Ok(resp.status().as_u16())
    }
    .await;
    conn.abort();
    (first, second)
}
