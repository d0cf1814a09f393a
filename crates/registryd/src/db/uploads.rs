//! SQL for upload sessions: which repository each upload id belongs to.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Db;
use crate::error::Error;

impl Db {
    /// Records a new upload session for `repo`, without waiting for the commit (see
    /// [`super::writer::Writer::submit`]): the session's first use comes later in queue order,
    /// and until the commit the service knows the session from memory.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn insert_upload(&self, uuid: &str, repo: &str) -> Result<(), Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let (uuid, repo) = (uuid.to_owned(), repo.to_owned());
        self.writer
            .submit(move |c| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO uploads (uuid, repo, started_at) VALUES (?, ?, ?)")
                        .bind(uuid)
                        .bind(repo)
                        .bind(now)
                        .execute(c)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// The repository an upload session belongs to, `None` when there is no such session.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn upload_repo(&self, uuid: &str) -> Result<Option<String>, Error> {
        Ok(
            sqlx::query_scalar("SELECT repo FROM uploads WHERE uuid = ?")
                .bind(uuid)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    /// Ends an upload session; false when there was none.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn delete_upload(&self, uuid: &str) -> Result<bool, Error> {
        self.delete("DELETE FROM uploads WHERE uuid = ?", [uuid])
            .await
    }

    /// Upload sessions started at or before `cutoff` (seconds since the epoch).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn uploads_started_by(&self, cutoff: i64) -> Result<Vec<String>, Error> {
        Ok(
            sqlx::query_scalar("SELECT uuid FROM uploads WHERE started_at <= ?")
                .bind(cutoff)
                .fetch_all(&self.reader)
                .await?,
        )
    }

    /// Number of open upload sessions, for the metrics gauge at start.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn count_uploads(&self) -> Result<i64, Error> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM uploads")
            .fetch_one(&self.reader)
            .await?)
    }
}
