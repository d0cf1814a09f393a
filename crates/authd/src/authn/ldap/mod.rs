//! LDAP authentication (`ldap_auth`), docker_auth's search-then-bind: bind as the service
//! account (or as the user with `initial_bind_as_user`), search `base` with `filter` holding the
//! escaped account name, require exactly one entry, bind as that entry with the password, and
//! take labels from its attributes. Connections are reused ([`pool`]) and successes remembered
//! for `cache_ttl` ([`server::login_cache`]), so a `docker pull` of many layers binds once.
//!
//! A wrong password is [`Verdict::WrongPassword`] (401, counted by the throttle); an account
//! the search does not find is [`Verdict::NoMatch`]; a server that cannot answer (unreachable,
//! timed out, refusing the service account, an error result) is [`Error::Backend`] (503)
//! with a log line, never a denial. An empty password never reaches a bind (servers take it as
//! an unauthenticated bind and say yes): like docker_auth, such a login is no match here.

pub mod pool;
pub mod settings;
pub mod template;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use ldap3::{LdapError, Scope, SearchEntry, SearchOptions};
use server::login_cache::LoginCache;

use super::{Credentials, Identity, Verdict};
use crate::error::Error;
use crate::metrics::{LDAP_BINDS, LDAP_CACHE_HITS};
use pool::{Conn, Pool};
use settings::{SearchAs, Settings};

/// Time for one operation (bind or search) to be answered.
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole login, waiting for a connection and one retry included.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15);
/// How many recent successes are remembered.
const CACHE_CAPACITY: usize = 10_000;

/// LDAP's `invalidCredentials` result code.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP's `sizeLimitExceeded`: the filter matched more entries than asked for.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// Labels by name, as an entry gave them.
type Labels = BTreeMap<String, Vec<String>>;

/// The `ldap_auth` backend: its settings, connections and cache; rebuilt on every reload.
pub struct Ldap {
    settings: Settings,
    pool: Pool,
    /// Keyed by (user, password); the labels the login gave.
    cache: Option<LoginCache<Labels>>,
}

/// What the directory said about a login.
enum Outcome {
    Accepted(Labels),
    WrongPassword,
    NotFound,
    /// The filter matched several entries: the configuration does not single users out.
    Ambiguous,
}

/// Why the directory gave no answer.
enum Failure {
    /// Transport, TLS, timeout or protocol error.
    Ldap(LdapError),
    /// The server answered an operation with an error result.
    Refused(&'static str, ldap3::LdapResult),
}

impl From<LdapError> for Failure {
    fn from(e: LdapError) -> Self {
        Failure::Ldap(e)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Ldap(e) => e.fmt(f),
            Failure::Refused(what, r) => write!(f, "{what}: {r}"),
        }
    }
}

impl Ldap {
    /// The backend for `settings`, with no connection open yet.
    pub fn new(settings: Settings) -> Self {
        let cache = settings
            .cache_ttl
            .map(|ttl| LoginCache::new(CACHE_CAPACITY, Some(ttl)));
        Ldap {
            settings,
            pool: Pool::default(),
            cache,
        }
    }

    /// Where accounts are looked up, for `authd check`: the server, base and filter.
    pub fn describe(&self) -> String {
        format!(
            "{} (base {:?}, filter {:?})",
            self.settings.url, self.settings.base, self.settings.filter
        )
    }

    /// Checks credentials against the directory.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] when the filter matches several entries (logged);
    /// [`Error::Backend`] when the server gives no answer (logged).
    pub async fn authenticate(&self, creds: &Credentials) -> Result<Verdict, Error> {
        let Credentials::Password { user, password } = creds else {
            return Ok(Verdict::NoMatch);
        };
        if user.is_empty() || password.is_empty() {
            return Ok(Verdict::NoMatch);
        }
        let key = self
            .cache
            .as_ref()
            .map(|c| (c, c.key(&[user.as_bytes(), password.as_bytes()])));
        if let Some(labels) = key.and_then(|(c, k)| c.get(&k)) {
            metrics::counter!(LDAP_CACHE_HITS).increment(1);
            return Ok(Verdict::Accepted(identity(user, labels)));
        }
        let outcome = tokio::time::timeout(LOGIN_TIMEOUT, self.login(user, password))
            .await
            .unwrap_or_else(|e| Err(Failure::Ldap(e.into())));
        match outcome {
            Ok(Outcome::Accepted(labels)) => {
                if let Some((cache, k)) = key {
                    cache.insert(k, labels.clone());
                }
                Ok(Verdict::Accepted(identity(user, labels)))
            }
            Ok(Outcome::WrongPassword) => Ok(Verdict::WrongPassword),
            Ok(Outcome::NotFound) => Ok(Verdict::NoMatch),
            Ok(Outcome::Ambiguous) => {
                tracing::warn!(account = %user, filter = %self.settings.filter,
                    "ldap_auth: the filter matches several entries for this account; refused");
                Err(Error::Unauthorized)
            }
            Err(e) => {
                tracing::error!(account = %user, server = %self.settings.url, error = %e,
                    "ldap_auth: the LDAP server gave no answer; answering 503");
                Err(Error::Backend(
                    "ldap_auth: the LDAP server gave no answer".into(),
                ))
            }
        }
    }

    /// One login on a pooled connection, retried once on a new one if a pooled connection
    /// fails (the server may have closed it while idle).
    async fn login(&self, user: &str, password: &str) -> Result<Outcome, Failure> {
        let mut lease = self.pool.lease(&self.settings).await?;
        let first = self.login_on(lease.conn()?, user, password).await;
        let outcome = match first {
            Err(e) if lease.reused => {
                tracing::debug!(error = %e, "ldap_auth: pooled connection failed, reconnecting");
                lease.reconnect(&self.settings).await?;
                self.login_on(lease.conn()?, user, password).await?
            }
            other => other?,
        };
        lease.keep();
        Ok(outcome)
    }

    async fn login_on(
        &self,
        conn: &mut Conn,
        user: &str,
        password: &str,
    ) -> Result<Outcome, Failure> {
        match &self.settings.search_as {
            SearchAs::User { dn_template } => {
                conn.search_ready = false;
                let dn = template::expand(dn_template, &template::dn_value(user));
                let result = bind(conn, &dn, password).await?;
                match result.rc {
                    0 => {}
                    INVALID_CREDENTIALS => return Ok(Outcome::WrongPassword),
                    _ => return Err(Failure::Refused("initial bind as the user", result)),
                }
            }
            SearchAs::Service { dn, password } if !conn.search_ready => {
                let result = bind(conn, dn, password).await?;
                if result.rc != 0 {
                    return Err(Failure::Refused("bind as bind_dn", result));
                }
                conn.search_ready = true;
            }
            SearchAs::Anonymous if !conn.search_ready => {
                let result = bind(conn, "", "").await?;
                if result.rc != 0 {
                    return Err(Failure::Refused("anonymous bind", result));
                }
                conn.search_ready = true;
            }
            SearchAs::Service { .. } | SearchAs::Anonymous => {}
        }
        let entry = match self.search(conn, user).await? {
            Some(Ok(entry)) => entry,
            Some(Err(outcome)) => return Ok(outcome),
            None => return Ok(Outcome::NotFound),
        };
        conn.search_ready = false;
        let result = bind(conn, &entry.dn, password).await?;
        match result.rc {
            0 => Ok(Outcome::Accepted(self.labels(&entry))),
            INVALID_CREDENTIALS => Ok(Outcome::WrongPassword),
            _ => Err(Failure::Refused("bind as the user's entry", result)),
        }
    }

    /// The one entry the filter finds for `user`, `Some(Err(Ambiguous))` for several.
    async fn search(
        &self,
        conn: &mut Conn,
        user: &str,
    ) -> Result<Option<Result<SearchEntry, Outcome>>, Failure> {
        let filter = template::expand(&self.settings.filter, &template::filter_value(user));
        let mut attrs: Vec<&str> = self
            .settings
            .labels
            .values()
            .map(|l| l.attribute.0.as_str())
            .collect();
        if attrs.is_empty() {
            attrs.push("1.1"); // RFC 4511: no attributes, only the DN.
        }
        let result = conn
            .ldap
            .with_timeout(OP_TIMEOUT)
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(&self.settings.base, Scope::Subtree, &filter, attrs)
            .await?;
        let (entries, status) = (result.0, result.1);
        if status.rc == SIZE_LIMIT_EXCEEDED || entries.len() > 1 {
            return Ok(Some(Err(Outcome::Ambiguous)));
        }
        if status.rc != 0 {
            return Err(Failure::Refused("search", status));
        }
        Ok(entries
            .into_iter()
            .find(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .filter(|e| !e.dn.is_empty())
            .map(Ok))
    }

    /// The configured labels from an entry's attributes (a label whose attribute the entry
    /// lacks is absent, as in docker_auth).
    fn labels(&self, entry: &SearchEntry) -> Labels {
        let mut labels = Labels::new();
        for (name, how) in &self.settings.labels {
            let Some(values) = entry
                .attrs
                .iter()
                .find(|(attr, _)| attr.eq_ignore_ascii_case(&how.attribute.0))
                .map(|(_, v)| v)
            else {
                continue;
            };
            let values = values
                .iter()
                .map(|v| {
                    let v = if how.parse_cn {
                        template::cn_of(v)
                    } else {
                        v.clone()
                    };
                    if how.lower_case {
                        v.to_lowercase()
                    } else {
                        v
                    }
                })
                .collect();
            labels.insert(name.clone(), values);
        }
        labels
    }
}

/// A simple bind, counted; an empty password is refused before it is sent unless the DN is
/// empty too (the anonymous rebind), since a name with an empty password is an unauthenticated
/// bind that servers accept.
async fn bind(conn: &mut Conn, dn: &str, password: &str) -> Result<ldap3::LdapResult, Failure> {
    if password.is_empty() && !dn.is_empty() {
        return Err(Failure::Ldap(
            std::io::Error::other("refusing a bind with an empty password").into(),
        ));
    }
    let result = conn
        .ldap
        .with_timeout(OP_TIMEOUT)
        .simple_bind(dn, password)
        .await?;
    let outcome = match result.rc {
        0 => "ok",
        INVALID_CREDENTIALS => "invalid_credentials",
        _ => "error",
    };
    metrics::counter!(LDAP_BINDS, "result" => outcome).increment(1);
    Ok(result)
}

fn identity(account: &str, labels: Labels) -> Identity {
    Identity {
        account: account.to_owned(),
        labels,
        // No hash to bind a refresh token to: LDAP users get none (see `refresh`).
        password: None,
    }
}
