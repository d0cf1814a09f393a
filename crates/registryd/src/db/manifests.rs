//! SQL for manifests, their references, tags and referrers.

use bytes::Bytes;
use sqlx::{AnyConnection, Row};

use super::blobs::link;
use super::gc::{ensure_blob, Store};
use super::lock::{guard, Guard};
use super::{ensure_repo, notify, Db};
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

/// What a manifest points at, checked to exist in the repository, with the size its
/// descriptor gives, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// Config and layers: blobs the repository must link.
    pub blobs: Vec<Target>,
    /// Children of an index: manifests the repository must hold.
    pub manifests: Vec<Target>,
}

/// One descriptor of a manifest: the digest it names and the size it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `sha256:…`
    pub digest: String,
    /// The descriptor's `size`, which must be the stored content's.
    pub size: u64,
}

/// One entry of a referrers answer.
pub type Referrer = ManifestRow;

/// Where a manifest being stored comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client pushed it: every reference must be in the repository already.
    Pushed,
    /// The pull-through cache fetched it from an upstream at this time (unix milliseconds):
    /// its blobs are fetched when pulled, and its tag is recorded as cached.
    Cached { checked_at: i64 },
}

fn to_i64(n: u64) -> Result<i64, Error> {
    i64::try_from(n).map_err(|_| Error::SizeInvalid("size out of range".into()))
}

impl Db {
    /// Stores a manifest whose bytes are already in the blob store, or are `inline` (small
    /// ones, then written in the same transaction): checks every reference
    /// exists in the repository (pushed manifests only), records the blob, the manifest, its
    /// references and the tag, all or nothing. A manifest the repository already holds was
    /// checked when it was stored: only the tag is written. A pushed tag stops being cached; a
    /// cached one records when it was checked upstream.
    ///
    /// # Errors
    /// `ManifestBlobUnknown` naming the first missing reference; `BlobCollected` when the
    /// manifest's own bytes were collected meanwhile; `Db` on failure.
    pub async fn put_manifest(
        &self,
        repo: &str,
        m: &ManifestRow,
        refs: &References,
        tag: Option<&str>,
        origin: Origin,
        inline: Option<Bytes>,
    ) -> Result<(), Error> {
        let (repo, m, refs, tag) = (
            repo.to_owned(),
            m.clone(),
            refs.clone(),
            tag.map(str::to_owned),
        );
        let size = to_i64(m.size)?;
        let files = self.store();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    guard(c, Guard::Shared).await?;
                    notify::changed(c, &repo).await?;
                    if let Some(tag) = &tag {
                        if retag(c, &repo, tag, &m.digest).await? {
                            return mark_tag(c, &repo, tag, origin).await;
                        }
                    }
                    let (repo_id, stored) = manifest_state(c, &repo, &m.digest).await?;
                    if !stored {
                        if origin == Origin::Pushed {
                            check_references(c, repo_id, &refs).await?;
                        }
                        insert_manifest(c, &files, repo_id, &m, size, &refs, inline.as_deref())
                            .await?;
                        if let Origin::Cached { checked_at } = origin {
                            sqlx::query("UPDATE manifests SET cached = 1, used_at = $1 WHERE repo_id = $2 AND digest = $3")
                                .bind(checked_at)
                                .bind(repo_id)
                                .bind(&m.digest)
                                .execute(&mut *c)
                                .await?;
                        }
                    }
                    if let Some(tag) = tag {
                        sqlx::query("INSERT INTO tags (repo_id, name, digest) VALUES ($1, $2, $3) ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest")
                            .bind(repo_id)
                            .bind(&tag)
                            .bind(&m.digest)
                            .execute(&mut *c)
                            .await?;
                        mark_tag(c, &repo, &tag, origin).await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Checks, before any byte of the manifest is written, what [`Db::put_manifest`] checks
    /// again in its transaction: every reference exists in the repository with the size its
    /// descriptor gives (nothing to check when the repository already holds the manifest).
    ///
    /// # Errors
    /// As [`Db::put_manifest`].
    pub async fn check_manifest(
        &self,
        repo: &str,
        digest: &str,
        refs: &References,
    ) -> Result<(), Error> {
        let mut c = self.reader.acquire().await?;
        match find_manifest(&mut c, repo, digest).await? {
            Some((_, true)) => Ok(()),
            // A repository not created yet holds nothing: -1 is no repository's id.
            Some((repo_id, false)) => check_references(&mut c, repo_id, refs).await,
            None => check_references(&mut c, -1, refs).await,
        }
    }

    /// Media type and size of a manifest in a repository.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn manifest(&self, repo: &str, digest: &str) -> Result<Option<(String, u64)>, Error> {
        let row = sqlx::query(
            "SELECT m.media_type, m.size FROM manifests m JOIN repositories r ON r.id = m.repo_id WHERE r.name = $1 AND m.digest = $2",
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

    /// Digest, media type and size of the manifest a tag points at.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn manifest_by_tag(
        &self,
        repo: &str,
        tag: &str,
    ) -> Result<Option<(String, String, u64)>, Error> {
        let row = sqlx::query(
            "SELECT m.digest, m.media_type, m.size FROM tags t JOIN repositories r ON r.id = t.repo_id \
             JOIN manifests m ON m.repo_id = t.repo_id AND m.digest = t.digest WHERE r.name = $1 AND t.name = $2",
        )
        .bind(repo)
        .bind(tag)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| {
            (
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                u64::try_from(r.get::<i64, _>(2)).unwrap_or(0),
            )
        }))
    }

    /// Deletes a manifest, its tags and references; false when it was not there.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<bool, Error> {
        let (repo, digest) = (repo.to_owned(), digest.to_owned());
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let sub = "(SELECT id FROM repositories WHERE name = $2)";
                    let done = sqlx::query(&format!(
                        "DELETE FROM manifests WHERE digest = $1 AND repo_id = {sub}"
                    ))
                    .bind(&digest)
                    .bind(&repo)
                    .execute(&mut *c)
                    .await?;
                    sqlx::query(&format!(
                        "DELETE FROM repo_blobs WHERE digest = $1 AND repo_id = {sub}"
                    ))
                    .bind(&digest)
                    .bind(&repo)
                    .execute(&mut *c)
                    .await?;
                    let deleted = done.rows_affected() > 0;
                    if deleted {
                        notify::changed(c, &repo).await?;
                    }
                    Ok(deleted)
                })
            })
            .await
    }

    /// Deletes one tag, leaving the manifest; false when there was no such tag.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<bool, Error> {
        self.delete(
            "DELETE FROM tags WHERE name = $1 AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
            [tag, repo],
            Some(repo),
        )
        .await
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
             JOIN repositories r ON r.id = m.repo_id WHERE r.name = $1 AND m.subject = $2 \
             AND ($3 IS NULL OR m.artifact_type = $3) ORDER BY m.digest",
        )
        .bind(repo)
        .bind(digest)
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

/// Records a tag just written as cached (checked upstream now) or pushed (never revalidated).
async fn mark_tag(
    c: &mut AnyConnection,
    repo: &str,
    tag: &str,
    origin: Origin,
) -> Result<(), Error> {
    match origin {
        Origin::Pushed => {
            sqlx::query(
                "DELETE FROM cached_tags WHERE name = $1 \
                 AND repo_id = (SELECT id FROM repositories WHERE name = $2)",
            )
            .bind(tag)
            .bind(repo)
            .execute(c)
            .await?;
        }
        Origin::Cached { checked_at } => {
            sqlx::query(
                "INSERT INTO cached_tags (repo_id, name, checked_at) \
                 SELECT id, $1, $2 FROM repositories WHERE name = $3 \
                 ON CONFLICT (repo_id, name) DO UPDATE SET checked_at = excluded.checked_at",
            )
            .bind(tag)
            .bind(checked_at)
            .bind(repo)
            .execute(c)
            .await?;
        }
    }
    Ok(())
}

/// Points `tag` at `digest` when the repository already holds that manifest (one statement, the
/// common case of a re-push or re-tag); `false` when it does not, and nothing changed.
async fn retag(c: &mut AnyConnection, repo: &str, tag: &str, digest: &str) -> Result<bool, Error> {
    let done = sqlx::query(
        "INSERT INTO tags (repo_id, name, digest) SELECT r.id, $1, $2 FROM repositories r \
         WHERE r.name = $3 AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id AND m.digest = $2) \
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest",
    )
    .bind(tag)
    .bind(digest)
    .bind(repo)
    .execute(c)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The repository's id and whether it holds manifest `digest`, in one query; `None` when there
/// is no such repository.
async fn find_manifest(
    c: &mut AnyConnection,
    repo: &str,
    digest: &str,
) -> Result<Option<(i64, bool)>, Error> {
    // An integer, not a boolean: SQLite has none.
    let found: Option<(i64, i64)> = sqlx::query_as(
        "SELECT r.id, CASE WHEN EXISTS (SELECT 1 FROM manifests m WHERE m.repo_id = r.id AND m.digest = $1) \
         THEN 1 ELSE 0 END FROM repositories r WHERE r.name = $2",
    )
    .bind(digest)
    .bind(repo)
    .fetch_optional(&mut *c)
    .await?;
    Ok(found.map(|(id, stored)| (id, stored != 0)))
}

/// The repository's id (created on first use) and whether it already holds manifest `digest`:
/// one query for the common case.
async fn manifest_state(
    c: &mut AnyConnection,
    repo: &str,
    digest: &str,
) -> Result<(i64, bool), Error> {
    match find_manifest(c, repo, digest).await? {
        Some(state) => Ok(state),
        None => Ok((ensure_repo(c, repo).await?, false)),
    }
}

/// `ManifestBlobUnknown` naming the first reference the repository does not hold;
/// `ManifestInvalid` for one whose descriptor gives another size than the stored content's.
async fn check_references(
    c: &mut AnyConnection,
    repo_id: i64,
    refs: &References,
) -> Result<(), Error> {
    let checks = [
        (
            "SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest \
             WHERE rb.repo_id = $1 AND rb.digest = $2",
            &refs.blobs,
        ),
        (
            "SELECT size FROM manifests WHERE repo_id = $1 AND digest = $2",
            &refs.manifests,
        ),
    ];
    for (sql, targets) in checks {
        for t in targets {
            let stored: Option<i64> = sqlx::query_scalar(sql)
                .bind(repo_id)
                .bind(&t.digest)
                .fetch_optional(&mut *c)
                .await?;
            let stored = stored.ok_or_else(|| Error::ManifestBlobUnknown(t.digest.clone()))?;
            if u64::try_from(stored).ok() != Some(t.size) {
                return Err(Error::ManifestInvalid(format!(
                    "descriptor {} gives size {}, the content is {stored} bytes",
                    t.digest, t.size
                )));
            }
        }
    }
    Ok(())
}

/// The manifest's blob row, its link, its row and its references.
async fn insert_manifest(
    c: &mut AnyConnection,
    files: &Store,
    repo_id: i64,
    m: &ManifestRow,
    size: i64,
    refs: &References,
    inline: Option<&[u8]>,
) -> Result<(), Error> {
    ensure_blob(c, files, &m.digest, size, inline).await?;
    link(c, repo_id, &m.digest).await?;
    sqlx::query(
        "INSERT INTO manifests (repo_id, digest, media_type, size, artifact_type, subject, annotations) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (repo_id, digest) DO NOTHING",
    )
    .bind(repo_id)
    .bind(&m.digest)
    .bind(&m.media_type)
    .bind(size)
    .bind(&m.artifact_type)
    .bind(&m.subject)
    .bind(&m.annotations)
    .execute(&mut *c)
    .await?;
    for target in refs.blobs.iter().chain(&refs.manifests) {
        sqlx::query("INSERT INTO manifest_refs (repo_id, manifest_digest, target_digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(repo_id)
            .bind(&m.digest)
            .bind(&target.digest)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}
