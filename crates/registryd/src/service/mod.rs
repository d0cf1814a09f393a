//! The registry's behaviour, independent of HTTP: blobs, upload sessions, manifests, tags,
//! referrers, the catalog, garbage collection and the pull-through cache (`proxy/`). Calls
//! [`crate::db`] for metadata and [`crate::storage`] for bytes; never the routes.

mod blobs;
mod browse;
mod chunk_range;
mod gc;
mod listing;
mod maintenance;
mod manifest_cache;
mod manifest_doc;
mod manifests;
mod proxy;
mod upload_sessions;
mod uploads;

use std::sync::Arc;

use crate::config::database::Database;
use crate::config::UploadLimits;
use crate::db::gc::Store;
use crate::db::{Backend, Db};
use crate::error::Error;
use crate::storage::paths::Paths;
use crate::storage::Files;

pub use chunk_range::ChunkRange;
pub use gc::{GcCommand, GcReport, GcRun};
pub use listing::{Page, MAX_PAGE};
pub use maintenance::spawn_maintenance;
pub use manifest_doc::declared_type;
pub use manifests::{StoredManifest, MAX_MANIFEST};
pub use proxy::{CacheStatus, ProxiedBlob, Proxy, Source};
pub use uploads::UploadProgress;

/// Everything a request handler needs; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Registry {
    /// Metadata.
    db: Db,
    /// Bytes.
    files: Files,
    /// Manifests by tag and digest, in front of the database and the blob files; shared with
    /// the task that applies other replicas' invalidations.
    manifest_cache: Arc<manifest_cache::ManifestCache>,
    /// The open upload sessions: their locks, hash states, owners and the caps' counts.
    uploads: upload_sessions::UploadSessions,
    /// `storage.delete.enabled`.
    delete_enabled: bool,
    /// The upstreams this registry caches (`proxy`), if any.
    proxy: Option<Proxy>,
}

impl Registry {
    /// Opens the database and blob store under `root`.
    ///
    /// # Errors
    /// `Db`/`Migrate`/`Io` when the data directory cannot be used.
    pub async fn open(root: &std::path::Path, delete_enabled: bool) -> Result<Self, Error> {
        Self::open_with_database(root, delete_enabled, None).await
    }

    /// Opens the blob store under `root` and the metadata in the `database` section when it is
    /// enabled (PostgreSQL), else in SQLite under `root`.
    ///
    /// # Errors
    /// `Db`/`Migrate`/`Io` when the data directory cannot be used; `Unavailable` when
    /// PostgreSQL cannot be reached.
    pub async fn open_with_database(
        root: &std::path::Path,
        delete_enabled: bool,
        database: Option<&Database>,
    ) -> Result<Self, Error> {
        let paths = Paths::new(root);
        let files = Files::open(paths.clone()).await?;
        let store = Store(Arc::new(gc::StoreFiles(files.clone())));
        let backend = Backend::from_config(database, paths.database());
        let db = Db::open(&backend, store).await?;
        let manifest_cache = Arc::new(manifest_cache::ManifestCache::default());
        if let Some(changes) = db.invalidations() {
            manifest_cache.follow(changes);
        }
        let uploads = upload_sessions::UploadSessions::default();
        let open = db.open_uploads().await?;
        let opened = open.len();
        uploads.load(open);
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("registry_uploads_in_progress").set(opened as f64);
        let registry = Self {
            db,
            files,
            manifest_cache,
            uploads,
            delete_enabled,
            proxy: None,
        };
        // Bytes a collection was removing when it stopped (a crash) go back or go.
        registry.settle_trash().await?;
        Ok(registry)
    }

    /// Waits until every database write queued so far is committed (at shutdown).
    ///
    /// # Errors
    /// `Internal` when that commit failed.
    pub async fn flush(&self) -> Result<(), Error> {
        self.db.barrier().await
    }

    /// Caps the open upload sessions per repository and per subject.
    #[must_use]
    pub fn with_upload_limits(self, limits: UploadLimits) -> Self {
        self.uploads.set_limits(limits);
        self
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
