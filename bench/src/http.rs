//! The load generator's HTTP/1.1 client: one keep-alive connection per worker (hyper's
//! connection API, no pool), request bodies made of shared `Bytes` slices, and responses read to
//! the end so the connection can be reused.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::BenchError;

/// Frames handed to hyper at a time: large bodies go out as zero-copy slices of this size.
const FRAME: usize = 1 << 20;

/// A request body: a sequence of byte buffers sent back to back, with an exact length.
#[derive(Debug, Default)]
pub struct Payload {
    parts: VecDeque<Bytes>,
    remaining: u64,
}

impl Payload {
    /// The concatenation of `parts`.
    pub fn new(parts: impl IntoIterator<Item = Bytes>) -> Payload {
        let mut out = Payload::default();
        for part in parts {
            let mut part = part;
            while !part.is_empty() {
                let piece = part.split_to(part.len().min(FRAME));
                out.remaining += piece.len() as u64;
                out.parts.push_back(piece);
            }
        }
        out
    }

    /// No body.
    pub fn empty() -> Payload {
        Payload::default()
    }
}

impl Body for Payload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.parts.pop_front();
        if let Some(part) = &next {
            self.remaining -= part.len() as u64;
        }
        Poll::Ready(next.map(|part| Ok(Frame::data(part))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A response read to its end: status, headers and the body's length (and bytes when kept).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub len: u64,
    pub body: Bytes,
}

impl Answer {
    /// The header's value as text (empty when absent or not text).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `Err` unless the status is `want`; the error quotes the start of the body.
    pub fn expect(self, what: &str, want: StatusCode) -> Result<Answer, BenchError> {
        if self.status == want {
            return Ok(self);
        }
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            .trim_end()
            .to_owned();
        Err(BenchError::protocol(
            what,
            format!("answered {} (wanted {want}): {body}", self.status),
        ))
    }
}

/// Whether a response body is kept or only counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Keep the bytes (small answers: JSON, manifests, errors).
    Body,
    /// Count the bytes and drop them (blob pulls); error bodies are still kept.
    Count,
}

/// One keep-alive HTTP/1.1 connection to `addr`, opened on first use and again when closed.
pub struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Payload>>,
}

impl Conn {
    /// A connection to `addr`, not yet open.
    pub fn new(addr: SocketAddr) -> Conn {
        Conn { addr, sender: None }
    }

    /// Sends `req` (its URI in origin form: path and query) and reads the whole answer.
    ///
    /// # Errors
    /// Connecting, sending or receiving failed.
    pub async fn send(
        &mut self,
        mut req: Request<Payload>,
        keep: Keep,
    ) -> Result<Answer, BenchError> {
        let host = http::HeaderValue::from_str(&self.addr.to_string())
            .map_err(|e| BenchError::protocol("host header", e.to_string()))?;
        req.headers_mut().insert(http::header::HOST, host);
        let sender = self.ready().await?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|source| BenchError::Http {
                what: "request".into(),
                source,
            })?;
        let (parts, mut body) = resp.into_parts();
        let keep = if parts.status.is_success() {
            keep
        } else {
            Keep::Body
        };
        let (len, body) = read_body(&mut body, keep).await?;
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            len,
            body,
        })
    }

    /// The open sender, connecting first when there is none or the old one closed.
    async fn ready(&mut self) -> Result<&mut SendRequest<Payload>, BenchError> {
        if let Some(sender) = self.sender.as_mut() {
            if sender.ready().await.is_err() {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(BenchError::io(format!("connect to {}", self.addr)))?;
            stream
                .set_nodelay(true)
                .map_err(BenchError::io("set TCP_NODELAY"))?;
            let (sender, conn) =
                http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|source| BenchError::Http {
                        what: "handshake".into(),
                        source,
                    })?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| BenchError::protocol("connection", "no sender after connecting"))
    }
}

/// Reads `body` to its end; returns its length and, with [`Keep::Body`], its bytes.
async fn read_body(body: &mut Incoming, keep: Keep) -> Result<(u64, Bytes), BenchError> {
    let mut len = 0u64;
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|source| BenchError::Http {
            what: "response body".into(),
            source,
        })?;
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            if keep == Keep::Body {
                kept.extend_from_slice(&data);
            }
        }
    }
    Ok((len, Bytes::from(kept)))
}

/// A request with `method`, `uri` (origin form) and `body`, plus `headers`.
///
/// # Errors
/// The URI or a header value is not valid.
pub fn request(
    method: http::Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Payload,
) -> Result<Request<Payload>, BenchError> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(body)
        .map_err(|e| BenchError::protocol(format!("request {uri}"), e.to_string()))
}

/// The path and query of a `Location` value, which may be absolute (registry:2) or a path.
///
/// # Errors
/// The value is not a URI.
pub fn origin_form(location: &str) -> Result<String, BenchError> {
    let uri: http::Uri = location
        .parse()
        .map_err(|e| BenchError::protocol("Location header", format!("{location:?}: {e}")))?;
    uri.path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .ok_or_else(|| BenchError::protocol("Location header", format!("{location:?} has no path")))
}
