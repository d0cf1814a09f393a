//! authd under test: its users, its ACL, its `auth.yaml`, `gen-cert`, and fetching tokens from it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::bins::binary;
use crate::daemon::Daemon;

/// The `service` (token audience) every test environment uses.
pub const SERVICE: &str = "registry";
/// The token issuer every test environment uses.
pub const ISSUER: &str = "berth-auth";

/// A user of authd's static `users` table.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub password: String,
    pub labels: BTreeMap<String, Vec<String>>,
}

impl User {
    pub fn new(name: &str, password: &str) -> User {
        User {
            name: name.into(),
            password: password.into(),
            labels: BTreeMap::new(),
        }
    }

    pub fn label(mut self, key: &str, values: &[&str]) -> User {
        self.labels.insert(
            key.into(),
            values.iter().map(|v| (*v).to_string()).collect(),
        );
        self
    }
}

/// Writes an htpasswd file at `path` with a bcrypt `$2y$` entry (cost 4) for each of `users`.
pub fn write_htpasswd(path: &Path, users: &[User]) {
    let lines: Vec<String> = users
        .iter()
        .map(|u| {
            let hash = bcrypt::hash_with_result(&u.password, 4)
                .unwrap_or_else(|e| panic!("bcrypt failed for {}: {e}", u.name))
                .format_for_version(bcrypt::Version::TwoY);
            format!("{}:{hash}\n", u.name)
        })
        .collect();
    std::fs::write(path, lines.concat())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// What authd is configured with: users (plus the anonymous `""` user), ACL, token lifetime.
#[derive(Clone, Debug)]
pub struct AuthSpec {
    pub users: Vec<User>,
    /// docker_auth's `acl` list, first match wins.
    pub acl: Value,
    /// `token.expiration`, seconds.
    pub expiration: u64,
    /// `token.disable_legacy_key_id`: RFC 7638 thumbprints instead of libtrust key ids.
    pub disable_legacy_key_id: bool,
}

impl AuthSpec {
    /// The same users as the example auth.yaml: `admin`/`admin-pass` (everything),
    /// `alice`/`alice-pass` (push+pull+delete on `alice/*`, pull everywhere, catalog),
    /// `bob`/`bob-pass` (label `group: [readers]`: pull only), anonymous pulls `public/*`.
    pub fn standard() -> AuthSpec {
        AuthSpec {
            users: vec![
                User::new("admin", "admin-pass"),
                User::new("alice", "alice-pass"),
                User::new("bob", "bob-pass").label("group", &["readers"]),
            ],
            acl: json!([
                {"match": {"account": "admin"}, "actions": ["*"], "comment": "admin can do anything"},
                {"match": {"account": "alice", "name": "alice/*"}, "actions": ["push", "pull", "delete"],
                 "comment": "alice owns alice/*"},
                {"match": {"account": "alice", "type": "registry", "name": "catalog"}, "actions": ["*"],
                 "comment": "alice may list the catalog"},
                {"match": {"account": "alice"}, "actions": ["pull"], "comment": "alice pulls everything"},
                {"match": {"labels": {"group": "readers"}}, "actions": ["pull"], "comment": "readers pull"},
                {"match": {"account": "", "name": "public/*"}, "actions": ["pull"], "comment": "anonymous pulls public/*"},
            ]),
            expiration: 900,
            disable_legacy_key_id: false,
        }
    }

    /// The auth.yaml text for authd listening on `addr`, with token key/cert from `certs` and
    /// the top-level keys of `extra` (e.g. `ldap_auth`, or a whole `server`) added.
    pub fn yaml(&self, addr: &str, certs: &Path, extra: &Value) -> String {
        let mut users = serde_json::Map::new();
        users.insert(String::new(), json!({}));
        for user in &self.users {
            let hash = bcrypt::hash(&user.password, 4)
                .unwrap_or_else(|e| panic!("bcrypt failed for {}: {e}", user.name));
            users.insert(
                user.name.clone(),
                json!({"password": hash, "labels": user.labels}),
            );
        }
        let mut config = json!({
            "server": {"addr": addr},
            "token": {
                "issuer": ISSUER,
                "expiration": self.expiration,
                "disable_legacy_key_id": self.disable_legacy_key_id,
                "certificate": certs.join("token.crt"),
                "key": certs.join("token.key"),
            },
            "users": users,
            "acl": self.acl,
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        serde_yaml::to_string(&config).unwrap_or_else(|e| panic!("cannot write auth.yaml: {e}"))
    }
}

/// Runs `authd gen-cert --out dir` (token key + cert, TLS CA, TLS server cert) with `args`
/// (e.g. `--rsa`).
pub fn gen_cert(dir: &Path, args: &[&str]) {
    let out = Command::new(binary("authd"))
        .args(["gen-cert", "--out"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run authd gen-cert: {e}"));
    assert!(
        out.status.success(),
        "authd gen-cert --out {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running authd and the spec it was started with.
pub struct Authd {
    pub daemon: Daemon,
    pub spec: AuthSpec,
}

impl Authd {
    /// Writes `dir/auth.yaml` and starts authd on a loopback port of its choosing.
    pub async fn start(dir: &Path, certs: &Path, spec: AuthSpec) -> Authd {
        Authd::start_merged(dir, certs, spec, &json!({})).await
    }

    /// As [`Authd::start`], with the top-level keys of `extra` added to auth.yaml.
    pub async fn start_merged(dir: &Path, certs: &Path, spec: AuthSpec, extra: &Value) -> Authd {
        let config = dir.join("auth.yaml");
        std::fs::write(&config, spec.yaml("127.0.0.1:0", certs, extra))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let config = config.to_string_lossy().into_owned();
        let daemon = Daemon::start(
            "authd",
            &binary("authd"),
            &["--config", &config],
            &dir.join("authd.log"),
        )
        .await;
        Authd { daemon, spec }
    }

    /// The realm registryd sends clients to.
    pub fn realm(&self) -> String {
        format!("{}/auth", self.daemon.url())
    }

    /// `GET /auth?service=registry&scope=…` with Basic credentials (`None` = anonymous);
    /// returns the raw response so tests can check refusals.
    pub async fn request_token(
        &self,
        creds: Option<(&str, &str)>,
        scopes: &[&str],
    ) -> reqwest::Response {
        let mut query: Vec<(&str, &str)> = vec![("service", SERVICE)];
        query.extend(scopes.iter().map(|s| ("scope", *s)));
        let mut req = reqwest::Client::new().get(self.realm()).query(&query);
        if let Some((user, password)) = creds {
            req = req
                .basic_auth(user, Some(password))
                .query(&[("account", user)]);
        }
        req.send()
            .await
            .unwrap_or_else(|e| panic!("GET {} failed: {e}", self.realm()))
    }

    /// A token for `user` (password from the spec) covering `scopes`.
    ///
    /// # Panics
    /// When the user is unknown to the spec or authd does not answer 200 with a token.
    pub async fn token(&self, user: &str, scopes: &[&str]) -> String {
        let password = self
            .spec
            .users
            .iter()
            .find(|u| u.name == user)
            .map(|u| u.password.clone())
            .unwrap_or_else(|| panic!("user {user} is not in this environment"));
        self.token_with(Some((user, &password)), scopes).await
    }

    /// A token for the given credentials (`None` = anonymous).
    pub async fn token_with(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> String {
        let resp = self.request_token(creds, scopes).await;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .unwrap_or_else(|e| panic!("token response is not JSON: {e}"));
        assert_eq!(
            status,
            reqwest::StatusCode::OK,
            "authd refused a token: {body}"
        );
        body["token"]
            .as_str()
            .or_else(|| body["access_token"].as_str())
            .unwrap_or_else(|| panic!("no token in {body}"))
            .to_string()
    }
}
