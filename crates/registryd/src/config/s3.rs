//! `storage.s3` and `storage.redirect`: the object store blobs live in when not on the local
//! filesystem, with registry:2's key names, and whether blob GETs send clients to it.

use serde::Deserialize;

/// Smallest part an S3 multipart upload accepts (except its last).
pub const MIN_CHUNK: u64 = 5 * 1024 * 1024;

/// `storage.s3`: an S3-compatible bucket (AWS S3, Garage, MinIO, Ceph RGW, R2).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    /// Access key id; else `AWS_ACCESS_KEY_ID` from the environment.
    #[serde(default)]
    pub accesskey: Option<String>,
    /// Secret access key; else `AWS_SECRET_ACCESS_KEY` from the environment.
    #[serde(default)]
    pub secretkey: Option<String>,
    /// The bucket's region (Garage's default is `garage`).
    #[serde(default = "default_region")]
    pub region: String,
    /// The endpoint of a non-AWS store, e.g. `http://127.0.0.1:3900`; absent = AWS.
    #[serde(default)]
    pub regionendpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// A key prefix under which everything is stored (`""` = the bucket's root).
    #[serde(default)]
    pub rootdirectory: String,
    /// Address the bucket as `endpoint/bucket` rather than `bucket.endpoint` (most
    /// self-hosted stores need this).
    #[serde(default)]
    pub forcepathstyle: bool,
    /// Whether plain `http://` endpoints are refused (true, as in registry:2).
    #[serde(default = "default_secure")]
    pub secure: bool,
    /// Bytes per multipart part: an upload's chunks are cut into parts of this size (at least
    /// 5 MiB, a multiple of 1 MiB); smaller chunks are merged until a part is full.
    #[serde(default = "default_chunksize")]
    pub chunksize: u64,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3")
            .field("region", &self.region)
            .field("regionendpoint", &self.regionendpoint)
            .field("bucket", &self.bucket)
            .field("rootdirectory", &self.rootdirectory)
            .field("forcepathstyle", &self.forcepathstyle)
            .field("secure", &self.secure)
            .field("chunksize", &self.chunksize)
            .finish_non_exhaustive()
    }
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_secure() -> bool {
    true
}

fn default_chunksize() -> u64 {
    10 * 1024 * 1024
}

impl S3 {
    /// Checks what serde cannot.
    ///
    /// # Errors
    /// A message naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket.is_empty() {
            return Err("storage.s3.bucket: empty".into());
        }
        if self.chunksize < MIN_CHUNK || self.chunksize % (1024 * 1024) != 0 {
            return Err(format!(
                "storage.s3.chunksize: {} is not a multiple of 1 MiB of at least 5 MiB",
                self.chunksize
            ));
        }
        if self.accesskey.is_some() != self.secretkey.is_some() {
            return Err("storage.s3: give both accesskey and secretkey, or neither".into());
        }
        Ok(())
    }
}

/// `storage.redirect`, as in registry:2.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Serve every blob through registryd, even when the store could hand out a URL.
    #[serde(default)]
    pub disable: bool,
}
