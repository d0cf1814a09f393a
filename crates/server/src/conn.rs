//! One connection, watched: its bytes arriving, its requests in flight, and its request
//! bodies' progress. A connection with no request in flight is closed when the head it started
//! sending takes longer than `timeouts.header`, or when nothing arrives for `timeouts.idle`;
//! a request body that makes no progress for `timeouts.body` ends in an error, which the
//! handler sees as a broken-off body. These work for HTTP/1 and HTTP/2 alike, and for the
//! bytes the auto builder reads to tell them apart.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::limits::Timeouts;

/// What a connection is doing, as far as its timeouts care.
#[derive(Debug)]
struct State {
    /// Requests whose answer has not been sent in full.
    in_flight: usize,
    /// When the connection last had no request in flight (or was accepted).
    idle_since: Instant,
    /// When the first byte of the next head arrived, while no request was in flight.
    head_started: Option<Instant>,
}

/// Shared by the connection's reader, its requests and its watchdog.
#[derive(Debug)]
pub struct Activity {
    state: Mutex<State>,
    /// Wakes the watchdog when its deadline may have moved earlier.
    changed: Notify,
}

/// Why a connection was closed by its watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A head that was still incomplete after `timeouts.header`.
    Header,
    /// No request and no bytes for `timeouts.idle`.
    Idle,
}

impl Activity {
    /// A fresh connection, idle from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                in_flight: 0,
                idle_since: Instant::now(),
                head_started: None,
            }),
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes arrived: between requests, they start the header clock.
    fn bytes_arrived(&self) {
        let mut s = self.lock();
        if s.in_flight == 0 && s.head_started.is_none() {
            s.head_started = Some(Instant::now());
            drop(s);
            self.changed.notify_one();
        }
    }

    /// A request's head is complete; the guard ends it when its answer is gone.
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        let mut s = self.lock();
        s.in_flight += 1;
        s.head_started = None;
        InFlight(self.clone())
    }

    /// When the watchdog must look again, and what expires then (`None`: a request is in
    /// flight; the watchdog waits for a change).
    pub fn deadline(&self, t: &Timeouts) -> Option<(Instant, Expiry)> {
        let s = self.lock();
        if s.in_flight > 0 {
            return None;
        }
        Some(match s.head_started {
            Some(at) => (at + t.header, Expiry::Header),
            None => (s.idle_since + t.idle, Expiry::Idle),
        })
    }

    /// Resolves when the deadline may have changed.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// A request in flight; dropping it (with the answer's body) makes the connection idle again.
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.0.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        if s.in_flight == 0 {
            s.idle_since = Instant::now();
            s.head_started = None;
        }
        drop(s);
        self.0.changed.notify_one();
    }
}

/// A stream that tells its [`Activity`] when bytes arrive.
#[derive(Debug)]
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The error a request body ends with when it made no progress for `timeouts.body`.
#[derive(Debug, thiserror::Error)]
#[error("request body made no progress for {0:?}")]
pub struct BodyStalled(pub Duration);

/// A request body cut off when it makes no progress for `timeout`. The clock runs only while
/// the handler waits for data.
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    /// Allocated at the first wait, then reset for each later one.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` is counting down the current wait.
    armed: bool,
    stalled: bool,
}

impl<B> TimedBody<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
            armed: false,
            stalled: false,
        }
    }
}

impl<B> http_body::Body for TimedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if this.stalled {
            return Poll::Ready(Some(Err(BodyStalled(this.timeout).into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = Instant::now() + this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if !this.armed {
                    sleep.as_mut().reset(deadline);
                    this.armed = true;
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.stalled = true;
                        tracing::debug!(timeout = ?this.timeout, "request body stalled; cut off");
                        Poll::Ready(Some(Err(BodyStalled(this.timeout).into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.stalled && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its request [`InFlight`] until hyper is done with it.
pub struct Answer {
    inner: Body,
    _in_flight: InFlight,
}

impl Answer {
    /// Ties `body` to `in_flight`.
    pub fn new(inner: Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn timeouts() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(2),
            idle: Duration::from_secs(9),
            ..Timeouts::default()
        }
    }

    #[tokio::test]
    async fn deadlines_follow_the_connection_state() {
        let a = Activity::new();
        let t = timeouts();
        let (idle_at, why) = a.deadline(&t).unwrap();
        assert_eq!(why, Expiry::Idle);
        a.bytes_arrived();
        let (head_at, why) = a.deadline(&t).unwrap();
        assert_eq!(why, Expiry::Header);
        assert!(
            head_at < idle_at,
            "the header clock is the shorter one here"
        );
        let request = a.request_started();
        a.bytes_arrived(); // body bytes do not start a head
        assert_eq!(a.deadline(&t), None);
        drop(request);
        let (again, why) = a.deadline(&t).unwrap();
        assert_eq!(why, Expiry::Idle);
        assert!(again >= idle_at, "idle counts from the end of the answer");
    }

    #[tokio::test]
    async fn a_stalled_body_ends_in_an_error_after_the_timeout() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, io::Error>>(1);
        let stream = futures_util_stream(rx);
        let timeout = Duration::from_millis(300);
        let mut body = TimedBody::new(StreamBody::new(stream), timeout);
        tx.send(Ok(Frame::data(Bytes::from_static(b"abc"))))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"abc"));
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.is::<BodyStalled>(), "{err}");
        assert!(started.elapsed() >= timeout);
        assert!(body.frame().await.unwrap().is_err());
        drop(tx);
    }

    /// A receiver as a stream of frames.
    fn futures_util_stream(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, io::Error>> + Unpin {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
