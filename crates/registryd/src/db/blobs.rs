//! SQL for blobs and the repository → blob links.

use super::gc::ensure_blob;
use super::{ensure_repo, Db};
use crate::error::Error;

impl Db {
    /// Size of a blob the repository links, `None` when it does not.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn linked_blob_size(&self, repo: &str, digest: &str) -> Result<Option<u64>, Error> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blobs b JOIN repo_blobs rb ON rb.digest = b.digest \
             JOIN repositories r ON r.id = rb.repo_id WHERE r.name = ? AND b.digest = ?",
        )
        .bind(repo)
        .bind(digest)
        .fetch_optional(&self.reader)
        .await?;
        Ok(size.and_then(|s| u64::try_from(s).ok()))
    }

    /// Size of a blob that one of `repos` links (any repository when `None`), `None` when none
    /// of them does.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn blob_size_linked_by(
        &self,
        digest: &str,
        repos: Option<&[String]>,
    ) -> Result<Option<u64>, Error> {
        let repos = repos.map(|r| serde_json::json!(r).to_string());
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blobs b JOIN repo_blobs rb ON rb.digest = b.digest \
             JOIN repositories r ON r.id = rb.repo_id WHERE b.digest = ? \
             AND (? IS NULL OR r.name IN (SELECT value FROM json_each(?))) LIMIT 1",
        )
        .bind(digest)
        .bind(&repos)
        .bind(&repos)
        .fetch_optional(&self.reader)
        .await?;
        Ok(size.and_then(|s| u64::try_from(s).ok()))
    }

    /// Size of a stored blob whatever repository links it, `None` when it is not stored.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn blob_size(&self, digest: &str) -> Result<Option<u64>, Error> {
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE digest = ?")
            .bind(digest)
            .fetch_optional(&self.reader)
            .await?;
        Ok(size.and_then(|s| u64::try_from(s).ok()))
    }

    /// Records a stored blob and links it into `repo`; ends the upload session `upload` if given.
    /// All or nothing.
    ///
    /// # Errors
    /// `BlobCollected` when its bytes were collected meanwhile; `Db` on failure.
    pub async fn link_blob(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        upload: Option<&str>,
    ) -> Result<(), Error> {
        let size = i64::try_from(size).map_err(|_| Error::SizeInvalid("blob too large".into()))?;
        let (repo, digest, upload, files) = (
            repo.to_owned(),
            digest.to_owned(),
            upload.map(str::to_owned),
            self.store(),
        );
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let repo_id = ensure_repo(c, &repo).await?;
                    ensure_blob(c, &files, &digest, size).await?;
                    sqlx::query("INSERT OR IGNORE INTO repo_blobs (repo_id, digest) VALUES (?, ?)")
                        .bind(repo_id)
                        .bind(&digest)
                        .execute(&mut *c)
                        .await?;
                    if let Some(uuid) = upload {
                        sqlx::query("DELETE FROM uploads WHERE uuid = ?")
                            .bind(uuid)
                            .execute(&mut *c)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Removes a blob from a repository (its bytes stay for other repositories); false when it
    /// was not linked.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn unlink_blob(&self, repo: &str, digest: &str) -> Result<bool, Error> {
        self.delete(
            "DELETE FROM repo_blobs WHERE digest = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?)",
            [digest, repo],
        )
        .await
    }
}
