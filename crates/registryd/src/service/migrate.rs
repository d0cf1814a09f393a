//! `registryd migrate --from registry.yaml --to registry-scaled.yaml`: copies everything one
//! registry holds into another (e.g. SQLite and a data folder into PostgreSQL and an S3 bucket),
//! repository by repository in catalog order: first the blobs the repository needs that the
//! destination lacks, each streamed from one store into the other and verified against its
//! digest before it is recorded, then all its rows (links, manifests with their push times,
//! references, tags, the pull-through cache's tag checks) in one transaction. Every step can be
//! done again, so an interrupted run is resumed by running the command again: a recorded blob is
//! not copied twice, a copied repository ends the same. Uploads in progress are not moved.

use std::fmt;
use std::path::PathBuf;

use uuid::Uuid;

use super::Registry;
use crate::config::Config;
use crate::error::Error;
use crate::names::Digest;

/// Repositories read from the catalog at a time.
const CATALOG_PAGE: i64 = 1000;

/// The `migrate` command's arguments.
#[derive(Debug, clap::Args)]
pub struct MigrateCommand {
    /// The configuration of the registry to copy from (e.g. registry.yaml).
    #[arg(long)]
    from: PathBuf,
    /// The configuration of the registry to copy into (e.g. registry-scaled.yaml).
    #[arg(long)]
    to: PathBuf,
}

/// What a run copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrateReport {
    pub repositories: u64,
    pub manifests: u64,
    pub tags: u64,
    /// Blobs streamed into the destination, and their bytes.
    pub blobs_copied: u64,
    pub bytes_copied: u64,
    /// Blobs the destination had already (an earlier run, or shared with another repository).
    pub blobs_present: u64,
}

impl fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} repositories, {} manifests, {} tags; {} blobs copied ({} bytes), {} already there",
            self.repositories,
            self.manifests,
            self.tags,
            self.blobs_copied,
            self.bytes_copied,
            self.blobs_present
        )
    }
}

impl MigrateCommand {
    /// Copies everything from `--from` into `--to` and prints what it copied.
    ///
    /// # Errors
    /// `Config` when a file is unusable; `Db`/`Io` on failure; `Internal` naming a blob whose
    /// source bytes do not match its digest. What was copied before the error stays; running
    /// again resumes. (Both files naming the same storage copy nothing: every row and blob is
    /// there already.)
    pub async fn run(&self) -> Result<MigrateReport, Error> {
        let (from, to) = (Config::load(&self.from)?, Config::load(&self.to)?);
        let source = Registry::from_config(&from.storage, from.database.as_ref()).await?;
        let target = Registry::from_config(&to.storage, to.database.as_ref()).await?;
        let mut report = MigrateReport::default();
        let mut last = String::new();
        loop {
            let names = source.db.catalog(CATALOG_PAGE, &last).await?;
            let Some(end) = names.last().cloned() else {
                break;
            };
            for name in names {
                target.copy_repo(&source, &name, &mut report).await?;
                println!("copied {name}");
            }
            last = end;
        }
        target.flush().await?;
        println!("migrate copied {report}");
        Ok(report)
    }
}

impl Registry {
    /// Copies repository `name` of `source` into this registry (see the module's doc).
    async fn copy_repo(
        &self,
        source: &Registry,
        name: &str,
        report: &mut MigrateReport,
    ) -> Result<(), Error> {
        let rows = source.db.repo_rows(name).await?;
        for (digest, size) in rows.blobs() {
            if self.db.blob_size(&digest).await?.is_some() {
                report.blobs_present += 1;
                continue;
            }
            let digest = Digest::parse(&digest).map_err(|_| {
                Error::Internal(format!("{name}: stored digest {digest} is invalid"))
            })?;
            self.copy_blob(source, &digest, size).await?;
            report.blobs_copied += 1;
            report.bytes_copied += size;
        }
        let (manifests, tags) = rows.counts();
        self.db.restore_repo(name, rows).await?;
        report.repositories += 1;
        report.manifests += manifests as u64;
        report.tags += tags as u64;
        Ok(())
    }

    /// Streams blob `digest` of `size` bytes from `source`'s store into this one, verifies it
    /// and records it.
    async fn copy_blob(&self, source: &Registry, digest: &Digest, size: u64) -> Result<(), Error> {
        let body = source.blob_range(digest, size, 0, size).await?;
        let uuid = Uuid::new_v4();
        let filled = self
            .fill_upload(&uuid, body, digest, Some(size), "the source store")
            .await;
        let placed = match filled {
            Ok(_) => {
                self.place_upload(&uuid, digest, size, |inline| {
                    self.db.record_blob(digest.as_str(), size, inline)
                })
                .await
            }
            Err(why) => Err(Error::Internal(format!("copying blob {digest}: {why}"))),
        };
        self.blobs.remove_upload(&uuid).await?;
        placed
    }
}
