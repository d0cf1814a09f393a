//! Manifests in memory, by repository, tag and digest, so a pull's manifest GET costs no SQL and
//! no file read. Bounded: past [`MAX_BYTES`] of manifests or [`MAX_ENTRIES`] names it starts
//! empty again.
//!
//! Coherence: every write that changes a repository's manifests or tags calls
//! [`ManifestCache::invalidate`] after its commit and before it answers. A reader notes
//! [`ManifestCache::generation`] before it reads the database and [`ManifestCache::insert`] keeps
//! its result only if no invalidation happened since, so a read that raced a write never
//! caches what the write replaced.
//!
//! Replicas sharing one PostgreSQL: [`ManifestCache::follow`] applies every replica's writes
//! as they commit (`crate::db::Invalidation`). A notification reaches the other replicas a
//! moment after the writer's client has its answer, so a shared cache never answers which
//! manifest a reference names ([`ManifestCache::get`] finds nothing): the database does, in one
//! indexed query, and the cache gives the bytes of that digest ([`ManifestCache::body`]), which
//! never change. While the feed is away the cache is emptied and keeps nothing until it is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::StoredManifest;
use crate::db::Invalidation;
use crate::names::{Digest, Reference};

/// Bytes of manifests kept at most.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Tags plus manifests kept at most.
const MAX_ENTRIES: usize = 16 * 1024;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ManifestCache(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every invalidation.
    generation: u64,
    /// Keeps nothing while set: the other replicas' invalidations cannot be heard.
    deaf: bool,
    /// Other replicas write to the same database: references are resolved there.
    shared: bool,
    bytes: usize,
    entries: usize,
    repos: HashMap<String, RepoEntry>,
}

#[derive(Debug, Default)]
struct RepoEntry {
    tags: HashMap<String, Digest>,
    manifests: HashMap<Digest, StoredManifest>,
}

impl ManifestCache {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The manifest `reference` names in `repo`, body included, if cached (never when
    /// [shared](ManifestCache::follow)).
    pub fn get(&self, repo: &str, reference: &Reference) -> Option<StoredManifest> {
        let inner = self.lock();
        if inner.shared {
            return None;
        }
        let entry = inner.repos.get(repo)?;
        let digest = match reference {
            Reference::Digest(d) => d,
            Reference::Tag(t) => entry.tags.get(t.as_str())?,
        };
        entry.manifests.get(digest).cloned()
    }

    /// The bytes of manifest `digest` of `repo`, if cached.
    pub fn body(&self, repo: &str, digest: &Digest) -> Option<bytes::Bytes> {
        self.lock()
            .repos
            .get(repo)?
            .manifests
            .get(digest)?
            .body
            .clone()
    }

    /// The generation to pass to [`ManifestCache::insert`] for a read that starts now.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps `manifest` (which must carry its body) as what `reference` names in `repo`, unless
    /// the repository was written since `generation`.
    pub fn insert(
        &self,
        generation: u64,
        repo: &str,
        reference: &Reference,
        manifest: &StoredManifest,
    ) {
        let Some(body) = &manifest.body else { return };
        let mut inner = self.lock();
        if inner.generation != generation || inner.deaf {
            return;
        }
        if inner.bytes + body.len() > MAX_BYTES || inner.entries + 2 > MAX_ENTRIES {
            inner.clear();
        }
        let inner = &mut *inner;
        let entry = inner.repos.entry(repo.to_owned()).or_default();
        if let Reference::Tag(t) = reference {
            if entry
                .tags
                .insert(t.as_str().to_owned(), manifest.digest.clone())
                .is_none()
            {
                inner.entries += 1;
            }
        }
        if let Some(old) = entry
            .manifests
            .insert(manifest.digest.clone(), manifest.clone())
        {
            inner.bytes -= old.body.map_or(0, |b| b.len());
        } else {
            inner.entries += 1;
        }
        inner.bytes += body.len();
    }

    /// Applies the invalidations of every replica sharing the database, until `changes` ends;
    /// keeps nothing until the feed says it is listening.
    pub fn follow(self: &Arc<Self>, mut changes: mpsc::Receiver<Invalidation>) {
        self.lock().shared = true;
        self.apply(Invalidation::Lost);
        let cache = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                let Some(cache) = cache.upgrade() else { return };
                cache.apply(change);
            }
        });
    }

    /// Applies one invalidation from the shared database.
    fn apply(&self, change: Invalidation) {
        match change {
            Invalidation::Repo(repo) => self.invalidate(&repo),
            Invalidation::Lost | Invalidation::Subscribed => {
                let mut inner = self.lock();
                inner.generation += 1;
                inner.deaf = change == Invalidation::Lost;
                inner.clear();
            }
        }
    }

    /// Forgets everything cached for `repo`; called after every write to its manifests or tags.
    pub fn invalidate(&self, repo: &str) {
        let mut inner = self.lock();
        inner.generation += 1;
        if let Some(entry) = inner.repos.remove(repo) {
            inner.entries -= entry.tags.len() + entry.manifests.len();
            inner.bytes -= entry
                .manifests
                .values()
                .map(|m| m.body.as_ref().map_or(0, bytes::Bytes::len))
                .sum::<usize>();
        }
    }
}

impl Inner {
    fn clear(&mut self) {
        self.repos.clear();
        self.bytes = 0;
        self.entries = 0;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn manifest(body: &'static [u8]) -> StoredManifest {
        StoredManifest {
            digest: Digest::of(body),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: body.len() as u64,
            body: Some(Bytes::from_static(body)),
        }
    }

    fn tag(t: &str) -> Reference {
        Reference::parse(t).unwrap()
    }

    #[test]
    fn a_cached_tag_and_digest_are_found_until_invalidated() {
        let cache = ManifestCache::default();
        let m = manifest(b"{}");
        cache.insert(cache.generation(), "a", &tag("v1"), &m);
        assert_eq!(cache.get("a", &tag("v1")).unwrap().digest, m.digest);
        let by_digest = Reference::Digest(m.digest.clone());
        assert!(cache.get("a", &by_digest).is_some());
        assert!(cache.get("b", &tag("v1")).is_none());
        cache.invalidate("a");
        assert!(cache.get("a", &tag("v1")).is_none());
        assert!(cache.get("a", &by_digest).is_none());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = ManifestCache::default();
        let before = cache.generation();
        cache.invalidate("a");
        cache.insert(before, "a", &tag("v1"), &manifest(b"{}"));
        assert!(cache.get("a", &tag("v1")).is_none());
    }

    #[test]
    fn a_manifest_without_its_body_is_not_kept() {
        let cache = ManifestCache::default();
        let mut m = manifest(b"{}");
        m.body = None;
        cache.insert(cache.generation(), "a", &tag("v1"), &m);
        assert!(cache.get("a", &tag("v1")).is_none());
    }

    #[test]
    fn nothing_is_kept_while_other_replicas_cannot_be_heard() {
        let cache = ManifestCache::default();
        let m = manifest(b"{}");
        cache.insert(cache.generation(), "a", &tag("v1"), &m);
        let before = cache.generation();
        cache.apply(Invalidation::Lost);
        assert!(cache.get("a", &tag("v1")).is_none(), "emptied when deaf");
        cache.insert(cache.generation(), "a", &tag("v1"), &m);
        assert!(
            cache.get("a", &tag("v1")).is_none(),
            "nothing kept while deaf"
        );
        cache.apply(Invalidation::Subscribed);
        cache.insert(before, "a", &tag("v1"), &m);
        assert!(cache.get("a", &tag("v1")).is_none(), "a read from the gap");
        cache.insert(cache.generation(), "a", &tag("v1"), &m);
        assert!(cache.get("a", &tag("v1")).is_some(), "kept once listening");
        cache.apply(Invalidation::Repo("a".into()));
        assert!(
            cache.get("a", &tag("v1")).is_none(),
            "another replica's write"
        );
    }

    #[tokio::test]
    async fn a_shared_cache_gives_bytes_by_digest_but_never_resolves_a_reference() {
        let cache = Arc::new(ManifestCache::default());
        let (tx, rx) = mpsc::channel(1);
        cache.follow(rx);
        tx.send(Invalidation::Subscribed).await.unwrap();
        let m = manifest(b"{}");
        while cache.body("a", &m.digest).is_none() {
            cache.insert(cache.generation(), "a", &tag("v1"), &m);
            tokio::task::yield_now().await;
        }
        assert!(cache.get("a", &tag("v1")).is_none());
        assert!(cache
            .get("a", &Reference::Digest(m.digest.clone()))
            .is_none());
        assert_eq!(
            cache.body("a", &m.digest).unwrap(),
            Bytes::from_static(b"{}")
        );
    }

    #[test]
    fn the_cache_stays_within_its_entry_bound() {
        let cache = ManifestCache::default();
        let m = manifest(b"{}");
        for i in 0..MAX_ENTRIES {
            cache.insert(cache.generation(), "a", &tag(&format!("t{i}")), &m);
        }
        let inner = cache.lock();
        assert!(inner.entries <= MAX_ENTRIES);
        assert!(inner.bytes <= MAX_BYTES);
    }
}
