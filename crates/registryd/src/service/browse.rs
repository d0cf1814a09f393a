//! What the web pages read beyond the distribution API: repositories with their tag counts and
//! last push, tags with their manifests, when a manifest was pushed, and small blobs (image
//! configs) whole.

use bytes::{Bytes, BytesMut};
use futures_util::TryStreamExt;

use super::{Page, Registry, MAX_PAGE};
use crate::db::{RepoSummary, TagRow};
use crate::error::Error;
use crate::names::{Digest, RepoName};

impl Registry {
    /// Whether deletes are allowed (`storage.delete.enabled`).
    #[must_use]
    pub fn delete_enabled(&self) -> bool {
        self.delete_enabled
    }

    /// Repositories whose name starts with `prefix`, after `last`, at most `n`.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn repo_summaries(
        &self,
        prefix: &str,
        last: &str,
        n: u32,
    ) -> Result<Page<RepoSummary>, Error> {
        let n = n.min(MAX_PAGE);
        // Every name starting with `prefix` sorts below `prefix` + the greatest code point.
        let to = format!("{prefix}{}", char::MAX);
        let rows = self
            .db
            .repo_summaries(prefix, &to, last, i64::from(n) + 1)
            .await?;
        Ok(Page::from_rows(rows, n))
    }

    /// Tags of `repo` after `last` with their manifests, at most `n`.
    ///
    /// # Errors
    /// `NameUnknown` when nothing was ever pushed to the repository.
    pub async fn tag_rows(
        &self,
        repo: &RepoName,
        last: &str,
        n: u32,
    ) -> Result<Page<TagRow>, Error> {
        let n = n.min(MAX_PAGE);
        let rows = self
            .db
            .tag_rows(repo.as_str(), last, i64::from(n) + 1)
            .await?
            .ok_or_else(|| Error::NameUnknown(repo.to_string()))?;
        Ok(Page::from_rows(rows, n))
    }

    /// How many tags `repo` holds.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn tag_count(&self, repo: &RepoName) -> Result<u64, Error> {
        self.db.tag_count(repo.as_str()).await
    }

    /// When manifest `digest` of `repo` was stored (unix milliseconds).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn manifest_pushed_at(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<Option<i64>, Error> {
        self.db
            .manifest_pushed_at(repo.as_str(), digest.as_str())
            .await
    }

    /// The bytes of a blob `repo` links, when it is at most `max` bytes; `None` when larger.
    ///
    /// # Errors
    /// `BlobUnknown` when the repository does not link it; `Io` when it is unreadable.
    pub async fn small_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
        max: u64,
    ) -> Result<Option<Bytes>, Error> {
        let size = self.blob_size(repo, digest).await?;
        if size > max {
            return Ok(None);
        }
        let stream = self.blob_range(digest, size, 0, size).await?;
        let bytes: BytesMut = stream.try_collect().await?;
        Ok(Some(bytes.freeze()))
    }
}
