//! `storage.inline` (ours): blobs at most `maxsize` bytes long live in the metadata database,
//! written in the transaction that records them, instead of one file or object each.

use serde::Deserialize;

use super::proxy::byte_size;

/// The default bound: configs, manifests, signatures and attestations fit, layers rarely do.
pub const DEFAULT_MAX: u64 = 16 * 1024;
/// The largest bound allowed: a row is read whole, and an S3 upload of this size is still one
/// part's left-over.
pub const LARGEST_MAX: u64 = 1024 * 1024;

/// `storage.inline`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inline {
    /// Blobs up to this many bytes are kept inline (`0`: none); [`DEFAULT_MAX`] when absent.
    #[serde(default, deserialize_with = "byte_size")]
    pub maxsize: Option<u64>,
}

impl Inline {
    /// The bound in force.
    #[must_use]
    pub fn max(&self) -> u64 {
        self.maxsize.unwrap_or(DEFAULT_MAX)
    }

    /// Refuses a bound above [`LARGEST_MAX`].
    ///
    /// # Errors
    /// A sentence saying why.
    pub fn validate(&self) -> Result<(), String> {
        match self.maxsize {
            Some(n) if n > LARGEST_MAX => Err(format!(
                "storage.inline.maxsize: {n} bytes is more than the largest allowed, \
                 {LARGEST_MAX} (1MiB): larger blobs belong in the blob store"
            )),
            _ => Ok(()),
        }
    }
}
