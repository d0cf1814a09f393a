//! Blob bytes, behind one narrow interface with two stores: the local filesystem ([`Files`],
//! the default, tuned for one machine) and an S3-compatible object store ([`S3`], shared by
//! any number of registryd replicas). Services call [`BlobStore`] and never learn which one
//! runs. Knows nothing of HTTP or SQL.
//!
//! An upload's bytes stay apart from the content-addressed store until they are verified:
//! chunks are appended to the upload ([`BlobStore::append`], which also advances its sha256),
//! a failed chunk is undone ([`BlobStore::undo_chunk`]), the hash state of an upload this
//! process did not write is rebuilt from the store ([`BlobStore::rehash`]), and a verified
//! upload is committed under its digest ([`BlobStore::commit_upload`]). Garbage collection
//! lists the store ([`BlobStore::list_blobs`]) and moves bytes through a trash (`trash.rs`,
//! `s3/gc.rs`).
//!
//! `BlobStore` is an enum rather than a `dyn` trait: the set of stores is closed, and the
//! upload path stays generic over the request body (no boxing on the filesystem's hot path).

mod blob_reader;
mod files;
pub mod paths;
mod s3;
mod trash;
mod upload_hash;

pub use blob_reader::BlobReader;
pub use files::Files;
pub use s3::S3;
pub use trash::BlobFile;
pub use upload_hash::UploadHash;

use std::io;
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::names::Digest;

/// Why appending a request body to an upload stopped.
#[derive(Debug)]
pub enum AppendError {
    /// The client's body failed (disconnect, limit); the store may hold part of it.
    Body(String),
    /// Our store failed.
    Io(io::Error),
}

/// The blob store in use.
#[derive(Debug, Clone)]
pub enum BlobStore {
    /// Files under the data directory.
    Files(Files),
    /// Objects in an S3-compatible bucket.
    S3(S3),
}

impl BlobStore {
    /// Whether other processes may write this store's uploads too (replicas sharing a
    /// bucket): a hash state kept in memory may then be stale, and is rebuilt from the store
    /// at each chunk.
    #[must_use]
    pub fn shared(&self) -> bool {
        matches!(self, Self::S3(_))
    }

    /// Starts the bytes of a new upload.
    ///
    /// # Errors
    /// On store failure.
    pub async fn create_upload(&self, uuid: &Uuid) -> io::Result<()> {
        match self {
            Self::Files(f) => f.create_upload(uuid).await,
            Self::S3(_) => Ok(()), // An upload with no object yet is an empty one.
        }
    }

    /// Bytes an upload holds, `None` when the store knows no such upload.
    ///
    /// # Errors
    /// On store failure other than absence.
    pub async fn upload_len(&self, uuid: &Uuid) -> io::Result<Option<u64>> {
        match self {
            Self::Files(f) => f.upload_len(uuid).await,
            Self::S3(s) => s.upload_len(uuid).await.map(Some),
        }
    }

    /// Appends `body` to an upload, advancing `hasher` (the hash of the upload so far) over
    /// every byte stored; returns how many bytes were appended. On error, `hasher` and the
    /// store may disagree: callers undo the chunk and drop the hasher. A store that commits a
    /// chunk as a whole (S3) commits it only when `accept` takes its length; the others keep
    /// what they wrote until [`BlobStore::undo_chunk`].
    ///
    /// `held` (the session's lock) is handed back once the store is settled, even when this
    /// future is dropped mid-body; `None` only if the filesystem's writing thread panicked.
    pub async fn append<S, E, G>(
        &self,
        uuid: &Uuid,
        body: S,
        hasher: &mut UploadHash,
        held: G,
        accept: impl FnOnce(u64) -> bool,
    ) -> (Option<G>, Result<u64, AppendError>)
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
        G: Send + 'static,
    {
        match self {
            Self::Files(f) => f.append(uuid, body, hasher, held).await,
            Self::S3(s) => (Some(held), s.append(uuid, body, hasher, accept).await),
        }
    }

    /// Undoes a failed chunk: the upload holds its first `len` bytes again.
    ///
    /// # Errors
    /// On store failure.
    pub async fn undo_chunk(&self, uuid: &Uuid, len: u64) -> io::Result<()> {
        match self {
            Self::Files(f) => f.truncate_upload(uuid, len).await,
            // A chunk's parts count only once its state is saved, which a failed one never is.
            Self::S3(_) => Ok(()),
        }
    }

    /// The whole of a small upload, to be kept inline.
    ///
    /// # Errors
    /// On store failure; for an S3 upload already sent in parts.
    pub async fn read_upload(&self, uuid: &Uuid) -> io::Result<Bytes> {
        match self {
            Self::Files(f) => f.read_upload(uuid).await,
            Self::S3(s) => s.read_upload(uuid).await,
        }
    }

    /// The hash of an upload's bytes, rebuilt from the store.
    ///
    /// # Errors
    /// On store failure; `NotFound` when the store knows no such upload.
    pub async fn rehash(&self, uuid: &Uuid) -> io::Result<UploadHash> {
        match self {
            Self::Files(f) => f.rehash(uuid).await,
            Self::S3(s) => s.rehash(uuid).await,
        }
    }

    /// Puts a verified upload into the content store under `digest` (nothing when the blob
    /// is stored already). The upload's bytes stay until [`BlobStore::remove_upload`], so that
    /// they can be placed again should garbage collection take them before their row commits.
    ///
    /// # Errors
    /// On store failure.
    pub async fn commit_upload(&self, uuid: &Uuid, digest: &Digest) -> io::Result<()> {
        match self {
            Self::Files(f) => f.commit_upload(uuid, digest).await,
            Self::S3(s) => s.commit_upload(uuid, digest).await,
        }
    }

    /// Stores a small blob (a manifest) whose digest the caller checked.
    ///
    /// # Errors
    /// On store failure; nothing is left behind.
    pub async fn write_blob(&self, digest: &Digest, bytes: &Bytes) -> io::Result<()> {
        match self {
            Self::Files(f) => f.write_blob(digest, bytes).await,
            Self::S3(s) => s.write_blob(digest, bytes).await,
        }
    }

    /// Deletes an upload's bytes; absence is fine.
    ///
    /// # Errors
    /// On store failure other than absence.
    pub async fn remove_upload(&self, uuid: &Uuid) -> io::Result<()> {
        match self {
            Self::Files(f) => f.remove_upload(uuid).await,
            Self::S3(s) => s.remove_upload(uuid).await,
        }
    }

    /// Deletes the bytes of an upload that never held any (finished without being appended
    /// to): its empty file; nothing on S3, where such an upload has no object.
    ///
    /// # Errors
    /// On store failure other than absence.
    pub async fn remove_empty_upload(&self, uuid: &Uuid) -> io::Result<()> {
        match self {
            Self::Files(f) => f.remove_upload(uuid).await,
            Self::S3(_) => Ok(()),
        }
    }

    /// Every upload the store holds bytes of, with when it was last written.
    ///
    /// # Errors
    /// On store failure.
    pub async fn list_uploads(&self) -> io::Result<Vec<(Uuid, SystemTime)>> {
        match self {
            Self::Files(f) => f.list_uploads().await,
            Self::S3(s) => s.list_uploads().await,
        }
    }

    /// Streams `len` bytes of a stored blob from offset `start`.
    ///
    /// # Errors
    /// On store failure when opening, `NotFound` included; a later failure ends the stream
    /// with an error item.
    pub async fn read_blob_range(
        &self,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        match self {
            Self::Files(f) => Ok(f.read_blob_range(digest, start, len).await?.boxed()),
            Self::S3(s) => s.read_blob_range(digest, start, len).await,
        }
    }

    /// Reads a whole small blob (a manifest).
    ///
    /// # Errors
    /// On store failure, `NotFound` included.
    pub async fn read_blob(&self, digest: &Digest) -> io::Result<Bytes> {
        match self {
            Self::Files(f) => f.read_blob(digest).await,
            Self::S3(s) => s.read_blob(digest).await,
        }
    }

    /// A URL a client can fetch the blob from directly, for a while; `None` when the store
    /// has none (the filesystem).
    ///
    /// # Errors
    /// When signing fails.
    pub async fn blob_url(&self, digest: &Digest) -> io::Result<Option<String>> {
        match self {
            Self::Files(_) => Ok(None),
            Self::S3(s) => s.blob_url(digest).await.map(Some),
        }
    }

    /// Every blob in the store.
    ///
    /// # Errors
    /// On store failure.
    pub async fn list_blobs(&self) -> io::Result<Vec<BlobFile>> {
        match self {
            Self::Files(f) => f.list_blobs().await,
            Self::S3(s) => s.list_blobs().await,
        }
    }

    /// Whether a blob's bytes are in the store. Blocking, for use inside a database
    /// transaction.
    #[must_use]
    pub fn has_blob(&self, digest: &Digest) -> bool {
        match self {
            Self::Files(f) => f.has_blob(digest),
            Self::S3(s) => s.has_blob(digest),
        }
    }

    /// Moves a blob's bytes to the trash; their size, `None` when they were not in the
    /// store. Blocking, for use inside a database transaction.
    ///
    /// # Errors
    /// On store failure.
    pub fn trash_blob(&self, digest: &Digest) -> io::Result<Option<u64>> {
        match self {
            Self::Files(f) => f.trash_blob(digest),
            Self::S3(s) => s.trash_blob(digest),
        }
    }

    /// Moves trashed bytes back into the store (or drops them when the store has them
    /// again). Blocking, for use inside a database transaction.
    ///
    /// # Errors
    /// On store failure.
    pub fn restore_blob(&self, digest: &Digest) -> io::Result<()> {
        match self {
            Self::Files(f) => f.restore_blob(digest),
            Self::S3(s) => s.restore_blob(digest),
        }
    }

    /// The digests whose bytes are in the trash.
    ///
    /// # Errors
    /// On store failure.
    pub async fn list_trash(&self) -> io::Result<Vec<Digest>> {
        match self {
            Self::Files(f) => f.list_trash().await,
            Self::S3(s) => s.list_trash().await,
        }
    }

    /// Deletes trashed bytes; absence is fine.
    ///
    /// # Errors
    /// On store failure other than absence.
    pub async fn empty_trash(&self, digest: &Digest) -> io::Result<()> {
        match self {
            Self::Files(f) => f.empty_trash(digest).await,
            Self::S3(s) => s.empty_trash(digest).await,
        }
    }
}
