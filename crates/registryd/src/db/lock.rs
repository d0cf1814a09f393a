//! Locks that order writers on PostgreSQL as SQLite's one write lock orders them on one machine.
//!
//! - [`JobLock`]: garbage collection and upload purging run on one replica at a time (a session
//!   advisory lock, held while the job runs; a replica that cannot take it skips its turn).
//! - [`guard`]: a write that records references to blobs (a push) takes a shared transaction
//!   lock, a collection step that removes rows or bytes an exclusive one. So a sweep never runs
//!   between a push checking a blob and committing its reference, and a blob's bytes never move
//!   to the trash between a push seeing them and recording its row: the guarantees
//!   `service/gc` builds on. Pushes do not wait for each other.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};

use super::{Db, Dialect};
use crate::error::Error;

/// The advisory lock key of [`guard`] (any constant; "berth" in ASCII).
const GC_KEY: i64 = 0x0062_6572_7468;

/// Held while a job that must run on one replica at a time runs; released when dropped (its
/// connection is closed).
#[derive(Debug)]
pub struct JobLock {
    _held: Option<PoolConnection<Any>>,
}

/// How a write takes [`guard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Guard {
    /// A push: alongside other pushes.
    Shared,
    /// A collection step: alone.
    Exclusive,
}

/// Takes the collection lock for the rest of this write's transaction (PostgreSQL; SQLite's
/// writer is alone anyway). The first statement of the write, so it waits holding nothing.
pub(super) async fn guard(c: &mut AnyConnection, mode: Guard) -> Result<(), Error> {
    if Dialect::of(c) == Dialect::Postgres {
        // The lock functions return `void`, which no driver decodes: called in a subquery.
        let sql = match mode {
            Guard::Shared => "SELECT 1 FROM (SELECT pg_advisory_xact_lock_shared($1)) AS l",
            Guard::Exclusive => "SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS l",
        };
        sqlx::query(sql).bind(GC_KEY).execute(c).await?;
    }
    Ok(())
}

impl Db {
    /// Takes the lock of `job` (e.g. `gc`) if no other replica holds it; `None` when one does.
    /// On SQLite, one machine: always granted.
    ///
    /// # Errors
    /// `Db`/`Unavailable` when the database cannot be asked.
    pub async fn try_lock_job(&self, job: &str) -> Result<Option<JobLock>, Error> {
        if self.dialect == Dialect::Sqlite {
            return Ok(Some(JobLock { _held: None }));
        }
        let mut conn = self.reader.acquire().await?;
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(format!("berth:{job}"))
            .fetch_one(&mut *conn)
            .await?;
        if !taken {
            return Ok(None);
        }
        // A session lock: closing the connection is what releases it.
        conn.close_on_drop();
        Ok(Some(JobLock { _held: Some(conn) }))
    }
}
