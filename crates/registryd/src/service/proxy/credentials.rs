//! An upstream's account, from the config (`username`/`password`), the environment
//! (`usernameenv`/`passwordenv`) or a Docker `config.json`-style `authfile`, read once at start.
//! The password is never logged or shown: [`Credentials`]' `Debug` hides it.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use crate::config::proxy::Upstream;
use crate::error::Error;

/// An account at an upstream.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    #[must_use]
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// The account configured for `up` (whose remote URL has host `host`), if any.
    ///
    /// # Errors
    /// `Config` for a missing environment variable, an unreadable auth file, or a half-given
    /// account.
    pub fn of(up: &Upstream, host: &str) -> Result<Option<Self>, Error> {
        let err = |m: String| Error::Config(format!("proxy.upstreams[{}]: {m}", up.name));
        let env = |var: &Option<String>| -> Result<Option<String>, Error> {
            var.as_ref()
                .map(|v| {
                    std::env::var(v)
                        .map_err(|_| err(format!("environment variable {v} is not set")))
                })
                .transpose()
        };
        let username = env(&up.usernameenv)?.or_else(|| up.username.clone());
        let password = env(&up.passwordenv)?.or_else(|| up.password.clone());
        match (username, password) {
            (Some(username), Some(password)) => return Ok(Some(Self { username, password })),
            (None, None) => {}
            _ => return Err(err("give both a username and a password".into())),
        }
        match &up.authfile {
            Some(file) => from_auth_file(file, &[host, &up.name])
                .map_err(err)?
                .map(Some)
                .ok_or_else(|| {
                    err(format!(
                        "{} has no entry for {host} or {}",
                        file.display(),
                        up.name
                    ))
                }),
            None => Ok(None),
        }
    }
}

/// `{"auths": {"<host>": {"auth": base64("user:pass")} | {"username", "password"}}}`.
#[derive(Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The entry for the first of `hosts` the file names; keys may be bare hosts or URLs
/// (`https://index.docker.io/v1/`).
fn from_auth_file(file: &Path, hosts: &[&str]) -> Result<Option<Credentials>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let parsed: AuthFile =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let key_host = |k: &str| {
        let k = k.split_once("://").map_or(k, |(_, rest)| rest);
        k.split('/').next().unwrap_or(k).to_ascii_lowercase()
    };
    for host in hosts {
        let host = host.to_ascii_lowercase();
        let Some(entry) = parsed
            .auths
            .iter()
            .find(|(k, _)| key_host(k) == host)
            .map(|(_, v)| v)
        else {
            continue;
        };
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            }));
        }
        let decoded = entry
            .auth
            .as_deref()
            .and_then(|a| base64::engine::general_purpose::STANDARD.decode(a).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                format!(
                    "{}: the entry for {host} has no usable auth",
                    file.display()
                )
            })?;
        let (username, password) = decoded.split_once(':').ok_or_else(|| {
            format!(
                "{}: the auth for {host} is not user:password",
                file.display()
            )
        })?;
        return Ok(Some(Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(yaml: &str) -> Upstream {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn from_keys_env_and_file() {
        let up = upstream("{name: a, remoteurl: 'http://x', username: u, password: p}");
        let c = Credentials::of(&up, "x").unwrap().unwrap();
        assert_eq!(c.basic(), "Basic dTpw");

        std::env::set_var("BERTH_TEST_UPSTREAM_PW", "from-env");
        let up = upstream(
            "{name: a, remoteurl: 'http://x', username: u, passwordenv: BERTH_TEST_UPSTREAM_PW}",
        );
        assert_eq!(
            Credentials::of(&up, "x").unwrap().unwrap().password,
            "from-env"
        );
        let up = upstream(
            "{name: a, remoteurl: 'http://x', username: u, passwordenv: BERTH_TEST_UNSET_VAR}",
        );
        assert!(Credentials::of(&up, "x").is_err());
        let up = upstream("{name: a, remoteurl: 'http://x', username: u}");
        assert!(Credentials::of(&up, "x").is_err());

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(
            &file,
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
                          "quay.io": {"username": "q", "password": "w"}}}"#,
        )
        .unwrap();
        let with_file = |name: &str, host: &str| {
            let mut up = upstream(&format!("{{name: {name}, remoteurl: 'http://x'}}"));
            up.authfile = Some(file.clone());
            Credentials::of(&up, host)
        };
        let hub = with_file("docker.io", "index.docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let quay = with_file("quay.io", "quay.io").unwrap().unwrap();
        assert_eq!(quay.username, "q");
        assert!(with_file("ghcr.io", "ghcr.io").is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
