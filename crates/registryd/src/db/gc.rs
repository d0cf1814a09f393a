//! SQL of garbage collection, and the one rule every writer that records a blob obeys: a blob
//! row is created only when its bytes are in the store, checked inside the write transaction
//! ([`ensure_blob`]). The protocol these pieces make is described in `service/gc.rs`.

use std::sync::Arc;

use sqlx::AnyConnection;

use super::lock::{guard, Guard};
use super::{notify, Db};
use crate::error::Error;

/// What the database asks of the blob store, inside a write transaction: the checks and moves
/// that must be atomic with a row change, because SQLite's write lock (held by one
/// transaction at a time, across processes) is what orders them against other writers — on
/// PostgreSQL, the collection lock of [`super::lock`].
pub trait BlobFiles: Send + Sync + 'static {
    /// Whether the bytes of `digest` are in the store.
    fn present(&self, digest: &str) -> bool;
    /// Moves the bytes of `digest` to the trash; their size, `None` when there were none.
    ///
    /// # Errors
    /// On disk failure.
    fn trash(&self, digest: &str) -> std::io::Result<Option<u64>>;
    /// Moves trashed bytes back into the store (their row outlived the transaction that
    /// trashed them).
    ///
    /// # Errors
    /// On disk failure.
    fn restore(&self, digest: &str) -> std::io::Result<()>;
}

/// The blob store as the database sees it.
#[derive(Clone)]
pub struct Store(pub Arc<dyn BlobFiles>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// A store that holds no bytes, for tests of the database alone.
#[cfg(test)]
impl Store {
    pub fn empty() -> Self {
        struct Empty;
        impl BlobFiles for Empty {
            fn present(&self, _: &str) -> bool {
                false
            }
            fn trash(&self, _: &str) -> std::io::Result<Option<u64>> {
                Ok(None)
            }
            fn restore(&self, _: &str) -> std::io::Result<()> {
                Ok(())
            }
        }
        Self(Arc::new(Empty))
    }
}

/// What one repository's sweep removed.
#[derive(Debug, Default, Clone)]
pub struct RepoSweep {
    /// Digests of the manifests deleted.
    pub manifests: Vec<String>,
    /// Blob links removed.
    pub links: u64,
}

/// A blob is referenced while some repository links it or holds it as a manifest.
const UNREFERENCED: &str = "NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE rb.digest = b.digest) \
     AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.digest = b.digest)";

/// Records blob `digest` of `size` bytes unless it is recorded already. With `inline`, its bytes
/// go into `blob_bytes` in this same transaction (small blobs); otherwise once they are seen in
/// the store or inline already. Checked even when the row exists: a collection killed before its
/// commit leaves a row whose bytes are in the trash until the next settling.
///
/// # Errors
/// `BlobCollected` when its bytes are not in the store (garbage collection took them after
/// the caller placed them): the caller places them again.
pub(super) async fn ensure_blob(
    c: &mut AnyConnection,
    files: &Store,
    digest: &str,
    size: i64,
    inline: Option<&[u8]>,
) -> Result<(), Error> {
    if let Some(bytes) = inline {
        insert_blob_row(c, digest, size).await?;
        sqlx::query(
            "INSERT INTO blob_bytes (digest, bytes) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(bytes.to_vec())
        .execute(c)
        .await?;
        return Ok(());
    }
    if !files.0.present(digest) && !stored_inline(c, digest).await? {
        return Err(Error::BlobCollected(digest.to_owned()));
    }
    if recorded(c, digest).await? {
        return Ok(());
    }
    insert_blob_row(c, digest, size).await
}

async fn insert_blob_row(c: &mut AnyConnection, digest: &str, size: i64) -> Result<(), Error> {
    sqlx::query("INSERT INTO blobs (digest, size) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING")
        .bind(digest)
        .bind(size)
        .execute(c)
        .await?;
    Ok(())
}

/// Whether blob `digest` has its bytes inline.
async fn stored_inline(c: &mut AnyConnection, digest: &str) -> Result<bool, Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blob_bytes WHERE digest = $1")
        .bind(digest)
        .fetch_optional(c)
        .await?;
    Ok(found.is_some())
}

/// Deletes the manifests of repository `repo_id` that are no longer live and the links nothing
/// live references, both only when made before `cutoff` (unix milliseconds). Live: tagged manifests,
/// untagged ones unless `delete_untagged` (but not referrers: they live through their subject),
/// anything younger than the cutoff, and everything those reach through index children,
/// config/layer references and referrers.
async fn sweep(
    c: &mut AnyConnection,
    repo_id: i64,
    cutoff: i64,
    delete_untagged: bool,
) -> Result<RepoSweep, Error> {
    // The recursive part names `live` once (PostgreSQL's rule): one join with every edge, a
    // reference (manifest → target) or a referrer (subject → manifest).
    let manifests: Vec<String> = sqlx::query_scalar(
        "WITH RECURSIVE live(digest) AS ( \
           SELECT m.digest FROM manifests m WHERE m.repo_id = $1 AND (m.pushed_at >= $2 \
             OR ($3 = 0 AND m.subject IS NULL) \
             OR EXISTS (SELECT 1 FROM tags t WHERE t.repo_id = $1 AND t.digest = m.digest)) \
           UNION SELECT e.digest FROM live l JOIN ( \
               SELECT r.manifest_digest AS src, r.target_digest AS digest FROM manifest_refs r \
                 WHERE r.repo_id = $1 \
               UNION ALL SELECT m.subject, m.digest FROM manifests m \
                 WHERE m.repo_id = $1 AND m.subject IS NOT NULL) e ON e.src = l.digest) \
         DELETE FROM manifests WHERE repo_id = $1 AND digest NOT IN (SELECT digest FROM live) \
         RETURNING digest",
    )
    .bind(repo_id)
    .bind(cutoff)
    .bind(i64::from(delete_untagged))
    .fetch_all(&mut *c)
    .await?;
    let links = sqlx::query(
        "DELETE FROM repo_blobs WHERE repo_id = $1 AND linked_at < $2 \
         AND NOT EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = $1 AND m.digest = repo_blobs.digest) \
         AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.repo_id = $1 AND r.target_digest = repo_blobs.digest)",
    )
    .bind(repo_id)
    .bind(cutoff)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if !manifests.is_empty() {
        let repo: String = sqlx::query_scalar("SELECT name FROM repositories WHERE id = $1")
            .bind(repo_id)
            .fetch_one(&mut *c)
            .await?;
        notify::changed(c, &repo).await?;
    }
    Ok(RepoSweep { manifests, links })
}

impl Db {
    /// The store this database checks blob bytes in.
    pub(super) fn store(&self) -> Store {
        self.files.clone()
    }

    /// Every repository, by id and name.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn repositories(&self) -> Result<Vec<(i64, String)>, Error> {
        Ok(
            sqlx::query_as("SELECT id, name FROM repositories ORDER BY id")
                .fetch_all(&self.reader)
                .await?,
        )
    }

    /// Sweeps one repository in one short transaction (see [`sweep`]).
    ///
    /// # Errors
    /// `Db` on failure; nothing changed then.
    pub async fn sweep_repository(
        &self,
        repo_id: i64,
        cutoff: i64,
        delete_untagged: bool,
    ) -> Result<RepoSweep, Error> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Exclusive).await?;
                    sweep(c, repo_id, cutoff, delete_untagged).await
                })
            })
            .await
    }

    /// What a collection would remove, computed by sweeping every repository in a transaction
    /// that is rolled back: the sweeps, and the blobs (count, bytes) left unreferenced.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn dry_sweep(
        &self,
        cutoff: i64,
        delete_untagged: bool,
    ) -> Result<(Vec<RepoSweep>, u64, u64), Error> {
        let repos = self.repositories().await?;
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Exclusive).await?;
                    sqlx::query("SAVEPOINT dry").execute(&mut *c).await?;
                    let mut sweeps = vec![];
                    for (id, _) in repos {
                        sweeps.push(sweep(c, id, cutoff, delete_untagged).await?);
                    }
                    let (blobs, bytes): (i64, i64) = sqlx::query_as(&format!(
                        "SELECT count(*), CAST(coalesce(sum(size), 0) AS BIGINT) FROM blobs b WHERE {UNREFERENCED}"
                    ))
                    .fetch_one(&mut *c)
                    .await?;
                    for undo in ["ROLLBACK TO dry", "RELEASE dry"] {
                        sqlx::query(undo).execute(&mut *c).await?;
                    }
                    let count = |n: i64| u64::try_from(n).unwrap_or(0);
                    Ok((sweeps, count(blobs), count(bytes)))
                })
            })
            .await
    }

    /// Up to `limit` blobs after `after` (digest order) that nothing references.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn unreferenced_blobs(&self, after: &str, limit: i64) -> Result<Vec<String>, Error> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT digest FROM blobs b WHERE digest > $1 AND {UNREFERENCED} ORDER BY digest LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?)
    }

    /// In one transaction, for each of `digests` still unreferenced: deletes its row and moves
    /// its bytes to the trash. Returns the digests and sizes removed; the caller empties the
    /// trash once this is committed.
    ///
    /// # Errors
    /// `Db`/`Io` on failure: the transaction is undone, and the caller settles the trash.
    pub async fn delete_blobs(&self, digests: Vec<String>) -> Result<Vec<(String, u64)>, Error> {
        let files = self.store();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Exclusive).await?;
                    let mut removed = vec![];
                    for d in digests {
                        let size: Option<i64> = sqlx::query_scalar(&format!(
                            "DELETE FROM blobs AS b WHERE digest = $1 AND {UNREFERENCED} RETURNING size"
                        ))
                        .bind(&d)
                        .fetch_optional(&mut *c)
                        .await?;
                        if let Some(size) = size {
                            let on_disk = files.0.trash(&d)?;
                            let size = on_disk.unwrap_or(u64::try_from(size).unwrap_or(0));
                            removed.push((d, size));
                        }
                    }
                    Ok(removed)
                })
            })
            .await
    }

    /// In one transaction, moves to the trash the bytes of each of `digests` that has no row.
    /// Returns those moved, with their sizes.
    ///
    /// # Errors
    /// `Db`/`Io` on failure: the transaction is undone, and the caller settles the trash.
    pub async fn trash_rowless(&self, digests: Vec<String>) -> Result<Vec<(String, u64)>, Error> {
        let files = self.store();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Exclusive).await?;
                    let mut trashed = vec![];
                    for d in digests {
                        if !recorded(c, &d).await? {
                            if let Some(size) = files.0.trash(&d)? {
                                trashed.push((d, size));
                            }
                        }
                    }
                    Ok(trashed)
                })
            })
            .await
    }

    /// In one transaction, puts back the trashed bytes whose row exists (a transaction that
    /// trashed them did not commit); returns the others, which the caller deletes.
    ///
    /// # Errors
    /// `Db`/`Io` on failure.
    pub async fn settle_trash(&self, digests: Vec<String>) -> Result<Vec<String>, Error> {
        let files = self.store();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Exclusive).await?;
                    let mut dead = vec![];
                    for d in digests {
                        if recorded(c, &d).await? {
                            files.0.restore(&d)?;
                        } else {
                            dead.push(d);
                        }
                    }
                    Ok(dead)
                })
            })
            .await
    }
}

/// Whether blob `digest` has a row.
async fn recorded(c: &mut AnyConnection, digest: &str) -> Result<bool, Error> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blobs WHERE digest = $1")
        .bind(digest)
        .fetch_optional(c)
        .await?;
    Ok(found.is_some())
}
