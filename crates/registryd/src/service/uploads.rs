//! Upload sessions: start, append chunks (hashing while the bytes stream in), report progress,
//! finish against the client's digest, cancel, and mount blobs from other repositories.
//!
//! An upload's bytes live in the blob store, apart from the verified blobs; its repository in
//! the `uploads` table. The sha256 state of a session is kept in memory and rebuilt from the
//! store when missing (after a restart), so uploads resume across restarts; with a store that
//! replicas share, it is rebuilt at every chunk, so a session continues on any replica. A
//! failed chunk is undone (hash state restored), so the session stays where it was; a request
//! dropped mid-chunk leaves the state to be rebuilt from the store, which is what the status
//! then reports.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::chunk_range::{ChunkRange, MAX_BLOB_SIZE};
use super::small_uploads::read_head;
use super::upload_sessions::HashState;
use super::Registry;
use crate::error::Error;
use crate::names::{Digest, RepoName};
use crate::storage::AppendError;

/// Where a session stands: enough for `Location`, `Range` and `Docker-Upload-UUID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadProgress {
    /// The session id.
    pub uuid: Uuid,
    /// Bytes received so far.
    pub size: u64,
}

fn upload_gauge(delta: f64) {
    metrics::gauge!("registry_uploads_in_progress").increment(delta);
}

impl Registry {
    /// Opens a new upload session in `repo` for `subject` (the token's or user's account).
    ///
    /// # Errors
    /// `TooManyUploads` (429) when `repo` or `subject` has its cap of open sessions; `Io`/`Db`
    /// on failure.
    pub async fn start_upload(
        &self,
        repo: &RepoName,
        subject: &str,
    ) -> Result<UploadProgress, Error> {
        let uuid = Uuid::new_v4();
        self.uploads.reserve(uuid, repo.as_str(), subject)?;
        let created = match self.blobs.create_upload(&uuid).await {
            Ok(()) => {
                self.db
                    .insert_upload(&uuid.to_string(), repo.as_str(), subject)
                    .await
            }
            Err(e) => Err(Error::Io(e)),
        };
        if let Err(e) = created {
            let _ = self.blobs.remove_upload(&uuid).await;
            self.uploads.forget(&uuid);
            return Err(e);
        }
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
            .blobs
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
        // Activity keeps the session from being purged as idle.
        self.db.touch_upload(&uuid.to_string()).await?;
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
        if self.blobs.shared() {
            // Another replica may have appended since this one last did.
            *guard = None;
        }
        let state = self.hash_state(&mut guard, uuid).await?;
        if let Some(r) = range {
            if r.start() != state.size() {
                return Err(Error::UploadOutOfOrder {
                    location,
                    uuid: uuid.to_string(),
                    size: state.size(),
                });
            }
        }
        // While the chunk is written the session has no hash state: if this request is dropped
        // mid-write (client gone), the next one rebuilds it from whatever reached the file. The
        // writing thread holds the session's lock until then.
        let before = guard.take().ok_or(Error::BlobUploadUnknown)?;
        let mut hasher = before.hasher.clone();
        let before_size = before.size();
        let accept = move |n| chunk_fits(before_size, n, range).is_ok();
        let (guard, result) = self
            .blobs
            .append(&uuid, body, &mut hasher, guard, accept)
            .await;
        let Some(mut guard) = guard else {
            return Err(Error::Internal(format!(
                "appending to upload {uuid}: writer panicked"
            )));
        };
        let outcome = match result {
            Ok(n) => chunk_fits(before_size, n, range).map(|size| (n, size)),
            Err(AppendError::Body(m)) => Err(Error::BlobUploadInvalid(format!(
                "request body failed: {m}"
            ))),
            Err(AppendError::Io(e)) => Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("appending to upload {uuid}: {e}"),
            ))),
        };
        let (written, size) = match outcome {
            Ok(done) => done,
            Err(err) => {
                self.blobs.undo_chunk(&uuid, before.size()).await?;
                *guard = Some(before);
                return Err(err);
            }
        };
        metrics::counter!("registry_bytes_received_total").increment(written);
        debug_assert_eq!(hasher.len(), size);
        *guard = Some(HashState { hasher });
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
        let mut body = std::pin::pin!(body);
        let head = read_head(body.as_mut(), self.inline_max).await?;
        if head.ended
            && self
                .finish_small(repo, uuid, digest, range, &location, &head.bytes)
                .await?
        {
            return Ok(());
        }
        let body = futures_util::stream::iter([Ok(head.bytes)]).chain(body);
        // No wait for the session's row here: the blob's own commit comes after it in the queue.
        self.append(repo, uuid, range, location, body).await?;
        let slot = self.uploads.slot(uuid);
        let mut guard = slot.lock().await;
        let state = self.hash_state(&mut guard, uuid).await?;
        let (actual, size) = (
            Digest::from_sha256(&state.hasher.clone().finalize()),
            state.size(),
        );
        // From here on the file moves away: a retry must find the session gone, not a stale state.
        *guard = None;
        if &actual != digest {
            return Err(self.digest_mismatch(uuid, &actual, digest).await);
        }
        self.place_upload(&uuid, digest, size, |inline| {
            self.link_upload(repo, uuid, digest, size, inline)
        })
        .await?;
        // The blob is stored and recorded; its upload file (a second link to the same bytes)
        // is only clutter now, and a stray one is purged later.
        self.close_session(uuid, self.blobs.remove_upload(&uuid).await);
        Ok(())
    }

    /// Ends session `uuid`, whose content is `actual`, not the `digest` the client named; the
    /// error to answer.
    pub(super) async fn digest_mismatch(
        &self,
        uuid: Uuid,
        actual: &Digest,
        digest: &Digest,
    ) -> Error {
        match self.end_session(uuid).await {
            Ok(()) => Error::DigestInvalid(format!("content is {actual}, not {digest}")),
            Err(e) => e,
        }
    }

    /// Records the verified blob of session `uuid` in `repo` (ending the session's row in the
    /// same transaction), with its bytes when they are `inline`.
    pub(super) async fn link_upload(
        &self,
        repo: &RepoName,
        uuid: Uuid,
        digest: &Digest,
        size: u64,
        inline: Option<Bytes>,
    ) -> Result<(), Error> {
        let session = uuid.to_string();
        self.db
            .link_blob(repo.as_str(), digest.as_str(), size, Some(&session), inline)
            .await
    }

    /// Forgets a session whose blob is recorded, once `removed` its upload's bytes (a failure
    /// is only logged: a stray upload is purged later).
    pub(super) fn close_session(&self, uuid: Uuid, removed: std::io::Result<()>) {
        if let Err(e) = removed {
            tracing::warn!(%uuid, error = %e, "removing a committed upload's file failed");
        }
        self.uploads.forget(&uuid);
        upload_gauge(-1.0);
    }

    /// Monolithic upload: the whole blob in one POST (a session for the time of the request).
    ///
    /// # Errors
    /// As [`Registry::start_upload`] and [`Registry::finish_upload`].
    pub async fn upload_whole<S, E>(
        &self,
        repo: &RepoName,
        subject: &str,
        digest: &Digest,
        location: String,
        body: S,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let started = self.start_upload(repo, subject).await?;
        let finished = self
            .finish_upload(repo, started.uuid, digest, None, location, body)
            .await;
        if finished.is_err() {
            // Nobody else knows this session: it ends with its request.
            self.end_when_settled(started.uuid).await?;
        }
        finished
    }

    /// Cancels a session and deletes its bytes, once no chunk is being written to it.
    ///
    /// # Errors
    /// `BlobUploadUnknown` when there is no such session in that repository.
    pub async fn cancel_upload(&self, repo: &RepoName, uuid: Uuid) -> Result<(), Error> {
        self.check_owner(repo, uuid).await?;
        self.end_when_settled(uuid).await
    }

    /// Ends a session once no chunk is being written to it.
    async fn end_when_settled(&self, uuid: Uuid) -> Result<(), Error> {
        let slot = self.uploads.slot(uuid);
        let mut guard = slot.lock().await;
        *guard = None;
        self.end_session(uuid).await
    }

    /// Ends an idle session whatever its state; one with a chunk being written right now is
    /// not idle and stays. Whether it was ended.
    ///
    /// # Errors
    /// `Io`/`Db` on failure.
    pub(super) async fn discard_idle_session(&self, uuid: Uuid) -> Result<bool, Error> {
        let slot = self.uploads.slot(uuid);
        let Ok(mut guard) = slot.try_lock() else {
            return Ok(false);
        };
        *guard = None;
        self.end_session(uuid).await?;
        Ok(true)
    }

    /// Links an existing blob into `repo` without upload, from one of `sources` that links it
    /// (`None`: from any repository that does). `false` when none does and a normal session
    /// should start instead.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn try_mount(
        &self,
        repo: &RepoName,
        digest: &Digest,
        sources: Option<&[String]>,
    ) -> Result<bool, Error> {
        let size = self
            .db
            .blob_size_linked_by(digest.as_str(), sources)
            .await?;
        let Some(size) = size else { return Ok(false) };
        match self
            .db
            .link_blob(repo.as_str(), digest.as_str(), size, None, None)
            .await
        {
            // Collected since it was found: an ordinary upload instead.
            Err(Error::BlobCollected(_)) => Ok(false),
            linked => linked.map(|()| true),
        }
    }

    pub(super) async fn check_owner(&self, repo: &RepoName, uuid: Uuid) -> Result<(), Error> {
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
    pub(super) async fn hash_state<'a>(
        &self,
        slot: &'a mut Option<HashState>,
        uuid: Uuid,
    ) -> Result<&'a mut HashState, Error> {
        if slot.is_none() {
            let hasher = self.blobs.rehash(&uuid).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::BlobUploadUnknown,
                _ => Error::Io(e),
            })?;
            *slot = Some(HashState { hasher });
        }
        slot.as_mut().ok_or(Error::BlobUploadUnknown)
    }

    pub(super) async fn end_session(&self, uuid: Uuid) -> Result<(), Error> {
        self.blobs.remove_upload(&uuid).await?;
        if self.db.delete_upload(&uuid.to_string()).await? {
            upload_gauge(-1.0);
        }
        self.uploads.forget(&uuid);
        Ok(())
    }
}

/// The session's size once a chunk of `n` bytes is added to its `before` bytes, if the
/// chunk is what its `Content-Range` announced and the blob stays below the largest allowed.
pub(super) fn chunk_fits(before: u64, n: u64, range: Option<ChunkRange>) -> Result<u64, Error> {
    if let Some(r) = range.filter(|r| n != r.length()) {
        return Err(Error::BlobUploadInvalid(format!(
            "chunk is {n} bytes, Content-Range says {}",
            r.length()
        )));
    }
    before
        .checked_add(n)
        .filter(|size| *size < MAX_BLOB_SIZE)
        .ok_or_else(|| Error::BlobUploadInvalid("the blob grows too large".into()))
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
        let session = reg.start_upload(&repo, "").await.unwrap();
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
        let range = ChunkRange::parse(&format!("{at}-{}", whole.len() - 1)).unwrap();
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

    #[tokio::test]
    async fn a_session_with_a_chunk_in_progress_is_not_idle() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), false).await.unwrap();
        let repo = RepoName::parse("a").unwrap();
        let session = reg.start_upload(&repo, "dave").await.unwrap();
        let slot = reg.uploads.slot(session.uuid);
        let writing = slot.lock().await;
        assert!(!reg.discard_idle_session(session.uuid).await.unwrap());
        drop(writing);
        assert!(reg.discard_idle_session(session.uuid).await.unwrap());
        let gone = reg.upload_status(&repo, session.uuid).await.unwrap_err();
        assert_eq!(gone.code(), "BLOB_UPLOAD_UNKNOWN");
    }
}
