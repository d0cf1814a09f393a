//! SQL for blobs and the repository → blob links.

use bytes::Bytes;
use sqlx::AnyConnection;

use super::gc::ensure_blob;
use super::lock::{guard, Guard};
use super::{ensure_repo, Db};
use crate::error::Error;

/// Links a blob into a repository, or renews the link (its grace period then counts from the
/// push that needs it).
pub(super) async fn link(c: &mut AnyConnection, repo_id: i64, digest: &str) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO repo_blobs (repo_id, digest) VALUES ($1, $2) \
         ON CONFLICT (repo_id, digest) DO UPDATE SET linked_at = excluded.linked_at",
    )
    .bind(repo_id)
    .bind(digest)
    .execute(c)
    .await?;
    Ok(())
}

impl Db {
    /// Size of a blob the repository links, `None` when it does not.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn linked_blob_size(&self, repo: &str, digest: &str) -> Result<Option<u64>, Error> {
        let size: Option<i64> = sqlx::query_scalar(
            "SELECT b.size FROM blobs b JOIN repo_blobs rb ON rb.digest = b.digest \
             JOIN repositories r ON r.id = rb.repo_id WHERE r.name = $1 AND b.digest = $2",
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
        let size: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT b.size FROM blobs b JOIN repo_blobs rb ON rb.digest = b.digest \
             JOIN repositories r ON r.id = rb.repo_id WHERE b.digest = $1 \
             AND ($2 IS NULL OR r.name IN (SELECT value FROM {})) LIMIT 1",
            self.dialect.json_values(2)
        ))
        .bind(digest)
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
        let size: Option<i64> = sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.reader)
            .await?;
        Ok(size.and_then(|s| u64::try_from(s).ok()))
    }

    /// Records a stored blob (or one whose bytes are `inline`, written in the same transaction)
    /// and links it into `repo`; ends the upload session `upload` if given. All or nothing.
    ///
    /// # Errors
    /// `BlobCollected` when its bytes were collected meanwhile; `Db` on failure.
    pub async fn link_blob(
        &self,
        repo: &str,
        digest: &str,
        size: u64,
        upload: Option<&str>,
        inline: Option<Bytes>,
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
                    guard(c, Guard::Shared).await?;
                    let repo_id = ensure_repo(c, &repo).await?;
                    ensure_blob(c, &files, &digest, size, inline.as_deref()).await?;
                    link(c, repo_id, &digest).await?;
                    if let Some(uuid) = upload {
                        sqlx::query("DELETE FROM uploads WHERE uuid = $1")
                            .bind(uuid)
                            .execute(&mut *c)
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The bytes of blob `digest` when they are inline (see [`Db::link_blob`]).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn inline_bytes(&self, digest: &str) -> Result<Option<Bytes>, Error> {
        let bytes: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT bytes FROM blob_bytes WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.reader)
                .await?;
        Ok(bytes.map(Bytes::from))
    }

    /// Removes a blob from a repository (its bytes stay for other repositories); false when it
    /// was not linked.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn unlink_blob(&self, repo: &str, digest: &str) -> Result<bool, Error> {
        self.delete(
            "DELETE FROM repo_blobs WHERE digest = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
            [digest, repo],
            None,
        )
        .await
    }
}
