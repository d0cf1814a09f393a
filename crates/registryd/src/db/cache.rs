//! SQL for the pull-through cache: which tags came from an upstream and when each was last
//! checked there.

use super::Db;
use crate::error::Error;

impl Db {
    /// For a tag of `repo`: `None` when there is no such tag, `Some(None)` when it was pushed
    /// here, `Some(Some(ms))` when it is cached and was checked upstream at `ms`.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn tag_checked_at(
        &self,
        repo: &str,
        tag: &str,
    ) -> Result<Option<Option<i64>>, Error> {
        let row: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT ct.checked_at FROM tags t JOIN repositories r ON r.id = t.repo_id \
             LEFT JOIN cached_tags ct ON ct.repo_id = t.repo_id AND ct.name = t.name \
             WHERE r.name = ? AND t.name = ?",
        )
        .bind(repo)
        .bind(tag)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|(at,)| at))
    }

    /// Records that a cached tag was found unchanged upstream at `ms`.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn tag_checked(&self, repo: &str, tag: &str, ms: i64) -> Result<(), Error> {
        let (repo, tag) = (repo.to_owned(), tag.to_owned());
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE cached_tags SET checked_at = ? WHERE name = ? \
                         AND repo_id = (SELECT id FROM repositories WHERE name = ?)",
                    )
                    .bind(ms)
                    .bind(&tag)
                    .bind(&repo)
                    .execute(c)
                    .await?;
                    Ok(())
                })
            })
            .await
    }
}
