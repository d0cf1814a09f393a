//! SQL for the pull-through cache: which tags came from an upstream and when each was last
//! checked there; how many bytes the cache holds, when cached images were last pulled, and the
//! eviction of the least recently pulled ones.

use sqlx::AnyConnection;

use super::lock::{guard, Guard};
use super::{notify, Db};
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
             WHERE r.name = $1 AND t.name = $2",
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
                        "UPDATE cached_tags SET checked_at = $1 WHERE name = $2 \
                         AND repo_id = (SELECT id FROM repositories WHERE name = $3)",
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

    /// Bytes of the blobs only cached repositories (under `prefixes`) link.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn cache_bytes(&self, prefixes: &[String]) -> Result<u64, Error> {
        // True when repository name `r.name` is under one of the prefixes bound as `$1`.
        let proxied = format!(
            "EXISTS (SELECT 1 FROM {} p \
             WHERE substr(r.name, 1, length(p.value) + 1) = p.value || '/')",
            self.dialect.json_values(1)
        );
        let bytes: i64 = sqlx::query_scalar(&format!(
            "SELECT CAST(coalesce(sum(b.size), 0) AS BIGINT) FROM blobs b \
             WHERE EXISTS (SELECT 1 FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id \
                           WHERE rb.digest = b.digest AND {proxied}) \
             AND NOT EXISTS (SELECT 1 FROM repo_blobs rb JOIN repositories r ON r.id = rb.repo_id \
                             WHERE rb.digest = b.digest AND NOT {proxied})"
        ))
        .bind(serde_json::json!(prefixes).to_string())
        .fetch_one(&self.reader)
        .await?;
        Ok(u64::try_from(bytes).unwrap_or(0))
    }

    /// Records when cached manifests were last pulled (`(repo, digest, ms)`).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn manifests_used(&self, uses: Vec<(String, String, i64)>) -> Result<(), Error> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    for (repo, digest, ms) in uses {
                        sqlx::query(
                            "UPDATE manifests SET used_at = $1 WHERE cached = 1 AND used_at < $1 \
                             AND digest = $2 AND repo_id = (SELECT id FROM repositories WHERE name = $3)",
                        )
                        .bind(ms)
                        .bind(&digest)
                        .bind(&repo)
                        .execute(&mut *c)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Deletes up to `limit` of the least recently pulled cached manifests (with their tags)
    /// that no pushed manifest references, and unlinks from their repositories the blobs only
    /// they referenced. Returns the evicted `(repo, digest)` and the digests unlinked, which
    /// the caller deletes when nothing else links them.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn evict_cached(
        &self,
        limit: i64,
    ) -> Result<(Vec<(String, String)>, Vec<String>), Error> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Exclusive).await?;
                    let victims: Vec<(i64, String, String)> = sqlx::query_as(
                        "SELECT m.repo_id, r.name, m.digest FROM manifests m \
                         JOIN repositories r ON r.id = m.repo_id WHERE m.cached = 1 \
                         AND NOT EXISTS (SELECT 1 FROM manifest_refs mr JOIN manifests p \
                             ON p.repo_id = mr.repo_id AND p.digest = mr.manifest_digest \
                             WHERE mr.repo_id = m.repo_id AND mr.target_digest = m.digest AND p.cached = 0) \
                         ORDER BY m.used_at LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(&mut *c)
                    .await?;
                    let mut evicted = vec![];
                    let mut unlinked = vec![];
                    for (repo_id, repo, digest) in victims {
                        unlinked.extend(evict_one(c, repo_id, &digest).await?);
                        notify::changed(c, &repo).await?;
                        evicted.push((repo, digest));
                    }
                    Ok((evicted, unlinked))
                })
            })
            .await
    }
}

/// Deletes one cached manifest and unlinks its own blob and the targets no other manifest of
/// the repository references; the digests unlinked.
async fn evict_one(
    c: &mut AnyConnection,
    repo_id: i64,
    digest: &str,
) -> Result<Vec<String>, Error> {
    let targets: Vec<String> = sqlx::query_scalar(
        "SELECT target_digest FROM manifest_refs WHERE repo_id = $1 AND manifest_digest = $2",
    )
    .bind(repo_id)
    .bind(digest)
    .fetch_all(&mut *c)
    .await?;
    sqlx::query("DELETE FROM manifests WHERE repo_id = $1 AND digest = $2")
        .bind(repo_id)
        .bind(digest)
        .execute(&mut *c)
        .await?;
    let mut unlinked = vec![];
    for d in targets.iter().map(String::as_str).chain([digest]) {
        let done = sqlx::query(
            "DELETE FROM repo_blobs WHERE repo_id = $1 AND digest = $2 \
             AND NOT EXISTS (SELECT 1 FROM manifest_refs WHERE repo_id = $1 AND target_digest = $2) \
             AND NOT EXISTS (SELECT 1 FROM manifests WHERE repo_id = $1 AND digest = $2)",
        )
        .bind(repo_id)
        .bind(d)
        .execute(&mut *c)
        .await?;
        if done.rows_affected() > 0 {
            unlinked.push(d.to_owned());
        }
    }
    Ok(unlinked)
}
