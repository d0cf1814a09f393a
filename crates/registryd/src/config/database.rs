//! The `database` section, named as GitLab's registry names it: PostgreSQL for the metadata of
//! replicas that share it. Absent (or `enabled: false`): SQLite in the data directory.

use serde::Deserialize;

/// The variable that, when set, gives `database.password` (so the file need not hold it).
pub const PASSWORD_ENV: &str = "REGISTRY_DATABASE_PASSWORD";

/// `database`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// Off unless set: the section may stay in the file while SQLite is used.
    #[serde(default)]
    pub enabled: bool,
    /// The server's host name or address.
    #[serde(default = "default_host")]
    pub host: String,
    /// Its port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The role registryd logs in as.
    #[serde(default = "default_user")]
    pub user: String,
    /// Its password; [`PASSWORD_ENV`] overrides it.
    #[serde(default)]
    pub password: Option<String>,
    /// The database (created beforehand; registryd creates its tables).
    #[serde(default = "default_dbname")]
    pub dbname: String,
    /// libpq's `sslmode`: whether and how the connection is encrypted and the server verified.
    #[serde(default)]
    pub sslmode: SslMode,
}

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS only if the server insists.
    Allow,
    /// TLS if the server offers it.
    #[default]
    Prefer,
    /// TLS, the server's certificate unchecked.
    Require,
    /// TLS, the certificate checked against the system's roots.
    VerifyCa,
    /// As `verify-ca`, and the host name must match.
    VerifyFull,
}

/// The password is never printed.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("enabled", &self.enabled)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .finish()
    }
}

impl Database {
    /// `host:port`, as start errors name the server.
    #[must_use]
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Takes the password from [`PASSWORD_ENV`] when that is set.
    pub(super) fn password_from_env(&mut self) {
        if let Ok(password) = std::env::var(PASSWORD_ENV) {
            self.password = Some(password);
        }
    }
}

fn default_host() -> String {
    "localhost".into()
}

fn default_port() -> u16 {
    5432
}

fn default_user() -> String {
    "registry".into()
}

fn default_dbname() -> String {
    "registry".into()
}
