//! Checking a token: signature by a key of the certificate bundle, algorithm, issuer,
//! audience and validity window.

use std::collections::HashMap;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};

use crate::claims::Claims;
use crate::keys::{certificates, jwk_thumbprint, libtrust_key_id, spki_of, Family, KeyError};

/// Clock skew tolerated on `exp` and `nbf`, as distribution does.
pub const LEEWAY_SECS: u64 = 60;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not a well-formed JWT, or claims of the wrong shape.
    #[error("malformed token")]
    Malformed,
    /// An algorithm other than RS256/384/512 or ES256, or one that does not fit the key.
    #[error("token algorithm {0} is not accepted")]
    Algorithm(String),
    /// Neither the `x5c` certificate nor the `kid` names a key of the bundle.
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("invalid token signature")]
    Signature,
    /// `iss` is not the configured issuer.
    #[error("token issued by another issuer")]
    Issuer,
    /// `aud` does not name this service.
    #[error("token issued for another service")]
    Audience,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is still ahead.
    #[error("token not valid yet")]
    NotYetValid,
}

/// One trusted key from the bundle.
struct TrustedKey {
    cert_der: Vec<u8>,
    family: Family,
    decoding: DecodingKey,
}

/// Verifies tokens against a certificate bundle, an issuer and a service (audience).
#[derive(Clone)]
pub struct Verifier {
    keys: Arc<Vec<TrustedKey>>,
    /// Both key ids (libtrust and thumbprint) of each key → index into `keys`.
    by_kid: Arc<HashMap<String, usize>>,
    issuer: String,
    service: String,
}

impl Verifier {
    /// A verifier trusting every certificate of a PEM bundle.
    ///
    /// # Errors
    /// A bundle with no certificate, or one with an unsupported key.
    pub fn from_bundle_pem(
        bundle_pem: &[u8],
        issuer: &str,
        service: &str,
    ) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        let mut by_kid = HashMap::new();
        for cert_der in certificates(bundle_pem)? {
            let spki = spki_of(&cert_der)?;
            let family = Family::of_spki(&spki)?;
            let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
                .map_err(|e| KeyError::Certificate(e.to_string()))?;
            let raw_key = cert
                .tbs_certificate
                .subject_pki
                .subject_public_key
                .data
                .to_vec();
            let decoding = match family {
                Family::Rsa => DecodingKey::from_rsa_der(&raw_key),
                Family::EcP256 => DecodingKey::from_ec_der(&raw_key),
            };
            by_kid.insert(libtrust_key_id(&spki), keys.len());
            by_kid.insert(jwk_thumbprint(&spki)?, keys.len());
            keys.push(TrustedKey {
                cert_der,
                family,
                decoding,
            });
        }
        Ok(Verifier {
            keys: Arc::new(keys),
            by_kid: Arc::new(by_kid),
            issuer: issuer.to_owned(),
            service: service.to_owned(),
        })
    }

    /// Checks a compact JWT and returns its claims.
    ///
    /// # Errors
    /// The first check that fails, as a [`VerifyError`].
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let key = self.key_for(&header)?;
        if !key.family.allows(header.alg) {
            return Err(VerifyError::Algorithm(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.service]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => VerifyError::Signature,
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
                ErrorKind::InvalidIssuer => VerifyError::Issuer,
                ErrorKind::InvalidAudience => VerifyError::Audience,
                ErrorKind::InvalidAlgorithm => VerifyError::Algorithm(format!("{:?}", header.alg)),
                _ => VerifyError::Malformed,
            })
    }

    /// The trusted key a header points at: its `x5c` leaf if present, else its `kid`.
    fn key_for(&self, header: &jsonwebtoken::Header) -> Result<&TrustedKey, VerifyError> {
        if let Some(leaf) = header.x5c.as_ref().and_then(|chain| chain.first()) {
            let der = STANDARD.decode(leaf).map_err(|_| VerifyError::Malformed)?;
            return self
                .keys
                .iter()
                .find(|k| k.cert_der == der)
                .ok_or(VerifyError::UnknownKey);
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        self.by_kid
            .get(kid)
            .and_then(|&i| self.keys.get(i))
            .ok_or(VerifyError::UnknownKey)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::pkcs8::{EncodePrivateKey, LineEnding};

    use super::*;
    use crate::claims::Access;
    use crate::keys::{KidStyle, SigningKey};

    /// A freshly generated key pair: (key PEM, self-signed certificate PEM).
    fn rsa_pair() -> (String, String) {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let kp =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["token".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        (pem, cert.pem())
    }

    fn ec_pair() -> (String, String) {
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["token".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        (kp.serialize_pem(), cert.pem())
    }

    fn claims(ttl: u64) -> Claims {
        Claims::new(
            "berth-auth",
            "alice",
            "registry",
            Duration::from_secs(ttl),
            vec![Access {
                kind: "repository".into(),
                name: "alice/app".into(),
                actions: vec!["pull".into()],
            }],
        )
    }

    fn verifier(cert: &str) -> Verifier {
        Verifier::from_bundle_pem(cert.as_bytes(), "berth-auth", "registry").unwrap()
    }

    /// Rewrites a token's header (e.g. to drop `x5c`) keeping payload and signature.
    fn with_header(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let mut header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        edit(&mut header);
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
        format!("{header}.{}.{}", parts[1], parts[2])
    }

    #[test]
    fn round_trips_rsa_and_ec_by_x5c_and_by_either_kid() {
        for (key, cert) in [rsa_pair(), ec_pair()] {
            for style in [KidStyle::Libtrust, KidStyle::Thumbprint] {
                let signer = SigningKey::from_pem(key.as_bytes(), cert.as_bytes(), style).unwrap();
                let token = signer.sign(&claims(300)).unwrap();
                let v = verifier(&cert);
                assert_eq!(v.verify(&token).unwrap().sub, "alice");
                // A token with only a `kid`, as older issuers send.
                let mut header =
                    jsonwebtoken::Header::new(jsonwebtoken::decode_header(&token).unwrap().alg);
                header.kid = Some(signer.kid().to_owned());
                let encoding = match header.alg {
                    jsonwebtoken::Algorithm::RS256 => {
                        jsonwebtoken::EncodingKey::from_rsa_pem(key.as_bytes())
                    }
                    _ => jsonwebtoken::EncodingKey::from_ec_pem(key.as_bytes()),
                };
                let by_kid =
                    jsonwebtoken::encode(&header, &claims(300), &encoding.unwrap()).unwrap();
                assert_eq!(v.verify(&by_kid).unwrap().access, claims(300).access);
            }
        }
    }

    #[test]
    fn refuses_a_key_that_is_not_the_certificates() {
        let (key, _) = rsa_pair();
        let (_, other_cert) = rsa_pair();
        assert!(matches!(
            SigningKey::from_pem(key.as_bytes(), other_cert.as_bytes(), KidStyle::Libtrust),
            Err(KeyError::Mismatch)
        ));
    }

    #[test]
    fn refuses_tokens_that_must_not_pass() {
        let (key, cert) = ec_pair();
        let (other_key, other_cert) = ec_pair();
        let signer =
            SigningKey::from_pem(key.as_bytes(), cert.as_bytes(), KidStyle::Libtrust).unwrap();
        let stranger = SigningKey::from_pem(
            other_key.as_bytes(),
            other_cert.as_bytes(),
            KidStyle::Libtrust,
        )
        .unwrap();
        let v = verifier(&cert);
        let good = signer.sign(&claims(300)).unwrap();

        // Another key, with its own x5c, or pretending to be ours by kid.
        let foreign = stranger.sign(&claims(300)).unwrap();
        assert_eq!(v.verify(&foreign), Err(VerifyError::UnknownKey));
        let spoofed = with_header(&foreign, |h| {
            h.as_object_mut().unwrap().remove("x5c");
            h["kid"] = signer.kid().into();
        });
        assert_eq!(v.verify(&spoofed), Err(VerifyError::Signature));

        // alg "none" and HMAC keyed with the public certificate.
        let none = with_header(&good, |h| h["alg"] = "none".into());
        assert_eq!(v.verify(&none), Err(VerifyError::Malformed));
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims(300),
            &jsonwebtoken::EncodingKey::from_secret(cert.as_bytes()),
        )
        .unwrap();
        let hs = with_header(&hs, |h| h["kid"] = signer.kid().into());
        assert!(matches!(v.verify(&hs), Err(VerifyError::Algorithm(_))));

        // Issuer, audience, expiry, not-before.
        let mut c = claims(300);
        c.iss = "someone-else".into();
        assert_eq!(
            v.verify(&signer.sign(&c).unwrap()),
            Err(VerifyError::Issuer)
        );
        let mut c = claims(300);
        c.aud = crate::claims::Audience(vec!["other-registry".into()]);
        assert_eq!(
            v.verify(&signer.sign(&c).unwrap()),
            Err(VerifyError::Audience)
        );
        let mut c = claims(300);
        c.exp = c.iat - LEEWAY_SECS - 10;
        assert_eq!(
            v.verify(&signer.sign(&c).unwrap()),
            Err(VerifyError::Expired)
        );
        let mut c = claims(300);
        c.exp = c.iat - LEEWAY_SECS + 10;
        assert!(
            v.verify(&signer.sign(&c).unwrap()).is_ok(),
            "within the leeway"
        );
        let mut c = claims(900);
        c.nbf = c.iat + LEEWAY_SECS + 60;
        assert_eq!(
            v.verify(&signer.sign(&c).unwrap()),
            Err(VerifyError::NotYetValid)
        );

        // Tampered payload, garbage.
        let parts: Vec<&str> = good.split('.').collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        payload["access"][0]["actions"] = serde_json::json!(["pull", "push"]);
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            parts[2]
        );
        assert_eq!(v.verify(&tampered), Err(VerifyError::Signature));
        assert_eq!(v.verify("not.a.token"), Err(VerifyError::Malformed));
        assert_eq!(v.verify(""), Err(VerifyError::Malformed));
    }
}
