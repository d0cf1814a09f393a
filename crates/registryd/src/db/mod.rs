//! Registry metadata in SQLite: all SQL lives in this module and its children. WAL mode,
//! `foreign_keys` on, `synchronous=FULL`, one writer connection (group commit, see [`writer`])
//! and a pool of readers; migrations from the workspace's `migrations/` folder run at open. Each
//! write is all-or-nothing (its own savepoint in a committed batch), so a crash leaves the old
//! state or the new one.

mod blobs;
mod browse;
mod cache;
pub mod gc;
mod listing;
mod manifests;
mod uploads;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqliteConnection, SqlitePool};

use crate::error::Error;

pub use browse::{RepoSummary, TagRow};
pub use manifests::{ManifestRow, Origin, References, Referrer, Target};

/// The two pools over one database file.
#[derive(Debug, Clone)]
pub struct Db {
    /// The only connection that writes; SQLite allows one writer at a time anyway.
    writer: writer::Writer,
    /// Read-only connections for everything else.
    reader: SqlitePool,
    /// Where blob bytes live, checked when a blob row is created (see [`gc::ensure_blob`]).
    files: gc::Store,
}

impl Db {
    /// Opens (creating it if needed) and migrates the database at `file`, whose blob bytes
    /// live in `files`.
    ///
    /// # Errors
    /// `Db` or `Migrate` when the file cannot be opened or migrated.
    pub async fn open(file: &Path, files: gc::Store) -> Result<Self, Error> {
        let base = SqliteConnectOptions::from_str("sqlite://")?
            .filename(file)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        sqlx::migrate!("../../migrations").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await?;
        let writer = writer::Writer::spawn(writer.acquire().await?);
        Ok(Self {
            writer,
            reader,
            files,
        })
    }

    /// Waits until every write queued before this call is committed.
    ///
    /// # Errors
    /// `Internal` when that commit failed.
    pub async fn barrier(&self) -> Result<(), Error> {
        self.writer.write(|_| Box::pin(async { Ok(()) })).await
    }

    /// Runs one `DELETE` with text arguments, in order; whether it removed anything.
    async fn delete<const N: usize>(
        &self,
        sql: &'static str,
        args: [&str; N],
    ) -> Result<bool, Error> {
        let args = args.map(str::to_owned);
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let mut query = sqlx::query(sql);
                    for arg in args {
                        query = query.bind(arg);
                    }
                    Ok(query.execute(c).await?.rows_affected() > 0)
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
            sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?,
        )
    }
}

/// The id of a repository, created on first use.
async fn ensure_repo(conn: &mut SqliteConnection, name: &str) -> Result<i64, Error> {
    let found = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(id) = found {
        return Ok(id);
    }
    Ok(
        sqlx::query_scalar("INSERT INTO repositories (name) VALUES (?) RETURNING id")
            .bind(name)
            .fetch_one(conn)
            .await?,
    )
}
