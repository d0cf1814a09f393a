//! The registry's behaviour, independent of HTTP: blobs, upload sessions, manifests, tags,
//! referrers, the catalog, garbage collection and the pull-through cache (`proxy/`). Calls
//! [`crate::db`] for metadata and [`crate::storage`] for bytes; never the routes.

mod blobs;
mod browse;
mod chunk_range;
mod gc;
mod inline;
mod listing;
mod maintenance;
mod manifest_cache;
mod manifest_doc;
mod manifests;
mod migrate;
mod proxy;
mod small_uploads;
mod upload_sessions;
mod uploads;

use std::sync::Arc;

use crate::config::database::Database;
use crate::config::UploadLimits;
use crate::db::gc::Store;
use crate::db::{Backend, Db};
use crate::error::Error;
use crate::storage::paths::Paths;
use crate::storage::{BlobStore, Files};

pub use chunk_range::ChunkRange;
pub use gc::{GcCommand, GcReport, GcRun};
pub use listing::{Page, MAX_PAGE};
pub use maintenance::spawn_maintenance;
pub use manifest_doc::declared_type;
pub use manifests::{StoredManifest, MAX_MANIFEST};
pub use migrate::{MigrateCommand, MigrateReport};
pub use proxy::{CacheStatus, ProxiedBlob, Proxy, Source};
pub use uploads::UploadProgress;

/// Everything a request handler needs; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Registry {
    /// Metadata.
    db: Db,
    /// Bytes.
    blobs: BlobStore,
    /// Manifests by tag and digest, in front of the database and the blob files; shared with
    /// the task that applies other replicas' invalidations.
    manifest_cache: Arc<manifest_cache::ManifestCache>,
    /// The open upload sessions: their locks, hash states, owners and the caps' counts.
    uploads: upload_sessions::UploadSessions,
    /// `storage.delete.enabled`.
    delete_enabled: bool,
    /// Whether blob GETs send clients to the store when it can (`storage.redirect`).
    redirect: bool,
    /// Blobs up to this many bytes live in the database (`storage.inline`).
    inline_max: u64,
    /// The upstreams this registry caches (`proxy`), if any.
    proxy: Option<Proxy>,
}

impl Registry {
    /// Opens the database and the filesystem blob store under `root`.
    ///
    /// # Errors
    /// `Db`/`Migrate`/`Io` when the data directory cannot be used.
    pub async fn open(root: &std::path::Path, delete_enabled: bool) -> Result<Self, Error> {
        let paths = Paths::new(root);
        let backend = Backend::Sqlite(paths.database());
        let files = Files::open(paths).await?;
        Self::open_with(&backend, BlobStore::Files(files), delete_enabled).await
    }

    /// Opens the storage `cfg` describes: blobs under `storage.filesystem` or in `storage.s3`,
    /// metadata in the `database` section when it is enabled (PostgreSQL), else in SQLite under
    /// `storage.filesystem` (which may be absent only when `s3` and `database` are both set).
    ///
    /// # Errors
    /// `Db`/`Migrate`/`Io` when the data directory or the bucket cannot be used; `Unavailable`
    /// when PostgreSQL cannot be reached; `Config` when a store is missing.
    pub async fn from_config(
        cfg: &crate::config::Storage,
        database: Option<&Database>,
    ) -> Result<Self, Error> {
        let paths = cfg
            .filesystem
            .as_ref()
            .map(|fs| Paths::new(&fs.rootdirectory));
        let missing = || Error::Config("storage.filesystem.rootdirectory is not set".into());
        let blobs = match (&cfg.s3, &paths) {
            (None, Some(paths)) => BlobStore::Files(Files::open(paths.clone()).await?),
            (None, None) => return Err(missing()),
            (Some(s3), _) => BlobStore::S3(crate::storage::S3::open(s3).await?),
        };
        let sqlite = match &paths {
            Some(paths) if database.filter(|d| d.enabled).is_none() => {
                tokio::fs::create_dir_all(paths.root()).await?;
                Some(paths.database())
            }
            _ => None,
        };
        let backend = Backend::from_config(database, sqlite).ok_or_else(missing)?;
        let mut registry = Self::open_with(&backend, blobs, cfg.delete.enabled).await?;
        registry.redirect = !cfg.redirect.disable;
        registry.inline_max = cfg.inline.max();
        Ok(registry)
    }

    /// Opens the metadata in `backend` with the blob store `blobs`.
    ///
    /// # Errors
    /// `Db`/`Migrate`/`Io` when the data directory cannot be used.
    async fn open_with(
        backend: &Backend,
        blobs: BlobStore,
        delete_enabled: bool,
    ) -> Result<Self, Error> {
        let store = Store(Arc::new(gc::StoreBlobs(blobs.clone())));
        let db = Db::open(backend, store).await?;
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
            blobs,
            manifest_cache,
            uploads,
            delete_enabled,
            redirect: false,
            inline_max: crate::config::inline::DEFAULT_MAX,
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

    /// Keeps blobs up to `max` bytes inline (`0`: none).
    #[cfg(test)]
    pub(crate) fn with_inline_max(mut self, max: u64) -> Self {
        self.inline_max = max;
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
