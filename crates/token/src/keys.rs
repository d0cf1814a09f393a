//! Signing keys, their certificates, and the key ids registries look tokens' keys up by.
//!
//! A key is RSA (signs RS256) or EC P-256 (signs ES256). Its certificate travels in each
//! token's `x5c` header, and its id in `kid`: by default the libtrust id that distribution's
//! registry 2.x computes, or the RFC 7638 JWK thumbprint (docker_auth's
//! `disable_legacy_key_id`).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

use crate::claims::Claims;

/// Why a key or certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The certificate PEM holds no parsable X.509 certificate.
    #[error("no valid PEM certificate found: {0}")]
    Certificate(String),
    /// The private key PEM is not an RSA (PKCS#1/PKCS#8) or P-256 (SEC1/PKCS#8) key.
    #[error("unsupported or malformed private key: {0}")]
    PrivateKey(String),
    /// The certificate's public key is neither RSA nor EC P-256.
    #[error("unsupported public key algorithm in certificate")]
    Algorithm,
    /// The private key does not belong to the certificate.
    #[error("the private key does not match the certificate's public key")]
    Mismatch,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// Which key id goes into the `kid` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KidStyle {
    /// The libtrust fingerprint (`ABCD:EFGH:…`) that registry 2.x looks keys up by.
    #[default]
    Libtrust,
    /// The RFC 7638 JWK thumbprint.
    Thumbprint,
}

/// The two key families a token may be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Rsa,
    EcP256,
}

impl Family {
    /// The family of a certificate's SubjectPublicKeyInfo (DER).
    pub(crate) fn of_spki(spki_der: &[u8]) -> Result<Self, KeyError> {
        if rsa::RsaPublicKey::from_public_key_der(spki_der).is_ok() {
            Ok(Family::Rsa)
        } else if p256::PublicKey::from_public_key_der(spki_der).is_ok() {
            Ok(Family::EcP256)
        } else {
            Err(KeyError::Algorithm)
        }
    }

    /// Whether a token header's algorithm belongs to this family.
    pub(crate) fn allows(self, alg: Algorithm) -> bool {
        match self {
            Family::Rsa => matches!(alg, Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512),
            Family::EcP256 => alg == Algorithm::ES256,
        }
    }
}

/// A private key with its certificate, ready to sign tokens.
pub struct SigningKey {
    encoding: EncodingKey,
    header: Header,
}

impl SigningKey {
    /// Loads a key and its certificate (PEM) and checks that they belong together.
    ///
    /// # Errors
    /// Malformed PEM, an unsupported algorithm, or a key that is not the certificate's.
    pub fn from_pem(key_pem: &[u8], cert_pem: &[u8], kid: KidStyle) -> Result<Self, KeyError> {
        let cert_der = first_certificate(cert_pem)?;
        let spki = spki_of(&cert_der)?;
        let key_pem =
            std::str::from_utf8(key_pem).map_err(|e| KeyError::PrivateKey(e.to_string()))?;
        let (alg, encoding, public_der) = match Family::of_spki(&spki)? {
            Family::Rsa => {
                let key = rsa::RsaPrivateKey::from_pkcs8_pem(key_pem)
                    .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(key_pem))
                    .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
                let public = key
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
                (
                    Algorithm::RS256,
                    EncodingKey::from_rsa_der(&rsa_pkcs1_der(&key)?),
                    public,
                )
            }
            Family::EcP256 => {
                let key = p256::SecretKey::from_pkcs8_pem(key_pem)
                    .or_else(|_| p256::SecretKey::from_sec1_pem(key_pem))
                    .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
                let public = key
                    .public_key()
                    .to_public_key_der()
                    .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
                let der = key
                    .to_pkcs8_der()
                    .map_err(|e| KeyError::PrivateKey(e.to_string()))?;
                (
                    Algorithm::ES256,
                    EncodingKey::from_ec_der(der.as_bytes()),
                    public,
                )
            }
        };
        if public_der.as_bytes() != spki.as_slice() {
            return Err(KeyError::Mismatch);
        }
        let mut header = Header::new(alg);
        header.typ = Some("JWT".into());
        header.kid = Some(match kid {
            KidStyle::Libtrust => libtrust_key_id(&spki),
            KidStyle::Thumbprint => jwk_thumbprint(&spki)?,
        });
        header.x5c = Some(vec![STANDARD.encode(&cert_der)]);
        Ok(SigningKey { encoding, header })
    }

    /// Signs claims into a compact JWT whose header carries `kid` and `x5c`.
    ///
    /// # Errors
    /// Only if the underlying signer fails.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        jsonwebtoken::encode(&self.header, claims, &self.encoding)
            .map_err(|e| KeyError::Sign(e.to_string()))
    }

    /// The JWS algorithm of this key's tokens: `RS256` or `ES256`.
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        match self.header.alg {
            Algorithm::ES256 => "ES256",
            _ => "RS256",
        }
    }

    /// The `kid` this key's tokens carry.
    pub fn kid(&self) -> &str {
        self.header.kid.as_deref().unwrap_or_default()
    }
}

/// PKCS#1 DER of an RSA private key, the form `EncodingKey::from_rsa_der` takes.
fn rsa_pkcs1_der(key: &rsa::RsaPrivateKey) -> Result<Vec<u8>, KeyError> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    key.to_pkcs1_der()
        .map(|d| d.as_bytes().to_vec())
        .map_err(|e| KeyError::PrivateKey(e.to_string()))
}

/// Every certificate (DER) in a PEM bundle, in order.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, KeyError> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| KeyError::Certificate(e.to_string()))?;
        if block.label == "CERTIFICATE" {
            block
                .parse_x509()
                .map_err(|e| KeyError::Certificate(e.to_string()))?;
            out.push(block.contents);
        }
    }
    if out.is_empty() {
        return Err(KeyError::Certificate("no CERTIFICATE block".into()));
    }
    Ok(out)
}

fn first_certificate(pem: &[u8]) -> Result<Vec<u8>, KeyError> {
    certificates(pem)?
        .into_iter()
        .next()
        .ok_or_else(|| KeyError::Certificate("no CERTIFICATE block".into()))
}

/// The SubjectPublicKeyInfo (DER) of a certificate (DER).
pub(crate) fn spki_of(cert_der: &[u8]) -> Result<Vec<u8>, KeyError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| KeyError::Certificate(e.to_string()))?;
    Ok(cert.tbs_certificate.subject_pki.raw.to_vec())
}

/// The libtrust key id of a public key: SHA-256 of its DER SubjectPublicKeyInfo, first 240
/// bits, base32, in twelve groups of four joined by `:`.
pub fn libtrust_key_id(spki_der: &[u8]) -> String {
    let hash = Sha256::digest(spki_der);
    let encoded = data_encoding::BASE32.encode(&hash[..30]);
    let groups: Vec<&str> = encoded
        .as_bytes()
        .chunks(4)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    groups.join(":")
}

/// The RFC 7638 JWK thumbprint of a public key (DER SubjectPublicKeyInfo), base64url.
///
/// # Errors
/// A key that is neither RSA nor EC P-256.
pub fn jwk_thumbprint(spki_der: &[u8]) -> Result<String, KeyError> {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let canonical = match Family::of_spki(spki_der)? {
        Family::Rsa => {
            let key = rsa::RsaPublicKey::from_public_key_der(spki_der)
                .map_err(|_| KeyError::Algorithm)?;
            format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64(&key.e().to_bytes_be()),
                b64(&key.n().to_bytes_be())
            )
        }
        Family::EcP256 => {
            let key =
                p256::PublicKey::from_public_key_der(spki_der).map_err(|_| KeyError::Algorithm)?;
            let point = p256::EncodedPoint::from(key);
            let (x, y) = (
                point.x().ok_or(KeyError::Algorithm)?,
                point.y().ok_or(KeyError::Algorithm)?,
            );
            format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                b64(x),
                b64(y)
            )
        }
    };
    Ok(b64(&Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RSA key of RFC 7638 §3.1, as DER SubjectPublicKeyInfo.
    fn rfc7638_spki() -> Vec<u8> {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let n = rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(n).unwrap());
        let key = rsa::RsaPublicKey::new(n, rsa::BigUint::from(65537u32)).unwrap();
        key.to_public_key_der().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn libtrust_id_of_the_rfc7638_key() {
        assert_eq!(
            libtrust_key_id(&rfc7638_spki()),
            "VUZD:EDHW:YWLN:RBFQ:KOA3:UVZ2:XKG5:2V2J:WTPI:6SRD:U6PZ:VCO5"
        );
    }

    #[test]
    fn thumbprint_of_the_rfc7638_key() {
        assert_eq!(
            jwk_thumbprint(&rfc7638_spki()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
