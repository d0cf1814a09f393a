//! A whole test environment: a temp dir with certificates, authd, and registryd wired to it.

use std::path::PathBuf;

use tempfile::TempDir;

use crate::authd::{gen_cert, write_htpasswd, AuthSpec, Authd, User};
use crate::registry::Registry;
use crate::registryd::{RegistryAuth, Registryd};

/// authd + registryd (or an open registryd alone) over one temp dir; everything stops on drop.
pub struct TestEnv {
    /// `<tmp>/certs`: token.key/.crt, ca.key/.crt, server.key/.crt from `authd gen-cert`.
    pub certs: PathBuf,
    pub authd: Option<Authd>,
    pub registryd: Registryd,
    // Dropped last: the daemons above are killed before their files go away.
    pub dir: TempDir,
}

impl TestEnv {
    /// authd with [`AuthSpec::standard`] users and registryd with token auth, deletes enabled.
    pub async fn standard() -> TestEnv {
        TestEnv::with_auth(AuthSpec::standard(), true).await
    }

    /// authd with `spec` and registryd trusting its token certificate.
    pub async fn with_auth(spec: AuthSpec, delete_enabled: bool) -> TestEnv {
        TestEnv::with_auth_merged(spec, delete_enabled, serde_json::json!({})).await
    }

    /// As [`TestEnv::with_auth`], with `extra` merged into `registry.yaml` (see
    /// [`Registryd::start_merged`]).
    pub async fn with_auth_merged(
        spec: AuthSpec,
        delete_enabled: bool,
        extra: serde_json::Value,
    ) -> TestEnv {
        TestEnv::with_auth_merged_env(spec, delete_enabled, extra, Vec::new()).await
    }

    /// As [`TestEnv::with_auth_merged`], with the variables `env` (name, value) added to
    /// registryd's environment.
    pub async fn with_auth_merged_env(
        spec: AuthSpec,
        delete_enabled: bool,
        extra: serde_json::Value,
        env: Vec<(String, String)>,
    ) -> TestEnv {
        TestEnv::build(spec, delete_enabled, extra, env, &serde_json::json!({})).await
    }

    /// authd with `spec` plus the top-level keys of `auth_extra` in its auth.yaml (e.g.
    /// `ldap_auth`), and registryd trusting it, deletes enabled.
    pub async fn with_auth_extra(spec: AuthSpec, auth_extra: &serde_json::Value) -> TestEnv {
        TestEnv::build(spec, true, serde_json::json!({}), Vec::new(), auth_extra).await
    }

    async fn build(
        spec: AuthSpec,
        delete_enabled: bool,
        extra: serde_json::Value,
        env: Vec<(String, String)>,
        auth_extra: &serde_json::Value,
    ) -> TestEnv {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let certs = dir.path().join("certs");
        gen_cert(&certs, &[]);
        let authd = Authd::start_merged(dir.path(), &certs, spec, auth_extra).await;
        let auth = RegistryAuth::Token {
            realm: authd.realm(),
            rootcertbundle: certs.join("token.crt"),
        };
        let registryd =
            Registryd::start_merged_env(dir.path(), &auth, delete_enabled, extra, env).await;
        TestEnv {
            certs,
            authd: Some(authd),
            registryd,
            dir,
        }
    }

    /// registryd alone, with no auth section (an open registry), deletes enabled.
    pub async fn open() -> TestEnv {
        TestEnv::open_with(serde_json::json!({})).await
    }

    /// An open registry whose `storage` section also has the keys of `storage`.
    pub async fn open_with(storage: serde_json::Value) -> TestEnv {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        TestEnv::open_in(dir, storage).await
    }

    /// An open registry in `dir` (whose `data` folder may be prepared, e.g. mounted, first).
    pub async fn open_in(dir: TempDir, storage: serde_json::Value) -> TestEnv {
        let certs = dir.path().join("certs");
        let registryd = Registryd::start_with(dir.path(), &RegistryAuth::Open, true, storage).await;
        TestEnv {
            certs,
            authd: None,
            registryd,
            dir,
        }
    }

    /// registryd alone with Basic auth from an htpasswd file of `users` (bcrypt `$2y$` entries).
    pub async fn htpasswd(users: &[User]) -> TestEnv {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let certs = dir.path().join("certs");
        let path = dir.path().join("htpasswd");
        write_htpasswd(&path, users);
        let auth = RegistryAuth::Htpasswd {
            realm: "berth-test".into(),
            path,
        };
        let registryd = Registryd::start(dir.path(), &auth, true).await;
        TestEnv {
            certs,
            authd: None,
            registryd,
            dir,
        }
    }

    /// The authd of this environment.
    ///
    /// # Panics
    /// For an open environment, which has none.
    pub fn authd(&self) -> &Authd {
        self.authd
            .as_ref()
            .unwrap_or_else(|| panic!("this environment runs no authd"))
    }

    /// A client for the registry (it holds no token; pass one per request).
    pub fn registry(&self) -> Registry {
        Registry::new(&self.registryd.url())
    }

    /// `127.0.0.1:PORT` of registryd, as docker and skopeo name it.
    pub fn registry_host(&self) -> String {
        self.registryd.daemon.addr.to_string()
    }

    /// A token from authd for `admin` with pull, push and delete on each of `repos`.
    pub async fn admin_token(&self, repos: &[&str]) -> String {
        let scopes: Vec<String> = repos
            .iter()
            .map(|r| format!("repository:{r}:pull,push,delete"))
            .collect();
        let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
        self.token("admin", &scopes).await
    }

    /// A token from authd for `user` covering `scopes`.
    pub async fn token(&self, user: &str, scopes: &[&str]) -> String {
        self.authd().token(user, scopes).await
    }
}
