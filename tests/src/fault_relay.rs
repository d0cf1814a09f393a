//! A TCP relay in front of an upstream that, once told to, cuts every connection after a given
//! number of response bytes: an upstream that dies in the middle of a blob, on cue (no real
//! registry can be made to do that).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// A running relay on a 127.0.0.1 port of its own; it stops (and drops every connection) when
/// dropped.
pub struct FaultRelay {
    pub addr: SocketAddr,
    limit: Arc<Limit>,
    accept: tokio::task::JoinHandle<()>,
}

/// What the relay lets through, shared by its connections.
struct Limit {
    /// Response bytes after which a connection is cut (`u64::MAX`: never).
    bytes: AtomicU64,
    /// Bumped by every change: a connection counts its bytes from the last one on.
    changes: AtomicU64,
}

impl Limit {
    fn set(&self, bytes: u64) {
        self.bytes.store(bytes, Ordering::SeqCst);
        self.changes.fetch_add(1, Ordering::SeqCst);
    }
}

impl FaultRelay {
    /// Relays connections to `target` untouched until [`FaultRelay::cut_after`].
    pub async fn start(target: SocketAddr) -> FaultRelay {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the relay: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("relay address: {e}"));
        let limit = Arc::new(Limit {
            bytes: AtomicU64::new(u64::MAX),
            changes: AtomicU64::new(0),
        });
        let shared = Arc::clone(&limit);
        let accept = tokio::spawn(async move {
            // Owned here: aborting the accept task drops (and aborts) every connection's task.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(relay(client, target, Arc::clone(&shared)));
            }
        });
        FaultRelay {
            addr,
            limit,
            accept,
        }
    }

    /// From now on, every connection (open or new) is reset once it has carried `bytes` more
    /// bytes from the upstream.
    pub fn cut_after(&self, bytes: u64) {
        self.limit.set(bytes);
    }

    /// From now on, connections are relayed whole.
    pub fn heal(&self) {
        self.limit.set(u64::MAX);
    }
}

impl Drop for FaultRelay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `client` → upstream as it comes and upstream → `client` until `limit` response bytes
/// (counted from its last change), then resets both sides (linger 0: the client sees the connection break, not a clean end).
async fn relay(client: TcpStream, target: SocketAddr, limit: Arc<Limit>) {
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let requests = async {
        // Ends when the client stops sending; the response side decides when to close.
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        std::future::pending::<()>().await;
    };
    // Whether the relay cut the connection (rather than one side ending it).
    let responses = async {
        let mut sent = 0u64;
        let mut counted_from = limit.changes.load(Ordering::SeqCst);
        let mut buf = vec![0; 64 * 1024];
        loop {
            let Ok(n) = upstream_read.read(&mut buf).await else {
                return false;
            };
            if n == 0 {
                return false;
            }
            let changes = limit.changes.load(Ordering::SeqCst);
            if changes != counted_from {
                (counted_from, sent) = (changes, 0);
            }
            let allowed = limit.bytes.load(Ordering::SeqCst).saturating_sub(sent);
            let take = n.min(usize::try_from(allowed).unwrap_or(usize::MAX));
            if client_write.write_all(&buf[..take]).await.is_err() {
                return false;
            }
            if take < n {
                return true;
            }
            sent += take as u64;
        }
    };
    let cut = tokio::select! {
        () = requests => false,
        cut = responses => cut,
    };
    if cut {
        if let Ok(client) = client_read.reunite(client_write) {
            // Best effort: without it the client sees an early end instead of a reset.
            let _ = client.set_zero_linger();
        }
    }
}
