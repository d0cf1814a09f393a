//! Loading `auth.yaml`: parse ([`raw`]) then check everything that needs more than one value or
//! a file (keys, certificates, htpasswd), giving a ready [`Config`] or an error with the file,
//! line and reason. Relative paths are relative to the config file's directory.

pub mod raw;
pub mod sources;
pub mod unsupported;
pub mod warnings;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderName;
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use token::{KidStyle, SigningKey};

use crate::acl::matcher::IpRange;
use crate::acl::Acl;
use crate::authn::ext_auth::ExtAuth;
use crate::authn::ldap::{settings::Settings as LdapSettings, Ldap};
use crate::authn::{parse_htpasswd, Authenticators, Backend, Users};
use crate::error::Error;
use crate::ext_authz::ExtAuthz;
use crate::program::Program;
use raw::{ListenAddr, Net, RawConfig, RawServer, RawThrottle};

/// How long shutdown waits for open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
use sources::{Fingerprint, Sources};

/// A loaded, checked configuration; swapped whole on reload.
pub struct Config {
    /// Where listening happens: `host:port` or a Unix socket (a change needs a restart).
    pub addr: server::ListenOn,
    /// Where `/metrics` is served instead of `addr`, if set (a change needs a restart).
    pub debug_addr: Option<SocketAddr>,
    /// Timeouts, connection cap and header bound (a change needs a restart).
    pub limits: server::Limits,
    /// The HTTPS certificate chain and key, when authd serves HTTPS.
    pub tls: Option<Arc<CertifiedKey>>,
    /// TLS versions, suites and groups offered (a change needs a restart).
    pub tls_policy: server::tls_policy::TlsPolicy,
    /// What `/auth` and `/auth/token` are served under (`""` or `/a/b`; a change needs a
    /// restart).
    pub path_prefix: String,
    /// Whether answers carry `Strict-Transport-Security`.
    pub hsts: bool,
    /// How to find the client address behind a proxy.
    pub real_ip: Option<RealIp>,
    /// Token issuing settings.
    pub token: TokenSettings,
    /// Users and the other authenticators, in the order they are asked.
    pub authn: Authenticators,
    /// Failure lockout limits.
    pub throttle: RawThrottle,
    /// The rules.
    pub acl: Acl,
    /// What loaded but deserves a warning (rules that can never match), with file and line.
    pub warnings: Vec<String>,
    /// The program asked for scopes no rule matched (`ext_authz`).
    pub ext_authz: Option<ExtAuthz>,
    /// Every file this configuration was read from, watched for changes.
    pub files: Vec<PathBuf>,
    /// Digest of those files' content as read for this configuration.
    pub fingerprint: Fingerprint,
}

/// `server.real_ip_header` and friends.
pub struct RealIp {
    /// The header.
    pub header: HeaderName,
    /// Entry position; negative counts from the end.
    pub pos: i64,
    /// Peers whose header is believed (`None` = all).
    pub trusted: Option<Vec<IpRange>>,
}

/// The `token:` section, with the key loaded.
pub struct TokenSettings {
    /// `iss`.
    pub issuer: String,
    /// Lifetime.
    pub ttl: Duration,
    /// The signing key and certificate.
    pub key: SigningKey,
    /// Accepted `service` values (`None` = any).
    pub services: Option<Vec<String>>,
    /// Lifetime of a refresh token (`token.refresh_expiration`).
    pub refresh_ttl: Duration,
    /// Secret refresh tokens are authenticated with, derived from the signing key.
    pub refresh_secret: [u8; 32],
}

impl RealIp {
    /// The client address: the peer's, or the header's entry when the peer is a trusted proxy
    /// or came through the Unix socket (`peer` is `None`).
    /// Several lines of the header are one comma-separated list, in order (RFC 9110 §5.3), so a
    /// client's own line cannot hide the one its proxy appended.
    ///
    /// # Errors
    /// [`Error::ClientAddress`] when a believed peer sent no such header, a line that is not
    /// text, no entry at `pos`, or an entry that is not an address: as docker_auth, such a
    /// request is refused rather than judged by the proxy's own address.
    pub fn client_ip(
        &self,
        peer: Option<IpAddr>,
        headers: &axum::http::HeaderMap,
    ) -> Result<IpAddr, Error> {
        if let (Some(peer), Some(trusted)) = (peer, &self.trusted) {
            if !trusted.iter().any(|r| r.contains(peer)) {
                return Ok(peer);
            }
        }
        let refuse = |reason: String| Error::ClientAddress {
            header: self.header.to_string(),
            reason,
        };
        let mut entries = Vec::new();
        for line in headers.get_all(&self.header) {
            let line = line
                .to_str()
                .map_err(|_| refuse("a line is not text".to_owned()))?;
            entries.extend(line.split(',').map(str::trim));
        }
        if entries.is_empty() {
            return Err(refuse("absent".to_owned()));
        }
        let len = i64::try_from(entries.len()).unwrap_or(i64::MAX);
        let pos = if self.pos < 0 {
            len.saturating_add(self.pos).max(0)
        } else {
            self.pos
        };
        let entry = usize::try_from(pos)
            .ok()
            .and_then(|p| entries.get(p))
            .ok_or_else(|| refuse(format!("no entry at position {}", self.pos)))?;
        // docker_auth takes `address:port` and `[address]:port` too.
        entry
            .parse::<IpAddr>()
            .or_else(|_| entry.parse::<SocketAddr>().map(|a| a.ip()))
            .map(|ip| ip.to_canonical())
            .map_err(|_| refuse(format!("entry {entry:?} is not an address")))
    }
}

/// `server.addr` as `server.net` means it: a Unix socket path (relative to the file's folder)
/// needs `net: unix` and `real_ip_header`, since the socket carries no client address.
fn listen_on(
    server: &RawServer,
    resolve: &impl Fn(&Path) -> PathBuf,
) -> Result<server::ListenOn, String> {
    match (server.net.unwrap_or(Net::Tcp), &server.addr) {
        (Net::Tcp, ListenAddr::Tcp(a)) => Ok(server::ListenOn::Tcp(*a)),
        (Net::Tcp, ListenAddr::Path(p)) => Err(format!(
            "server.addr: {} is a socket path: set server.net: unix, or give host:port",
            p.display()
        )),
        (Net::Unix, ListenAddr::Tcp(a)) => Err(format!(
            "server.addr: with server.net: unix, give a socket path (e.g. ./authd.sock), not {a}"
        )),
        (Net::Unix, ListenAddr::Path(_)) if server.real_ip_header.is_none() => Err(
            "server.net: unix needs server.real_ip_header: the socket carries no client address, \
             so the proxy in front must pass it (docker_auth answers every request 400 without it)"
                .to_owned(),
        ),
        (Net::Unix, ListenAddr::Path(_)) if server.trusted_proxies.is_some() => Err(
            "server.trusted_proxies: on a Unix socket every peer is the proxy: remove it"
                .to_owned(),
        ),
        (Net::Unix, ListenAddr::Path(p)) => Ok(server::ListenOn::Unix(resolve(p))),
    }
}

impl Config {
    /// Logs each of [`Config::warnings`].
    pub fn log_warnings(&self) {
        for w in &self.warnings {
            tracing::warn!("{w}");
        }
    }
}

/// Reads and checks the configuration at `path`.
///
/// # Errors
/// [`Error::Config`] with file, line and reason; [`Error::Io`]/[`Error::Key`] for referenced files.
pub fn load(path: &Path) -> Result<Config, Error> {
    let mut sources = Sources::default();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    sources.record(path.to_path_buf(), &bytes);
    let text = String::from_utf8(bytes).map_err(|_| Error::config(path, "not UTF-8 text"))?;
    let raw: RawConfig =
        serde_yaml::from_str(&text).map_err(|e| Error::config(path, e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| base.join(p);
    let bad = |reason: String| Error::config(path, reason);

    let tls = match (&raw.server.certificate, &raw.server.key) {
        (Some(c), Some(k)) => {
            let (c, k) = (resolve(c), resolve(k));
            let certified = server::tls::certified_key(
                &sources.read(path, "server.certificate", c)?,
                &sources.read(path, "server.key", k)?,
            )
            .map_err(|e| bad(format!("server.certificate/key: {e}")))?;
            Some(Arc::new(certified))
        }
        (None, None) => None,
        _ => return Err(bad("server: certificate and key go together".to_owned())),
    };

    let (cert, key) = match (
        raw.token
            .certificate
            .as_ref()
            .or(raw.server.certificate.as_ref()),
        raw.token.key.as_ref().or(raw.server.key.as_ref()),
    ) {
        (Some(c), Some(k)) => (resolve(c), resolve(k)),
        _ => {
            return Err(bad(
                "token: certificate and key are required (or server.certificate and key)"
                    .to_owned(),
            ))
        }
    };
    let (cert_pem, key_pem) = (
        sources.read(path, "token.certificate", cert.clone())?,
        sources.read(path, "token.key", key.clone())?,
    );
    let kid = if raw.token.disable_legacy_key_id {
        KidStyle::Thumbprint
    } else {
        KidStyle::Libtrust
    };
    let signing = SigningKey::from_pem(&key_pem, &cert_pem, kid).map_err(|cause| Error::Key {
        path: key.clone(),
        cause,
    })?;

    let htpasswd = match &raw.htpasswd {
        Some(h) => {
            let p = resolve(&h.path);
            let bytes = sources.read(path, "htpasswd.path", p.clone())?;
            parse_htpasswd(&p, &String::from_utf8_lossy(&bytes)).map_err(|e| bad(e.to_string()))?
        }
        None => Vec::new(),
    };
    let users = Users::new(raw.users, htpasswd).map_err(bad)?;
    let limits = server::Limits::new(
        "server",
        raw.server.timeouts,
        raw.server.max_connections,
        raw.server.max_header_bytes,
        DRAIN_TIMEOUT,
    )
    .map_err(bad)?;

    let addr = listen_on(&raw.server, &resolve).map_err(bad)?;
    let debug_addr = match raw.server.debug.map(|d| d.addr) {
        Some(ListenAddr::Tcp(a)) => Some(a),
        Some(ListenAddr::Path(_)) => {
            return Err(bad("server.debug.addr: must be host:port".to_owned()))
        }
        None => None,
    };
    let unix = matches!(addr, server::ListenOn::Unix(_));
    if raw.server.real_ip_header.is_some() && raw.server.trusted_proxies.is_none() && !unix {
        // docker_auth believes the header from anyone; say so when that is what happens.
        tracing::warn!(
            "server.real_ip_header is believed from every peer; set server.trusted_proxies"
        );
    }
    let real_ip = match raw.server.real_ip_header {
        Some(h) => Some(RealIp {
            trusted: raw.server.trusted_proxies,
            header: HeaderName::try_from(h.as_str())
                .map_err(|_| bad(format!("server.real_ip_header: {h:?} is not a header name")))?,
            pos: raw.server.real_ip_pos,
        }),
        None if raw.server.trusted_proxies.is_some() => {
            return Err(bad(
                "server.trusted_proxies: needs server.real_ip_header".to_owned()
            ));
        }
        None => None,
    };

    let acl = Acl::new(raw.acl);
    let warnings = warnings::never_matching_rules(path, &text, &acl);
    let mut backends = Vec::new();
    if let Some(p) = raw.ext_auth {
        backends.push(Backend::Ext(ExtAuth::new(
            Program::new("ext_auth", p, base).map_err(bad)?,
        )));
    }
    if let Some(ldap) = raw.ldap_auth {
        let settings = LdapSettings::load(ldap, path, &mut sources, resolve)?;
        backends.push(Backend::Ldap(Box::new(Ldap::new(settings))));
    }
    let ext_authz = match raw.ext_authz {
        Some(p) => Some(ExtAuthz::new(
            Program::new("ext_authz", p, base).map_err(bad)?,
        )),
        None => None,
    };
    let min_version = raw.server.tls_min_version;
    if min_version.as_ref().is_some_and(|v| v.below_tls12) {
        tracing::warn!(
            "server.tls_min_version: TLS 1.0 and 1.1 are never spoken (rustls has neither): \
             clients limited to them are refused; the floor is TLS 1.2"
        );
    }
    let suites: Option<Vec<_>> = raw
        .server
        .tls_cipher_suites
        .map(|l| l.into_iter().map(|s| s.0).collect());
    let groups: Option<Vec<_>> = raw
        .server
        .tls_curve_preferences
        .map(|l| l.into_iter().map(|c| c.0).collect());
    let tls_policy = server::tls_policy::TlsPolicy::new(
        min_version.map(|v| v.versions),
        suites.as_deref(),
        groups.as_deref(),
    )
    .map_err(bad)?;

    let (files, fingerprint) = sources.finish();
    Ok(Config {
        addr,
        debug_addr,
        limits,
        tls,
        tls_policy,
        path_prefix: raw.server.path_prefix.map(|p| p.0).unwrap_or_default(),
        hsts: raw.server.hsts,
        real_ip,
        token: TokenSettings {
            issuer: raw.token.issuer.0,
            ttl: Duration::from_secs(raw.token.expiration.get()),
            key: signing,
            refresh_ttl: Duration::from_secs(raw.token.refresh_expiration.get()),
            services: raw.token.services.map(|list| list.0),
            refresh_secret: Sha256::new_with_prefix(b"berth authd refresh token v1\0")
                .chain_update(&key_pem)
                .finalize()
                .into(),
        },
        authn: Authenticators {
            users: Arc::new(users),
            backends,
        },
        throttle: raw.throttle.unwrap_or_default(),
        acl,
        warnings,
        ext_authz,
        files,
        fingerprint,
    })
}

#[cfg(test)]
mod tests;
