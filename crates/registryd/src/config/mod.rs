//! registry.yaml: registry:2's key names (`http`, `storage`, `auth`), deserialized strictly and
//! resolved so that relative paths are relative to the config file's directory; [`proxy`] holds
//! the pull-through cache's section, [`database`] the PostgreSQL one and [`ui`] the web pages'.

pub mod database;
pub mod inline;
pub mod proxy;
mod s3;
pub mod ui;

use inline::Inline;
pub use s3::{Redirect, MIN_CHUNK, S3};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use server::go_duration;

use crate::error::Error;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// registry:2's format version; only `0.1` exists, and it is accepted so that a registry:2
    /// `config.yml` loads unchanged.
    #[serde(default)]
    pub version: Option<serde_yaml::Value>,
    /// Where and how to listen.
    pub http: Http,
    /// Where the data lives and what may be deleted.
    pub storage: Storage,
    /// How clients authenticate; absent = an open registry.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Upstream registries cached under name prefixes (a pull-through cache).
    #[serde(default)]
    pub proxy: proxy::Proxy,
    /// The web pages under `/ui/`.
    #[serde(default)]
    pub ui: ui::Ui,
    /// PostgreSQL for the metadata (GitLab's key names); absent or disabled = SQLite in the
    /// data directory.
    #[serde(default)]
    pub database: Option<database::Database>,
}

/// The `http` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// `127.0.0.1:5000`, `[::1]:5000`, or registry:2's `:5000` meaning every interface (IPv6
    /// included); with `net: unix`, a socket path.
    pub addr: String,
    /// registry:2's `tcp` (the default) or `unix`, for a reverse proxy on the same host.
    #[serde(default)]
    pub net: Net,
    /// Serve HTTPS with this certificate and key.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Bounds on clients' slowness: `header`, `idle`, `body`, `handshake`.
    #[serde(default)]
    pub timeouts: server::Timeouts,
    /// Connections served at once; past it, new ones wait in the kernel's backlog.
    #[serde(default = "default_max_connections")]
    pub maxconnections: usize,
    /// Largest request line plus headers, in bytes (at least 8192).
    #[serde(default = "default_max_header_bytes")]
    pub maxheaderbytes: usize,
    /// registry:2's debug server: `/metrics` moves there, off the main address.
    #[serde(default)]
    pub debug: Option<Debug>,
}

/// `http.net`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Net {
    /// `addr` is `host:port`.
    #[default]
    Tcp,
    /// `addr` is a Unix socket path (relative to this file's folder).
    Unix,
}

/// `http.debug`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debug {
    /// Where `/metrics` (and `/healthz`) are served, e.g. `127.0.0.1:5001`.
    pub addr: String,
}

fn default_max_connections() -> usize {
    server::limits::DEFAULT_MAX_CONNECTIONS
}

fn default_max_header_bytes() -> usize {
    server::limits::DEFAULT_MAX_HEADER_BYTES
}

/// The variable that, when set, replaces `http.addr` (registry:2's name for it): replicas that
/// share one file listen on ports of their own.
pub const ADDR_ENV: &str = "REGISTRY_HTTP_ADDR";

/// How long in-flight requests may drain after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);

/// `http.tls`: PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key of the leaf.
    pub key: PathBuf,
}

/// The `storage` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Our data directory: the SQLite file, and blobs and uploads unless `s3` is set. Optional
    /// only when both `s3` and `database` are: a replica on them keeps nothing on its disk.
    #[serde(default)]
    pub filesystem: Option<Filesystem>,
    /// An S3-compatible bucket for blobs and uploads instead of the data directory.
    #[serde(default)]
    pub s3: Option<S3>,
    /// Whether blob GETs may send clients to the store (`s3` only).
    #[serde(default)]
    pub redirect: Redirect,
    /// Whether DELETE of manifests and blobs is allowed (registry:2 defaults to no).
    #[serde(default)]
    pub delete: Delete,
    /// Background upkeep of the data directory.
    #[serde(default)]
    pub maintenance: Maintenance,
    /// Caps on open upload sessions (each holds a file and a row until it ends).
    #[serde(default)]
    pub uploadlimits: UploadLimits,
    /// Small blobs kept in the metadata database.
    #[serde(default)]
    pub inline: Inline,
}

/// `storage.uploadlimits` (ours): open upload sessions allowed at once; past either cap a new
/// session is refused with 429 `TOOMANYREQUESTS` until one ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadLimits {
    /// Per repository. Docker pushes 3 layers at a time: 256 lets ~80 pushes to one repository
    /// run together.
    #[serde(default = "default_per_repository")]
    pub perrepository: usize,
    /// Per token subject or htpasswd user (anonymous and open-registry clients share `""`):
    /// a busy CI account pushing to many repositories at once.
    #[serde(default = "default_per_subject")]
    pub persubject: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            perrepository: default_per_repository(),
            persubject: default_per_subject(),
        }
    }
}

fn default_per_repository() -> usize {
    256
}

fn default_per_subject() -> usize {
    1024
}

/// `storage.maintenance`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Maintenance {
    /// Removal of upload sessions abandoned by their clients.
    #[serde(default)]
    pub uploadpurging: UploadPurging,
    /// Removal of blob bytes nothing references any more (after deletes).
    #[serde(default)]
    pub gc: Gc,
}

/// `storage.maintenance.gc` (ours; registry:2 only collects offline). The same keys drive
/// `registryd gc`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gc {
    /// On unless set to false.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How often to collect.
    #[serde(default = "default_gc_interval", deserialize_with = "go_duration")]
    pub interval: Duration,
    /// Nothing linked, pushed or written more recently than this is collected: it covers the
    /// time between a push's first blob and its manifest. A day by default, as GitLab's
    /// registry reviews candidates: far longer than any push takes, and deleted images are
    /// still freed the next day.
    #[serde(default = "default_gc_grace", deserialize_with = "go_duration")]
    pub grace: Duration,
    /// Also delete manifests that no tag keeps (as registry:2's `--delete-untagged`).
    #[serde(default)]
    pub delete_untagged: bool,
}

impl Default for Gc {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: default_gc_interval(),
            grace: default_gc_grace(),
            delete_untagged: false,
        }
    }
}

fn default_gc_interval() -> Duration {
    Duration::from_secs(3600)
}

fn default_gc_grace() -> Duration {
    Duration::from_secs(24 * 3600)
}

/// `storage.maintenance.uploadpurging`, as in registry:2 (durations like `168h`, `1h30m`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadPurging {
    /// On unless set to false.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Sessions idle (no chunk received) this long are removed.
    #[serde(default = "default_purge_age", deserialize_with = "go_duration")]
    pub age: Duration,
    /// How often to look.
    #[serde(default = "default_purge_interval", deserialize_with = "go_duration")]
    pub interval: Duration,
    /// Only log what would be removed.
    #[serde(default)]
    pub dryrun: bool,
}

impl Default for UploadPurging {
    fn default() -> Self {
        Self {
            enabled: true,
            age: default_purge_age(),
            interval: default_purge_interval(),
            dryrun: false,
        }
    }
}

fn default_true() -> bool {
    true
}

/// registry:2 waits a week, but here an idle session holds a file and a slot of the caps; a
/// session still receiving chunks is never idle, so hours are plenty.
fn default_purge_age() -> Duration {
    Duration::from_secs(2 * 3600)
}

fn default_purge_interval() -> Duration {
    Duration::from_secs(15 * 60)
}

/// `storage.filesystem`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    /// The data directory.
    pub rootdirectory: PathBuf,
}

/// `storage.delete`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delete {
    /// Off unless set, as in registry:2.
    #[serde(default)]
    pub enabled: bool,
}

/// The `auth` section as written: registry:2 keys its schemes by name; exactly one is allowed.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    token: Option<TokenAuth>,
    htpasswd: Option<HtpasswdAuth>,
}

/// The auth scheme in force.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAuth")]
pub enum Auth {
    /// Bearer tokens from authd.
    Token(TokenAuth),
    /// Basic auth against an htpasswd file (bcrypt entries); every user may do everything.
    Htpasswd(HtpasswdAuth),
}

impl TryFrom<RawAuth> for Auth {
    type Error = String;

    fn try_from(raw: RawAuth) -> Result<Self, String> {
        match (raw.token, raw.htpasswd) {
            (Some(t), None) => Ok(Self::Token(t)),
            (None, Some(h)) => Ok(Self::Htpasswd(h)),
            (Some(_), Some(_)) => Err("auth: configure either token or htpasswd, not both".into()),
            (None, None) => Err("auth: expected a token or htpasswd section".into()),
        }
    }
}

/// `auth.token`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenAuth {
    /// The token endpoint clients are sent to, e.g. `http://127.0.0.1:5001/auth`.
    pub realm: String,
    /// Our name in the token's `aud`.
    pub service: String,
    /// The token's expected `iss`.
    pub issuer: String,
    /// PEM certificates whose keys may sign tokens.
    pub rootcertbundle: PathBuf,
}

/// `auth.htpasswd`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HtpasswdAuth {
    /// The Basic realm.
    pub realm: String,
    /// The htpasswd file (`user:$2y$…` lines).
    pub path: PathBuf,
}

impl Config {
    /// Reads and parses `path`, resolving relative paths against its directory.
    ///
    /// # Errors
    /// `Config` when the file cannot be read or does not parse.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses YAML text; relative paths become relative to `base`.
    ///
    /// # Errors
    /// `Config` for YAML that does not match the schema or an address that does not parse.
    pub fn parse(text: &str, base: &Path) -> Result<Self, Error> {
        let mut cfg: Self = serde_yaml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if let Some(v) = &cfg.version {
            let known = v.as_f64() == Some(0.1) || v.as_str() == Some("0.1");
            if !known {
                return Err(Error::Config(format!("version: {v:?} is not 0.1")));
            }
        }
        if let Ok(addr) = std::env::var(ADDR_ENV) {
            cfg.http.addr = addr;
        }
        if cfg.http.net == Net::Unix {
            let path = base.join(&cfg.http.addr);
            cfg.http.addr = path.to_string_lossy().into_owned();
        }
        cfg.listen_on()?;
        cfg.debug_addr()?;
        cfg.limits()?;
        if let Some(s3) = &cfg.storage.s3 {
            s3.validate().map_err(Error::Config)?;
        }
        cfg.storage.inline.validate().map_err(Error::Config)?;
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        match &mut cfg.storage.filesystem {
            Some(fs) => resolve(&mut fs.rootdirectory),
            None if cfg.storage.s3.is_some()
                && cfg.database.as_ref().is_some_and(|d| d.enabled) => {}
            None => {
                return Err(Error::Config(
                    "storage.filesystem.rootdirectory is required unless both storage.s3 and \
                     database are set"
                        .into(),
                ))
            }
        }
        if let Some(tls) = &mut cfg.http.tls {
            resolve(&mut tls.certificate);
            resolve(&mut tls.key);
        }
        cfg.proxy.resolve_paths(base);
        if let Some(db) = &mut cfg.database {
            db.password_from_env();
        }
        match &mut cfg.auth {
            Some(Auth::Token(t)) => resolve(&mut t.rootcertbundle),
            Some(Auth::Htpasswd(h)) => resolve(&mut h.path),
            None => {}
        }
        Ok(cfg)
    }

    /// Where to listen: a socket address (`:5000` means all interfaces, IPv6 included) or, with
    /// `http.net: unix`, a socket path.
    ///
    /// # Errors
    /// `Config` when `http.addr` is not an address, or is empty with `net: unix`.
    pub fn listen_on(&self) -> Result<server::ListenOn, Error> {
        match self.http.net {
            Net::Tcp => server::parse_listen_addr(&self.http.addr)
                .map(server::ListenOn::Tcp)
                .map_err(|e| {
                    Error::Config(format!(
                        "http.addr: {e}, or a socket path with http.net: unix"
                    ))
                }),
            Net::Unix if self.http.addr.ends_with('/') => Err(Error::Config(format!(
                "http.addr: {:?} is a folder; with http.net: unix give a socket path",
                self.http.addr
            ))),
            Net::Unix => Ok(server::ListenOn::Unix(PathBuf::from(&self.http.addr))),
        }
    }

    /// Where `/metrics` is served instead of the main address, if `http.debug.addr` is set.
    ///
    /// # Errors
    /// `Config` when `http.debug.addr` is not an address.
    pub fn debug_addr(&self) -> Result<Option<SocketAddr>, Error> {
        self.http
            .debug
            .as_ref()
            .map(|d| {
                server::parse_listen_addr(&d.addr)
                    .map_err(|e| Error::Config(format!("http.debug.addr: {e}")))
            })
            .transpose()
    }

    /// The bounds the server enforces on clients.
    ///
    /// # Errors
    /// `Config` for a zero timeout or cap, or a header bound below 8192 bytes.
    pub fn limits(&self) -> Result<server::Limits, Error> {
        let h = &self.http;
        server::Limits::new(
            "http",
            h.timeouts,
            h.maxconnections,
            h.maxheaderbytes,
            DRAIN,
        )
        .map_err(Error::Config)
    }
}

#[cfg(test)]
mod tests;
