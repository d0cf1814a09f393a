//! TLS for both daemons: a certificate chain and key read from PEM, and the rustls acceptor
//! (HTTP/2 and HTTP/1.1 by ALPN, versions and suites as a [`TlsPolicy`] allows) that asks a
//! resolver for the certificate at each handshake, so a daemon that reloads its configuration
//! can swap it; and a client configuration trusting a given CA.

use std::path::Path;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::error::Error;
use crate::tls_policy::TlsPolicy;

/// A certificate chain (leaf first) and its signing key, from PEM text.
///
/// # Errors
/// A reason naming what is missing, unreadable or mismatched.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, String> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the certificate file".to_owned());
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| format!("unreadable key: {e}"))?
        .ok_or("no private key in the key file")?;
    let key = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| format!("unusable key: {e}"))?;
    let certified = CertifiedKey::new(certs, key);
    certified
        .keys_match()
        .map_err(|e| format!("key does not match certificate: {e}"))?;
    Ok(certified)
}

/// [`certified_key`] from the files `cert` and `key`.
///
/// # Errors
/// [`Error::Read`] for an unreadable file, [`Error::Pem`] for unusable content.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|cause| Error::Read {
            path: p.to_path_buf(),
            cause,
        })
    };
    certified_key(&read(cert)?, &read(key)?)
        .map_err(|e| Error::Pem(format!("{} / {}: {e}", cert.display(), key.display())))
}

/// An acceptor that asks `certs` for the certificate at each handshake and speaks what
/// `policy` allows.
///
/// # Errors
/// [`Error::Pem`] when rustls finds no usable suite for the policy's versions.
pub fn acceptor(
    certs: Arc<dyn ResolvesServerCert>,
    policy: &TlsPolicy,
) -> Result<TlsAcceptor, Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(policy.provider.clone())
        .with_protocol_versions(&policy.versions)
        .map_err(|e| Error::Pem(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certs);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A client configuration trusting only the CA certificates in `ca_pem` (for authd's LDAP
/// connections when `ca_certificate` is set).
///
/// # Errors
/// A reason when the PEM holds no usable certificate.
pub fn client_config(ca_pem: &[u8]) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &ca_pem[..]) {
        let cert = cert.map_err(|e| format!("unreadable certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("unusable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("no certificate in the CA file".to_owned());
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// One certificate for the life of the process.
#[derive(Debug)]
pub struct Fixed(pub Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
