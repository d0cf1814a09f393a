//! Group commit: every write runs on the one writer connection, owned by a task that takes all
//! the writes queued while the previous commit was syncing and runs them in one transaction, each
//! inside its own savepoint. One `COMMIT` (one WAL fsync) then acknowledges the whole batch, so
//! concurrent pushes share fsyncs instead of queueing for one each. A write that fails is rolled
//! back to its savepoint alone; a failed commit fails every write of the batch. No write is
//! acknowledged before the commit that holds it is durable.

use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;

/// Writes taken into one transaction at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for the writer at most; past this, callers wait for room.
const QUEUE: usize = 1024;
/// How long a write waits for room in the queue before it is refused with 429.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

/// One queued write: `run` inside the batch's transaction, then `finish` once the commit is known.
trait Job: Send {
    /// Runs the statements; `false` when they failed (the caller then rolls them back).
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Answers the caller: its own result when `outcome` is `Ok`, else that error.
    fn finish(self: Box<Self>, outcome: Result<(), Failure>);
}

/// A [`Job`] made of a closure and the channel its caller waits on.
struct Write<T, F> {
    write: Option<F>,
    result: Option<Result<T, Error>>,
    reply: oneshot::Sender<Result<T, Error>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, Error>> + Send + 'static,
{
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(write) = self.write.take() else {
                return false;
            };
            let result = write(conn).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, outcome: Result<(), Failure>) {
        let answer = match (outcome, self.result) {
            // A failed write was rolled back alone: its own error is the answer.
            (_, Some(Err(mine))) => Err(mine),
            (Ok(()), Some(Ok(value))) => Ok(value),
            (Ok(()), None) => Err(Error::Internal("write was not run".into())),
            (Err(e), _) => Err(e.into()),
        };
        if let Err(Err(e)) = self.reply.send(answer) {
            // Nobody waits for a submitted write: its failure is only logged.
            tracing::warn!(error = %e, "database write failed");
        }
    }
}

/// The queue of the writer task.
#[derive(Debug, Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer task on `conn`, the only connection that writes.
    pub fn spawn(conn: PoolConnection<Any>) -> Self {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, rx));
        Self { jobs }
    }

    /// Runs `write` in the next batch and returns its result once that batch is committed.
    ///
    /// # Errors
    /// The write's own error (its statements are then undone); `Internal` when the commit
    /// failed; `Db(PoolTimedOut)` (429) when the queue stayed full.
    pub async fn write<T, F>(&self, write: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, Error>>
            + Send
            + 'static,
    {
        self.enqueue(write).await?.await.map_err(|_| stopped())?
    }

    /// Queues `write` without waiting for its commit: it is committed with the next batch, in
    /// queue order, so a later [`Writer::write`] is acknowledged only once this one is durable
    /// too. Its failure is logged.
    ///
    /// # Errors
    /// `Db(PoolTimedOut)` (429) when the queue stayed full.
    pub async fn submit<F>(&self, write: F) -> Result<(), Error>
    where
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<(), Error>>
            + Send
            + 'static,
    {
        self.enqueue(write).await.map(drop)
    }

    async fn enqueue<T, F>(&self, write: F) -> Result<oneshot::Receiver<Result<T, Error>>, Error>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, Error>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Write {
            write: Some(write),
            result: None,
            reply,
        });
        tokio::time::timeout(QUEUE_WAIT, self.jobs.send(job))
            .await
            .map_err(|_| Error::Db(sqlx::Error::PoolTimedOut))?
            .map_err(|_| stopped())?;
        Ok(answer)
    }
}

/// Why a batch failed, as every write of it learns.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    /// SQLite's `SQLITE_FULL`: the disk is full (answered 507, not 500).
    disk_full: bool,
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        /// SQLite's `SQLITE_FULL`.
        const SQLITE_FULL: &str = "13";
        let disk_full = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c == SQLITE_FULL);
        Self {
            message: e.to_string(),
            disk_full,
        }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        let message = format!("database write failed: {}", f.message);
        if f.disk_full {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                message,
            ))
        } else {
            Error::Internal(message)
        }
    }
}

fn stopped() -> Error {
    Error::Internal("the database writer has stopped".into())
}

/// Runs control statements (several may be `;`-separated). Boxed, like the jobs, so the
/// writer task's future is plainly `Send`.
fn exec<'a>(conn: &'a mut AnyConnection, sql: &'static str) -> BoxFuture<'a, Result<(), Failure>> {
    Box::pin(async move {
        sqlx::query(sql)
            .execute(conn)
            .await
            .map(drop)
            .map_err(Failure::from)
    })
}

/// The writer task: batch, run, commit, answer, until every [`Writer`] is dropped.
async fn run(mut conn: PoolConnection<Any>, mut rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut outcome = run_batch(&mut conn, &mut batch).await;
        if outcome.is_err() {
            if let Err(e) = exec(&mut conn, "ROLLBACK").await {
                outcome = outcome.map_err(|first| Failure {
                    message: format!("{}; rollback: {}", first.message, e.message),
                    ..first
                });
            }
        }
        metrics::counter!("registry_db_commits_total").increment(1);
        for job in batch.drain(..) {
            job.finish(outcome.clone());
        }
    }
}

/// Runs the jobs in one transaction, each after a fresh savepoint that is rolled back when the
/// job fails, and commits. On any other failure the caller rolls the whole batch back.
async fn run_batch(conn: &mut AnyConnection, batch: &mut [Box<dyn Job>]) -> Result<(), Failure> {
    exec(conn, "BEGIN IMMEDIATE; SAVEPOINT job").await?;
    for job in batch.iter_mut() {
        let next = if job.run(conn).await {
            "RELEASE job; SAVEPOINT job"
        } else {
            // The savepoint stays open, empty again, for the next job.
            "ROLLBACK TO job"
        };
        exec(conn, next).await?;
    }
    exec(conn, "COMMIT").await
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{AnyPool, ConnectOptions};

    use super::*;

    async fn pool(dir: &tempfile::TempDir) -> AnyPool {
        sqlx::any::install_default_drivers();
        let opts = SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true);
        let opts = AnyConnectOptions::from_url(&opts.to_url_lossy()).unwrap();
        let pool = AnyPoolOptions::new().connect_with(opts).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    /// Inserts `v`, then fails when `fail` (after its statement ran). Answers `v` and how many
    /// rows another connection of `pool` saw committed while the insert ran: rows of the
    /// writes batched with it are not committed yet, so they are not among them.
    async fn insert(
        writer: &Writer,
        pool: &AnyPool,
        v: i64,
        fail: bool,
    ) -> Result<(i64, i64), Error> {
        let pool = pool.clone();
        writer
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (v) VALUES ($1)")
                        .bind(v)
                        .execute(c)
                        .await?;
                    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
                        .fetch_one(&pool)
                        .await?;
                    if fail {
                        return Err(Error::Internal(format!("job {v} fails")));
                    }
                    Ok((v, committed))
                })
            })
            .await
    }

    async fn values(pool: &AnyPool) -> Vec<i64> {
        sqlx::query_scalar("SELECT v FROM t ORDER BY v")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_write_is_undone_alone_and_the_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let writer = Writer::spawn(pool.acquire().await.unwrap());
        // On this single-threaded runtime all three are queued before the writer runs: one batch,
        // so none of them sees another's row committed.
        let (a, b, c) = tokio::join!(
            insert(&writer, &pool, 1, false),
            insert(&writer, &pool, 2, true),
            insert(&writer, &pool, 3, false)
        );
        assert_eq!(a.unwrap(), (1, 0));
        assert!(matches!(b, Err(Error::Internal(m)) if m == "job 2 fails"));
        assert_eq!(c.unwrap(), (3, 0));
        assert_eq!(values(&pool).await, [1, 3]);
    }

    #[tokio::test]
    async fn concurrent_writes_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let writer = Writer::spawn(pool.acquire().await.unwrap());
        let writes = (0..64).map(|v| insert(&writer, &pool, v, false));
        let seen: Vec<i64> = futures_util::future::join_all(writes)
            .await
            .into_iter()
            .map(|r| r.unwrap().1)
            .collect();
        // A commit per write would show 0, 1, 2, … committed rows to the later writes.
        assert_eq!(seen, [0; 64], "writes queued together were committed apart");
        assert_eq!(values(&pool).await.len(), 64);
        let (_, after) = insert(&writer, &pool, 64, false).await.unwrap();
        assert_eq!(after, 64, "a later batch sees the earlier one committed");
    }

    #[tokio::test]
    async fn a_statement_error_fails_only_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let writer = Writer::spawn(pool.acquire().await.unwrap());
        let (a, dup, c) = tokio::join!(
            insert(&writer, &pool, 1, false),
            insert(&writer, &pool, 1, false),
            insert(&writer, &pool, 2, false)
        );
        assert!(a.is_ok() && c.is_ok());
        assert!(matches!(dup, Err(Error::Db(_))), "{dup:?}");
        assert_eq!(values(&pool).await, [1, 2]);
    }

    #[tokio::test]
    async fn a_submitted_write_is_durable_once_a_later_write_is_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let pool = pool(&dir).await;
        let writer = Writer::spawn(pool.acquire().await.unwrap());
        writer
            .submit(|c| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (v) VALUES (7)")
                        .execute(c)
                        .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        insert(&writer, &pool, 8, false).await.unwrap();
        assert_eq!(values(&pool).await, [7, 8]);
    }
}
