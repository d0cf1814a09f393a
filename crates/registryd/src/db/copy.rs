//! SQL for `registryd migrate`: every row of one repository read out of one database and written
//! into another (SQLite or PostgreSQL, either way), times included, so that the copy serves,
//! lists, pages and collects exactly as the original. Writing is idempotent: a repository
//! copied again (after an interruption) ends the same, with the source's tags.

use bytes::Bytes;
use sqlx::{Any, AnyConnection, AnyPool, Row};

use super::gc::ensure_blob;
use super::lock::{guard, Guard};
use super::{ensure_repo, Db, Dialect};
use crate::error::Error;

/// A manifest row.
#[derive(Debug, Clone)]
struct ManifestCopy {
    digest: String,
    media_type: String,
    size: i64,
    artifact_type: Option<String>,
    subject: Option<String>,
    annotations: Option<String>,
    pushed_at: i64,
    cached: i64,
    used_at: i64,
}

/// Every row of one repository.
#[derive(Debug, Clone, Default)]
pub struct RepoRows {
    /// Blob links: digest, size, linked_at.
    links: Vec<(String, i64, i64)>,
    manifests: Vec<ManifestCopy>,
    /// Manifest → target references.
    refs: Vec<(String, String)>,
    /// Tag → digest.
    tags: Vec<(String, String)>,
    /// Tags the pull-through cache fetched, with when each was last checked upstream.
    cached_tags: Vec<(String, i64)>,
}

impl RepoRows {
    /// The blobs the repository needs in the store (linked ones and its manifests' bytes),
    /// each once, with their sizes.
    #[must_use]
    pub fn blobs(&self) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self
            .links
            .iter()
            .map(|(d, size, _)| (d.clone(), *size))
            .chain(self.manifests.iter().map(|m| (m.digest.clone(), m.size)))
            .map(|(d, size)| (d, u64::try_from(size).unwrap_or(0)))
            .collect();
        all.sort();
        all.dedup_by(|a, b| a.0 == b.0);
        all
    }

    /// Manifests and tags, for the report.
    #[must_use]
    pub fn counts(&self) -> (usize, usize) {
        (self.manifests.len(), self.tags.len())
    }
}

impl Db {
    /// Every row of repository `name` (empty when there is none).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn repo_rows(&self, name: &str) -> Result<RepoRows, Error> {
        let Some(id) = self.repo_id(name).await? else {
            return Ok(RepoRows::default());
        };
        let r = &self.reader;
        let links = sqlx::query(
            "SELECT rb.digest, b.size, rb.linked_at FROM repo_blobs rb \
             JOIN blobs b ON b.digest = rb.digest WHERE rb.repo_id = $1",
        )
        .bind(id)
        .fetch_all(r)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect::<Result<_, sqlx::Error>>()?;
        let manifests = sqlx::query(
            "SELECT digest, media_type, size, artifact_type, subject, annotations, pushed_at, \
             cached, used_at FROM manifests WHERE repo_id = $1",
        )
        .bind(id)
        .fetch_all(r)
        .await?
        .iter()
        .map(|row| {
            Ok(ManifestCopy {
                digest: row.try_get(0)?,
                media_type: row.try_get(1)?,
                size: row.try_get(2)?,
                artifact_type: row.try_get(3)?,
                subject: row.try_get(4)?,
                annotations: row.try_get(5)?,
                pushed_at: row.try_get(6)?,
                cached: row.try_get(7)?,
                used_at: row.try_get(8)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
        Ok(RepoRows {
            links,
            manifests,
            refs: pairs(
                r,
                "SELECT manifest_digest, target_digest FROM manifest_refs WHERE repo_id = $1",
                id,
            )
            .await?,
            tags: pairs(r, "SELECT name, digest FROM tags WHERE repo_id = $1", id).await?,
            cached_tags: pairs(
                r,
                "SELECT name, checked_at FROM cached_tags WHERE repo_id = $1",
                id,
            )
            .await?,
        })
    }

    /// Records a blob whose bytes are in the store or `inline`, linked nowhere yet.
    ///
    /// # Errors
    /// `BlobCollected` when the bytes are not there; `Db` on failure.
    pub async fn record_blob(
        &self,
        digest: &str,
        size: u64,
        inline: Option<Bytes>,
    ) -> Result<(), Error> {
        let size = i64::try_from(size).map_err(|_| Error::SizeInvalid("blob too large".into()))?;
        let (digest, files) = (digest.to_owned(), self.store());
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Shared).await?;
                    ensure_blob(c, &files, &digest, size, inline.as_deref()).await
                })
            })
            .await
    }

    /// Writes `rows` as repository `name`, whose blobs are recorded already: rows there are
    /// kept, tags are set to the source's, all in one transaction.
    ///
    /// # Errors
    /// `Db` on failure (a blob not recorded breaks a foreign key).
    pub async fn restore_repo(&self, name: &str, rows: RepoRows) -> Result<(), Error> {
        let name = name.to_owned();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Shared).await?;
                    let id = ensure_repo(c, &name).await?;
                    insert(c, id, &rows).await?;
                    super::notify::changed(c, &name).await
                })
            })
            .await
    }
}

/// The two columns of `sql`'s rows for repository `id`.
async fn pairs<A, B>(r: &AnyPool, sql: &'static str, id: i64) -> Result<Vec<(A, B)>, Error>
where
    A: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
    B: for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    Ok(sqlx::query(sql)
        .bind(id)
        .fetch_all(r)
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?)
}

async fn insert(c: &mut AnyConnection, id: i64, rows: &RepoRows) -> Result<(), Error> {
    for (digest, _, linked_at) in &rows.links {
        sqlx::query(
            "INSERT INTO repo_blobs (repo_id, digest, linked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repo_id, digest) DO NOTHING",
        )
        .bind(id)
        .bind(digest)
        .bind(linked_at)
        .execute(&mut *c)
        .await?;
    }
    let sqlite = Dialect::of(c) == Dialect::Sqlite;
    for m in &rows.manifests {
        sqlx::query(
            "INSERT INTO manifests (repo_id, digest, media_type, size, artifact_type, subject, \
             annotations, pushed_at, cached, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10) ON CONFLICT (repo_id, digest) DO NOTHING",
        )
        .bind(id)
        .bind(&m.digest)
        .bind(&m.media_type)
        .bind(m.size)
        .bind(&m.artifact_type)
        .bind(&m.subject)
        .bind(&m.annotations)
        .bind(m.pushed_at)
        .bind(m.cached)
        .bind(m.used_at)
        .execute(&mut *c)
        .await?;
        if sqlite {
            // SQLite's insert trigger stamps the time of the insert.
            sqlx::query("UPDATE manifests SET pushed_at = $3 WHERE repo_id = $1 AND digest = $2")
                .bind(id)
                .bind(&m.digest)
                .bind(m.pushed_at)
                .execute(&mut *c)
                .await?;
        }
    }
    for (manifest, target) in &rows.refs {
        sqlx::query(
            "INSERT INTO manifest_refs (repo_id, manifest_digest, target_digest) \
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(manifest)
        .bind(target)
        .execute(&mut *c)
        .await?;
    }
    for (tag, digest) in &rows.tags {
        sqlx::query(
            "INSERT INTO tags (repo_id, name, digest) VALUES ($1, $2, $3) \
             ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest",
        )
        .bind(id)
        .bind(tag)
        .bind(digest)
        .execute(&mut *c)
        .await?;
    }
    for (tag, checked_at) in &rows.cached_tags {
        sqlx::query(
            "INSERT INTO cached_tags (repo_id, name, checked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repo_id, name) DO NOTHING",
        )
        .bind(id)
        .bind(tag)
        .bind(checked_at)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}
