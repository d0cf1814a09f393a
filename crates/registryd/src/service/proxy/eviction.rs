//! `proxy.maxsize`: the cache's bytes (blobs only cached repositories link) are kept under the
//! limit by evicting the least recently pulled cached images. When each was pulled is kept in
//! memory and written with each check, so a pull costs no database write. A check runs after
//! every fill and every minute; it deletes the oldest cached manifests with their tags, unlinks
//! what only they referenced, and removes the bytes nothing links any more the way garbage
//! collection does (row and file in one transaction). Pushed content is never touched: a blob
//! a pushed repository links is not cache, and a pushed manifest is never evicted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::super::gc::unix_millis;
use crate::error::Error;
use crate::service::Registry;

/// How often the size is checked without a fill to prompt it.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// The limit and the pulls not yet written.
#[derive(Debug)]
pub struct Eviction {
    max: u64,
    /// The upstreams' name prefixes: repositories under them are cache.
    prefixes: Vec<String>,
    /// `(repository, manifest digest)` → when last pulled (unix ms).
    uses: Mutex<HashMap<(String, String), i64>>,
    wake: Arc<Notify>,
}

impl Eviction {
    pub fn new(max: u64, prefixes: Vec<String>) -> Self {
        Self {
            max,
            prefixes,
            uses: Mutex::default(),
            wake: Arc::default(),
        }
    }

    /// Notes a pull of a cached manifest.
    pub fn used(&self, repo: &str, digest: &str) {
        let now = unix_millis(SystemTime::now());
        self.uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((repo.to_owned(), digest.to_owned()), now);
    }

    /// Asks for a check soon (after a fill).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

impl Registry {
    fn eviction(&self) -> Option<&Eviction> {
        self.proxy.as_ref()?.eviction.as_ref()
    }

    /// Notes a pull of a cached manifest, when the cache is bounded.
    pub(super) fn note_use(&self, repo: &str, digest: &str) {
        if let Some(e) = self.eviction() {
            e.used(repo, digest);
        }
    }

    /// Prompts a size check, when the cache is bounded.
    pub(super) fn wake_eviction(&self) {
        if let Some(e) = self.eviction() {
            e.wake();
        }
    }

    /// Writes the pulls noted, then evicts until the cache is under its limit; the bytes freed.
    ///
    /// # Errors
    /// `Db`/`Io` on failure; what was committed stays done.
    pub async fn evict(&self) -> Result<u64, Error> {
        let Some(e) = self.eviction() else {
            return Ok(0);
        };
        let uses: Vec<_> =
            std::mem::take(&mut *e.uses.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .map(|((repo, digest), at)| (repo, digest, at))
                .collect();
        if !uses.is_empty() {
            self.db.manifests_used(uses).await?;
        }
        let mut bytes = self.db.cache_bytes(&e.prefixes).await?;
        let mut freed = 0;
        while bytes > e.max {
            // One image per transaction: the oldest, then the size is checked again.
            let (evicted, unlinked) = self.db.evict_cached(1).await?;
            if evicted.is_empty() {
                tracing::warn!(
                    bytes,
                    max = e.max,
                    "cache over proxy.maxsize with nothing left to evict"
                );
                break;
            }
            for (repo, digest) in &evicted {
                self.manifest_cache.invalidate(repo);
                tracing::info!(%repo, %digest, "evicted a cached image");
            }
            let removed = self.emptying(self.db.delete_blobs(unlinked).await).await?;
            let bytes_freed: u64 = removed.iter().map(|(_, size)| size).sum();
            bytes = bytes.saturating_sub(bytes_freed);
            freed += bytes_freed;
            metrics::counter!("registry_proxy_evictions_total").increment(evicted.len() as u64);
            metrics::counter!("registry_proxy_evicted_bytes_total").increment(bytes_freed);
        }
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("registry_proxy_cache_bytes").set(bytes as f64);
        Ok(freed)
    }
}

/// Runs [`Registry::evict`] after fills and every [`CHECK_EVERY`], while the registry lives.
pub fn spawn_eviction(registry: &Arc<Registry>) {
    if registry.eviction().is_none() {
        return;
    }
    let weak: Weak<Registry> = Arc::downgrade(registry);
    tokio::spawn(async move {
        loop {
            {
                let Some(reg) = weak.upgrade() else { return };
                if let Err(e) = reg.evict().await {
                    tracing::warn!(error = %e, "cache eviction failed");
                }
            }
            let Some(wake) = weak
                .upgrade()
                .and_then(|reg| reg.eviction().map(|e| e.wake.clone()))
            else {
                return;
            };
            let _ = tokio::time::timeout(CHECK_EVERY, wake.notified()).await;
        }
    });
}
