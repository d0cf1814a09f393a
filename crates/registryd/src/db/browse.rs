//! Read-only SQL for the web pages: repositories with their tag counts and last push, and tags
//! with the manifest each names; one text for both databases.

use sqlx::Row;

use super::Db;
use crate::error::Error;

/// A repository as the repositories page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSummary {
    pub name: String,
    /// Tags it holds.
    pub tags: u64,
    /// When its newest manifest was stored (unix milliseconds).
    pub last_push: i64,
}

/// A tag and the manifest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub tag: String,
    /// `sha256:…` of the manifest.
    pub digest: String,
    pub media_type: String,
    /// Length of the manifest's bytes.
    pub size: u64,
    /// When the manifest was stored (unix milliseconds).
    pub pushed_at: i64,
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Db {
    /// Up to `n` repositories holding a manifest, sorted, named from `from` (inclusive) up to
    /// `to` (exclusive) and after `last`.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn repo_summaries(
        &self,
        from: &str,
        to: &str,
        last: &str,
        n: i64,
    ) -> Result<Vec<RepoSummary>, Error> {
        let rows = sqlx::query(
            "SELECT r.name, (SELECT COUNT(*) FROM tags t WHERE t.repo_id = r.id), \
             (SELECT MAX(m.pushed_at) FROM manifests m WHERE m.repo_id = r.id) \
             FROM repositories r WHERE r.name >= $1 AND r.name < $2 AND r.name > $3 \
             AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id) ORDER BY r.name LIMIT $4",
        )
        .bind(from)
        .bind(to)
        .bind(last)
        .bind(n)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RepoSummary {
                name: r.get(0),
                tags: to_u64(r.get(1)),
                last_push: r.get::<Option<i64>, _>(2).unwrap_or(0),
            })
            .collect())
    }

    /// Up to `n` tags of a repository after `last`, sorted, with their manifests; `None` when
    /// the repository is unknown.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn tag_rows(
        &self,
        repo: &str,
        last: &str,
        n: i64,
    ) -> Result<Option<Vec<TagRow>>, Error> {
        let Some(repo_id) = self.repo_id(repo).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT t.name, t.digest, m.media_type, m.size, m.pushed_at FROM tags t \
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest \
             WHERE t.repo_id = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last)
        .bind(n)
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(
            rows.into_iter()
                .map(|r| TagRow {
                    tag: r.get(0),
                    digest: r.get(1),
                    media_type: r.get(2),
                    size: to_u64(r.get(3)),
                    pushed_at: r.get(4),
                })
                .collect(),
        ))
    }

    /// How many tags a repository holds.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn tag_count(&self, repo: &str) -> Result<u64, Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM tags WHERE repo_id = (SELECT id FROM repositories WHERE name = $1)",
        )
        .bind(repo)
        .fetch_one(&self.reader)
        .await?;
        Ok(to_u64(n))
    }

    /// When a manifest of a repository was stored (unix milliseconds).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn manifest_pushed_at(&self, repo: &str, digest: &str) -> Result<Option<i64>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT m.pushed_at FROM manifests m JOIN repositories r ON r.id = m.repo_id \
             WHERE r.name = $1 AND m.digest = $2",
        )
        .bind(repo)
        .bind(digest)
        .fetch_optional(&self.reader)
        .await?)
    }
}
