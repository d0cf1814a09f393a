//! Upkeep of the data directory: upload sessions abandoned by their clients are removed after
//! `storage.maintenance.uploadpurging.age`, as registry:2 does, and so are stray upload files
//! with no session (left by a crash mid-write); and [`spawn_maintenance`] runs that and garbage
//! collection periodically. Replicas sharing one database take turns: each job runs on one
//! replica at a time, under a database lock; a replica that finds it taken skips its turn.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use super::{GcReport, GcRun, Registry};
use crate::config::Maintenance;
use crate::error::Error;

impl Registry {
    /// Removes sessions idle for `age` or more (none with a chunk being written) and older
    /// stray upload files; with `dryrun` only counts them. Returns how many were (or would be) removed.
    ///
    /// # Errors
    /// `Db`/`Io` on failure.
    pub async fn purge_uploads(&self, age: Duration, dryrun: bool) -> Result<usize, Error> {
        let Some(_alone) = self.db.try_lock_job("uploadpurging").await? else {
            tracing::debug!("upload purging skipped: another replica is purging");
            return Ok(0);
        };
        let cutoff = SystemTime::now().checked_sub(age).unwrap_or(UNIX_EPOCH);
        let cutoff_secs = cutoff
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        // Sessions' rows are queued without waiting: commit them first, so a fresh session's
        // file is never taken for a stray.
        self.db.barrier().await?;
        let mut purged = 0;
        for uuid in self.db.uploads_idle_since(cutoff_secs).await? {
            let Ok(uuid) = Uuid::parse_str(&uuid) else {
                continue;
            };
            if dryrun || self.discard_idle_session(uuid).await? {
                purged += 1;
            }
        }
        for (uuid, modified) in self.blobs.list_uploads().await? {
            if modified <= cutoff && self.db.upload_repo(&uuid.to_string()).await?.is_none() {
                if !dryrun {
                    self.blobs.remove_upload(&uuid).await?;
                }
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Runs [`Registry::collect_garbage`] unless another replica is collecting (`None` then).
    ///
    /// # Errors
    /// As [`Registry::collect_garbage`].
    pub async fn collect_garbage_alone(&self, run: GcRun) -> Result<Option<GcReport>, Error> {
        let Some(_alone) = self.db.try_lock_job("gc").await? else {
            tracing::info!("garbage collection skipped: another replica is collecting");
            return Ok(None);
        };
        self.collect_garbage(run).await.map(Some)
    }
}

/// Starts the periodic upkeep jobs that are enabled: upload purging, garbage collection and the
/// pull-through cache's eviction.
/// Each task holds only a weak reference, so it ends by itself once the router (and its
/// registry) is dropped — no separate cancellation to wire through `serve`.
pub fn spawn_maintenance(registry: &Arc<Registry>, cfg: &Maintenance) {
    super::proxy::spawn_eviction(registry);
    let purge = cfg.uploadpurging.clone();
    if purge.enabled {
        every(registry, purge.interval, move |reg| async move {
            match reg.purge_uploads(purge.age, purge.dryrun).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    purged = n,
                    dryrun = purge.dryrun,
                    "purged abandoned uploads"
                ),
                Err(e) => tracing::warn!(error = %e, "upload purge failed"),
            }
        });
    }
    if cfg.gc.enabled {
        let run = GcRun::from_config(&cfg.gc);
        every(registry, cfg.gc.interval, move |reg| async move {
            // The run logs what it freed.
            if let Err(e) = reg.collect_garbage_alone(run).await {
                tracing::warn!(error = %e, "garbage collection failed");
            }
        });
    }
}

/// Runs `job` every `interval` (first run after one interval) while the registry lives.
fn every<F, Fut>(registry: &Arc<Registry>, interval: Duration, job: F)
where
    F: Fn(Arc<Registry>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak: Weak<Registry> = Arc::downgrade(registry);
    let interval = interval.max(Duration::from_secs(1));
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            ticker.tick().await;
            let Some(registry) = weak.upgrade() else {
                return;
            };
            job(registry).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RepoName;

    #[tokio::test]
    async fn old_sessions_go_and_fresh_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path(), false).await.unwrap();
        let repo = RepoName::parse("a/b").unwrap();
        let session = reg.start_upload(&repo, "").await.unwrap();
        assert_eq!(
            reg.purge_uploads(Duration::from_secs(3600), false)
                .await
                .unwrap(),
            0
        );
        let stray = Uuid::new_v4();
        reg.blobs.create_upload(&stray).await.unwrap();
        assert_eq!(
            reg.purge_uploads(Duration::ZERO, true).await.unwrap(),
            2,
            "dry run counts both"
        );
        assert!(
            reg.upload_status(&repo, session.uuid).await.is_ok(),
            "dry run removes nothing"
        );
        assert_eq!(reg.purge_uploads(Duration::ZERO, false).await.unwrap(), 2);
        assert_eq!(
            reg.upload_status(&repo, session.uuid)
                .await
                .unwrap_err()
                .code(),
            "BLOB_UPLOAD_UNKNOWN"
        );
        assert!(reg.blobs.list_uploads().await.unwrap().is_empty());
    }
}
