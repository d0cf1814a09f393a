//! What the benchmark pushes: large blobs that differ only in their last chunk (so each push is
//! new content while its digest costs one chunk of hashing), and tiny images (layer + config +
//! manifest) that are unique per sequence number.

use bytes::Bytes;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

/// OCI image manifest media type.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// `len` random bytes.
pub fn random_bytes(len: usize) -> Bytes {
    let mut data = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut data);
    Bytes::from(data)
}

/// One large blob: `parts` concatenated.
#[derive(Clone, Debug)]
pub struct BigBlob {
    pub parts: Vec<Bytes>,
    pub len: u64,
    pub digest: String,
}

impl BigBlob {
    /// The blob cut into pieces of `size` bytes (the last may be shorter); zero-copy where a
    /// piece lies within one part.
    pub fn chunks(&self, size: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for part in &self.parts {
            let mut rest = part.clone();
            if !pending.is_empty() {
                let take = rest.len().min(size - pending.len());
                pending.extend_from_slice(&rest.split_to(take));
                if pending.len() == size {
                    out.push(Bytes::from(std::mem::take(&mut pending)));
                }
            }
            while rest.len() >= size {
                out.push(rest.split_to(size));
            }
            pending.extend_from_slice(&rest);
        }
        if !pending.is_empty() {
            out.push(Bytes::from(pending));
        }
        out
    }
}

/// A family of blobs of one size sharing all but their last `tail` bytes.
pub struct BlobFamily {
    base: Bytes,
    tail: Bytes,
    base_hash: Sha256,
}

impl BlobFamily {
    /// Random content of `len` bytes whose last `tail` bytes (at least 8) vary per member.
    pub fn new(len: usize, tail: usize) -> BlobFamily {
        let tail = tail.clamp(8, len);
        let base = random_bytes(len - tail);
        let mut base_hash = Sha256::new();
        base_hash.update(&base);
        BlobFamily {
            base,
            tail: random_bytes(tail),
            base_hash,
        }
    }

    /// Member `n`: the shared base, then the tail with `n` in its last 8 bytes.
    pub fn member(&self, n: u64) -> BigBlob {
        let mut tail = self.tail.to_vec();
        let at = tail.len() - 8;
        tail[at..].copy_from_slice(&n.to_be_bytes());
        let mut hash = self.base_hash.clone();
        hash.update(&tail);
        let digest = format!("sha256:{}", hex::encode(hash.finalize()));
        let len = (self.base.len() + tail.len()) as u64;
        BigBlob {
            parts: vec![self.base.clone(), Bytes::from(tail)],
            len,
            digest,
        }
    }
}

/// A blob small enough to send in one request.
#[derive(Clone, Debug)]
pub struct SmallBlob {
    pub data: Bytes,
    pub digest: String,
}

impl SmallBlob {
    /// `data` with its digest.
    pub fn new(data: Bytes) -> SmallBlob {
        let digest = digest_of(&data);
        SmallBlob { data, digest }
    }
}

/// An image of one layer: the blobs and the manifest that names them.
#[derive(Clone, Debug)]
pub struct TinyImage {
    pub layer: SmallBlob,
    pub config: SmallBlob,
    pub manifest: Bytes,
}

impl TinyImage {
    /// A unique image for `seq` with a layer of `layer_len` bytes (at least 8).
    pub fn new(seq: u64, layer_len: usize) -> TinyImage {
        let mut layer = random_bytes(layer_len.max(8)).to_vec();
        layer[..8].copy_from_slice(&seq.to_be_bytes());
        let layer = SmallBlob::new(Bytes::from(layer));
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"berth.bench.seq": seq.to_string()}},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        });
        let config = SmallBlob::new(Bytes::from(config.to_string()));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.data.len()},
            "layers": [{"mediaType": LAYER_TYPE, "digest": layer.digest, "size": layer.data.len()}],
        });
        TinyImage {
            layer,
            config,
            manifest: Bytes::from(manifest.to_string()),
        }
    }
}

/// An image of many small layers: each blob and the manifest naming them.
#[derive(Clone, Debug)]
pub struct LayeredImage {
    /// The layers, then the config.
    pub blobs: Vec<SmallBlob>,
    pub manifest: Bytes,
}

impl LayeredImage {
    /// A unique image for `seq` with `layers` random layers of `layer_len` bytes (at least 8).
    pub fn new(seq: u64, layers: usize, layer_len: usize) -> LayeredImage {
        let mut blobs: Vec<SmallBlob> = (0..layers)
            .map(|_| {
                let mut layer = random_bytes(layer_len.max(8)).to_vec();
                layer[..8].copy_from_slice(&seq.to_be_bytes());
                SmallBlob::new(Bytes::from(layer))
            })
            .collect();
        let diff_ids: Vec<&str> = blobs.iter().map(|b| b.digest.as_str()).collect();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"berth.bench.seq": seq.to_string()}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = SmallBlob::new(Bytes::from(config.to_string()));
        let layer_list: Vec<serde_json::Value> = blobs
            .iter()
            .map(|b| json!({"mediaType": LAYER_TYPE, "digest": b.digest, "size": b.data.len()}))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.data.len()},
            "layers": layer_list,
        });
        blobs.push(config);
        LayeredImage {
            blobs,
            manifest: Bytes::from(manifest.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat(parts: &[Bytes]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn members_differ_and_digests_match_their_bytes() {
        let family = BlobFamily::new(1000, 100);
        let (a, b) = (family.member(1), family.member(2));
        assert_ne!(a.digest, b.digest);
        assert_eq!(a.len, 1000);
        assert_eq!(a.digest, digest_of(&concat(&a.parts)));
        assert_eq!(b.digest, digest_of(&concat(&b.parts)));
    }

    #[test]
    fn chunks_cover_the_blob_in_order_whatever_the_part_boundaries() {
        let family = BlobFamily::new(1000, 130);
        let blob = family.member(7);
        let chunks = blob.chunks(300);
        let sizes: Vec<usize> = chunks.iter().map(Bytes::len).collect();
        assert_eq!(sizes, vec![300, 300, 300, 100]);
        assert_eq!(concat(&chunks), concat(&blob.parts));
    }

    #[test]
    fn layered_images_name_every_layer_and_their_config() {
        let image = LayeredImage::new(3, 5, 100);
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["layers"].as_array().unwrap().len(), 5);
        assert_eq!(image.blobs.len(), 6);
        assert_eq!(
            manifest["layers"][4]["digest"],
            image.blobs[4].digest.as_str()
        );
        assert_eq!(manifest["config"]["digest"], image.blobs[5].digest.as_str());
        assert_ne!(
            LayeredImage::new(4, 5, 100).blobs[0].digest,
            image.blobs[0].digest
        );
    }

    #[test]
    fn tiny_images_are_unique_and_name_their_blobs() {
        let (a, b) = (TinyImage::new(1, 64), TinyImage::new(2, 64));
        assert_ne!(a.layer.digest, b.layer.digest);
        assert_ne!(a.config.digest, b.config.digest);
        let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(manifest["config"]["digest"], a.config.digest.as_str());
        assert_eq!(manifest["layers"][0]["digest"], a.layer.digest.as_str());
        assert_eq!(manifest["layers"][0]["size"], 64);
    }
}
