//! Bearer tokens from authd: verified with `token::Verifier` against the certificate bundle,
//! then cached (key: SHA-256 of the token, until its `exp`) so a request is not an RSA
//! verification each time.

use std::sync::Arc;

use quick_cache::sync::Cache;
use sha2::{Digest as _, Sha256};
use token::{Challenge, Claims, Verifier};

use super::{strip_scheme, Grants};
use crate::config::TokenAuth;
use crate::endpoint::RequiredAccess;
use crate::error::Error;

/// How many verified tokens are remembered.
const CACHE_CAPACITY: usize = 10_000;

/// `auth.token` at run time.
pub struct BearerAuth {
    realm: String,
    service: String,
    verifier: Verifier,
    /// Verified tokens by the SHA-256 of their text.
    cache: Cache<[u8; 32], Arc<Claims>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth")
            .field("realm", &self.realm)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl BearerAuth {
    /// Reads the certificate bundle.
    ///
    /// # Errors
    /// `Config` when it cannot be read or holds no usable certificate.
    pub fn new(cfg: &TokenAuth) -> Result<Self, Error> {
        let pem = std::fs::read(&cfg.rootcertbundle).map_err(|e| {
            Error::Config(format!(
                "auth.token.rootcertbundle {}: {e}",
                cfg.rootcertbundle.display()
            ))
        })?;
        let verifier = Verifier::from_bundle_pem(&pem, &cfg.issuer, &cfg.service).map_err(|e| {
            Error::Config(format!(
                "auth.token.rootcertbundle {}: {e}",
                cfg.rootcertbundle.display()
            ))
        })?;
        Ok(Self {
            realm: cfg.realm.clone(),
            service: cfg.service.clone(),
            verifier,
            cache: Cache::new(CACHE_CAPACITY),
        })
    }

    /// Verifies the token (or finds it in the cache) and checks it grants `need`.
    pub fn authorize(
        &self,
        credentials: Option<&str>,
        need: Option<&RequiredAccess>,
    ) -> Result<Grants, Error> {
        let challenge = |insufficient_scope| Error::Unauthorized {
            challenge: Challenge {
                realm: &self.realm,
                service: &self.service,
                scope: need.map(RequiredAccess::scope),
                insufficient_scope,
            }
            .to_string(),
        };
        let token = credentials
            .and_then(|c| strip_scheme(c, "Bearer"))
            .ok_or_else(|| challenge(false))?;
        let claims = self.verified(token).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            challenge(false)
        })?;
        if let Some(need) = need {
            if !need
                .actions
                .iter()
                .all(|a| claims.grants(need.kind, &need.name, a))
            {
                return Err(challenge(true));
            }
        }
        Ok(Grants::Token(claims))
    }

    /// What a token from authd grants, once its signature, issuer, audience and expiry are
    /// verified (for the web pages, which fetch tokens themselves).
    ///
    /// # Errors
    /// The verification failure.
    pub fn grants_of(&self, token: &str) -> Result<Arc<Claims>, token::VerifyError> {
        self.verified(token)
    }

    /// authd's token endpoint as clients are sent to it.
    #[must_use]
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Our name in tokens' audience (the `service` parameter of a token request).
    #[must_use]
    pub fn service(&self) -> &str {
        &self.service
    }

    fn verified(&self, token: &str) -> Result<Arc<Claims>, token::VerifyError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(claims) = self.cache.get(&key) {
            if claims.exp > token::unix_now() {
                return Ok(claims);
            }
            self.cache.remove(&key);
        }
        let claims = Arc::new(self.verifier.verify(token)?);
        if claims.exp > token::unix_now() {
            self.cache.insert(key, claims.clone());
        }
        Ok(claims)
    }
}
