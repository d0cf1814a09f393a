//! Keyed digests over several fields: HMAC-SHA256 with each field length-prefixed, so that
//! no two different field lists give the same input. Used for the login cache's keys and for
//! authd's refresh tokens.

use hmac::{Hmac, Mac};
use sha2::Sha256;

fn keyed(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this never falls back in practice.
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// The tag of `parts` under `key`.
pub fn tag(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    keyed(key, parts).finalize().into_bytes().into()
}

/// Whether `mac` is the tag of `parts` under `key` (compared in constant time).
pub fn verify(key: &[u8], parts: &[&[u8]], mac: &[u8]) -> bool {
    keyed(key, parts).verify_slice(mac).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_boundaries_matter_and_keys_differ() {
        let t = tag(b"k", &[b"ab", b"c"]);
        assert_ne!(t, tag(b"k", &[b"a", b"bc"]));
        assert_ne!(t, tag(b"other", &[b"ab", b"c"]));
        assert!(verify(b"k", &[b"ab", b"c"], &t));
        assert!(!verify(b"k", &[b"ab", b"c"], &t[..31]));
    }
}
