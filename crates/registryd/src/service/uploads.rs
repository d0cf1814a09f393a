//! Upload sessions: start, append chunks (hashing while the bytes stream in), report progress,
//! finish against the client's digest, cancel, and mount blobs from other repositories.
//!
//! An upload's bytes live in `uploads/<uuid>`; its repository in the `uploads` table. The sha256
//! state of a session is kept in memory and rebuilt by re-reading the file when missing (after a
//! restart), so uploads resume across restarts. A failed chunk is cut off again (file truncated,
//! hash state restored), so the session stays where it was; a request dropped mid-chunk leaves
//! the state to be rebuilt from the file, which is what the status then reports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::gc::placed;
use super::Registry;
use crate::error::Error;
use crate::names::{Digest, RepoName};
use crate::storage::AppendError;

/// Hash state of one session: the sha256 of the first `size` bytes of its file.
#[derive(Debug, Clone)]
struct HashState {
    hasher: Sha256,
    size: u64,
}

/// One lock per session, held while a chunk is written, so chunks of one session never interleave.
type Slot = Arc<tokio::sync::Mutex<Option<HashState>>>;

/// The sessions this process has seen: hash states, and the repository of the sessions it
/// started (so their first chunk need not wait for the session's row to be committed). A std
/// mutex guards the maps: it is never held across an await.
#[derive(Debug, Default)]
pub struct HashStates(Mutex<Sessions>);

#[derive(Debug, Default)]
struct Sessions {
    slots: HashMap<Uuid, Slot>,
    owners: HashMap<Uuid, Owner>,
}

/// A session this process started.
#[derive(Debug)]
struct Owner {
    repo: String,
    /// Whether its row is known to be committed (its insert is queued without waiting).
    committed: bool,
}

impl HashStates {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn slot(&self, uuid: Uuid) -> Slot {
        self.lock().slots.entry(uuid).or_default().clone()
    }

    /// Records a session this process started: its repository, and the hash state of its
    /// empty file (so its first chunk need not re-read the file).
    fn started(&self, uuid: Uuid, repo: &RepoName) {
        let empty = HashState {
            hasher: Sha256::new(),
            size: 0,
        };
        let mut sessions = self.lock();
        sessions.owners.insert(
            uuid,
            Owner {
                repo: repo.as_str().to_owned(),
                committed: false,
            },
        );
        sessions
            .slots
            .insert(uuid, Arc::new(tokio::sync::Mutex::new(Some(empty))));
    }

    /// The repository of a session this process started, `None` when it does not know.
    fn owner(&self, uuid: &Uuid) -> Option<String> {
        self.lock().owners.get(uuid).map(|o| o.repo.clone())
    }

    /// Whether the session's row may not be committed yet.
    fn row_pending(&self, uuid: &Uuid) -> bool {
        self.lock().owners.get(uuid).is_some_and(|o| !o.committed)
    }

    fn row_committed(&self, uuid: &Uuid) {
        if let Some(owner) = self.lock().owners.get_mut(uuid) {
            owner.committed = true;
        }
    }

    fn forget(&self, uuid: &Uuid) {
        let mut sessions = self.lock();
        sessions.slots.remove(uuid);
        sessions.owners.remove(uuid);
    }
}

/// Where a session stands: enough for `Location`, `Range` and `Docker-Upload-UUID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    /// The session id.
    pub uuid: Uuid,
    /// Bytes received so far.
    pub size: u64,
}

/// A chunk's `Content-Range`: first and last byte offsets, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    /// Offset of the first byte.
    pub start: u64,
    /// Offset of the last byte.
    pub end: u64,
}

impl ChunkRange {
    /// Parses `start-end`, also in the `bytes start-end/total` form.
    ///
    /// # Errors
    /// `ContentRangeInvalid` (416) when it is neither.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = || Error::ContentRangeInvalid(format!("{s:?}"));
        let s = s
            .trim()
            .trim_start_matches("bytes")
            .trim_start_matches([' ', '=']);
        let s = s.split_once('/').map_or(s, |(r, _)| r);
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if end < start {
            return Err(bad());
        }
        Ok(Self { start, end })
    }
}

fn upload_gauge(delta: f64) {
    metrics::gauge!("registry_uploads_in_progress").increment(delta);
}

impl Registry {
    /// Opens a new upload session in `repo`.
    ///
    /// # Errors
    /// `Io`/`Db` on failure.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadProgress, Error> {
        let uuid = Uuid::new_v4();
        self.files.create_upload(&uuid).await?;
        if let Err(e) = self
            .db
            .insert_upload(&uuid.to_string(), repo.as_str())
            .await
        {
            let _ = self.files.remove_upload(&uuid).await;
            return Err(e);
        }
        self.uploads.started(uuid, repo);
        upload_gauge(1.0);
        Ok(UploadProgress { uuid, size: 0 })
    }

    /// Where an open session of `repo` stands.
    ///
    /// # Errors
    /// `BlobUploadUnknown` when there is no such session in that repository.
    pub async fn upload_status(
        &self,
        repo: &RepoName,
        uuid: Uuid,
    ) -> Result<UploadProgress, Error> {
        self.check_owner(repo, uuid).await?;
        // Wait for any chunk still being written (even one whose request was dropped): the
        // size reported is then where the next chunk must start.
        let _settled = self.uploads.slot(uuid).lock_owned().await;
        let size = self
            .files
            .upload_len(&uuid)
            .await?
            .ok_or(Error::BlobUploadUnknown)?;
        Ok(UploadProgress { uuid, size })
    }

    /// Appends a chunk. With `range`, it must start where the upload ends and be that long.
    /// Answers once the session's row is committed too, so an acknowledged chunk resumes after
    /// a restart.
    ///
    /// # Errors
    /// `BlobUploadUnknown`; `UploadOutOfOrder` (416) for a chunk at the wrong offset;
    /// `BlobUploadInvalid` when the body is not the announced length or breaks off.
    pub async fn append_chunk<S, E>(
        &self,
        repo: &RepoName,
        uuid: Uuid,
        range: Option<ChunkRange>,
        location: String,
        body: S,
    ) -> Result<UploadProgress, Error>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let progress = self.append(repo, uuid, range, location, body).await?;
        if self.uploads.row_pending(&uuid) {
            self.db.barrier().await?;
            self.uploads.row_committed(&uuid);
        }
        Ok(progress)
    }

    async fn append<S, E>(
        &self,
        repo: &RepoName,
        uuid: Uuid,
        range: Option<ChunkRange>,
        location: String,
        body: S,
    ) -> Result<UploadProgress, Error>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        self.check_owner(repo, uuid).await?;
        let mut guard = self.uploads.slot(uuid).lock_owned().await;
        let state = self.hash_state(&mut guard, uuid).await?;
        if let Some(r) = range {
            if r.start != state.size {
                return Err(Error::UploadOutOfOrder {
                    location,
                    uuid: uuid.to_string(),
                    size: state.size,
                });
            }
        }
        // While the chunk is written the session has no hash state: if this request is dropped
        // mid-write (client gone), the next one rebuilds it from whatever reached the file. The
        // writing thread holds the session's lock until then.
        let before = guard.take().ok_or(Error::BlobUploadUnknown)?;
        let mut hasher = before.hasher.clone();
        let (guard, result) = self.files.append(&uuid, body, &mut hasher, guard).await;
        let Some(mut guard) = guard else {
            return Err(Error::Internal(format!(
                "appending to upload {uuid}: writer panicked"
            )));
        };
        let failure = match (&result, range) {
            (Ok(n), Some(r)) if *n != r.end - r.start + 1 => {
                Some(Error::BlobUploadInvalid(format!(
                    "chunk is {n} bytes, Content-Range says {}",
                    r.end - r.start + 1
                )))
            }
            (Ok(_), _) => None,
            (Err(AppendError::Body(m)), _) => Some(Error::BlobUploadInvalid(format!(
                "request body failed: {m}"
            ))),
            (Err(AppendError::Io(e)), _) => Some(Error::Io(std::io::Error::new(
                e.kind(),
                format!("appending to upload {uuid}: {e}"),
            ))),
        };
        if let Some(err) = failure {
            self.files.truncate_upload(&uuid, before.size).await?;
            *guard = Some(before);
            return Err(err);
        }
        let written = result.unwrap_or(0);
        metrics::counter!("registry_bytes_received_total").increment(written);
        let size = before.size + written;
        *guard = Some(HashState { hasher, size });
        Ok(UploadProgress { uuid, size })
    }

    /// Appends an optional last chunk, checks the digest and moves the blob into the store.
    ///
    /// # Errors
    /// `DigestInvalid` when the content does not match (the session is then removed);
    /// `BlobUploadUnknown`, `BlobUploadInvalid` as for [`Registry::append_chunk`].
    pub async fn finish_upload<S, E>(
        &self,
        repo: &RepoName,
        uuid: Uuid,
        digest: &Digest,
        range: Option<ChunkRange>,
        location: String,
        body: S,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        // No wait for the session's row here: the blob's own commit comes after it in the queue.
        self.append(repo, uuid, range, location, body).await?;
        let slot = self.uploads.slot(uuid);
        let mut guard = slot.lock().await;
        let state = self.hash_state(&mut guard, uuid).await?;
        let (actual, size) = (
            Digest::from_sha256(&state.hasher.clone().finalize()),
            state.size,
        );
        // From here on the file moves away: a retry must find the session gone, not a stale state.
        *guard = None;
        if &actual != digest {
            self.end_session(uuid).await?;
            return Err(Error::DigestInvalid(format!(
                "content is {actual}, not {digest}"
            )));
        }
        let session = uuid.to_string();
        placed(
            || async move { Ok(self.files.commit_upload(&uuid, digest).await?) },
            || {
                self.db
                    .link_blob(repo.as_str(), digest.as_str(), size, Some(session.as_str()))
            },
        )
        .await?;
        // The blob is stored and recorded; its upload file (a second link to the same bytes)
        // is only clutter now, and a stray one is purged later.
        if let Err(e) = self.files.remove_upload(&uuid).await {
            tracing::warn!(%uuid, error = %e, "removing a committed upload's file failed");
        }
        self.uploads.forget(&uuid);
        upload_gauge(-1.0);
        Ok(())
    }

    /// Monolithic upload: the whole blob in one POST.
    ///
    /// # Errors
    /// As [`Registry::finish_upload`].
    pub async fn upload_whole<S, E>(
        &self,
        repo: &RepoName,
        digest: &Digest,
        location: String,
        body: S,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let started = self.start_upload(repo).await?;
        self.finish_upload(repo, started.uuid, digest, None, location, body)
            .await
    }

    /// Cancels a session and deletes its bytes.
    ///
    /// # Errors
    /// `BlobUploadUnknown` when there is no such session in that repository.
    pub async fn cancel_upload(&self, repo: &RepoName, uuid: Uuid) -> Result<(), Error> {
        self.check_owner(repo, uuid).await?;
        self.discard_session(uuid).await
    }

    /// Ends a session whatever its state, once no chunk is being written to it.
    pub(super) async fn discard_session(&self, uuid: Uuid) -> Result<(), Error> {
        let slot = self.uploads.slot(uuid);
        let mut guard = slot.lock().await;
        *guard = None;
        self.end_session(uuid).await
    }

    /// Links an existing blob into `repo` without upload: from `from` when the caller may pull
    /// from it and it holds the blob, or from anywhere when `from` is omitted (automatic mount).
    /// `false` when the mount cannot happen and a normal session should start instead.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn try_mount(
        &self,
        repo: &RepoName,
        digest: &Digest,
        from: Option<&RepoName>,
    ) -> Result<bool, Error> {
        let size = match from {
            Some(from) => {
                self.db
                    .linked_blob_size(from.as_str(), digest.as_str())
                    .await?
            }
            None => self.db.blob_size(digest.as_str()).await?,
        };
        let Some(size) = size else { return Ok(false) };
        match self
            .db
            .link_blob(repo.as_str(), digest.as_str(), size, None)
            .await
        {
            // Collected since it was found: an ordinary upload instead.
            Err(Error::BlobCollected(_)) => Ok(false),
            linked => linked.map(|()| true),
        }
    }

    async fn check_owner(&self, repo: &RepoName, uuid: Uuid) -> Result<(), Error> {
        let owner = match self.uploads.owner(&uuid) {
            Some(owner) => Some(owner),
            None => self.db.upload_repo(&uuid.to_string()).await?,
        };
        match owner {
            Some(owner) if owner == repo.as_str() => Ok(()),
            _ => Err(Error::BlobUploadUnknown),
        }
    }

    /// The session's hash state, rebuilt from its file when this process has none.
    async fn hash_state<'a>(
        &self,
        slot: &'a mut Option<HashState>,
        uuid: Uuid,
    ) -> Result<&'a mut HashState, Error> {
        if slot.is_none() {
            let (hasher, size) = self.files.rehash(&uuid).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::BlobUploadUnknown,
                _ => Error::Io(e),
            })?;
            *slot = Some(HashState { hasher, size });
        }
        slot.as_mut().ok_or(Error::BlobUploadUnknown)
    }

    async fn end_session(&self, uuid: Uuid) -> Result<(), Error> {
        self.files.remove_upload(&uuid).await?;
        if self.db.delete_upload(&uuid.to_string()).await? {
            upload_gauge(-1.0);
        }
        self.uploads.forget(&uuid);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The storage layer's write buffer is 1 MiB.
    const WRITE_CHUNK_PROBE: usize = 1024 * 1024;

    #[tokio::test]
    async fn a_request_dropped_mid_chunk_leaves_a_consistent_session() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), false).await.unwrap();
        let repo = RepoName::parse("a").unwrap();
        let session = reg.start_upload(&repo).await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut tx = Some(tx);
        // More than the write buffer, so it reaches the file before the request is dropped.
        let first = Bytes::from(vec![7u8; 2 * WRITE_CHUNK_PROBE]);
        let whole = [&first[..], b" world"].concat();
        let first_for_body = first.clone();
        // Yields `first`, then signals and never ends: a client that stalls, then goes away.
        let body = futures_util::stream::unfold(0, move |i| {
            let tx = if i > 0 { tx.take() } else { None };
            let first = first_for_body.clone();
            async move {
                if i == 0 {
                    return Some((Ok::<_, std::io::Error>(first), 1));
                }
                if let Some(tx) = tx {
                    let _ = tx.send(());
                }
                std::future::pending::<Option<(Result<Bytes, std::io::Error>, i32)>>().await
            }
        });
        tokio::select! {
            _ = reg.append_chunk(&repo, session.uuid, None, String::new(), body) => panic!("the body never ends"),
            _ = rx => {}
        }
        let at = reg.upload_status(&repo, session.uuid).await.unwrap().size;
        assert!(at <= first.len() as u64);
        let rest = Bytes::copy_from_slice(&whole[usize::try_from(at).unwrap()..]);
        let range = ChunkRange {
            start: at,
            end: whole.len() as u64 - 1,
        };
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(rest)]);
        reg.append_chunk(&repo, session.uuid, Some(range), String::new(), body)
            .await
            .unwrap();
        let none = futures_util::stream::iter(Vec::<Result<Bytes, std::io::Error>>::new());
        reg.finish_upload(
            &repo,
            session.uuid,
            &Digest::of(&whole),
            None,
            String::new(),
            none,
        )
        .await
        .unwrap();
        assert_eq!(
            reg.blob_size(&repo, &Digest::of(&whole)).await.unwrap(),
            whole.len() as u64
        );
    }

    #[test]
    fn content_ranges_parse_in_both_forms() {
        assert_eq!(
            ChunkRange::parse("0-99").unwrap(),
            ChunkRange { start: 0, end: 99 }
        );
        assert_eq!(
            ChunkRange::parse("bytes 100-199/*").unwrap(),
            ChunkRange {
                start: 100,
                end: 199
            }
        );
        for bad in ["", "5", "9-1", "a-b", "-3"] {
            let err = ChunkRange::parse(bad).unwrap_err();
            assert_eq!(
                (err.code(), err.status().as_u16()),
                ("RANGE_INVALID", 416),
                "{bad}"
            );
        }
    }
}
