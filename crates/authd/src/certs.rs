//! `authd gen-cert`: a token signing key (ECDSA P-256 for ES256 tokens, or RSA 2048 for RS256)
//! with its self-signed certificate, a TLS CA, and a TLS server certificate signed by it. Only
//! absent files are written unless forced.
//!
//! ES256 is the default: signing is about twenty times cheaper than RSA-2048's, which is what
//! bounds authd's token rate, and registry:2 verifies it as well as RS256.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, PKCS_RSA_SHA256,
};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};

use crate::error::Error;

/// What to generate, and where.
#[derive(Debug, Clone)]
pub struct CertRequest {
    /// Output directory (created if absent).
    pub out: PathBuf,
    /// Extra DNS names for the TLS server certificate.
    pub dns: Vec<String>,
    /// Extra IP addresses for the TLS server certificate.
    pub ips: Vec<IpAddr>,
    /// Overwrite existing files.
    pub force: bool,
    /// Make an RSA-2048 token key (RS256) rather than ECDSA P-256 (ES256).
    pub rsa: bool,
}

/// Writes the absent files and returns the paths written.
///
/// # Errors
/// I/O failures, unreadable existing keys, or a certificate present without its key.
pub fn generate(req: &CertRequest) -> Result<Vec<PathBuf>, Error> {
    std::fs::create_dir_all(&req.out).map_err(|e| Error::io(&req.out, e))?;
    let mut written = Vec::new();
    let out = |name: &str| req.out.join(name);

    let make_token_key = if req.rsa { rsa_key_pem } else { ec_key_pem };
    let token_key = key_pair(&out("token.key"), req.force, &mut written, make_token_key)?;
    let token_key = KeyPair::from_pem(&token_key)
        .or_else(|_| KeyPair::from_pem_and_sign_algo(&token_key, &PKCS_RSA_SHA256))
        .map_err(gen_err)?;
    if absent(&out("token.crt"), req.force) {
        let mut p = params("Berth token signing")?;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        write(
            &out("token.crt"),
            p.self_signed(&token_key).map_err(gen_err)?.pem().as_bytes(),
            false,
            &mut written,
        )?;
    }

    let ca_key = key_pair(&out("ca.key"), req.force, &mut written, ec_key_pem)?;
    let ca_key = KeyPair::from_pem(&ca_key).map_err(gen_err)?;
    let ca_cert = ca_certificate(&out("ca.crt"), &ca_key, req.force, &mut written)?;

    let server_key = key_pair(&out("server.key"), req.force, &mut written, ec_key_pem)?;
    let server_key = KeyPair::from_pem(&server_key).map_err(gen_err)?;
    if absent(&out("server.crt"), req.force) {
        let mut p = params("Berth server")?;
        p.subject_alt_names = server_sans(req)?;
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = p
            .signed_by(&server_key, &ca_cert, &ca_key)
            .map_err(gen_err)?;
        write(
            &out("server.crt"),
            cert.pem().as_bytes(),
            false,
            &mut written,
        )?;
    }
    Ok(written)
}

/// Reads the key at `path`, or makes one with `make` when absent (or forced).
fn key_pair(
    path: &Path,
    force: bool,
    written: &mut Vec<PathBuf>,
    make: fn() -> Result<String, Error>,
) -> Result<String, Error> {
    let cert = path.with_extension("crt");
    if !absent(path, force) {
        return std::fs::read_to_string(path).map_err(|e| Error::io(path, e));
    }
    if !force && cert.exists() {
        return Err(Error::CertGen(format!(
            "{} exists without {}; remove it or pass --force",
            cert.display(),
            path.display()
        )));
    }
    let pem = make()?;
    write(path, pem.as_bytes(), true, written)?;
    Ok(pem)
}

fn ca_certificate(
    path: &Path,
    key: &KeyPair,
    force: bool,
    written: &mut Vec<PathBuf>,
) -> Result<Certificate, Error> {
    if !absent(path, force) {
        let pem = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        // Re-signing the parsed parameters gives an issuer with the same name and key.
        return CertificateParams::from_ca_cert_pem(&pem)
            .and_then(|p| p.self_signed(key))
            .map_err(gen_err);
    }
    let mut p = params("Berth development CA")?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = p.self_signed(key).map_err(gen_err)?;
    write(path, cert.pem().as_bytes(), false, written)?;
    Ok(cert)
}

fn server_sans(req: &CertRequest) -> Result<Vec<SanType>, Error> {
    let mut dns = vec!["localhost".to_owned()];
    dns.extend(req.dns.iter().cloned());
    let mut ips: Vec<IpAddr> = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
    ips.extend(req.ips.iter().copied());
    dns.dedup();
    ips.dedup();
    let mut sans = Vec::new();
    for name in dns {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|_| Error::CertGen(format!("invalid DNS name {name:?}")))?;
        sans.push(SanType::DnsName(ia5));
    }
    sans.extend(ips.into_iter().map(SanType::IpAddress));
    Ok(sans)
}

fn params(common_name: &str) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "Berth");
    p.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    p.not_before = now - time::Duration::days(1);
    p.not_after = now + time::Duration::days(3650);
    Ok(p)
}

fn rsa_key_pem() -> Result<String, Error> {
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(gen_err)?;
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|p| p.to_string())
        .map_err(gen_err)
}

fn ec_key_pem() -> Result<String, Error> {
    KeyPair::generate()
        .map(|k| k.serialize_pem())
        .map_err(gen_err)
}

fn absent(path: &Path, force: bool) -> bool {
    force || !path.exists()
}

fn write(path: &Path, bytes: &[u8], secret: bool, written: &mut Vec<PathBuf>) -> Result<(), Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = opts.open(path).map_err(|e| Error::io(path, e))?;
    file.write_all(bytes).map_err(|e| Error::io(path, e))?;
    written.push(path.to_path_buf());
    Ok(())
}

fn gen_err(e: impl std::fmt::Display) -> Error {
    Error::CertGen(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_only_absent_files_and_a_usable_signing_pair() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let req = CertRequest {
            out: dir.path().to_path_buf(),
            dns: vec!["reg.example".into()],
            ips: vec![],
            force: false,
            rsa: false,
        };
        let names = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
                .collect()
        };
        assert_eq!(
            names(generate(&req)?),
            [
                "token.key",
                "token.crt",
                "ca.key",
                "ca.crt",
                "server.key",
                "server.crt"
            ]
        );
        assert!(generate(&req)?.is_empty());
        std::fs::remove_file(dir.path().join("server.crt")).map_err(|e| Error::io("rm", e))?;
        assert_eq!(names(generate(&req)?), ["server.crt"]);

        let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap_or_default();
        let key = token::SigningKey::from_pem(
            &read("token.key"),
            &read("token.crt"),
            token::KidStyle::Libtrust,
        );
        assert!(key.is_ok_and(|k| k.kid().split(':').count() == 12 && k.algorithm() == "ES256"));
        let server = String::from_utf8(read("server.crt")).unwrap_or_default();
        let params = CertificateParams::from_ca_cert_pem(&server).map_err(gen_err)?;
        let dns: Vec<String> = params
            .subject_alt_names
            .iter()
            .filter_map(|s| match s {
                SanType::DnsName(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(dns, ["localhost", "reg.example"]);
        assert!(params
            .subject_alt_names
            .contains(&SanType::IpAddress(Ipv4Addr::LOCALHOST.into())));

        std::fs::remove_file(dir.path().join("token.key")).map_err(|e| Error::io("rm", e))?;
        assert!(generate(&req).is_err_and(|e| e.to_string().contains("exists without")));
        Ok(())
    }

    #[test]
    fn rsa_makes_an_rs256_token_key_and_keeps_it() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let req = CertRequest {
            out: dir.path().to_path_buf(),
            dns: vec![],
            ips: vec![],
            force: false,
            rsa: true,
        };
        generate(&req)?;
        std::fs::remove_file(dir.path().join("server.crt")).map_err(|e| Error::io("rm", e))?;
        generate(&req)?;
        let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap_or_default();
        let key = token::SigningKey::from_pem(
            &read("token.key"),
            &read("token.crt"),
            token::KidStyle::Libtrust,
        );
        assert!(key.is_ok_and(|k| k.algorithm() == "RS256"));
        Ok(())
    }
}
