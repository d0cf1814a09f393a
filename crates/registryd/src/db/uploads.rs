//! SQL for upload sessions: which repository each upload id belongs to, who opened it and when
//! it was last active.

use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::Db;
use crate::error::Error;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

impl Db {
    /// Records a new upload session for `repo` opened by `subject`, without waiting for the
    /// commit (see [`super::writer::Writer::submit`]): the session's first use comes later in
    /// queue order, and until the commit the service knows the session from memory.
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn insert_upload(&self, uuid: &str, repo: &str, subject: &str) -> Result<(), Error> {
        let now = now();
        let (uuid, repo, subject) = (uuid.to_owned(), repo.to_owned(), subject.to_owned());
        self.writer
            .submit(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO uploads (uuid, repo, subject, started_at, active_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(uuid)
                    .bind(repo)
                    .bind(subject)
                    .bind(now)
                    .bind(now)
                    .execute(c)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Notes that a session received a chunk now, without waiting for the commit.
    ///
    /// # Errors
    /// `Db(PoolTimedOut)` when the write queue stayed full.
    pub async fn touch_upload(&self, uuid: &str) -> Result<(), Error> {
        let (now, uuid) = (now(), uuid.to_owned());
        self.writer
            .submit(move |c| {
                Box::pin(async move {
                    sqlx::query("UPDATE uploads SET active_at = $1 WHERE uuid = $2")
                        .bind(now)
                        .bind(uuid)
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
            sqlx::query_scalar("SELECT repo FROM uploads WHERE uuid = $1")
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
        self.delete("DELETE FROM uploads WHERE uuid = $1", [uuid], None)
            .await
    }

    /// Upload sessions neither started nor active after `cutoff` (seconds since the epoch).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn uploads_idle_since(&self, cutoff: i64) -> Result<Vec<String>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT uuid FROM uploads WHERE started_at <= $1 AND active_at <= $1",
        )
        .bind(cutoff)
        .fetch_all(&self.reader)
        .await?)
    }

    /// Every open upload session: id, repository and subject (at start, for the caps).
    ///
    /// # Errors
    /// `Db` on failure.
    pub async fn open_uploads(&self) -> Result<Vec<(Uuid, String, String)>, Error> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT uuid, repo, subject FROM uploads")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(uuid, repo, subject)| {
                Uuid::parse_str(&uuid).ok().map(|u| (u, repo, subject))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_means_neither_started_nor_active_since_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &super::super::Backend::Sqlite(dir.path().join("registry.db")),
            super::super::gc::Store::empty(),
        )
        .await
        .unwrap();
        for uuid in ["idle", "active"] {
            db.insert_upload(uuid, "a", "dave").await.unwrap();
        }
        db.writer
            .write(|c| {
                Box::pin(async move {
                    sqlx::query("UPDATE uploads SET started_at = 100, active_at = 100")
                        .execute(c)
                        .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
        db.touch_upload("active").await.unwrap();
        db.barrier().await.unwrap();
        assert_eq!(db.uploads_idle_since(1000).await.unwrap(), vec!["idle"]);
        assert!(db.open_uploads().await.unwrap().is_empty(), "not uuids");
    }
}
