//! The `ldap_auth:` section: docker_auth's keys as written ([`RawLdapAuth`], values checked
//! while parsing so errors carry the line), and as checked against each other and the files
//! they name ([`Settings`]: the bind password read, the CA loaded, the filter parsed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::template::{self, ACCOUNT};
use crate::config::sources::Sources;
use crate::error::Error;

/// How long a successful bind answers for the same name and password unless configured.
const DEFAULT_CACHE_TTL: u64 = 60;

/// `ldap_auth:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdapAuth {
    /// `host:port` of the server.
    pub addr: LdapAddr,
    /// `none` (or empty), `starttls` or `always`; absent means `always` on port 636, else none.
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// Accept any server certificate (docker_auth's key; for tests only).
    #[serde(default)]
    pub insecure_tls_skip_verify: bool,
    /// CA certificate(s) (PEM) the server's certificate must chain to; absent = system roots.
    pub ca_certificate: Option<PathBuf>,
    /// The service account searches run as; with `initial_bind_as_user`, the user's DN with
    /// `${account}`.
    pub bind_dn: Option<String>,
    /// File holding the service account's password (surrounding whitespace ignored).
    pub bind_password_file: Option<PathBuf>,
    /// Where the search starts (whole subtree).
    #[serde(default)]
    pub base: String,
    /// The search filter, with `${account}` for the escaped account name.
    pub filter: Filter,
    /// Label name → the attribute its values come from.
    #[serde(default)]
    pub labels: BTreeMap<String, RawLabel>,
    /// Bind as the user (`bind_dn` with `${account}`) before searching, instead of a service
    /// account.
    #[serde(default)]
    pub initial_bind_as_user: bool,
    /// Seconds a successful login is remembered for the same name and password (0: never).
    /// Ours, not docker_auth's.
    #[serde(default = "default_cache_ttl")]
    pub cache_ttl: u64,
}

fn default_cache_ttl() -> u64 {
    DEFAULT_CACHE_TTL
}

/// One entry of `ldap_auth.labels`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabel {
    /// The attribute (e.g. `memberOf`), matched without regard to case.
    pub attribute: AttributeName,
    /// Keep only the CN of each value (a DN such as `cn=dev,ou=groups,…` gives `dev`).
    #[serde(default)]
    pub parse_cn: bool,
    /// Lower-case each value.
    #[serde(default)]
    pub lower_case: bool,
}

/// An LDAP attribute description: letters, digits, `-`, `;` (options) or a numeric OID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AttributeName(pub String);

impl TryFrom<String> for AttributeName {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b';' | b'.'));
        if ok {
            Ok(AttributeName(s))
        } else {
            Err(format!("{s:?} is not an LDAP attribute name"))
        }
    }
}

/// `tls:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum TlsMode {
    /// Plain LDAP (`none` or empty).
    None,
    /// Plain LDAP upgraded by the StartTLS operation before anything is sent.
    StartTls,
    /// LDAP over TLS (ldaps).
    Always,
}

impl TryFrom<String> for TlsMode {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "" | "none" => Ok(TlsMode::None),
            "starttls" => Ok(TlsMode::StartTls),
            "always" => Ok(TlsMode::Always),
            _ => Err(format!("tls: {s:?} is not one of none, starttls, always")),
        }
    }
}

/// `addr:` as `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct LdapAddr {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl TryFrom<String> for LdapAddr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("addr: {s:?} is not host:port");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
        if !host_ok || port == 0 {
            return Err(bad());
        }
        Ok(LdapAddr {
            host: host.to_owned(),
            port,
        })
    }
}

/// `filter:`: a filter that parses once `${account}` is filled in, and names `${account}`
/// (without it every name would find the same entry, and its password would open them all).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Filter(pub String);

impl TryFrom<String> for Filter {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        if !s.contains(ACCOUNT) {
            return Err(format!("filter: {s:?} does not use {ACCOUNT}"));
        }
        ldap3::parse_filter(template::expand(&s, "x"))
            .map_err(|()| format!("filter: {s:?} is not an LDAP filter (RFC 4515)"))?;
        Ok(Filter(s))
    }
}

/// Who searches run as.
#[derive(Clone)]
pub enum SearchAs {
    /// A service account (`bind_dn` and the password from `bind_password_file`).
    Service {
        /// Its DN.
        dn: String,
        /// Its password.
        password: String,
    },
    /// Anonymous: no `bind_dn`.
    Anonymous,
    /// The user, bound at `bind_dn` with `${account}` filled in.
    User {
        /// The DN template.
        dn_template: String,
    },
}

/// `ldap_auth:` checked and with its files read.
pub struct Settings {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub url: String,
    /// Upgrade with StartTLS after connecting.
    pub starttls: bool,
    /// Skip certificate verification (`insecure_tls_skip_verify`).
    pub no_verify: bool,
    /// A client configuration trusting `ca_certificate`; `None`: the system roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Who searches run as.
    pub search_as: SearchAs,
    /// Search base.
    pub base: String,
    /// Filter template.
    pub filter: String,
    /// Label name → how to read it.
    pub labels: BTreeMap<String, RawLabel>,
    /// How long a success is remembered (`None`: not at all).
    pub cache_ttl: Option<Duration>,
}

impl Settings {
    /// Checks `raw` and reads the files it names (recorded in `sources`, so a change to them
    /// reloads); `resolve` makes their paths relative to the config file `config`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key.
    pub fn load(
        raw: RawLdapAuth,
        config: &Path,
        sources: &mut Sources,
        resolve: impl Fn(&Path) -> PathBuf,
    ) -> Result<Settings, Error> {
        let bad = |reason: String| Error::config(config, format!("ldap_auth.{reason}"));
        let mode = raw.tls.unwrap_or(if raw.addr.port == 636 {
            TlsMode::Always
        } else {
            TlsMode::None
        });
        let bind_dn = raw.bind_dn.filter(|d| !d.trim().is_empty());
        let search_as = match (raw.initial_bind_as_user, bind_dn, raw.bind_password_file) {
            (true, Some(dn), _) if dn.contains(ACCOUNT) => SearchAs::User { dn_template: dn },
            (true, _, _) => {
                return Err(bad(format!(
                    "bind_dn: with initial_bind_as_user it is the user's DN and must use {ACCOUNT}"
                )))
            }
            (false, Some(dn), Some(file)) => {
                let bytes = sources.read(config, "ldap_auth.bind_password_file", resolve(&file))?;
                let password = String::from_utf8(bytes)
                    .map_err(|_| bad("bind_password_file: not UTF-8 text".to_owned()))?
                    .trim()
                    .to_owned();
                if password.is_empty() {
                    // An empty password is an unauthenticated bind, which servers accept.
                    return Err(bad("bind_password_file: the password is empty".to_owned()));
                }
                SearchAs::Service { dn, password }
            }
            (false, Some(_), None) => {
                return Err(bad("bind_dn: needs bind_password_file".to_owned()));
            }
            (false, None, Some(_)) => {
                return Err(bad("bind_password_file: needs bind_dn".to_owned()));
            }
            (false, None, None) => SearchAs::Anonymous,
        };
        let tls = match (&raw.ca_certificate, raw.insecure_tls_skip_verify) {
            (Some(ca), false) => {
                let pem = sources.read(config, "ldap_auth.ca_certificate", resolve(ca))?;
                let client = server::tls::client_config(&pem)
                    .map_err(|e| bad(format!("ca_certificate: {}: {e}", ca.display())))?;
                Some(Arc::new(client))
            }
            _ => None,
        };
        if raw.insecure_tls_skip_verify && mode != TlsMode::None {
            tracing::warn!(
                "ldap_auth.insecure_tls_skip_verify: the LDAP server's certificate is not checked"
            );
        }
        let host = if raw.addr.host.contains(':') {
            format!("[{}]", raw.addr.host)
        } else {
            raw.addr.host
        };
        let scheme = if mode == TlsMode::Always {
            "ldaps"
        } else {
            "ldap"
        };
        Ok(Settings {
            url: format!("{scheme}://{host}:{}", raw.addr.port),
            starttls: mode == TlsMode::StartTls,
            no_verify: raw.insecure_tls_skip_verify,
            tls,
            search_as,
            base: raw.base,
            filter: raw.filter.0,
            labels: raw.labels,
            cache_ttl: (raw.cache_ttl > 0).then(|| Duration::from_secs(raw.cache_ttl)),
        })
    }
}
