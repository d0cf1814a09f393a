//! Reading and deleting the blobs a repository links.

use tokio::fs::File;

use super::Registry;
use crate::error::Error;
use crate::names::{Digest, RepoName};

impl Registry {
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

    /// Opens a blob's bytes after checking the repository links it; returns the file and size.
    ///
    /// # Errors
    /// `BlobUnknown` when not linked; `Io` when the bytes are unreadable.
    pub async fn open_blob(&self, repo: &RepoName, digest: &Digest) -> Result<(File, u64), Error> {
        let size = self.blob_size(repo, digest).await?;
        // A DELETE racing this read may have let garbage collection take the bytes.
        let file = self
            .files
            .open_blob(digest)
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::BlobUnknown(digest.to_string()),
                _ => Error::Io(e),
            })?;
        Ok((file, size))
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
