//! Keeps a connection usable when a request is answered before its body was read.
//!
//! A 401 for an upload, or a 416 for an out-of-order chunk, is decided from the headers. If the
//! body is left unread, the server must drop the connection, and a client still sending a large
//! layer sees a reset instead of the answer. This layer hands the handler a view of the body,
//! then reads what the handler left (up to [`DRAIN_LIMIT`] bytes, within [`DRAIN_TIME`]) before
//! the answer goes out; past those bounds it answers with `Connection: close`. A request refused
//! for want of credentials (401) is not drained: its answer goes out at once, with
//! `Connection: close`, and only [`LINGER_LIMIT`] more bytes are read (after the answer, so a
//! client still sending a small body reads the answer rather than a reset connection). A client
//! without credentials cannot make the server read more than that.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// How many unread bytes are read and thrown away to keep the connection.
pub const DRAIN_LIMIT: u64 = 64 << 20;
/// How many unread bytes of a request refused with 401 are read, after its answer, before the
/// connection closes.
pub const LINGER_LIMIT: u64 = 1 << 20;
/// How long draining may take before the connection is given up instead.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The request body, shared between the handler's view and this layer.
type Slot = Arc<Mutex<Option<Body>>>;

/// The handler's view of a body whose remainder stays in the [`Slot`] when the view is dropped.
struct SharedBody(Slot);

impl http_body::Body for SharedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref().is_none_or(http_body::Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .map_or_else(|| SizeHint::with_exact(0), http_body::Body::size_hint)
    }
}

/// The middleware: runs the request, then drains what its handler did not read.
pub async fn drain_unread_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if http_body::Body::is_end_stream(&body) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let slot: Slot = Arc::new(Mutex::new(Some(body)));
    let view = Body::new(SharedBody(slot.clone()));
    let mut resp = next.run(Request::from_parts(parts, view)).await;
    let rest = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(rest) = rest else { return resp };
    if resp.status() == StatusCode::UNAUTHORIZED {
        tokio::spawn(tokio::time::timeout(
            DRAIN_TIME,
            discard(rest, LINGER_LIMIT),
        ));
    } else if matches!(
        tokio::time::timeout(DRAIN_TIME, discard(rest, DRAIN_LIMIT)).await,
        Ok(true)
    ) {
        return resp;
    }
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Reads a body to its end, throwing the bytes away; `false` past `limit` bytes or on an error.
async fn discard(mut body: Body, limit: u64) -> bool {
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return false };
        if let Some(data) = frame.data_ref() {
            seen = seen.saturating_add(data.len() as u64);
            if seen > limit {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    use super::*;

    /// Handlers that answer from the headers alone, as the auth check and an out-of-order
    /// chunk do.
    fn app() -> Router {
        Router::new()
            .route(
                "/refuse",
                post(|| async { (StatusCode::RANGE_NOT_SATISFIABLE, "no") }),
            )
            .route(
                "/unauthorized",
                post(|| async { (StatusCode::UNAUTHORIZED, "no") }),
            )
            .route(
                "/read",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(axum::middleware::from_fn(drain_unread_body))
    }

    fn post_body(path: &str, len: usize) -> Request {
        Request::post(path)
            .body(Body::from(vec![7u8; len]))
            .unwrap()
    }

    #[tokio::test]
    async fn an_unread_body_is_drained_and_the_connection_kept() {
        let resp = app().oneshot(post_body("/refuse", 1 << 20)).await.unwrap();
        assert_eq!(resp.status(), 416);
        assert!(resp.headers().get(header::CONNECTION).is_none());
    }

    #[tokio::test]
    async fn an_unauthorized_request_is_answered_without_reading_its_body() {
        // A body that never ends: draining it would wait for DRAIN_TIME.
        let endless = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let req = Request::post("/unauthorized")
            .body(Body::from_stream(endless))
            .unwrap();
        let resp = tokio::time::timeout(DRAIN_TIME / 2, app().oneshot(req))
            .await
            .expect("answered without waiting for the body")
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()[header::CONNECTION], "close");
    }

    #[tokio::test]
    async fn a_read_body_reaches_the_handler_whole() {
        let resp = app().oneshot(post_body("/read", 300_000)).await.unwrap();
        let text = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&text[..], b"300000");
    }

    #[tokio::test]
    async fn past_the_limit_the_connection_is_closed() {
        assert!(discard(Body::from(vec![0u8; 10]), 10).await);
        assert!(!discard(Body::from(vec![0u8; 11]), 10).await);
    }
}
