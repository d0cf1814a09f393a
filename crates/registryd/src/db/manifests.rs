//! SQL for manifests, their references, tags and referrers.

use sqlx::Row;

use super::{ensure_repo, Db};
use crate::error::Error;

/// A manifest as stored: what GET and the referrers API answer with.
#[derive(Debug, Clone)]
pub struct ManifestRow {
    /// `sha256:…` of the exact bytes.
    pub digest: String,
    /// The media type it was pushed with.
    pub media_type: String,
    /// Length of the bytes.
    pub size: u64,
    /// `artifactType`, or the config media type of an image manifest.
    pub artifact_type: Option<String>,
    /// Digest of the `subject` manifest, if any.
    pub subject: Option<String>,
    /// The `annotations` object as JSON text, if any.
    pub annotations: Option<String>,
}

/// What a manifest points at, checked to exist in the repository before it is stored.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Config and layers: blobs the repository must link.
    pub blobs: Vec<String>,
    /// Children of an index: manifests the repository must hold.
    pub manifests: Vec<String>,
}

/// One entry of a referrers answer.
pub type Referrer = ManifestRow;

fn to_i64(n: u64) -> Result<i64, Error> {
    i64::try_from(n).map_err(|_| Error::SizeInvalid("size out of range".into()))
}

impl Db {
    /// Stores a manifest whose bytes are already in the blob store: checks every reference
    /// exists in the repository, records the blob, the manifest, its references and the tag, in
    /// one transaction.
    ///
    /// # Errors
    /// `ManifestBlobUnknown` naming the first missing reference; `Db` on failure.
    pub async fn put_manifest(
        &self,
        repo: &str,
        m: &ManifestRow,
        refs: &References,
        tag: Option<&str>,
    ) -> Result<(), Error> {
        let mut tx = self.begin().await?;
        let repo_id = ensure_repo(&mut tx, repo).await?;
        let checks = [
            (
                "SELECT 1 FROM repo_blobs WHERE repo_id = ? AND digest = ?",
                &refs.blobs,
            ),
            (
                "SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?",
                &refs.manifests,
            ),
        ];
        for (sql, digests) in checks {
            for d in digests {
                let found: Option<i64> = sqlx::query_scalar(sql)
                    .bind(repo_id)
                    .bind(d)
                    .fetch_optional(&mut *tx)
                    .await?;
                if found.is_none() {
                    return Err(Error::ManifestBlobUnknown(d.clone()));
                }
            }
        }
        let size = to_i64(m.size)?;
        sqlx::query("INSERT OR IGNORE INTO blobs (digest, size) VALUES (?, ?)")
            .bind(&m.digest)
            .bind(size)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT OR IGNORE INTO repo_blobs (repo_id, digest) VALUES (?, ?)")
            .bind(repo_id)
            .bind(&m.digest)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO manifests (repo_id, digest, media_type, size, artifact_type, subject, annotations) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(repo_id)
        .bind(&m.digest)
        .bind(&m.media_type)
        .bind(size)
        .bind(&m.artifact_type)
        .bind(&m.subject)
        .bind(&m.annotations)
        .execute(&mut *tx)
        .await?;
        for target in refs.blobs.iter().chain(&refs.manifests) {
            sqlx::query("INSERT OR IGNORE INTO manifest_refs (repo_id, manifest_digest, target_digest) VALUES (?, ?, ?)")
                .bind(repo_id)
                .bind(&m.digest)
                .bind(target)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(tag) = tag {
            sqlx::query("INSERT INTO tags (repo_id, name, digest) VALUES (?, ?, ?) ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest")
                .bind(repo_id)
                .bind(tag)
                .bind(&m.digest)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Media type and size of a manifest in a repository.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn manifest(&self, repo: &str, digest: &str) -> Result<Option<(String, u64)>, Error> {
        let row = sqlx::query(
            "SELECT m.media_type, m.size FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? AND m.digest = ?",
        )
        .bind(repo)
        .bind(digest)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| {
            (
                r.get::<String, _>(0),
                u64::try_from(r.get::<i64, _>(1)).unwrap_or(0),
            )
        }))
    }

    /// The digest a tag points at.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn resolve_tag(&self, repo: &str, tag: &str) -> Result<Option<String>, Error> {
        Ok(sqlx::query_scalar("SELECT t.digest FROM tags t JOIN repositories r ON r.id = t.repo_id WHERE r.name = ? AND t.name = ?")
            .bind(repo)
            .bind(tag)
            .fetch_optional(&self.reader)
            .await?)
    }

    /// Deletes a manifest, its tags and references; false when it was not there.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<bool, Error> {
        let mut tx = self.begin().await?;
        let sub = "(SELECT id FROM repositories WHERE name = ?)";
        let done = sqlx::query(&format!(
            "DELETE FROM manifests WHERE digest = ? AND repo_id = {sub}"
        ))
        .bind(digest)
        .bind(repo)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM repo_blobs WHERE digest = ? AND repo_id = {sub}"
        ))
        .bind(digest)
        .bind(repo)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes one tag, leaving the manifest; false when there was no such tag.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM tags WHERE name = ? AND repo_id = (SELECT id FROM repositories WHERE name = ?)")
            .bind(tag)
            .bind(repo)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Manifests of a repository whose `subject` is `digest`, optionally of one artifact type,
    /// ordered by digest.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn referrers(
        &self,
        repo: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Referrer>, Error> {
        let rows = sqlx::query(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m \
             JOIN repositories r ON r.id = m.repo_id WHERE r.name = ? AND m.subject = ? \
             AND (? IS NULL OR m.artifact_type = ?) ORDER BY m.digest",
        )
        .bind(repo)
        .bind(digest)
        .bind(artifact_type)
        .bind(artifact_type)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ManifestRow {
                digest: r.get(0),
                media_type: r.get(1),
                size: u64::try_from(r.get::<i64, _>(2)).unwrap_or(0),
                artifact_type: r.get(3),
                subject: Some(digest.to_owned()),
                annotations: r.get(4),
            })
            .collect())
    }
}
