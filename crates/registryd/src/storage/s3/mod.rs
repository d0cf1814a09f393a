//! The S3-compatible blob store, through Apache Arrow's `object_store` (SigV4, retries,
//! multipart uploads, presigned URLs). Every key is built by [`Keys`]:
//!
//! ```text
//! <rootdirectory>/
//!   blobs/sha256/<hex[0..2]>/<hex>   verified content, named by its digest
//!   uploads/<uuid>/state             an upload's saved state: its multipart upload id and
//!                                    part ETags, the sha256 midstate after those parts, and
//!                                    the bytes not yet in a part (see uploads.rs)
//!   uploads/<uuid>/data              the completed multipart upload, until it is copied under
//!                                    its digest and the session ends
//!   trash/<hex>                      bytes garbage collection is removing (see gc.rs)
//! ```
//!
//! Nothing about an upload lives only in one process, so any replica sharing the bucket (and
//! the database) continues any upload.

mod gc;
mod uploads;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{GetOptions, GetRange, ObjectStore, PutPayload};
use uuid::Uuid;

use crate::config::S3 as S3Config;
use crate::names::Digest;

/// How long a presigned blob URL stays valid (registry:2's 20 minutes).
const URL_LIFETIME: Duration = Duration::from_secs(20 * 60);

/// What the store needs of a bucket: objects and multipart uploads.
trait Bucket: ObjectStore + MultipartStore {}

impl<T: ObjectStore + MultipartStore> Bucket for T {}

/// The object store half of storage.
#[derive(Debug, Clone)]
pub struct S3 {
    store: Arc<dyn Bucket>,
    /// Signs blob URLs for redirects.
    signer: Arc<dyn Signer>,
    keys: Keys,
    /// Bytes per multipart part.
    chunksize: usize,
    /// Smallest part sent at the end of a chunk (S3's least, 5 MiB): a chunk's left-over of at
    /// least this many bytes is a part of its own rather than saved in the state object.
    min_part: usize,
    /// Parts of one upload sent at once.
    in_flight: usize,
}

impl S3 {
    /// Connects to the bucket of `cfg` (credentials from the config, else the standard AWS
    /// environment variables) and checks it answers.
    ///
    /// # Errors
    /// When the configuration is unusable or the bucket cannot be listed.
    pub async fn open(cfg: &S3Config) -> io::Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_virtual_hosted_style_request(!cfg.forcepathstyle)
            .with_allow_http(!cfg.secure);
        if let Some(endpoint) = &cfg.regionendpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let (Some(id), Some(secret)) = (&cfg.accesskey, &cfg.secretkey) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let store = Arc::new(
            builder
                .build()
                .map_err(|e| io::Error::other(format!("storage.s3: {e}")))?,
        );
        let s3 = Self {
            store: store.clone(),
            signer: store,
            keys: Keys::new(&cfg.rootdirectory),
            chunksize: usize::try_from(cfg.chunksize).map_err(io::Error::other)?,
            min_part: usize::try_from(crate::config::MIN_CHUNK).map_err(io::Error::other)?,
            in_flight: uploads::PARTS_IN_FLIGHT,
        };
        s3.store
            .list_with_delimiter(Some(&s3.keys.root))
            .await
            .map_err(|e| io::Error::other(format!("storage.s3: bucket {}: {e}", cfg.bucket)))?;
        Ok(s3)
    }

    /// A store over an in-memory bucket (signing for an unreachable one), parts of
    /// `chunksize` bytes (a chunk's left-over of half that or more a part too) sent one at a
    /// time: object_store's `InMemory` (0.12) takes a part only when the one before it arrived
    /// first.
    #[cfg(test)]
    fn in_memory(store: Arc<object_store::memory::InMemory>, chunksize: usize) -> Self {
        let signer = AmazonS3Builder::new()
            .with_bucket_name("test")
            .with_region("test")
            .with_access_key_id("id")
            .with_secret_access_key("secret")
            .build()
            .unwrap();
        Self {
            store,
            signer: Arc::new(signer),
            keys: Keys::new("root"),
            chunksize,
            min_part: chunksize / 2,
            in_flight: 1,
        }
    }

    /// Stores a small blob under its digest: one PUT, which is atomic.
    pub(super) async fn write_blob(&self, digest: &Digest, bytes: &Bytes) -> io::Result<()> {
        let key = self.keys.blob(digest);
        if self.exists(&key).await? {
            return Ok(());
        }
        self.store
            .put(&key, PutPayload::from(bytes.clone()))
            .await
            .map_err(to_io)?;
        Ok(())
    }

    pub(super) async fn read_blob_range(
        &self,
        digest: &Digest,
        start: u64,
        len: u64,
    ) -> io::Result<BoxStream<'static, io::Result<Bytes>>> {
        if len == 0 {
            return Ok(futures_util::stream::empty().boxed());
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..start + len)),
            ..GetOptions::default()
        };
        let got = self
            .store
            .get_opts(&self.keys.blob(digest), opts)
            .await
            .map_err(to_io)?;
        Ok(got.into_stream().map_err(to_io).boxed())
    }

    pub(super) async fn read_blob(&self, digest: &Digest) -> io::Result<Bytes> {
        let got = self
            .store
            .get(&self.keys.blob(digest))
            .await
            .map_err(to_io)?;
        got.bytes().await.map_err(to_io)
    }

    /// A presigned GET URL of a blob.
    pub(super) async fn blob_url(&self, digest: &Digest) -> io::Result<String> {
        let url = self
            .signer
            .signed_url(http::Method::GET, &self.keys.blob(digest), URL_LIFETIME)
            .await
            .map_err(to_io)?;
        Ok(url.to_string())
    }

    /// Whether `key` exists.
    async fn exists(&self, key: &Path) -> io::Result<bool> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(to_io(e)),
        }
    }
}

/// An object store error as an I/O error, absence as `NotFound`.
fn to_io(e: object_store::Error) -> io::Error {
    match e {
        object_store::Error::NotFound { .. } => io::Error::new(io::ErrorKind::NotFound, e),
        e => io::Error::other(e),
    }
}

/// Every key registryd uses in the bucket is built here (see the tree above).
#[derive(Debug, Clone)]
struct Keys {
    root: Path,
}

impl Keys {
    fn new(rootdirectory: &str) -> Self {
        Self {
            root: Path::from(rootdirectory.trim_matches('/')),
        }
    }

    fn under(&self, parts: &[&str]) -> Path {
        parts
            .iter()
            .fold(self.root.clone(), |p, part| p.child(*part))
    }

    fn blobs(&self) -> Path {
        self.under(&["blobs", "sha256"])
    }

    fn blob(&self, digest: &Digest) -> Path {
        let hex = digest.hex();
        self.under(&["blobs", "sha256", hex.get(..2).unwrap_or("00"), hex])
    }

    fn uploads(&self) -> Path {
        self.under(&["uploads"])
    }

    fn upload_state(&self, uuid: &Uuid) -> Path {
        self.under(&["uploads", &uuid.to_string(), "state"])
    }

    fn upload_data(&self, uuid: &Uuid) -> Path {
        self.under(&["uploads", &uuid.to_string(), "data"])
    }

    fn trash(&self) -> Path {
        self.under(&["trash"])
    }

    fn trashed(&self, digest: &Digest) -> Path {
        self.under(&["trash", digest.hex()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_tree_above() {
        let d = Digest::of(b"");
        let k = Keys::new("/berth/");
        assert_eq!(
            k.blob(&d).as_ref(),
            "berth/blobs/sha256/e3/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            k.upload_state(&Uuid::nil()).as_ref(),
            "berth/uploads/00000000-0000-0000-0000-000000000000/state"
        );
        assert_eq!(
            Keys::new("").trashed(&d).as_ref(),
            format!("trash/{}", d.hex())
        );
    }
}
