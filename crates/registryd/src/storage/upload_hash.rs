//! The sha256 of an upload in progress, whose state can be saved and taken up again by another
//! process: at a 64-byte boundary the whole state is eight words ([`UploadHash::midstate`]),
//! which the object store keeps beside the upload's parts so that any replica continues it
//! without re-reading a byte. The compression is `sha2`'s own (SHA-NI or AVX where the CPU has
//! them); only the buffering and the final padding live here.

/// sha256's initial state (FIPS 180-4, 5.3.3).
const INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// A running sha256.
#[derive(Debug, Clone)]
pub struct UploadHash {
    state: [u32; 8],
    /// Bytes not yet compressed (fewer than 64).
    pending: Vec<u8>,
    /// Bytes hashed so far.
    len: u64,
}

impl Default for UploadHash {
    fn default() -> Self {
        Self {
            state: INITIAL,
            pending: Vec::with_capacity(64),
            len: 0,
        }
    }
}

impl UploadHash {
    /// Takes up a hash saved by [`UploadHash::midstate`] after `len` bytes.
    ///
    /// # Errors
    /// When `len` is not a multiple of 64 (such a state was never saved).
    pub fn resume(state: [u32; 8], len: u64) -> Result<Self, String> {
        if len % 64 != 0 {
            return Err(format!("a saved hash state at {len} bytes"));
        }
        Ok(Self {
            state,
            pending: Vec::with_capacity(64),
            len,
        })
    }

    /// The state to save, when the bytes hashed so far are a whole number of blocks.
    #[must_use]
    pub fn midstate(&self) -> Option<[u32; 8]> {
        self.pending.is_empty().then_some(self.state)
    }

    /// Bytes hashed so far.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hashes `bytes`.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if !self.pending.is_empty() {
            let take = (64 - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() < 64 {
                return;
            }
            compress(&mut self.state, &self.pending);
            self.pending.clear();
        }
        let whole = bytes.len() - bytes.len() % 64;
        compress(&mut self.state, &bytes[..whole]);
        self.pending.extend_from_slice(&bytes[whole..]);
    }

    /// The digest of everything hashed (FIPS 180-4, 5.1.1 padding).
    #[must_use]
    pub fn finalize(mut self) -> [u8; 32] {
        let bits = self.len.wrapping_mul(8);
        let mut tail = std::mem::take(&mut self.pending);
        tail.push(0x80);
        while tail.len() % 64 != 56 {
            tail.push(0);
        }
        tail.extend_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, &tail);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// Compresses whole 64-byte blocks into `state`. (`sha2` 0.10 takes its blocks as
/// `generic-array` 0.14 arrays, which that crate now marks deprecated.)
#[allow(deprecated)]
fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        let block = sha2::digest::generic_array::GenericArray::from_slice(block);
        sha2::compress256(state, std::slice::from_ref(block));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};

    #[test]
    fn matches_sha256_whatever_the_piece_sizes() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for len in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 10_000] {
            for piece in [1, 3, 64, 100, 4096] {
                let mut h = UploadHash::default();
                data[..len].chunks(piece).for_each(|c| h.update(c));
                assert_eq!(h.len(), len as u64);
                assert_eq!(
                    h.finalize()[..],
                    Sha256::digest(&data[..len])[..],
                    "{len}/{piece}"
                );
            }
        }
    }

    #[test]
    fn a_saved_midstate_resumes_elsewhere() {
        let data = vec![5u8; 1000];
        let mut first = UploadHash::default();
        first.update(&data[..640]);
        let saved = first.midstate().unwrap();
        first.update(&data[640..650]);
        assert!(first.midstate().is_none());
        let mut resumed = UploadHash::resume(saved, 640).unwrap();
        resumed.update(&data[640..]);
        assert_eq!(resumed.finalize()[..], Sha256::digest(&data)[..]);
        assert!(UploadHash::resume(saved, 650).is_err());
    }
}
