//! Where a write runs: in SQLite's group commit ([`super::writer`]), or on PostgreSQL in a
//! transaction of its own on a pool connection (the server orders concurrent transactions; a
//! batch would make one client's failure everyone's). Either way a write is all-or-nothing and
//! acknowledged only once committed.

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, AnyPool};

use super::writer::Writer;
use crate::error::Error;

/// See the module documentation.
#[derive(Debug, Clone)]
pub enum Writes {
    /// SQLite: the one writer connection's queue.
    Grouped(Writer),
    /// PostgreSQL: the pool.
    Pooled(AnyPool),
}

impl Writes {
    /// Runs `write` and returns its result once it is committed.
    ///
    /// # Errors
    /// The write's own error (its statements are then undone); `Internal` or `Db` when the
    /// commit failed; `Db(PoolTimedOut)` (429) when SQLite's queue stayed full.
    pub async fn write<T, F>(&self, write: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, Error>>
            + Send
            + 'static,
    {
        match self {
            Self::Grouped(writer) => writer.write(write).await,
            Self::Pooled(pool) => {
                let mut tx = pool.begin().await?;
                // Dropped without a commit on error: rolled back.
                let value = write(&mut tx).await?;
                tx.commit().await?;
                Ok(value)
            }
        }
    }

    /// Queues `write` without waiting for its commit on SQLite (see [`Writer::submit`]); on
    /// PostgreSQL, where concurrent transactions keep no queue order, runs it as [`Writes::write`].
    ///
    /// # Errors
    /// As [`Writes::write`].
    pub async fn submit<F>(&self, write: F) -> Result<(), Error>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(), Error>>
            + Send
            + 'static,
    {
        match self {
            Self::Grouped(writer) => writer.submit(write).await,
            Self::Pooled(_) => self.write(write).await,
        }
    }
}
