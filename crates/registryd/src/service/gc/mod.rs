//! Garbage collection, online: a mark-and-sweep over what manifests reference, that frees the
//! bytes of deleted images while pushes and pulls go on, run periodically by the daemon
//! (`storage.maintenance.gc`) or once by `registryd gc`, also while a daemon serves the same
//! data directory (SQLite in WAL mode orders the two processes' writes).
//!
//! One run:
//! 1. **Settle the trash** (bytes a crashed run left half-removed, see 4.).
//! 2. **Sweep each repository**, in one short transaction each: manifests that are no longer
//!    live are deleted (live: tagged; untagged unless `delete_untagged`; referrers of a live
//!    manifest; children and config/layers of a live manifest; anything pushed within the
//!    grace period), then the repository's blob links that no remaining manifest references
//!    and that are older than the grace period. A repository-scoped GET of such a blob then
//!    404s. A manifest PUT checks its references inside its own transaction, so one that races
//!    the sweep either lands first (its references keep the links) or finds a link gone and is
//!    refused with `MANIFEST_BLOB_UNKNOWN`; it is never accepted with a missing blob.
//! 3. **Delete unreferenced blobs**, in batches of [`BATCH`], one transaction each: a blob no
//!    repository links and no manifest is loses its row, and in the same transaction its file
//!    is renamed into `trash/`. Once committed, the trash file is deleted.
//! 4. **Delete row-less files** older than the grace period (a crash between a file landing
//!    and its row), the same way.
//!
//! Why that is safe without a global lock: every writer that records or links a blob checks,
//! inside its write transaction, that the blob's bytes are in the store
//! (`db::gc::ensure_blob`), and the collector moves bytes out only inside the transaction that
//! deletes their row. SQLite runs one write transaction at a time, across processes, so each
//! writer sees rows and files agree. A writer that placed its bytes, or found them already
//! there, just before a collection took them is refused with `BlobCollected` and places them
//! again ([`placed`]): an upload keeps its file until its row is committed, a manifest keeps
//! its body; a mount becomes an ordinary upload. Should the collector's transaction not commit
//! (an error, a kill), its trashed bytes are put back by the next settling (at the next run or
//! start): a trash file whose row still exists goes back, any other is deleted; until then a
//! push of those bytes places them anew, as above. Readers never wait; one that read a row
//! before its blob was collected gets a 404.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Registry;
use crate::config::Gc;
use crate::db::gc::BlobFiles;
use crate::error::Error;
use crate::names::Digest;
use crate::storage::BlobStore;

/// Blobs decided per transaction: short enough that writers queued behind it wait little.
const BATCH: usize = 64;

/// What to collect.
#[derive(Debug, Clone, Copy)]
pub struct GcRun {
    /// Nothing linked, pushed or written more recently than this is collected.
    pub grace: Duration,
    /// Also delete manifests no tag (or tagged index, or live subject) keeps.
    pub delete_untagged: bool,
    /// Only count what would be freed.
    pub dry_run: bool,
}

impl GcRun {
    /// A run as `storage.maintenance.gc` configures it.
    #[must_use]
    pub fn from_config(cfg: &Gc) -> Self {
        Self {
            grace: cfg.grace,
            delete_untagged: cfg.delete_untagged,
            dry_run: false,
        }
    }
}

/// What a run freed (or, in a dry run, would free).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// Manifests deleted (untagged ones, referrers whose subject is gone).
    pub manifests: u64,
    /// Repository → blob links removed.
    pub links: u64,
    /// Blobs deleted (files, objects or inline rows).
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl std::fmt::Display for GcReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} blobs, {} bytes ({} manifests, {} repository links)",
            self.blobs, self.bytes, self.manifests, self.links
        )
    }
}

impl GcReport {
    fn freed(&mut self, removed: &[(String, u64)]) {
        self.blobs += removed.len() as u64;
        self.bytes += removed.iter().map(|(_, size)| size).sum::<u64>();
    }
}

/// The blob store as the database's transactions see it.
pub(super) struct StoreBlobs(pub BlobStore);

impl BlobFiles for StoreBlobs {
    fn present(&self, digest: &str) -> bool {
        Digest::parse(digest).is_ok_and(|d| self.0.has_blob(&d))
    }

    fn trash(&self, digest: &str) -> std::io::Result<Option<u64>> {
        match Digest::parse(digest) {
            Ok(d) => self.0.trash_blob(&d),
            Err(_) => Ok(None),
        }
    }

    fn restore(&self, digest: &str) -> std::io::Result<()> {
        match Digest::parse(digest) {
            Ok(d) => self.0.restore_blob(&d),
            Err(_) => Ok(()),
        }
    }
}

/// Places bytes in the store, then records them; when garbage collection took the bytes in
/// between (`BlobCollected`), places and records them once more. The second placing writes
/// fresh bytes that nothing references yet and that are younger than any grace period, so no
/// collection can take them again.
pub(super) async fn placed<T, P, R>(
    place: impl Fn() -> P,
    record: impl Fn() -> R,
) -> Result<T, Error>
where
    P: Future<Output = Result<(), Error>>,
    R: Future<Output = Result<T, Error>>,
{
    place().await?;
    match record().await {
        Err(Error::BlobCollected(d)) => {
            tracing::info!(digest = %d, "blob collected while being recorded: placing it again");
            place().await?;
            record().await
        }
        other => other,
    }
}

/// Milliseconds since the epoch, as the database records link and push times.
pub(super) fn unix_millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Registry {
    /// Runs one collection (see the module's doc) and logs and counts what it freed.
    ///
    /// # Errors
    /// `Db`/`Io` on failure; whatever was committed stays done, the rest is left for the next
    /// run.
    pub async fn collect_garbage(&self, run: GcRun) -> Result<GcReport, Error> {
        let cutoff_time = SystemTime::now()
            .checked_sub(run.grace)
            .unwrap_or(UNIX_EPOCH);
        let cutoff = unix_millis(cutoff_time);
        self.settle_trash().await?;
        let report = if run.dry_run {
            self.dry_run(cutoff, cutoff_time, run.delete_untagged)
                .await?
        } else {
            self.sweep(cutoff, cutoff_time, run.delete_untagged).await?
        };
        tracing::info!(
            dry_run = run.dry_run,
            blobs = report.blobs,
            bytes = report.bytes,
            manifests = report.manifests,
            links = report.links,
            "garbage collection {} {report}",
            if run.dry_run { "would free" } else { "freed" }
        );
        if !run.dry_run {
            metrics::counter!("registry_gc_runs_total").increment(1);
            metrics::counter!("registry_gc_blobs_freed_total").increment(report.blobs);
            metrics::counter!("registry_gc_bytes_freed_total").increment(report.bytes);
            metrics::counter!("registry_gc_manifests_deleted_total").increment(report.manifests);
        }
        Ok(report)
    }

    async fn sweep(
        &self,
        cutoff: i64,
        cutoff_time: SystemTime,
        delete_untagged: bool,
    ) -> Result<GcReport, Error> {
        let mut report = GcReport::default();
        for (id, name) in self.db.repositories().await? {
            let swept = self
                .db
                .sweep_repository(id, cutoff, delete_untagged)
                .await?;
            if !swept.manifests.is_empty() {
                self.manifest_cache.invalidate(&name);
                tracing::info!(repo = %name, manifests = ?swept.manifests, "collected manifests");
            }
            report.manifests += swept.manifests.len() as u64;
            report.links += swept.links;
        }
        let mut after = String::new();
        loop {
            let batch = self.db.unreferenced_blobs(&after, BATCH as i64).await?;
            let Some(last) = batch.last() else { break };
            after.clone_from(last);
            let removed = self.emptying(self.db.delete_blobs(batch).await).await?;
            report.freed(&removed);
        }
        let rowless = self.rowless_files(cutoff_time).await?;
        for batch in rowless.chunks(BATCH) {
            let batch = batch.iter().map(|(d, _)| d.clone()).collect();
            let removed = self.emptying(self.db.trash_rowless(batch).await).await?;
            report.freed(&removed);
        }
        Ok(report)
    }

    async fn dry_run(
        &self,
        cutoff: i64,
        cutoff_time: SystemTime,
        delete_untagged: bool,
    ) -> Result<GcReport, Error> {
        let (sweeps, blobs, bytes) = self.db.dry_sweep(cutoff, delete_untagged).await?;
        let mut report = GcReport {
            manifests: sweeps.iter().map(|s| s.manifests.len() as u64).sum(),
            links: sweeps.iter().map(|s| s.links).sum(),
            blobs,
            bytes,
        };
        report.freed(&self.rowless_files(cutoff_time).await?);
        Ok(report)
    }

    /// Blob files with no row, last written before `cutoff_time`, with their sizes.
    async fn rowless_files(&self, cutoff_time: SystemTime) -> Result<Vec<(String, u64)>, Error> {
        let mut rowless = vec![];
        for file in self.blobs.list_blobs().await? {
            if file.modified < cutoff_time
                && self.db.blob_size(file.digest.as_str()).await?.is_none()
            {
                rowless.push((file.digest.to_string(), file.size));
            }
        }
        Ok(rowless)
    }

    /// Deletes the trash files of a committed removal; after a failed one, settles the trash
    /// (its bytes go back) and returns the failure.
    pub(super) async fn emptying(
        &self,
        removal: Result<Vec<(String, u64)>, Error>,
    ) -> Result<Vec<(String, u64)>, Error> {
        match removal {
            Ok(removed) => {
                for (d, _) in &removed {
                    if let Ok(d) = Digest::parse(d) {
                        self.blobs.empty_trash(&d).await?;
                    }
                }
                Ok(removed)
            }
            Err(e) => {
                self.settle_trash().await?;
                Err(e)
            }
        }
    }

    /// Puts trashed bytes whose row exists back into the store and deletes the others.
    ///
    /// # Errors
    /// `Db`/`Io` on failure.
    pub(super) async fn settle_trash(&self) -> Result<(), Error> {
        let trashed: Vec<String> = self
            .blobs
            .list_trash()
            .await?
            .iter()
            .map(ToString::to_string)
            .collect();
        if trashed.is_empty() {
            return Ok(());
        }
        for d in self.db.settle_trash(trashed).await? {
            if let Ok(d) = Digest::parse(&d) {
                self.blobs.empty_trash(&d).await?;
            }
        }
        Ok(())
    }
}

/// `registryd gc`: runs one collection now over the configured data directory, also while a
/// daemon serves it, with the grace period of `storage.maintenance.gc.grace`.
#[derive(Debug, Clone, clap::Args)]
pub struct GcCommand {
    /// Only print what would be freed.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete manifests that no tag keeps (or set `storage.maintenance.gc.delete_untagged`).
    #[arg(long)]
    pub delete_untagged: bool,
}

impl GcCommand {
    /// Runs the collection over the data directory of `cfg` and prints what was freed.
    ///
    /// # Errors
    /// `Db`/`Migrate`/`Io` when the data directory is unusable or the run fails.
    pub async fn run(&self, cfg: &crate::Config) -> Result<GcReport, Error> {
        let gc = &cfg.storage.maintenance.gc;
        let run = GcRun {
            grace: gc.grace,
            delete_untagged: self.delete_untagged || gc.delete_untagged,
            dry_run: self.dry_run,
        };
        let registry = Registry::from_config(&cfg.storage, cfg.database.as_ref()).await?;
        let Some(report) = registry.collect_garbage_alone(run).await? else {
            println!("garbage collection skipped: another registryd is collecting");
            return Ok(GcReport::default());
        };
        registry.flush().await?;
        let verb = if self.dry_run { "would free" } else { "freed" };
        println!("garbage collection {verb} {report}");
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
