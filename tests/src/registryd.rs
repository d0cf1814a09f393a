//! registryd under test: its `registry.yaml`, start, crash (kill -9) and restart on the same data.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::authd::{ISSUER, SERVICE};
use crate::bins::binary;
use crate::daemon::Daemon;
use crate::garage::Garage;

/// Set to `s3` to run every registryd of the suite on a Garage cluster of its own (blobs in
/// the bucket, the database in the data directory) instead of the filesystem.
pub const STORAGE_VAR: &str = "BERTH_TEST_STORAGE";

/// How registryd authenticates clients.
#[derive(Clone, Debug)]
pub enum RegistryAuth {
    /// No `auth` section: an open registry.
    Open,
    /// `auth.token` with this realm and the token certificate as root bundle.
    Token {
        realm: String,
        rootcertbundle: PathBuf,
    },
    /// `auth.htpasswd`: Basic auth against this file.
    Htpasswd { realm: String, path: PathBuf },
}

/// A running registryd; [`Registryd::restart`] starts it again over the same data directory.
pub struct Registryd {
    pub daemon: Daemon,
    config: PathBuf,
    dir: PathBuf,
    /// Variables added to its environment (name, value), at every start.
    env: Vec<(String, String)>,
    /// The object store its blobs live in, under [`STORAGE_VAR`]`=s3`.
    pub garage: Option<Garage>,
}

impl Registryd {
    /// Writes `dir/registry.yaml` (data in `dir/data`) and starts registryd on a loopback port of
    /// its choosing.
    pub async fn start(dir: &Path, auth: &RegistryAuth, delete_enabled: bool) -> Registryd {
        Self::start_with(dir, auth, delete_enabled, json!({})).await
    }

    /// As [`Registryd::start`], with the keys of `storage` (e.g. `maintenance`) added to the
    /// `storage` section.
    pub async fn start_with(
        dir: &Path,
        auth: &RegistryAuth,
        delete_enabled: bool,
        storage: Value,
    ) -> Registryd {
        Self::start_merged(dir, auth, delete_enabled, json!({"storage": storage})).await
    }

    /// As [`Registryd::start`], with `extra` merged into `registry.yaml` section by section
    /// (e.g. a `proxy` section, or `http.addr` to listen elsewhere than 127.0.0.1:0).
    pub async fn start_merged(
        dir: &Path,
        auth: &RegistryAuth,
        delete_enabled: bool,
        extra: Value,
    ) -> Registryd {
        Self::start_merged_env(dir, auth, delete_enabled, extra, Vec::new()).await
    }

    /// As [`Registryd::start_merged`], with the variables `env` (name, value) added to
    /// registryd's environment.
    pub async fn start_merged_env(
        dir: &Path,
        auth: &RegistryAuth,
        delete_enabled: bool,
        extra: Value,
        env: Vec<(String, String)>,
    ) -> Registryd {
        let data = dir.join("data");
        let config = dir.join("registry.yaml");
        let mut yaml = json!({
            "http": {"addr": "127.0.0.1:0"},
            "storage": {"filesystem": {"rootdirectory": data}, "delete": {"enabled": delete_enabled}},
        });
        merge(&mut yaml, extra);
        if crate::postgres::suite_on_postgres() && yaml.get("database").is_none() {
            yaml["database"] = crate::postgres::fresh_database();
        }
        let on_s3 = yaml["storage"].get("s3").is_none()
            && std::env::var(STORAGE_VAR).as_deref() == Ok("s3");
        let garage = if on_s3 {
            let garage = Garage::start().await;
            yaml["storage"]["s3"] = garage.storage_s3(0, "registry");
            // The suite's HTTP client reads blobs from registryd itself (no redirects).
            yaml["storage"]["redirect"] = json!({"disable": true});
            Some(garage)
        } else {
            None
        };
        match auth {
            RegistryAuth::Open => {}
            RegistryAuth::Token {
                realm,
                rootcertbundle,
            } => {
                yaml["auth"] = json!({"token": {
                    "realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": rootcertbundle,
                }});
            }
            RegistryAuth::Htpasswd { realm, path } => {
                yaml["auth"] = json!({"htpasswd": {"realm": realm, "path": path}});
            }
        }
        Self::write_config(&config, yaml);
        let daemon = Self::spawn(dir, &config, &env).await;
        Registryd {
            daemon,
            config,
            dir: dir.into(),
            env,
            garage,
        }
    }

    fn write_config(path: &Path, yaml: Value) {
        let text = serde_yaml::to_string(&yaml)
            .unwrap_or_else(|e| panic!("cannot write registry.yaml: {e}"));
        std::fs::write(path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    async fn spawn(dir: &Path, config: &Path, env: &[(String, String)]) -> Daemon {
        let config = config.to_string_lossy().into_owned();
        Daemon::start_with_env(
            "registryd",
            &binary("registryd"),
            &["--config", &config],
            env,
            &dir.join("registryd.log"),
        )
        .await
    }

    /// `http://ADDR`
    pub fn url(&self) -> String {
        self.daemon.url()
    }

    /// Its `registry.yaml`.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Its data directory (`rootdirectory`).
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Kills the running process (SIGKILL) if any, then starts registryd again with the same
    /// configuration and data on a fresh port of its choosing.
    pub async fn restart(&mut self) {
        self.daemon.kill9();
        self.daemon = Self::spawn(&self.dir, &self.config, &self.env).await;
    }
}

/// Merges `extra` into `into`: objects key by key, anything else replaced.
pub fn merge(into: &mut Value, extra: Value) {
    match (into, extra) {
        (Value::Object(into), Value::Object(extra)) => {
            for (key, value) in extra {
                merge(into.entry(key).or_insert(Value::Null), value);
            }
        }
        (into, extra) => *into = extra,
    }
}
