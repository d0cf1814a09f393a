//! The shape of `auth.yaml` as written: docker_auth's keys (`server`, `token`, `users`, `acl`,
//! `ldap_auth`, `ext_auth`, `ext_authz`, and the refused [`unsupported`] sections) plus ours (`htpasswd`,
//! `throttle`, `server.trusted_proxies`, `server.timeouts`, `server.max_connections`,
//! `server.max_header_bytes`, `server.debug`, `token.services`, `token.refresh_expiration`).
//! Unknown keys
//! are refused; values that can be checked alone are checked while parsing, so errors carry
//! the line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use server::tls_policy::{self, GoName};

use crate::acl::matcher::IpRange;
use crate::acl::Rule;
use crate::authn::ldap::settings::RawLdapAuth;
use crate::authn::User;

use super::unsupported::{self, Refused};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listener settings.
    pub server: RawServer,
    /// Token settings.
    pub token: RawToken,
    /// Users by name; `""` is the anonymous user.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// An htpasswd file of more users (bcrypt only).
    pub htpasswd: Option<RawHtpasswd>,
    /// Users of an LDAP directory, asked after `users` and `htpasswd`.
    pub ldap_auth: Option<RawLdapAuth>,
    /// Lockout after repeated failures.
    pub throttle: Option<RawThrottle>,
    /// Ordered ACL rules.
    #[serde(default)]
    pub acl: Vec<Rule>,
    /// An external authentication program, asked after the users.
    pub ext_auth: Option<RawProgram>,
    /// An external authorization program, asked for scopes no ACL rule matched.
    pub ext_authz: Option<RawProgram>,
    // docker_auth's sections that authd refuses: set (not null), each is an error at its line
    // saying what to use instead.
    pub google_auth: Option<Refused<unsupported::GoogleAuth>>,
    pub github_auth: Option<Refused<unsupported::GithubAuth>>,
    pub oidc_auth: Option<Refused<unsupported::OidcAuth>>,
    pub gitlab_auth: Option<Refused<unsupported::GitlabAuth>>,
    pub mongo_auth: Option<Refused<unsupported::MongoAuth>>,
    pub xorm_auth: Option<Refused<unsupported::XormAuth>>,
    pub plugin_authn: Option<Refused<unsupported::PluginAuthn>>,
    pub acl_mongo: Option<Refused<unsupported::AclMongo>>,
    pub acl_xorm: Option<Refused<unsupported::AclXorm>>,
    pub casbin_authz: Option<Refused<unsupported::CasbinAuthz>>,
    pub plugin_authz: Option<Refused<unsupported::PluginAuthz>>,
}

/// `server:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// `127.0.0.1:5001`, `[::1]:5001` or docker_auth's `:5001` (all interfaces).
    pub addr: ListenAddr,
    /// TLS certificate (PEM); with `key`, authd serves HTTPS.
    pub certificate: Option<PathBuf>,
    /// TLS private key (PEM).
    pub key: Option<PathBuf>,
    /// Header carrying the client address when behind a proxy (e.g. `X-Forwarded-For`).
    pub real_ip_header: Option<String>,
    /// Which comma-separated entry of that header to use; negative counts from the end.
    #[serde(default)]
    pub real_ip_pos: i64,
    /// Peers whose `real_ip_header` is believed; absent = every peer (docker_auth's behaviour).
    pub trusted_proxies: Option<Vec<IpRange>>,
    /// Bounds on clients' slowness (`header`, `idle`, `body`, `handshake`; Go-style durations).
    #[serde(default)]
    pub timeouts: server::Timeouts,
    /// Connections served at once; past it, new ones wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Largest request line plus headers, in bytes (at least 8192).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// A separate listener for `/metrics`, which then leaves the main address.
    pub debug: Option<RawDebug>,
    /// docker_auth's `tcp` (the default) or `unix`.
    pub net: Option<Net>,
    /// Serve `/auth` and `/auth/token` under this path (`/registry-auth/auth`).
    pub path_prefix: Option<PathPrefix>,
    /// Send `Strict-Transport-Security` with every answer.
    #[serde(default)]
    pub hsts: bool,
    /// Lowest TLS version spoken (`TLS12`, `TLS13`; lower ones mean TLS 1.2).
    pub tls_min_version: Option<TlsMinVersion>,
    /// Cipher suites offered, by Go name or number.
    pub tls_cipher_suites: Option<Vec<TlsSuite>>,
    /// Key-exchange groups offered, by Go name or number.
    pub tls_curve_preferences: Option<Vec<TlsCurve>>,
    /// docker_auth's ACME client: refused.
    pub letsencrypt: Option<LetsEncrypt>,
}

/// `server.tls_min_version`: the versions it allows, and whether it asked for less than TLS 1.2.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "GoName")]
pub struct TlsMinVersion {
    /// Versions spoken.
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// `TLS10`/`TLS11`/`SSL30`: a floor rustls is above anyway.
    pub below_tls12: bool,
}

impl TryFrom<GoName> for TlsMinVersion {
    type Error = String;

    fn try_from(v: GoName) -> Result<Self, String> {
        Ok(TlsMinVersion {
            versions: tls_policy::min_version(&v)
                .map_err(|e| format!("server.tls_min_version: {e}"))?,
            below_tls12: tls_policy::below_tls12(&v),
        })
    }
}

/// One of `server.tls_cipher_suites`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "GoName")]
pub struct TlsSuite(pub rustls::SupportedCipherSuite);

impl TryFrom<GoName> for TlsSuite {
    type Error = String;

    fn try_from(v: GoName) -> Result<Self, String> {
        tls_policy::cipher_suite(&v)
            .map(TlsSuite)
            .map_err(|e| format!("server.tls_cipher_suites: {e}"))
    }
}

/// One of `server.tls_curve_preferences`.
#[derive(Clone, Copy, Deserialize)]
#[serde(try_from = "GoName")]
pub struct TlsCurve(pub &'static dyn rustls::crypto::SupportedKxGroup);

impl TryFrom<GoName> for TlsCurve {
    type Error = String;

    fn try_from(v: GoName) -> Result<Self, String> {
        tls_policy::kx_group(&v)
            .map(TlsCurve)
            .map_err(|e| format!("server.tls_curve_preferences: {e}"))
    }
}

impl std::fmt::Debug for TlsCurve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsCurve({:?})", self.0.name())
    }
}

/// `server.net`: how `addr` is listened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Net {
    /// `host:port`.
    Tcp,
    /// A Unix socket at the path in `addr`, for a reverse proxy on the same host.
    Unix,
}

impl TryFrom<String> for Net {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "tcp" | "" => Ok(Net::Tcp),
            "unix" => Ok(Net::Unix),
            other => Err(format!("server.net: {other:?} must be tcp or unix")),
        }
    }
}

/// `server.path_prefix`: `/` followed by path segments, no trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PathPrefix(pub String);

impl TryFrom<String> for PathPrefix {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let trimmed = s.trim_end_matches('/');
        let plain = |c: char| c.is_ascii_alphanumeric() || "-._~/".contains(c);
        if !s.starts_with('/') {
            Err(format!(
                "server.path_prefix: {s:?} must be an absolute path (start with /)"
            ))
        } else if !trimmed.chars().all(plain) || trimmed.contains("//") {
            Err(format!(
                "server.path_prefix: {s:?}: use /-separated segments of letters, digits, - . _ ~"
            ))
        } else {
            Ok(PathPrefix(trimmed.to_owned()))
        }
    }
}

/// `server.letsencrypt`: refused wherever it appears, with the reason.
#[derive(Debug)]
pub struct LetsEncrypt;

/// Why `letsencrypt` is refused.
const NO_LETSENCRYPT: &str = "letsencrypt is not supported: no outbound network is assumed; use \
     server.certificate and server.key, e.g. from certbot (authd reloads them when they change)";

impl<'de> Deserialize<'de> for LetsEncrypt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Refused as the section opens, so the error carries its line.
        struct Refuse;
        impl<'de> serde::de::Visitor<'de> for Refuse {
            type Value = LetsEncrypt;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(NO_LETSENCRYPT)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                _: A,
            ) -> Result<LetsEncrypt, A::Error> {
                Err(serde::de::Error::custom(NO_LETSENCRYPT))
            }
        }
        d.deserialize_any(Refuse)
    }
}

/// `server.debug:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDebug {
    /// Where `/metrics` (and `/healthz`) are served, e.g. `127.0.0.1:5002`.
    pub addr: ListenAddr,
}

fn default_max_connections() -> usize {
    server::limits::DEFAULT_MAX_CONNECTIONS
}
fn default_max_header_bytes() -> usize {
    server::limits::DEFAULT_MAX_HEADER_BYTES
}

/// `token:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// The `iss` claim; the registry's `auth.token.issuer` must equal it.
    pub issuer: Word,
    /// Token lifetime in seconds.
    pub expiration: NonZeroU64,
    /// Refresh token lifetime in seconds (ours: docker_auth issues no refresh tokens at `/auth`).
    #[serde(default = "default_refresh_expiration")]
    pub refresh_expiration: NonZeroU64,
    /// Signing certificate; defaults to `server.certificate`.
    pub certificate: Option<PathBuf>,
    /// Signing key; defaults to `server.key`.
    pub key: Option<PathBuf>,
    /// `true`: `kid` is the RFC 7638 thumbprint instead of the libtrust key id.
    #[serde(default)]
    pub disable_legacy_key_id: bool,
    /// Services tokens are issued for; absent = any `service` value.
    pub services: Option<Services>,
}

fn default_refresh_expiration() -> NonZeroU64 {
    const NINETY_DAYS: NonZeroU64 = match NonZeroU64::new(90 * 24 * 3600) {
        Some(n) => n,
        None => NonZeroU64::MIN,
    };
    NINETY_DAYS
}

/// `htpasswd:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHtpasswd {
    /// The file (`user:$2y$…` lines).
    pub path: PathBuf,
}

/// `throttle:`; a limit of 0 disables that check.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    /// Seconds over which failures are counted.
    #[serde(default = "default_window")]
    pub window: u64,
    /// Failures of one account within the window that lock it.
    #[serde(default = "default_account_failures")]
    pub account_failures: u32,
    /// Failures from one client address within the window that lock it.
    #[serde(default = "default_ip_failures")]
    pub ip_failures: u32,
    /// Seconds a locked account or address answers 429.
    #[serde(default = "default_lockout")]
    pub lockout: u64,
}

impl Default for RawThrottle {
    fn default() -> Self {
        RawThrottle {
            window: default_window(),
            account_failures: default_account_failures(),
            ip_failures: default_ip_failures(),
            lockout: default_lockout(),
        }
    }
}

fn default_window() -> u64 {
    60
}
fn default_account_failures() -> u32 {
    10
}
fn default_ip_failures() -> u32 {
    30
}
fn default_lockout() -> u64 {
    30
}

/// A listen address; docker_auth's `:5001` means every interface, IPv6 included. With
/// `server.net: unix` it is a socket path instead, which must contain a `/` (`./authd.sock`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ListenAddr {
    /// `host:port`.
    Tcp(SocketAddr),
    /// A path.
    Path(PathBuf),
}

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match server::parse_listen_addr(&s) {
            Ok(addr) => Ok(ListenAddr::Tcp(addr)),
            Err(_) if s.contains('/') => Ok(ListenAddr::Path(PathBuf::from(s))),
            Err(e) => Err(format!("{e}, or a socket path with server.net: unix")),
        }
    }
}

/// A non-blank string (issuer, service names).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Word(pub String);

impl TryFrom<String> for Word {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if s.trim().is_empty() {
            Err("blank value: issuer and service names must not be empty".to_owned())
        } else {
            Ok(Word(s))
        }
    }
}

/// `token.services`: at least one non-blank name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<Word>")]
pub struct Services(pub Vec<String>);

impl TryFrom<Vec<Word>> for Services {
    type Error = String;

    fn try_from(list: Vec<Word>) -> Result<Self, String> {
        if list.is_empty() {
            Err(
                "services: list at least one service, or leave the key out to accept any"
                    .to_owned(),
            )
        } else {
            Ok(Services(list.into_iter().map(|w| w.0).collect()))
        }
    }
}

/// `ext_auth:` / `ext_authz:` as written: docker_auth's `command` and `args`, plus our bounds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProgram {
    /// The program: a path (relative to the config file's directory) or a name looked up in
    /// `PATH`.
    pub command: String,
    /// Its arguments, passed as they are (no shell).
    #[serde(default)]
    pub args: Vec<String>,
    /// How long one run may take, waiting for a free slot included (Go-style duration).
    #[serde(
        default = "default_program_timeout",
        deserialize_with = "server::go_duration"
    )]
    pub timeout: Duration,
    /// How many runs of this program at once; further requests wait for a slot.
    #[serde(default = "default_max_running")]
    pub max_running: usize,
}

fn default_program_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_running() -> usize {
    8
}
