//! The accept loop both daemons serve with, over plain HTTP or TLS, on an already-bound TCP
//! listener or Unix socket: at most `max_connections` at once (at the cap it stops accepting and the kernel's
//! backlog waits), accept errors back off instead of spinning, TLS handshakes and header blocks
//! are bounded in time and size, each connection is watched by [`crate::conn`]. When
//! `shutdown` resolves, listening stops, open connections finish their requests and close,
//! bounded by `limits.drain`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::conn::{Activity, Answer, Expiry, TimedBody, Watched};
use crate::limits::{Limits, Timeouts};
use crate::listener::{Listener, Peer, Stream};

/// File descriptors kept for what is not a connection (database, blob files, logs).
const RESERVED_FDS: u64 = 256;
/// First pause after a failed accept; doubled up to [`MAX_BACKOFF`] while failures go on.
const MIN_BACKOFF: Duration = Duration::from_millis(5);
/// Longest pause after failed accepts (e.g. out of file descriptors).
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a connection closed by its watchdog gets to say goodbye (HTTP/2 GOAWAY).
const GOODBYE: Duration = Duration::from_secs(1);

type Builder = auto::Builder<TokioExecutor>;

/// Serves `router` on `listener` (HTTPS through `tls` when given) within `limits` until
/// `shutdown` resolves, then drains. Each request carries `ConnectInfo<Peer>`.
pub async fn serve(
    listener: impl Into<Listener>,
    router: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let listener = listener.into();
    let cap = connection_cap(limits.max_connections);
    let permits = Arc::new(Semaphore::new(cap));
    let (stop, stopped) = watch::channel(false);
    let builder = Arc::new(builder(&limits));
    let mut backoff = MIN_BACKOFF;
    // Whether the cap was reached since connections last flowed freely (logged once per episode).
    let mut at_cap = false;
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => {
                at_cap = false;
                p
            }
            Err(_) => {
                if !at_cap {
                    tracing::warn!(cap, "at the connection cap: new connections wait");
                    at_cap = true;
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => {
                    backoff = MIN_BACKOFF;
                    conn
                }
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, pause = ?backoff, "accept failed; pausing");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn = Conn {
            peer,
            router: router.clone(),
            builder: builder.clone(),
            timeouts: limits.timeouts,
            stopped: stopped.clone(),
            _permit: permit,
        };
        match stream {
            Stream::Tcp(tcp) => {
                let _ = tcp.set_nodelay(true);
                tokio::spawn(conn.run(tcp, tls.clone()));
            }
            Stream::Unix(unix) => {
                tokio::spawn(conn.run(unix, tls.clone()));
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let all = u32::try_from(cap).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.drain, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            open = cap - permits.available_permits(),
            "connections still open after {:?}; closing",
            limits.drain
        );
    }
}

/// The cap in force: the configured one, lowered to what the open-file limit allows.
fn connection_cap(configured: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let allowed = limit.map_or(configured, |l| {
        usize::try_from(l.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
    });
    if allowed < configured {
        tracing::warn!(
            configured,
            allowed,
            "the open-file limit lowers the connection cap"
        );
    }
    configured.min(allowed)
}

/// Accept errors about one connection only (it was reset before we took it).
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

/// HTTP/1 and HTTP/2 with the header bound; hyper's own header timer stays off, because the
/// watchdog keeps the header and idle clocks apart.
fn builder(limits: &Limits) -> Builder {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    builder
}

/// One accepted connection and what it is served with.
struct Conn {
    peer: Peer,
    router: Router,
    builder: Arc<Builder>,
    timeouts: Timeouts,
    stopped: watch::Receiver<bool>,
    /// Its place under the cap, given back when it closes.
    _permit: OwnedSemaphorePermit,
}

impl Conn {
    async fn run<S>(self, stream: S, tls: Option<TlsAcceptor>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        match tls {
            None => self.http(stream).await,
            Some(acceptor) => {
                let peer = self.peer;
                match tokio::time::timeout(self.timeouts.handshake, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => self.http(stream).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn http<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Activity::new();
        let io = TokioIo::new(Watched::new(stream, activity.clone()));
        let (peer, body_timeout, router) = (self.peer, self.timeouts.body, self.router.clone());
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let in_flight = on_request.request_started();
            let mut req = req.map(|b| Body::new(TimedBody::new(b, body_timeout)));
            req.extensions_mut().insert(ConnectInfo(peer));
            let answer = router.clone().oneshot(req);
            async move {
                let resp = answer.await?;
                Ok::<_, std::convert::Infallible>(resp.map(|b| Answer::new(b, in_flight)))
            }
        });
        let conn = self.builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut goodbye: Option<tokio::time::Instant> = None;
        let mut stopping = false;
        loop {
            let wake = goodbye.or_else(|| activity.deadline(&self.timeouts).map(|(at, _)| at));
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ended = conn.as_mut() => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                changed = self.stopped.changed(), if !stopping => {
                    if changed.is_err() || *self.stopped.borrow() {
                        // In-flight requests finish; the drain deadline bounds them.
                        conn.as_mut().graceful_shutdown();
                        stopping = true;
                    }
                }
                () = activity.changed() => {}
                () = sleep => {
                    if goodbye.is_some() {
                        return;
                    }
                    let now = tokio::time::Instant::now();
                    if let Some((at, why)) = activity.deadline(&self.timeouts) {
                        if at <= now {
                            tracing::debug!(%peer, reason = expiry_name(why), "closing connection");
                            conn.as_mut().graceful_shutdown();
                            goodbye = Some(now + GOODBYE);
                        }
                    }
                }
            }
        }
    }
}

fn expiry_name(why: Expiry) -> &'static str {
    match why {
        Expiry::Header => "header timeout",
        Expiry::Idle => "idle timeout",
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("SIGINT handler: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("SIGTERM handler: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: signal received, draining requests");
}

/// One shutdown signal fanned out to several listeners (the API and `/metrics`).
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<()>);

impl Stop {
    /// Resolves every [`Stop::wait`] once `signal` has.
    pub fn on(signal: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = watch::channel(());
        tokio::spawn(async move {
            signal.await;
            drop(tx);
        });
        Self(rx)
    }

    /// Resolves when the signal has come.
    pub async fn wait(mut self) {
        while self.0.changed().await.is_ok() {}
    }
}
