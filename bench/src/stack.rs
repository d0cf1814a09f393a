//! The servers under test, each on a free loopback port in one temporary folder: authd (keys
//! from `authd gen-cert`, one user allowed everything), Berth's registryd and distribution's
//! registry:2, both trusting authd's token certificate, each with a fresh data folder. Berth's
//! daemon never collects garbage itself; its configuration gives `registryd gc` (run beside it by
//! the GC workload) a grace period of seconds. The GC workload also starts a second registryd
//! that collects on its own every second.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::client::Login;
use crate::daemon::{free_addr, Daemon};
use crate::error::BenchError;
use crate::scaled::ScaledStore;

/// `auth.token.service` of both registries and the `service` of every token request.
const SERVICE: &str = "registry";
/// `iss` of authd's tokens.
const ISSUER: &str = "berth-auth";
/// The one account of the benchmark's auth.yaml.
const USER: &str = "bench";
const PASSWORD: &str = "bench-pass";
/// bcrypt cost of that account's hash (docker_auth's usual).
const BCRYPT_COST: u32 = 10;
/// `storage.maintenance.gc.grace` of the GC workload's collections: over 4 × a tiny push's p99
/// under collection on a busy 2-core machine (under 0.5 s), so a push in progress keeps its
/// layers, yet garbage is freed within a round.
const GC_GRACE: &str = "2s";

/// Where the programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    /// Folder holding `authd` and `registryd`.
    pub bin_dir: PathBuf,
    /// distribution's registry (`docker-registry`).
    pub registry2: PathBuf,
    /// Berth's `storage.inline.maxsize`, when not its default.
    pub inline_maxsize: Option<u64>,
}

impl Programs {
    /// Sets `storage.inline.maxsize` in a Berth registry.yaml when one was asked for.
    pub fn set_inline(&self, config: &mut serde_json::Value) {
        if let Some(max) = self.inline_maxsize {
            config["storage"]["inline"] = json!({"maxsize": max});
        }
    }
}

/// The running servers; dropping it stops them (the temporary folder goes with it).
pub struct Stack {
    pub authd: Daemon,
    pub berth: Daemon,
    pub registry2: Daemon,
    pub login: Login,
    /// Berth's registry.yaml (for `registryd gc --config`).
    pub berth_config: PathBuf,
    /// Kept last so the folder outlives the daemons using it.
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Writes the configurations and starts authd, then both registries: on local folders, or
    /// on `scaled` when given.
    ///
    /// # Errors
    /// A file could not be written or a server did not come up.
    pub async fn start(
        programs: &Programs,
        scaled: Option<&ScaledStore>,
    ) -> Result<Stack, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench.")
            .tempdir()
            .map_err(BenchError::io("create a temporary folder"))?;
        let root = dir.path();
        let certs = root.join("certs");
        gen_cert(&programs.bin_dir.join("authd"), &certs)?;

        let authd = start_authd(&programs.bin_dir, root, "authd", &json!({})).await?;
        let authd_addr = authd.addr;

        let realm = format!("http://{authd_addr}/auth");
        let bundle = certs.join("token.crt");
        let token_auth = json!({"token": {
            "realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": bundle,
        }});

        let berth_addr = free_addr()?;
        let registry_yaml = root.join("registry.yaml");
        let mut berth_config = json!({
            "http": {"addr": berth_addr.to_string()},
            "storage": {"filesystem": {"rootdirectory": root.join("berth-data")}, "delete": {"enabled": true},
                "maintenance": {"gc": {"enabled": false, "grace": GC_GRACE}}},
            "auth": token_auth,
        });
        programs.set_inline(&mut berth_config);
        if let Some(scaled) = scaled {
            scaled.berth(&mut berth_config);
        }
        write_yaml(&registry_yaml, &berth_config)?;
        let mut cmd = Command::new(programs.bin_dir.join("registryd"));
        cmd.arg("--config").arg(&registry_yaml);
        let mut berth = Daemon::spawn("registryd", cmd, berth_addr, &root.join("registryd.log"))?;
        berth.wait_ready("/healthz", |s| s.is_success()).await?;

        let reg2_addr = free_addr()?;
        let reg2_yaml = root.join("registry2.yml");
        let mut reg2_config =
            registry2_config(reg2_addr, &root.join("registry2-data"), &token_auth);
        if let Some(scaled) = scaled {
            scaled.registry2(&mut reg2_config);
        }
        write_yaml(&reg2_yaml, &reg2_config)?;
        let mut cmd = Command::new(&programs.registry2);
        cmd.arg("serve").arg(&reg2_yaml);
        // registry:2's S3 driver panics when AWS_CA_BUNDLE is set (its HTTP transport is not
        // the AWS SDK's, which the bundle needs); the store here is plain HTTP on loopback.
        cmd.env_remove("AWS_CA_BUNDLE");
        let mut registry2 =
            Daemon::spawn("registry:2", cmd, reg2_addr, &root.join("registry2.log"))?;
        registry2
            .wait_ready("/v2/", |s| s == http::StatusCode::UNAUTHORIZED)
            .await?;

        let login = Login {
            authd: authd_addr,
            service: SERVICE.into(),
            user: USER.into(),
            password: PASSWORD.into(),
        };
        Ok(Stack {
            authd,
            berth,
            registry2,
            login,
            berth_config: registry_yaml,
            _dir: dir,
        })
    }
}

/// A second registryd like Berth's, on a fresh port and data folder beside Berth's, that
/// collects garbage itself every second with [`GC_GRACE`].
///
/// # Errors
/// As [`start_berth_beside`].
pub async fn start_collecting_berth(
    bin_dir: &Path,
    berth_config: &Path,
) -> Result<Daemon, BenchError> {
    start_berth_beside(bin_dir, berth_config, "gc", |config, root| {
        config["storage"]["filesystem"]["rootdirectory"] = json!(root.join("berth-gc-data"));
        config["storage"]["maintenance"]["gc"] =
            json!({"enabled": true, "interval": "1s", "grace": GC_GRACE});
    })
    .await
}

/// Another registryd from Berth's registry.yaml as `edit` changes it (given the folder the file
/// is in), on a fresh port: `registry-NAME.yaml` and `registryd-NAME.log` beside Berth's.
///
/// # Errors
/// Berth's configuration cannot be read, the new one written, or the daemon did not come up.
pub async fn start_berth_beside(
    bin_dir: &Path,
    berth_config: &Path,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value, &Path),
) -> Result<Daemon, BenchError> {
    let what = berth_config.display().to_string();
    let text =
        std::fs::read_to_string(berth_config).map_err(BenchError::io(format!("read {what}")))?;
    let mut config: serde_json::Value =
        serde_yaml::from_str(&text).map_err(|e| BenchError::Config {
            what: what.clone(),
            detail: e.to_string(),
        })?;
    let root = berth_config.parent().unwrap_or(Path::new("."));
    let addr = free_addr()?;
    config["http"]["addr"] = json!(addr.to_string());
    edit(&mut config, root);
    let yaml = root.join(format!("registry-{name}.yaml"));
    write_yaml(&yaml, &config)?;
    let mut cmd = Command::new(bin_dir.join("registryd"));
    cmd.arg("--config").arg(&yaml);
    let mut daemon = Daemon::spawn(
        &format!("registryd ({name})"),
        cmd,
        addr,
        &root.join(format!("registryd-{name}.log")),
    )?;
    daemon.wait_ready("/healthz", |s| s.is_success()).await?;
    Ok(daemon)
}

/// An authd named `name` over `root` (which holds `certs/`), with the benchmark's user and
/// the top-level keys of `extra` added to its auth.yaml (`root/{name}.yaml`).
///
/// # Errors
/// The configuration could not be written or authd did not come up.
pub async fn start_authd(
    bin_dir: &Path,
    root: &Path,
    name: &str,
    extra: &serde_json::Value,
) -> Result<Daemon, BenchError> {
    let addr = free_addr()?;
    let mut config = auth_config(addr)?;
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    let yaml = root.join(format!("{name}.yaml"));
    write_yaml(&yaml, &config)?;
    let mut cmd = Command::new(bin_dir.join("authd"));
    cmd.arg("--config").arg(&yaml);
    let mut authd = Daemon::spawn(name, cmd, addr, &root.join(format!("{name}.log")))?;
    authd.wait_ready("/healthz", |s| s.is_success()).await?;
    Ok(authd)
}

/// `authd gen-cert --out DIR`: token key + certificate (and TLS files, unused here).
pub fn gen_cert(authd: &Path, out: &Path) -> Result<(), BenchError> {
    let run = Command::new(authd)
        .arg("gen-cert")
        .arg("--out")
        .arg(out)
        .output()
        .map_err(BenchError::io(format!("run {} gen-cert", authd.display())))?;
    if run.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&run.stderr).into_owned();
    Err(BenchError::protocol(
        "authd gen-cert",
        format!("exited with {}: {said}", run.status),
    ))
}

/// authd's auth.yaml: one user who may do everything, the catalog included, and every LDAP
/// user (when an `ldap_auth` section is added) may pull.
fn auth_config(addr: SocketAddr) -> Result<serde_json::Value, BenchError> {
    let hash = bcrypt::hash(PASSWORD, BCRYPT_COST).map_err(|e| BenchError::Config {
        what: "auth.yaml".into(),
        detail: e.to_string(),
    })?;
    Ok(json!({
        "server": {"addr": addr.to_string()},
        "token": {
            "issuer": ISSUER,
            "expiration": 3600,
            "certificate": "certs/token.crt",
            "key": "certs/token.key",
        },
        "users": {USER: {"password": hash}},
        "acl": [{
            "match": {"account": USER},
            "actions": ["*"],
            "comment": "the benchmark's user may do everything, the catalog included",
        }, {
            "match": {"account": "/.+/"},
            "actions": ["pull"],
            "comment": "LDAP users pull",
        }],
    }))
}

/// registry:2's configuration: Debian's defaults (in-memory blob descriptor cache) on a
/// filesystem folder of its own, with deletes on and token auth against authd.
fn registry2_config(addr: SocketAddr, data: &Path, auth: &serde_json::Value) -> serde_json::Value {
    json!({
        "version": 0.1,
        "log": {"level": "info"},
        "storage": {
            "cache": {"blobdescriptor": "inmemory"},
            "filesystem": {"rootdirectory": data},
            "delete": {"enabled": true},
        },
        "http": {"addr": addr.to_string()},
        "auth": auth,
    })
}

pub fn write_yaml(path: &Path, value: &serde_json::Value) -> Result<(), BenchError> {
    let what = path.display().to_string();
    let text = serde_yaml::to_string(value).map_err(|e| BenchError::Config {
        what: what.clone(),
        detail: e.to_string(),
    })?;
    std::fs::write(path, text).map_err(BenchError::io(format!("write {what}")))
}
