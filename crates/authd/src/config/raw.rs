//! The shape of `auth.yaml` as written: docker_auth's keys (`server`, `token`, `users`,
//! `ldap_auth`, `acl`)
//! plus ours (`htpasswd`, `throttle`, `server.trusted_proxies`, `server.timeouts`,
//! `server.max_connections`, `server.max_header_bytes`, `server.debug`, `token.services`). Unknown keys
//! are refused; values that can be checked alone are checked while parsing, so errors carry
//! the line.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::PathBuf;

use serde::Deserialize;

use crate::acl::matcher::IpRange;
use crate::acl::Rule;
use crate::authn::ldap::settings::RawLdapAuth;
use crate::authn::User;

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

/// A listen address; docker_auth's `:5001` means every interface, IPv6 included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddr(pub SocketAddr);

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        server::parse_listen_addr(&s)
            .map(ListenAddr)
            .map_err(|e| e.to_string())
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
