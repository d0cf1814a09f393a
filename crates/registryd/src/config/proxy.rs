//! The `proxy` section: upstream registries this one caches (a pull-through cache), with
//! registry:2's `proxy` key names (`remoteurl`, `username`, `password`, `ttl`) per upstream.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use server::go_duration;

/// `proxy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    /// The registries cached, each under its own name prefix.
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    /// Whether pushes into a proxied prefix are stored locally (refused by default: the
    /// prefix mirrors its upstream).
    #[serde(default)]
    pub allowpush: bool,
    /// Cached (never pushed) content is evicted, least recently used first, above this many
    /// bytes; unbounded when absent.
    #[serde(default, deserialize_with = "byte_size")]
    pub maxsize: Option<u64>,
}

/// `proxy.upstreams[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The registry's host as clients know it (`docker.io`, `ghcr.io`): the local name prefix,
    /// and what containerd's `?ns=` is matched against.
    pub name: String,
    /// Other host names `?ns=` may carry for this upstream (`registry-1.docker.io`, `host:port`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The upstream's base URL, e.g. `https://registry-1.docker.io`.
    pub remoteurl: String,
    /// Account for the upstream's token realm or Basic auth.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
    /// Environment variable holding the account name (read at start).
    #[serde(default)]
    pub usernameenv: Option<String>,
    /// Environment variable holding the password (read at start).
    #[serde(default)]
    pub passwordenv: Option<String>,
    /// A Docker `config.json`-style file (`{"auths": {"<host>": {"auth": …}}}`): the entry of
    /// the remote URL's host gives the credentials.
    #[serde(default)]
    pub authfile: Option<PathBuf>,
    /// PEM certificates trusted for the upstream, besides the system's roots.
    #[serde(default)]
    pub cacertificate: Option<PathBuf>,
    /// Accept any certificate from the upstream (testing only).
    #[serde(default)]
    pub insecureskipverify: bool,
    /// How long a cached tag is served without asking the upstream; then one `HEAD` revalidates.
    #[serde(default = "default_ttl", deserialize_with = "go_duration")]
    pub ttl: Duration,
    /// Serves the names no prefix claims (what Docker's `registry-mirrors` sends).
    #[serde(default)]
    pub default: bool,
}

/// Ten minutes: a moved tag is seen soon, and a revalidation is a `HEAD`, which Docker Hub
/// does not count against its pull limit.
fn default_ttl() -> Duration {
    Duration::from_secs(600)
}

impl Proxy {
    /// Makes relative paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for u in &mut self.upstreams {
            for p in [&mut u.authfile, &mut u.cacertificate]
                .into_iter()
                .flatten()
            {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        }
    }
}

/// A size as integer bytes or text with a unit (`512MiB`, `20GiB`, `1GB`, `100k`).
pub(super) fn byte_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Bytes(n)) => Ok(Some(n)),
        Some(Raw::Text(t)) => parse_byte_size(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Parses `20GiB`, `1GB`, `512m`, `4096`; binary (`Ki`, `Mi`, `Gi`, `Ti`) and decimal units.
///
/// # Errors
/// A message for text that is not a size or overflows 64 bits.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 20GiB)"))?;
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1000,
        "m" => 1000_u64.pow(2),
        "g" => 1000_u64.pow(3),
        "t" => 1000_u64.pow(4),
        "ki" => 1 << 10,
        "mi" => 1 << 20,
        "gi" => 1 << 30,
        "ti" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_byte_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_byte_size("512m"), Ok(512_000_000));
        assert_eq!(parse_byte_size("3 Ki"), Ok(3072));
        for bad in ["", "GiB", "-1", "1.5GiB", "10 parsecs", "99999999999TiB"] {
            assert!(parse_byte_size(bad).is_err(), "{bad}");
        }
    }
}
