//! The registry's behaviour, independent of HTTP: blobs, upload sessions, manifests, tags,
//! referrers and the catalog. Calls [`crate::db`] for metadata and [`crate::storage`] for bytes;
//! never the routes.

mod blobs;
mod gc;
mod listing;
mod maintenance;
mod manifest_cache;
mod manifest_doc;
mod manifests;
mod uploads;

use crate::db::Db;
use crate::error::Error;
use crate::storage::paths::Paths;
use crate::storage::Files;

pub use listing::{Page, MAX_PAGE};
pub use maintenance::spawn_maintenance;
pub use manifests::StoredManifest;
pub use uploads::{ChunkRange, UploadProgress};

/// Everything a request handler needs; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Registry {
    /// Metadata.
    db: Db,
    /// Bytes.
    files: Files,
    /// Manifests by tag and digest, in front of the database and the blob files.
    manifest_cache: manifest_cache::ManifestCache,
    /// Hash states of the upload sessions in progress.
    uploads: uploads::HashStates,
    /// `storage.delete.enabled`.
    delete_enabled: bool,
    /// Held (shared) by every operation that makes a stored blob reachable — commit, mount,
    /// manifest push — across its file and row writes, and (exclusive) by garbage collection,
    /// so a blob is never collected between its bytes landing and its row pointing at them.
    commit_lock: tokio::sync::RwLock<()>,
}

impl Registry {
    /// Opens the database and blob store under `root`.
    ///
    /// # Errors
    /// `Db`/`Migrate`/`Io` when the data directory cannot be used.
    pub async fn open(root: &std::path::Path, delete_enabled: bool) -> Result<Self, Error> {
        let paths = Paths::new(root);
        let files = Files::open(paths.clone()).await?;
        let db = Db::open(&paths.database()).await?;
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("registry_uploads_in_progress").set(db.count_uploads().await? as f64);
        Ok(Self {
            db,
            files,
            manifest_cache: manifest_cache::ManifestCache::default(),
            uploads: uploads::HashStates::default(),
            delete_enabled,
            commit_lock: tokio::sync::RwLock::new(()),
        })
    }

    /// Waits until every database write queued so far is committed (at shutdown).
    ///
    /// # Errors
    /// `Internal` when that commit failed.
    pub async fn flush(&self) -> Result<(), Error> {
        self.db.barrier().await
    }

    fn check_delete_enabled(&self) -> Result<(), Error> {
        if self.delete_enabled {
            Ok(())
        } else {
            Err(Error::Unsupported(
                "deletes are disabled (storage.delete.enabled)".into(),
            ))
        }
    }
}
