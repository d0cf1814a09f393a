//! Blobs of cached repositories. A blob the repository links is served from the cache without
//! asking the upstream (blobs are immutable). A miss is fetched once (concurrent misses of one
//! digest wait on its flight, then read the cache) and streamed to the client as it arrives,
//! while it is hashed and written to an upload file; the client's last piece is held back until
//! the digest and length check, so a client never receives a complete wrong blob, and only a
//! verified blob is recorded. A blob already stored for another repository is linked once the
//! upstream confirms this repository has it (`HEAD`), never on our word alone.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::Method;
use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream};
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::flights::Flight;
use super::upstream::Upstream;
use super::{CacheStatus, Source};
use crate::error::Error;
use crate::names::{Digest, RepoName};
use crate::service::Registry;

/// Pieces queued for a slow client before the fetch waits for it.
const CLIENT_QUEUE: usize = 16;
/// Bytes gathered from the upstream's small reads into each piece hashed, written and sent:
/// one channel hand-off, wake-up and socket write per piece instead of per network read.
const PIECE: usize = 256 * 1024;

/// How a proxied blob request is answered.
pub enum ProxiedBlob {
    /// The repository links it (now), with this size: serve it as any other blob.
    Cached { status: CacheStatus, size: u64 },
    /// A miss being fetched: its length and its bytes as they arrive.
    Streaming {
        size: u64,
        body: BoxStream<'static, io::Result<Bytes>>,
    },
    /// A `HEAD` of a blob only the upstream has: its length there.
    Upstream { size: u64 },
}

impl Registry {
    /// A blob of the cached repository `repo`. `stream`: the client wants the whole blob, so a
    /// miss may be streamed (otherwise it is fetched first, then served from the cache).
    ///
    /// # Errors
    /// `BlobUnknown` when the upstream does not have it; `Upstream` (503) when it is away;
    /// `Io`/`Db` on our failures.
    pub async fn proxied_blob(
        self: &Arc<Self>,
        src: &Source,
        repo: &RepoName,
        digest: &Digest,
        head: bool,
        stream: bool,
    ) -> Result<ProxiedBlob, Error> {
        let up = &src.upstream;
        let hit = |size| {
            CacheStatus::Hit.count(&up.name, "blob");
            Ok(ProxiedBlob::Cached {
                status: CacheStatus::Hit,
                size,
            })
        };
        if let Some(size) = self
            .db
            .linked_blob_size(repo.as_str(), digest.as_str())
            .await?
        {
            return hit(size);
        }
        let unknown = || Error::BlobUnknown(digest.to_string());
        let tail = format!("blobs/{digest}");
        if head && self.db.blob_size(digest.as_str()).await?.is_none() {
            let resp = up
                .send(Method::HEAD, &src.remote, &tail, None)
                .await
                .map_err(|e| e.into_error(&up.name, unknown()))?;
            let size = resp.content_length().ok_or_else(|| {
                Error::Upstream(format!("upstream {} gave no blob length", up.name))
            })?;
            CacheStatus::Miss.count(&up.name, "blob");
            return Ok(ProxiedBlob::Upstream { size });
        }
        let flights = self
            .flights()
            .ok_or_else(|| Error::Internal("no proxy".into()))?;
        let key = format!("b {digest}");
        let flight = flights.enter(key.clone()).await;
        // Whoever held the flight before may have filled it.
        if let Some(size) = self
            .db
            .linked_blob_size(repo.as_str(), digest.as_str())
            .await?
        {
            return hit(size);
        }
        if let Some(size) = self.db.blob_size(digest.as_str()).await? {
            up.send(Method::HEAD, &src.remote, &tail, None)
                .await
                .map_err(|e| e.into_error(&up.name, unknown()))?;
            self.db
                .link_blob(repo.as_str(), digest.as_str(), size, None, None)
                .await?;
            return hit(size);
        }
        let resp = up
            .send(Method::GET, &src.remote, &tail, None)
            .await
            .map_err(|e| e.into_error(&up.name, unknown()))?;
        CacheStatus::Miss.count(&up.name, "blob");
        let size = resp.content_length();
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let fill = Fill {
            registry: self.clone(),
            upstream: up.clone(),
            repo: repo.clone(),
            digest: digest.clone(),
            size,
            _flight: flight,
        };
        tokio::spawn(fill.run(resp, tx));
        match size {
            Some(size) if stream => Ok(ProxiedBlob::Streaming {
                size,
                body: stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|item| (item, rx))
                })
                .boxed(),
            }),
            _ => {
                drop(rx);
                // Wait for the fill to end, then serve what it stored.
                drop(flights.enter(key).await);
                if let Some(size) = self
                    .db
                    .linked_blob_size(repo.as_str(), digest.as_str())
                    .await?
                {
                    Ok(ProxiedBlob::Cached {
                        status: CacheStatus::Miss,
                        size,
                    })
                } else {
                    Err(Error::Upstream(format!(
                        "fetching {digest} from upstream {} failed",
                        up.name
                    )))
                }
            }
        }
    }
}

/// One blob being fetched: owns the flight until the blob is recorded or dropped.
struct Fill {
    registry: Arc<Registry>,
    upstream: Arc<Upstream>,
    repo: RepoName,
    digest: Digest,
    /// The length the upstream announced.
    size: Option<u64>,
    _flight: Flight,
}

impl Fill {
    /// Fetches, and answers `client` (the first client's body: its receiver may be gone, the
    /// fetch goes on for the cache) with the bytes, or with an error in place of the last ones.
    async fn run(self, resp: reqwest::Response, client: mpsc::Sender<io::Result<Bytes>>) {
        let uuid = Uuid::new_v4();
        let mut client = Some(client);
        let outcome = self.fetch(&uuid, resp, &mut client).await;
        let blobs = &self.registry.blobs;
        match outcome {
            Ok(size) => {
                tracing::info!(upstream = %self.upstream.name, repo = %self.repo, digest = %self.digest, size, "cached a blob");
                metrics::counter!("registry_proxy_upstream_bytes_total", "upstream" => self.upstream.name.clone())
                    .increment(size);
                self.registry.wake_eviction();
            }
            Err(why) => {
                tracing::warn!(upstream = %self.upstream.name, repo = %self.repo, digest = %self.digest, error = %why, "blob not cached");
                if let Some(client) = client {
                    let _ = client.send(Err(io::Error::other(why))).await;
                }
            }
        }
        if let Err(e) = blobs.remove_upload(&uuid).await {
            tracing::warn!(%uuid, error = %e, "removing a cache fill's upload file failed");
        }
    }

    /// Streams the body into an upload file and to the client, checks it, records it; the
    /// blob's length, or why it was not cached. The client's body ends (`client` taken) once
    /// its last piece is checked, before the blob is recorded.
    async fn fetch(
        &self,
        uuid: &Uuid,
        resp: reqwest::Response,
        client: &mut Option<mpsc::Sender<io::Result<Bytes>>>,
    ) -> Result<u64, String> {
        let reg = &self.registry;
        // Each piece goes to the client when the next one arrives; the last waits for the check.
        let held: Arc<Mutex<Option<Bytes>>> = Arc::default();
        let tee = {
            let held = held.clone();
            let client = client.clone().ok_or("no client channel")?;
            pieces(resp).then(move |piece| {
                let previous = match &piece {
                    Ok(p) => held
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .replace(p.clone()),
                    Err(_) => None,
                };
                let client = client.clone();
                async move {
                    if let Some(previous) = previous {
                        // A client that left does not stop the fill.
                        let _ = client.send(Ok(previous)).await;
                    }
                    piece
                }
            })
        };
        let from = format!("upstream {}", self.upstream.name);
        let size = reg
            .fill_upload(uuid, tee, &self.digest, self.size, &from)
            .await?;
        let last = held.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let (Some(last), Some(client)) = (last, client.take()) {
            let _ = client.send(Ok(last)).await;
        }
        let (repo, digest) = (&self.repo, &self.digest);
        reg.place_upload(uuid, digest, size, |inline| {
            reg.db
                .link_blob(repo.as_str(), digest.as_str(), size, None, inline)
        })
        .await
        .map_err(|e| format!("recording the blob: {e}"))?;
        Ok(size)
    }
}

/// The upstream body in pieces of [`PIECE`] bytes (the last may be shorter); an error ends it.
fn pieces(resp: reqwest::Response) -> impl Stream<Item = Result<Bytes, reqwest::Error>> {
    let body = resp.bytes_stream().boxed();
    stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        let mut piece = BytesMut::with_capacity(PIECE);
        while piece.len() < PIECE {
            match body.next().await {
                Some(Ok(read)) if piece.is_empty() && read.len() >= PIECE => {
                    return Some((Ok(read), Some(body)))
                }
                Some(Ok(read)) => piece.extend_from_slice(&read),
                Some(Err(e)) => return Some((Err(e), None)),
                None if piece.is_empty() => return None,
                None => return Some((Ok(piece.freeze()), None)),
            }
        }
        Some((Ok(piece.freeze()), Some(body)))
    })
}
