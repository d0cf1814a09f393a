//! SQL for the paginated lists: tags of a repository and the catalog, in byte order on both
//! databases (PostgreSQL's name columns are `COLLATE "C"`).

use super::Db;
use crate::error::Error;

impl Db {
    /// Up to `n` tags of a repository after `last`, sorted; `None` when the repository is
    /// unknown.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn tags(&self, repo: &str, n: i64, last: &str) -> Result<Option<Vec<String>>, Error> {
        let Some(repo_id) = self.repo_id(repo).await? else {
            return Ok(None);
        };
        let tags = sqlx::query_scalar(
            "SELECT name FROM tags WHERE repo_id = $1 AND name > $2 ORDER BY name LIMIT $3",
        )
        .bind(repo_id)
        .bind(last)
        .bind(n)
        .fetch_all(&self.reader)
        .await?;
        Ok(Some(tags))
    }

    /// Up to `n` repository names after `last`, sorted; only repositories holding a manifest.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn catalog(&self, n: i64, last: &str) -> Result<Vec<String>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM repositories r WHERE name > $1 AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id) \
             ORDER BY name LIMIT $2",
        )
        .bind(last)
        .bind(n)
        .fetch_all(&self.reader)
        .await?)
    }
}
