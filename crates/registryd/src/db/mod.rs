//! Registry metadata in SQLite (one machine) or PostgreSQL (replicas sharing one database): all
//! SQL lives in this module and its children, written once for both through sqlx's `Any` driver,
//! with the few per-dialect snippets in [`dialect`]. SQLite runs in WAL mode with `foreign_keys`
//! on, `synchronous=FULL`, one writer connection (group commit, see [`writer`]) and a pool of
//! readers; PostgreSQL runs each write as its own transaction on a pool connection (see
//! [`writes`]). Migrations from the workspace's `migrations/<dialect>/` folder run at open. Each
//! write is all-or-nothing, so a crash leaves the old state or the new one.

mod blobs;
mod browse;
mod cache;
mod connect;
mod copy;
pub mod dialect;
pub mod gc;
mod listing;
mod lock;
mod manifests;
mod notify;
mod uploads;
mod writer;
mod writes;

use sqlx::{AnyConnection, AnyPool};

use crate::error::Error;

pub use browse::{RepoSummary, TagRow};
pub use connect::Backend;
pub use copy::RepoRows;
pub use dialect::Dialect;
pub use lock::JobLock;
pub use manifests::{ManifestRow, Origin, References, Referrer, Target};
pub use notify::Invalidation;

/// The pools over one database.
#[derive(Debug, Clone)]
pub struct Db {
    /// Where writes go: the group-committing writer (SQLite) or the pool (PostgreSQL).
    writer: writes::Writes,
    /// Connections for everything else (read-only on SQLite).
    reader: AnyPool,
    /// Which database runs, for the few statements the dialects word differently.
    dialect: Dialect,
    /// Where blob bytes live, checked when a blob row is created (see [`gc::ensure_blob`]).
    files: gc::Store,
    /// PostgreSQL only: where [`Db::invalidations`] listens for other replicas' writes.
    listen: Option<sqlx::PgPool>,
}

impl Db {
    /// Opens (creating it if needed) and migrates the database `backend` names, whose blob
    /// bytes live in `files`.
    ///
    /// # Errors
    /// `Db` or `Migrate` when the database cannot be opened or migrated; `Unavailable` naming
    /// the server when PostgreSQL cannot be reached.
    pub async fn open(backend: &Backend, files: gc::Store) -> Result<Self, Error> {
        let opened = connect::open(backend).await?;
        Ok(Self {
            writer: opened.writer,
            reader: opened.reader,
            dialect: backend.dialect(),
            files,
            listen: opened.listen,
        })
    }

    /// Which database runs.
    #[must_use]
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Waits until every write queued before this call is committed.
    ///
    /// # Errors
    /// `Internal` when that commit failed.
    pub async fn barrier(&self) -> Result<(), Error> {
        self.writer.write(|_| Box::pin(async { Ok(()) })).await
    }

    /// Runs one `DELETE` with text arguments, in order; whether it removed anything. When it
    /// did and `notify` names a repository, the other replicas learn it changed.
    async fn delete<const N: usize>(
        &self,
        sql: &'static str,
        args: [&str; N],
        notify: Option<&str>,
    ) -> Result<bool, Error> {
        let args = args.map(str::to_owned);
        let notify = notify.map(str::to_owned);
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let mut query = sqlx::query(sql);
                    for arg in args {
                        query = query.bind(arg);
                    }
                    let deleted = query.execute(&mut *c).await?.rows_affected() > 0;
                    if let (true, Some(repo)) = (deleted, notify) {
                        notify::changed(c, &repo).await?;
                    }
                    Ok(deleted)
                })
            })
            .await
    }

    /// The id of a repository, `None` when nothing was ever pushed to it.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn repo_id(&self, name: &str) -> Result<Option<i64>, Error> {
        Ok(
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?,
        )
    }
}

/// The id of a repository, created on first use (by this write or a concurrent one: on
/// PostgreSQL another replica may create it meanwhile).
async fn ensure_repo(conn: &mut AnyConnection, name: &str) -> Result<i64, Error> {
    const FIND: &str = "SELECT id FROM repositories WHERE name = $1";
    if let Some(id) = sqlx::query_scalar(FIND)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(id);
    }
    let created = sqlx::query_scalar(
        "INSERT INTO repositories (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    match created {
        Some(id) => Ok(id),
        None => Ok(sqlx::query_scalar(FIND).bind(name).fetch_one(conn).await?),
    }
}
