//! The filesystem blob store: upload files that grow while being hashed, and the
//! content-addressed store they are moved into once verified. Knows nothing of HTTP or SQL.
//!
//! Durability: a blob file is written completely, fsynced, renamed into place and its directory
//! fsynced before [`Files::commit_upload`] returns, so a database row written after it never
//! points at missing or partial bytes.
//!
//! Speed: an upload's bytes are hashed on the request's task while a blocking thread writes them
//! (so hashing and writing overlap), and every [`SYNC_EVERY`] bytes an fsync starts in the
//! background so the disk works during the upload rather than all at the final fsync. A blob is read
//! piece by piece as the socket takes it, from the page cache on the serving thread when the
//! bytes are there ([`BlobReader`]).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use std::io::Write as _;
use std::path::Path;

use tokio::fs::{self, File, OpenOptions};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use super::blob_reader::BlobReader;
use super::paths::Paths;
use super::{AppendError, UploadHash};
use crate::names::Digest;

/// Bytes gathered before each write to an upload file.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Bytes written to an upload file between two background `fdatasync`s.
const SYNC_EVERY: u64 = 32 * 1024 * 1024;
/// Bytes a chunk must leave unsynced for an fsync to start in the background when it ends.
const SYNC_AFTER_CHUNK: u64 = 1024 * 1024;
/// Request body pieces queued for the writing thread at most.
const QUEUED_PIECES: usize = 32;

/// The filesystem half of storage.
#[derive(Debug, Clone)]
pub struct Files {
    pub(super) paths: Paths,
    /// Background fsyncs of upload files, joined before the file is next written, cut or
    /// committed, so their errors are never lost.
    syncing: Arc<Mutex<HashMap<Uuid, PendingSync>>>,
}

/// A background `fdatasync` of an upload file.
type PendingSync = std::thread::JoinHandle<io::Result<()>>;

impl Files {
    /// Uses `paths`, creating the folders it needs.
    ///
    /// # Errors
    /// When the folders cannot be created.
    pub async fn open(paths: Paths) -> io::Result<Self> {
        fs::create_dir_all(paths.uploads_dir()).await?;
        fs::create_dir_all(paths.blobs_dir()).await?;
        fs::create_dir_all(paths.trash_dir()).await?;
        Ok(Self {
            paths,
            syncing: Arc::default(),
        })
    }

    /// The layout in use.
    #[must_use]
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    fn take_sync(&self, uuid: &Uuid) -> Option<PendingSync> {
        self.syncing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(uuid)
    }

    /// Waits for the upload's background fsync, if one was started.
    async fn settle(&self, uuid: &Uuid) -> io::Result<()> {
        match self.take_sync(uuid) {
            Some(pending) => blocking(move || joined(pending)).await,
            None => Ok(()),
        }
    }

    /// Creates the empty file of a new upload.
    ///
    /// # Errors
    /// On disk failure.
    pub async fn create_upload(&self, uuid: &Uuid) -> io::Result<()> {
        File::create(self.paths.upload(uuid)).await.map(drop)
    }

    /// Size of an upload's file, `None` when it does not exist.
    ///
    /// # Errors
    /// On disk failure other than absence.
    pub async fn upload_len(&self, uuid: &Uuid) -> io::Result<Option<u64>> {
        match fs::metadata(self.paths.upload(uuid)).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Appends `body` to an upload, feeding every written byte to `hasher`; returns how many
    /// bytes were written. On error, `hasher` and the file may disagree: callers drop the hasher.
    ///
    /// `held` (the session's lock) is kept by the writing thread until its last byte reached
    /// the file and handed back then, so even when this future is dropped mid-body the session
    /// stays locked until the file is settled. It is `None` only if that thread panicked.
    pub async fn append<S, E, G>(
        &self,
        uuid: &Uuid,
        body: S,
        hasher: &mut UploadHash,
        held: G,
    ) -> (Option<G>, Result<u64, AppendError>)
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
        G: Send + 'static,
    {
        let path = self.paths.upload(uuid);
        let pending = self.take_sync(uuid);
        let (pieces, mut queue) = tokio::sync::mpsc::channel::<Bytes>(QUEUED_PIECES);
        let writer = tokio::task::spawn_blocking(move || {
            let wrote = write_pieces(&path, &mut queue, pending);
            (held, wrote)
        });
        let mut received = Ok(0u64);
        let mut body = std::pin::pin!(body);
        while let Some(piece) = body.next().await {
            match piece {
                Ok(piece) => {
                    hasher.update(&piece);
                    received = received.map(|n| n + piece.len() as u64);
                    if pieces.send(piece).await.is_err() {
                        break; // The writer failed; its error is the answer.
                    }
                }
                Err(e) => {
                    received = Err(AppendError::Body(e.to_string()));
                    break;
                }
            }
        }
        drop(pieces);
        match writer.await {
            Ok((held, Ok(pending))) => {
                if let Some(pending) = pending {
                    self.syncing
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(*uuid, pending);
                }
                (Some(held), received)
            }
            Ok((held, Err(e))) => (Some(held), Err(AppendError::Io(e))),
            Err(e) => (None, Err(AppendError::Io(io::Error::other(e)))),
        }
    }

    /// Cuts an upload back to `len` bytes, undoing a failed chunk.
    ///
    /// # Errors
    /// On disk failure.
    pub async fn truncate_upload(&self, uuid: &Uuid, len: u64) -> io::Result<()> {
        self.settle(uuid).await?;
        let file = OpenOptions::new()
            .write(true)
            .open(self.paths.upload(uuid))
            .await?;
        file.set_len(len).await
    }

    /// Re-reads an upload's file to rebuild its hash state (after a restart or a failed append).
    ///
    /// # Errors
    /// On disk failure, `NotFound` included.
    pub async fn rehash(&self, uuid: &Uuid) -> io::Result<UploadHash> {
        let mut file = File::open(self.paths.upload(uuid)).await?;
        let mut hasher = UploadHash::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(hasher);
            }
            hasher.update(&buf[..n]);
        }
    }

    /// The whole of an upload (a small one, kept inline).
    pub async fn read_upload(&self, uuid: &Uuid) -> io::Result<Bytes> {
        fs::read(self.paths.upload(uuid)).await.map(Bytes::from)
    }

    /// Puts a verified upload into the blob store: fsync, hard link, fsync the directory; when
    /// the blob is already stored nothing is done (content is immutable). The upload file stays,
    /// so that the bytes can be placed again should garbage collection take them before their
    /// row is committed (see `service/gc.rs`): the caller removes it then.
    ///
    /// # Errors
    /// On disk failure.
    pub async fn commit_upload(&self, uuid: &Uuid, digest: &Digest) -> io::Result<()> {
        self.settle(uuid).await?;
        let (paths, uuid, digest) = (self.paths.clone(), *uuid, digest.clone());
        blocking(move || commit(&paths, &paths.upload(&uuid), &digest)).await
    }

    /// Writes a small blob (a manifest) durably through a temporary upload file.
    ///
    /// # Errors
    /// On disk failure; the temporary file is removed.
    pub async fn write_blob(&self, digest: &Digest, bytes: &Bytes) -> io::Result<()> {
        let (paths, digest, bytes) = (self.paths.clone(), digest.clone(), bytes.clone());
        blocking(move || {
            if paths.blob(&digest).exists() {
                return Ok(());
            }
            let from = paths.upload(&Uuid::new_v4());
            let result =
                std::fs::write(&from, &bytes).and_then(|()| commit(&paths, &from, &digest));
            let removed = remove_if_present(&from);
            result.and(removed)
        })
        .await
    }

    /// Deletes an upload's file; absence is fine.
    ///
    /// # Errors
    /// On disk failure other than absence.
    pub async fn remove_upload(&self, uuid: &Uuid) -> io::Result<()> {
        // The bytes are going: a failed fsync of them no longer matters.
        let _ = self.settle(uuid).await;
        let path = self.paths.upload(uuid);
        blocking(move || remove_if_present(&path)).await
    }

    /// Every upload file with its modification time (files not named by a UUID are skipped).
    ///
    /// # Errors
    /// On disk failure.
    pub async fn list_uploads(&self) -> io::Result<Vec<(Uuid, std::time::SystemTime)>> {
        let mut out = vec![];
        let mut dir = fs::read_dir(self.paths.uploads_dir()).await?;
        while let Some(entry) = dir.next_entry().await? {
            let Some(uuid) = entry
                .file_name()
                .to_str()
                .and_then(|n| Uuid::parse_str(n).ok())
            else {
                continue;
            };
            out.push((uuid, entry.metadata().await?.modified()?));
        }
        Ok(out)
    }

    /// Streams `len` bytes of a stored blob from offset `start`, each piece read when the
    /// consumer asks for it (see [`BlobReader`]).
    ///
    /// # Errors
    /// On disk failure when opening, `NotFound` included; a later failure ends the stream with
    /// an error item.
    pub async fn read_blob_range(
        &self,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> io::Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static> {
        let path = self.paths.blob(digest);
        let file = blocking(move || std::fs::File::open(path)).await?;
        Ok(BlobReader::new(file, start, len))
    }

    /// Reads a whole small blob (a manifest).
    ///
    /// # Errors
    /// On disk failure.
    pub async fn read_blob(&self, digest: &Digest) -> io::Result<Bytes> {
        fs::read(self.paths.blob(digest)).await.map(Bytes::from)
    }
}

/// Runs blocking filesystem work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(io::Error::other)?
}

/// The writing thread of [`Files::append`]: appends every queued piece. Every [`SYNC_EVERY`]
/// bytes it starts an `fdatasync` on a thread of its own (one at a time) and keeps writing, so
/// the disk is busy during the upload and the final fsync has little left to do. `syncing` is
/// the fsync a previous chunk left running; the one left running now is handed back.
fn write_pieces(
    path: &Path,
    queue: &mut tokio::sync::mpsc::Receiver<Bytes>,
    mut syncing: Option<PendingSync>,
) -> io::Result<Option<PendingSync>> {
    let file = std::fs::OpenOptions::new().append(true).open(path)?;
    let mut out = std::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut unsynced = 0u64;
    while let Some(piece) = queue.blocking_recv() {
        out.write_all(&piece)?;
        unsynced += piece.len() as u64;
        sync_past(SYNC_EVERY, &mut out, &mut syncing, &mut unsynced)?;
    }
    out.flush()?;
    sync_past(SYNC_AFTER_CHUNK, &mut out, &mut syncing, &mut unsynced)?;
    Ok(syncing)
}

/// Starts a background `fdatasync` once `threshold` bytes are unsynced, unless the previous one
/// is still running: it is never waited for (the disk is busy meanwhile, and the commit's own
/// fsync covers whatever no background one did), only joined once done, for its error.
fn sync_past(
    threshold: u64,
    out: &mut std::io::BufWriter<std::fs::File>,
    syncing: &mut Option<PendingSync>,
    unsynced: &mut u64,
) -> io::Result<()> {
    if *unsynced < threshold || syncing.as_ref().is_some_and(|s| !s.is_finished()) {
        return Ok(());
    }
    if let Some(done) = syncing.take() {
        joined(done)?;
    }
    out.flush()?;
    let file = out.get_ref().try_clone()?;
    *syncing = Some(std::thread::spawn(move || file.sync_data()));
    *unsynced = 0;
    Ok(())
}

fn joined(sync: std::thread::JoinHandle<io::Result<()>>) -> io::Result<()> {
    sync.join()
        .map_err(|_| io::Error::other("the fsync thread panicked"))?
}

/// Deletes `path`; absence is fine.
pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Links the fully written file `from` as the blob `digest` durably (see
/// [`Files::commit_upload`]). Its modification time becomes now: garbage collection leaves
/// row-less files younger than its grace period alone, and these bytes are about to get a row.
fn commit(paths: &Paths, from: &Path, digest: &Digest) -> io::Result<()> {
    let to = paths.blob(digest);
    if to.exists() {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new().write(true).open(from)?;
    file.set_modified(std::time::SystemTime::now())?;
    file.sync_data()?;
    let dir = paths.blob_dir(digest);
    if !dir.exists() {
        std::fs::create_dir_all(&dir)?;
        // The new `ab/` entry must survive a power loss as well as the file inside it.
        std::fs::File::open(paths.blobs_dir())?.sync_all()?;
    }
    match std::fs::hard_link(from, &to) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn upload_append_rehash_commit() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(Paths::new(dir.path())).await.unwrap();
        let uuid = Uuid::new_v4();
        files.create_upload(&uuid).await.unwrap();
        let mut h = UploadHash::default();
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        assert_eq!(files.append(&uuid, chunks, &mut h, ()).await.1.unwrap(), 11);
        assert_eq!(files.upload_len(&uuid).await.unwrap(), Some(11));
        let h2 = files.rehash(&uuid).await.unwrap();
        assert_eq!(h2.len(), 11);
        assert_eq!(h.finalize(), h2.finalize());
        let digest = Digest::of(b"hello world");
        files.commit_upload(&uuid, &digest).await.unwrap();
        files.remove_upload(&uuid).await.unwrap();
        assert_eq!(files.upload_len(&uuid).await.unwrap(), None);
        assert_eq!(&files.read_blob(&digest).await.unwrap()[..], b"hello world");
    }

    #[tokio::test]
    async fn a_failing_body_reports_body_error() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(Paths::new(dir.path())).await.unwrap();
        let uuid = Uuid::new_v4();
        files.create_upload(&uuid).await.unwrap();
        let chunks = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"ab")), Err("reset")]);
        let err = files
            .append(&uuid, chunks, &mut UploadHash::default(), ())
            .await
            .1
            .unwrap_err();
        assert!(matches!(err, AppendError::Body(m) if m == "reset"));
    }

    #[tokio::test]
    async fn committing_an_existing_blob_keeps_one_copy() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(Paths::new(dir.path())).await.unwrap();
        let d = Digest::of(b"x");
        files
            .write_blob(&d, &Bytes::from_static(b"x"))
            .await
            .unwrap();
        files
            .write_blob(&d, &Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_dir(files.paths().uploads_dir())
                .unwrap()
                .count(),
            0
        );
        assert_eq!(&files.read_blob(&d).await.unwrap()[..], b"x");
    }
}
