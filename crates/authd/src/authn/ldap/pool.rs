//! Connections to the LDAP server, kept open between logins so a login costs its binds and one
//! search, not a TCP (and TLS) handshake: at most [`MAX_CONNECTIONS`] at once, each used by one
//! login at a time (a bind changes who the whole connection is), idle ones kept for the next.

use std::sync::Mutex;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::settings::{SearchAs, Settings};

/// Logins talking to the server at once; more wait (within the login's time limit).
pub const MAX_CONNECTIONS: usize = 8;
/// Time to open a connection, TLS or StartTLS included.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One open connection.
pub struct Conn {
    /// The handle operations are sent through.
    pub ldap: ldap3::Ldap,
    /// Whether the connection is bound as the search identity (the service account or
    /// anonymous), so a search can run without binding first.
    pub search_ready: bool,
    /// Stops the task that drives the connection when it is dropped.
    driver: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The idle connections and the cap on open ones.
pub struct Pool {
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

/// One login's right to a connection; the connection goes back to the pool only by
/// [`Lease::keep`] (after a failure it is dropped, in case it is what failed).
pub struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    /// Whether `conn` came from the pool (and so may have died while idle).
    pub reused: bool,
    _permit: SemaphorePermit<'a>,
}

impl Default for Pool {
    /// An empty pool.
    fn default() -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(MAX_CONNECTIONS),
        }
    }
}

impl Pool {
    /// Waits for a slot, then hands out an idle connection or opens one.
    ///
    /// # Errors
    /// The server cannot be reached or the TLS handshake fails.
    pub async fn lease(&self, settings: &Settings) -> Result<Lease<'_>, ldap3::LdapError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let idle = loop {
            // A poisoned lock only means another login panicked; the list is still a list.
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match next {
                Some(mut c) => {
                    if !c.ldap.is_closed() {
                        break Some(c);
                    }
                }
                None => break None,
            }
        };
        let reused = idle.is_some();
        let conn = match idle {
            Some(c) => c,
            None => connect(settings).await?,
        };
        Ok(Lease {
            pool: self,
            conn: Some(conn),
            reused,
            _permit: permit,
        })
    }
}

impl Lease<'_> {
    /// The connection.
    ///
    /// # Errors
    /// Never in practice: a lease always holds one between calls.
    pub fn conn(&mut self) -> Result<&mut Conn, ldap3::LdapError> {
        self.conn
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no connection").into())
    }

    /// Replaces the connection by a new one (after a pooled one failed).
    ///
    /// # Errors
    /// As [`Pool::lease`].
    pub async fn reconnect(&mut self, settings: &Settings) -> Result<(), ldap3::LdapError> {
        self.conn = None;
        self.reused = false;
        self.conn = Some(connect(settings).await?);
        Ok(())
    }

    /// Gives the connection back for the next login.
    pub fn keep(mut self) {
        if let Some(conn) = self.conn.take() {
            let mut idle = self.pool.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < MAX_CONNECTIONS {
                idle.push(conn);
            }
        }
    }
}

/// Opens a connection (with StartTLS when configured) and starts the task that drives it.
async fn connect(settings: &Settings) -> Result<Conn, ldap3::LdapError> {
    let mut options = LdapConnSettings::new()
        .set_conn_timeout(CONNECT_TIMEOUT)
        .set_starttls(settings.starttls)
        .set_no_tls_verify(settings.no_verify);
    if let Some(config) = &settings.tls {
        options = options.set_config(config.clone());
    }
    let (driver, ldap) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        LdapConnAsync::with_settings(options, &settings.url),
    )
    .await??;
    let driver = tokio::spawn(async move {
        if let Err(e) = driver.drive().await {
            tracing::debug!(error = %e, "LDAP connection closed");
        }
    })
    .abort_handle();
    Ok(Conn {
        ldap,
        search_ready: matches!(settings.search_as, SearchAs::Anonymous),
        driver,
    })
}
