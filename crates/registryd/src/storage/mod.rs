//! Blob bytes on the local filesystem: upload files that grow while being hashed, and the
//! content-addressed store they are moved into once verified. Knows nothing of HTTP or SQL.
//!
//! Durability: a blob file is written completely, `sync_all`ed, renamed into place and its
//! directory fsynced before [`Files::commit_upload`] returns, so a database row written after it
//! never points at missing or partial bytes.

pub mod paths;

use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest as _, Sha256};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use uuid::Uuid;

use crate::names::Digest;
use paths::Paths;

/// Bytes gathered before each write to an upload file.
const WRITE_BUFFER: usize = 1024 * 1024;

/// The filesystem half of storage.
#[derive(Debug, Clone)]
pub struct Files {
    paths: Paths,
}

/// Why appending a request body to an upload stopped.
#[derive(Debug)]
pub enum AppendError {
    /// The client's body failed (disconnect, limit); the file may hold part of it.
    Body(String),
    /// Our disk failed.
    Io(io::Error),
}

impl Files {
    /// Uses `paths`, creating the folders it needs.
    ///
    /// # Errors
    /// When the folders cannot be created.
    pub async fn open(paths: Paths) -> io::Result<Self> {
        fs::create_dir_all(paths.uploads_dir()).await?;
        fs::create_dir_all(paths.blobs_dir()).await?;
        Ok(Self { paths })
    }

    /// The layout in use.
    #[must_use]
    pub fn paths(&self) -> &Paths {
        &self.paths
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
    /// # Errors
    /// [`AppendError::Body`] when the client's stream fails, [`AppendError::Io`] on disk failure.
    pub async fn append<S, E>(
        &self,
        uuid: &Uuid,
        body: S,
        hasher: &mut Sha256,
    ) -> Result<u64, AppendError>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        let file = OpenOptions::new()
            .append(true)
            .open(self.paths.upload(uuid))
            .await
            .map_err(AppendError::Io)?;
        let mut file = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| AppendError::Body(e.to_string()))?;
            file.write_all(&chunk).await.map_err(AppendError::Io)?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
        }
        file.flush().await.map_err(AppendError::Io)?;
        Ok(written)
    }

    /// Cuts an upload back to `len` bytes, undoing a failed chunk.
    ///
    /// # Errors
    /// On disk failure.
    pub async fn truncate_upload(&self, uuid: &Uuid, len: u64) -> io::Result<()> {
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
    pub async fn rehash(&self, uuid: &Uuid) -> io::Result<(Sha256, u64)> {
        let mut file = File::open(self.paths.upload(uuid)).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok((hasher, len));
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
    }

    /// Moves a verified upload into the blob store: fsync, rename, fsync the directory. When the
    /// blob is already stored the upload file is just removed (content is immutable).
    ///
    /// # Errors
    /// On disk failure; the upload file is left for the caller to remove.
    pub async fn commit_upload(&self, uuid: &Uuid, digest: &Digest) -> io::Result<()> {
        let from = self.paths.upload(uuid);
        let to = self.paths.blob(digest);
        if fs::try_exists(&to).await? {
            return self.remove_upload(uuid).await;
        }
        File::open(&from).await?.sync_all().await?;
        let dir = self.paths.blob_dir(digest);
        if !fs::try_exists(&dir).await? {
            fs::create_dir_all(&dir).await?;
            // The new `ab/` entry must survive a power loss as well as the file inside it.
            File::open(self.paths.blobs_dir()).await?.sync_all().await?;
        }
        fs::rename(&from, &to).await?;
        File::open(&dir).await?.sync_all().await
    }

    /// Writes a small blob (a manifest) durably through a temporary upload file.
    ///
    /// # Errors
    /// On disk failure; the temporary file is removed.
    pub async fn write_blob(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        if fs::try_exists(self.paths.blob(digest)).await? {
            return Ok(());
        }
        let uuid = Uuid::new_v4();
        let result = async {
            fs::write(self.paths.upload(&uuid), bytes).await?;
            self.commit_upload(&uuid, digest).await
        }
        .await;
        if result.is_err() {
            let _ = self.remove_upload(&uuid).await;
        }
        result
    }

    /// Deletes an upload's file; absence is fine.
    ///
    /// # Errors
    /// On disk failure other than absence.
    pub async fn remove_upload(&self, uuid: &Uuid) -> io::Result<()> {
        match fs::remove_file(self.paths.upload(uuid)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
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

    /// Every blob file in the store, by digest (files not named by a digest are skipped).
    ///
    /// # Errors
    /// On disk failure.
    pub async fn list_blobs(&self) -> io::Result<Vec<Digest>> {
        let mut out = vec![];
        let mut prefixes = fs::read_dir(self.paths.blobs_dir()).await?;
        while let Some(prefix) = prefixes.next_entry().await? {
            if !prefix.file_type().await?.is_dir() {
                continue;
            }
            let mut files = fs::read_dir(prefix.path()).await?;
            while let Some(file) = files.next_entry().await? {
                let name = file.file_name();
                if let Some(d) = name
                    .to_str()
                    .and_then(|n| Digest::parse(&format!("sha256:{n}")).ok())
                {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Deletes a stored blob's bytes; absence is fine.
    ///
    /// # Errors
    /// On disk failure other than absence.
    pub async fn remove_blob(&self, digest: &Digest) -> io::Result<()> {
        match fs::remove_file(self.paths.blob(digest)).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Opens a stored blob for reading.
    ///
    /// # Errors
    /// On disk failure, `NotFound` included.
    pub async fn open_blob(&self, digest: &Digest) -> io::Result<File> {
        File::open(self.paths.blob(digest)).await
    }

    /// Reads a whole small blob (a manifest).
    ///
    /// # Errors
    /// On disk failure.
    pub async fn read_blob(&self, digest: &Digest) -> io::Result<Bytes> {
        fs::read(self.paths.blob(digest)).await.map(Bytes::from)
    }
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
        let mut h = Sha256::new();
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        assert_eq!(files.append(&uuid, chunks, &mut h).await.unwrap(), 11);
        assert_eq!(files.upload_len(&uuid).await.unwrap(), Some(11));
        let (h2, len) = files.rehash(&uuid).await.unwrap();
        assert_eq!(len, 11);
        assert_eq!(h.finalize(), h2.finalize());
        let digest = Digest::of(b"hello world");
        files.commit_upload(&uuid, &digest).await.unwrap();
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
            .append(&uuid, chunks, &mut Sha256::new())
            .await
            .unwrap_err();
        assert!(matches!(err, AppendError::Body(m) if m == "reset"));
    }

    #[tokio::test]
    async fn committing_an_existing_blob_keeps_one_copy() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::open(Paths::new(dir.path())).await.unwrap();
        let d = Digest::of(b"x");
        files.write_blob(&d, b"x").await.unwrap();
        files.write_blob(&d, b"x").await.unwrap();
        assert_eq!(
            std::fs::read_dir(files.paths().uploads_dir())
                .unwrap()
                .count(),
            0
        );
        assert_eq!(&files.read_blob(&d).await.unwrap()[..], b"x");
    }
}
