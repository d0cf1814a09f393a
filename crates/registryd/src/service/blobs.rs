//! Reading and deleting the blobs a repository links, or sending the client to the store.

use bytes::Bytes;
use futures_util::stream::{self, BoxStream};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::Registry;
use crate::error::Error;
use crate::names::{Digest, RepoName};
use crate::storage::{AppendError, UploadHash};

impl Registry {
    /// Writes `body` into the new upload `uuid` and checks that it is `digest` (and `size`
    /// bytes, when given): its length, or why not, naming the bytes' source `from`. The
    /// verified bytes then wait in the upload to be committed under their digest.
    pub(super) async fn fill_upload<S, E>(
        &self,
        uuid: &Uuid,
        body: S,
        digest: &Digest,
        size: Option<u64>,
        from: &str,
    ) -> Result<u64, String>
    where
        S: Stream<Item = Result<Bytes, E>>,
        E: std::fmt::Display,
    {
        self.blobs
            .create_upload(uuid)
            .await
            .map_err(|e| format!("creating the fill file: {e}"))?;
        let mut hasher = UploadHash::default();
        let (_, wrote) = self
            .blobs
            .append(uuid, body, &mut hasher, (), |_| true)
            .await;
        let written = wrote.map_err(|e| match e {
            AppendError::Body(e) => format!("{from} broke off: {e}"),
            AppendError::Io(e) => format!("writing the fill file: {e}"),
        })?;
        let actual = Digest::from_sha256(&hasher.finalize());
        if &actual != digest {
            return Err(format!(
                "{from} sent bytes whose digest is {actual}, not {digest}"
            ));
        }
        if size.is_some_and(|s| s != written) {
            return Err(format!(
                "{from} announced {size:?} bytes and sent {written}"
            ));
        }
        Ok(written)
    }

    /// Size of a blob the repository may serve.
    ///
    /// # Errors
    /// `BlobUnknown` when the repository does not link it.
    pub async fn blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64, Error> {
        self.db
            .linked_blob_size(repo.as_str(), digest.as_str())
            .await?
            .ok_or_else(|| Error::BlobUnknown(digest.to_string()))
    }

    /// Streams bytes `start..start + len` of a stored blob of `size` bytes, from the database
    /// when it is small enough to be inline; callers check the repository links it with
    /// [`Registry::blob_size`] first.
    ///
    /// # Errors
    /// `BlobUnknown` when its file is gone; `Io` when the bytes are unreadable.
    pub async fn blob_range(
        &self,
        digest: &Digest,
        size: u64,
        start: u64,
        len: u64,
    ) -> Result<BoxStream<'static, std::io::Result<Bytes>>, Error> {
        if let Some(bytes) = self.inline_bytes(digest, size).await? {
            let end = start.saturating_add(len).min(bytes.len() as u64);
            let piece = bytes.slice(start.min(end) as usize..end as usize);
            return Ok(stream::once(async move { Ok(piece) }).boxed());
        }
        // A DELETE racing this read may have let garbage collection take the bytes.
        self.blobs
            .read_blob_range(digest, start, len)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::BlobUnknown(digest.to_string()),
                _ => Error::Io(e),
            })
    }

    /// Where a client may fetch a stored blob of `size` bytes from directly (a presigned URL),
    /// when the store can hand one out, `storage.redirect` allows it and the blob is not small
    /// enough to be inline (a small one is sent at once instead); callers check the repository
    /// links the blob with [`Registry::blob_size`] first.
    ///
    /// # Errors
    /// `Io` when signing fails.
    pub async fn blob_redirect(&self, digest: &Digest, size: u64) -> Result<Option<String>, Error> {
        if !self.redirect || size <= self.inline_max {
            return Ok(None);
        }
        Ok(self.blobs.blob_url(digest).await?)
    }

    /// Unlinks a blob from a repository.
    ///
    /// # Errors
    /// `Unsupported` when deletes are off; `BlobUnknown` when it was not linked.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(), Error> {
        self.check_delete_enabled()?;
        if self.db.unlink_blob(repo.as_str(), digest.as_str()).await? {
            Ok(())
        } else {
            Err(Error::BlobUnknown(digest.to_string()))
        }
    }
}
