//! docker_auth's TLS knobs, written as Go's `crypto/tls` names them (or their numbers), mapped
//! onto rustls: `tls_min_version` (`TLS10`..`TLS13`), `tls_cipher_suites`
//! (`TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`, `TLS_AES_128_GCM_SHA256`, …) and
//! `tls_curve_preferences` (`P256`, `P384`, `X25519`, …). rustls speaks TLS 1.2 and 1.3 only,
//! with AEAD suites and ECDHE key exchange; a name it lacks is refused with a sentence saying so,
//! never dropped silently.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::crypto::SupportedKxGroup;
use rustls::{ProtocolVersion, SupportedCipherSuite, SupportedProtocolVersion};

/// Go's cipher suite names (`crypto/tls` constants, as docker_auth lists them) and their IANA
/// numbers.
const SUITES: &[(&str, u16)] = &[
    ("TLS_RSA_WITH_RC4_128_SHA", 0x0005),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000a),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", 0xc007),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0xc011),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xc012),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xc023),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xc02b),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", 0xcca8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", 0xcca9),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca9),
    ("TLS_AES_128_GCM_SHA256", 0x1301),
    ("TLS_AES_256_GCM_SHA384", 0x1302),
    ("TLS_CHACHA20_POLY1305_SHA256", 0x1303),
];

/// Go's curve names (docker_auth's `P256`…, and the `crypto/tls` constants `CurveP256`…) and
/// their IANA numbers.
const CURVES: &[(&str, u16)] = &[
    ("P256", 23),
    ("CurveP256", 23),
    ("P384", 24),
    ("CurveP384", 24),
    ("P521", 25),
    ("CurveP521", 25),
    ("X25519", 29),
];

/// Go's version names and numbers; the first three are below what rustls speaks.
const VERSIONS: &[(&str, u16)] = &[
    ("SSL30", 0x0300),
    ("TLS10", 0x0301),
    ("TLS11", 0x0302),
    ("TLS12", 0x0303),
    ("TLS13", 0x0304),
];

/// A value as written in YAML: a name, or a number (`0xc02b`, `24`) as Go also accepts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum GoName {
    /// A number.
    Number(u64),
    /// A name, or a number written as text (`"0xc02b"`).
    Name(String),
}

impl GoName {
    /// The number this stands for in `table`, if any; Go's own rule: a name, else a number.
    fn resolve(&self, table: &[(&str, u16)]) -> Option<u16> {
        match self {
            GoName::Number(n) => u16::try_from(*n).ok(),
            GoName::Name(s) => table
                .iter()
                .find(|(name, _)| name == s)
                .map(|(_, id)| *id)
                .or_else(|| parse_number(s)),
        }
    }
}

impl std::fmt::Display for GoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoName::Number(n) => write!(f, "{n:#06x}"),
            GoName::Name(s) => f.write_str(s),
        }
    }
}

fn parse_number(s: &str) -> Option<u16> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The TLS settings of a listener: which versions, suites and key-exchange groups it offers.
#[derive(Debug, Clone)]
pub struct TlsPolicy {
    /// The versions spoken, newest first.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// rustls's ring provider, its suites and groups narrowed as configured.
    pub provider: Arc<CryptoProvider>,
}

impl Default for TlsPolicy {
    /// TLS 1.3 and 1.2 with every suite and group rustls's ring provider has.
    fn default() -> Self {
        TlsPolicy {
            versions: rustls::DEFAULT_VERSIONS.to_vec(),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        }
    }
}

impl TlsPolicy {
    /// The policy for docker_auth's three keys, each already resolved by [`min_version`],
    /// [`cipher_suite`] and [`kx_group`] (so that a bad name is reported at its line). Go's suite
    /// list governs TLS 1.0–1.2 only (TLS 1.3's suites are not configurable in Go), so when it
    /// names no TLS 1.3 suite all of those stay; naming some narrows TLS 1.3 too.
    ///
    /// # Errors
    /// A sentence when no listed suite is for an allowed version, or no curve is listed.
    pub fn new(
        versions: Option<Vec<&'static SupportedProtocolVersion>>,
        suites: Option<&[SupportedCipherSuite]>,
        groups: Option<&[&'static dyn SupportedKxGroup]>,
    ) -> Result<Self, String> {
        let mut provider = rustls::crypto::ring::default_provider();
        let versions = versions.unwrap_or_else(|| rustls::DEFAULT_VERSIONS.to_vec());
        if let Some(list) = suites {
            let mut chosen: Vec<SupportedCipherSuite> = Vec::new();
            for suite in list {
                if !chosen.contains(suite) {
                    chosen.push(*suite);
                }
            }
            if !chosen
                .iter()
                .any(|s| s.version() == &rustls::version::TLS13)
            {
                chosen.extend(
                    provider
                        .cipher_suites
                        .iter()
                        .filter(|s| s.version() == &rustls::version::TLS13),
                );
            }
            provider.cipher_suites = chosen;
        }
        if let Some(list) = groups {
            if list.is_empty() {
                return Err("server.tls_curve_preferences: list at least one curve".to_owned());
            }
            let mut chosen: Vec<&'static dyn SupportedKxGroup> = Vec::new();
            for group in list {
                if !chosen.iter().any(|g| g.name() == group.name()) {
                    chosen.push(*group);
                }
            }
            provider.kx_groups = chosen;
        }
        if !provider
            .cipher_suites
            .iter()
            .any(|s| versions.contains(&s.version()))
        {
            return Err(
                "server.tls_cipher_suites: none of the listed suites is for a TLS version allowed \
                 by server.tls_min_version"
                    .to_owned(),
            );
        }
        Ok(TlsPolicy {
            versions,
            provider: Arc::new(provider),
        })
    }
}

/// The versions spoken for a `tls_min_version` of `v`: TLS 1.3 alone, or 1.3 and 1.2 (also for
/// the floors below 1.2 that rustls never speaks: see [`below_tls12`]).
///
/// # Errors
/// A sentence when `v` is no TLS version.
pub fn min_version(v: &GoName) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let not_a_version = || format!("{v} is not a TLS version (TLS10, TLS11, TLS12, TLS13)");
    let id = v.resolve(VERSIONS).ok_or_else(not_a_version)?;
    match ProtocolVersion::from(id) {
        ProtocolVersion::TLSv1_3 => Ok(vec![&rustls::version::TLS13]),
        ProtocolVersion::TLSv1_2
        | ProtocolVersion::TLSv1_1
        | ProtocolVersion::TLSv1_0
        | ProtocolVersion::SSLv3 => Ok(rustls::DEFAULT_VERSIONS.to_vec()),
        _ => Err(not_a_version()),
    }
}

/// Whether `v` asks for a floor below TLS 1.2 (which is then TLS 1.2: worth a warning).
pub fn below_tls12(v: &GoName) -> bool {
    v.resolve(VERSIONS).is_some_and(|id| id < 0x0303)
}

/// The rustls suite for a Go cipher suite name or number.
///
/// # Errors
/// A sentence when Go has no such suite or rustls does not implement it.
pub fn cipher_suite(name: &GoName) -> Result<SupportedCipherSuite, String> {
    if matches!(name, GoName::Name(s) if s == "TLS_FALLBACK_SCSV") {
        return Err("TLS_FALLBACK_SCSV is a signal, not a cipher suite; leave it out".to_owned());
    }
    let id = name
        .resolve(SUITES)
        .ok_or_else(|| format!("{name} is not a Go cipher suite name or number"))?;
    rustls::crypto::ring::ALL_CIPHER_SUITES
        .iter()
        .find(|s| u16::from(s.suite()) == id)
        .copied()
        .ok_or_else(|| {
            format!(
                "{name} is not available: rustls offers only AEAD suites (AES-GCM, \
                 ChaCha20-Poly1305) with ECDHE key exchange, no CBC, RC4, 3DES or RSA key \
                 exchange; list TLS_ECDHE_*_GCM_* or *_CHACHA20_POLY1305 suites instead"
            )
        })
}

/// The rustls key-exchange group for a Go curve name or number.
///
/// # Errors
/// A sentence when Go has no such curve or rustls does not implement it.
pub fn kx_group(name: &GoName) -> Result<&'static dyn SupportedKxGroup, String> {
    let id = name.resolve(CURVES).ok_or_else(|| {
        format!("{name} is not a Go curve name or number (P256, P384, P521, X25519)")
    })?;
    rustls::crypto::ring::ALL_KX_GROUPS
        .iter()
        .find(|g| u16::from(g.name()) == id)
        .copied()
        .ok_or_else(|| {
            format!("{name} is not available: rustls offers X25519, P256 and P384 (no P521)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{acceptor, certified_key, Fixed};
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    use rustls::pki_types::ServerName;

    fn name(s: &str) -> GoName {
        GoName::Name(s.to_owned())
    }

    /// The policy for the three keys as written (`None` = key absent).
    fn policy(
        min: Option<GoName>,
        suites: Option<&[GoName]>,
        curves: Option<&[GoName]>,
    ) -> Result<TlsPolicy, String> {
        let versions = min.as_ref().map(min_version).transpose()?;
        let suites: Option<Vec<_>> = suites
            .map(|l| l.iter().map(cipher_suite).collect())
            .transpose()?;
        let groups: Option<Vec<_>> = curves
            .map(|l| l.iter().map(kx_group).collect())
            .transpose()?;
        TlsPolicy::new(versions, suites.as_deref(), groups.as_deref())
    }

    /// A self-signed ECDSA P-256 certificate for `localhost`.
    fn cert() -> (Vec<u8>, Vec<u8>) {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (
            c.cert.pem().into_bytes(),
            c.key_pair.serialize_pem().into_bytes(),
        )
    }

    /// Whether a client limited to `versions`, `suites` and `groups` completes a handshake with
    /// a server holding `policy`.
    async fn handshake(
        policy: &TlsPolicy,
        versions: &[&'static SupportedProtocolVersion],
        suites: &[rustls::SupportedCipherSuite],
        groups: &[&'static dyn rustls::crypto::SupportedKxGroup],
    ) -> bool {
        let (cert_pem, key_pem) = cert();
        let server = acceptor(
            Arc::new(Fixed(Arc::new(certified_key(&cert_pem, &key_pem).unwrap()))),
            policy,
        )
        .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut &cert_pem[..]) {
            roots.add(c.unwrap()).unwrap();
        }
        let mut provider = rustls::crypto::ring::default_provider();
        provider.cipher_suites = suites.to_vec();
        provider.kx_groups = groups.to_vec();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let (a, b) = tokio::io::duplex(64 * 1024);
        let name = ServerName::try_from("localhost").unwrap();
        let (client, server) = tokio::join!(connector.connect(name, a), server.accept(b));
        client.is_ok() && server.is_ok()
    }

    const V12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
    const V13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
    const ALL_GROUPS: &[&dyn rustls::crypto::SupportedKxGroup] =
        &[kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];

    #[tokio::test]
    async fn versions_suites_and_curves_decide_the_handshake() {
        let any12 = &[
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ];
        let any13 = &[cs::TLS13_AES_128_GCM_SHA256, cs::TLS13_AES_256_GCM_SHA384];
        let default = TlsPolicy::default();
        assert!(handshake(&default, V12, any12, ALL_GROUPS).await);
        assert!(handshake(&default, V13, any13, ALL_GROUPS).await);

        let tls13 = policy(Some(name("TLS13")), None, None).unwrap();
        assert!(!handshake(&tls13, V12, any12, ALL_GROUPS).await);
        assert!(handshake(&tls13, V13, any13, ALL_GROUPS).await);
        // Lower floors than rustls speaks stay at TLS 1.2, like TLS12.
        for floor in ["TLS10", "TLS11", "TLS12", "0x0303"] {
            let p = policy(Some(name(floor)), None, None).unwrap();
            assert!(handshake(&p, V12, any12, ALL_GROUPS).await, "{floor}");
        }

        // A list of TLS 1.2 suites narrows TLS 1.2 only, as in Go.
        let only128 = [name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")];
        let p = policy(None, Some(&only128), None).unwrap();
        let c256 = &[cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384];
        assert!(!handshake(&p, V12, c256, ALL_GROUPS).await);
        assert!(handshake(&p, V12, any12, ALL_GROUPS).await);
        assert!(handshake(&p, V13, &[cs::TLS13_AES_256_GCM_SHA384], ALL_GROUPS).await);
        // Naming a TLS 1.3 suite narrows TLS 1.3 as well; numbers count as names do.
        let with13 = [name("TLS_AES_256_GCM_SHA384"), GoName::Number(0xc02b)];
        let p = policy(None, Some(&with13), None).unwrap();
        assert!(!handshake(&p, V13, &[cs::TLS13_AES_128_GCM_SHA256], ALL_GROUPS).await);
        assert!(handshake(&p, V13, &[cs::TLS13_AES_256_GCM_SHA384], ALL_GROUPS).await);
        assert!(handshake(&p, V12, any12, ALL_GROUPS).await);

        let p384 = policy(None, None, Some(&[GoName::Number(24)])).unwrap();
        for versions in [V12, V13] {
            let suites: &[_] = if versions == V12 { any12 } else { any13 };
            assert!(!handshake(&p384, versions, suites, &[kx_group::X25519]).await);
            assert!(handshake(&p384, versions, suites, &[kx_group::SECP384R1]).await);
        }
        let named = policy(None, None, Some(&[name("X25519"), name("CurveP256")])).unwrap();
        assert!(!handshake(&named, V13, any13, &[kx_group::SECP384R1]).await);
        assert!(handshake(&named, V13, any13, &[kx_group::SECP256R1]).await);
    }

    #[test]
    fn names_rustls_lacks_are_refused_with_a_reason() {
        let suite = |n: &str| cipher_suite(&name(n)).err();
        let curve = |n: &str| kx_group(&name(n)).err();
        let table = [
            (suite("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"), "no CBC"),
            (suite("TLS_RSA_WITH_AES_128_GCM_SHA256"), "RSA key exchange"),
            (suite("TLS_RSA_WITH_RC4_128_SHA"), "RC4"),
            (suite("0x000a"), "3DES"),
            (suite("TLS_FALLBACK_SCSV"), "not a cipher suite"),
            (suite("TLS_MADE_UP"), "not a Go cipher suite name"),
            (curve("P521"), "no P521"),
            (curve("CurveP521"), "no P521"),
            (curve("brainpool"), "not a Go curve name"),
            (policy(None, None, Some(&[])).err(), "at least one curve"),
            (min_version(&name("TLS99")).err(), "not a TLS version"),
            (
                min_version(&GoName::Number(0x0305)).err(),
                "not a TLS version",
            ),
            (
                policy(
                    Some(name("TLS13")),
                    Some(&[
                        name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
                        name("TLS_AES_128_GCM_SHA256"),
                    ]),
                    None,
                )
                .ok()
                .map(|_| "TLS 1.3 suites listed: fine".to_owned()),
                "fine",
            ),
        ];
        for (got, want) in table {
            let got = got.unwrap_or_default();
            assert!(got.contains(want), "{want}: {got}");
        }
        assert!(below_tls12(&name("TLS10")) && !below_tls12(&name("TLS12")));
        let yaml: Vec<GoName> = serde_yaml::from_str("[0xc02b, 24, TLS12, \"0x1301\"]").unwrap();
        assert_eq!(
            yaml,
            [
                GoName::Number(0xc02b),
                GoName::Number(24),
                name("TLS12"),
                name("0x1301")
            ]
        );
        assert!(cipher_suite(&yaml[0]).is_ok() && kx_group(&yaml[1]).is_ok());
        assert!(cipher_suite(&yaml[3]).is_ok());
    }
}
