//! The order docker_auth asks its authenticators in: the users of `auth.yaml` and the htpasswd
//! file first, then the other backends in docker_auth's order (the external program, then LDAP).
//! The first that knows the account decides; an account no backend knows is refused after the
//! same decoy check an unknown static user costs.

use std::sync::Arc;

use super::ext_auth::ExtAuth;
use super::ldap::Ldap;
use super::{Credentials, Identity, Users};
use crate::error::Error;

/// What one authenticator says about some credentials.
#[derive(Debug)]
pub enum Verdict {
    /// The credentials are good: this is who they belong to.
    Accepted(Identity),
    /// The account is this backend's and the password is wrong: refused, no later backend asked.
    WrongPassword,
    /// This backend does not know the account: the next one is asked.
    NoMatch,
}

/// An authenticator after the static users, in docker_auth's order.
pub enum Backend {
    /// `ext_auth`: an external program.
    Ext(ExtAuth),
    /// `ldap_auth`: search-then-bind against an LDAP server.
    Ldap(Box<Ldap>),
}

impl Backend {
    async fn authenticate(&self, creds: &Credentials) -> Result<Verdict, Error> {
        match self {
            Backend::Ext(ext) => ext.authenticate(creds).await,
            Backend::Ldap(ldap) => ldap.authenticate(creds).await,
        }
    }
}

/// Every configured authenticator, in the order they are asked.
pub struct Authenticators {
    /// The users of `auth.yaml` and the htpasswd file, with their login cache.
    pub users: Arc<Users>,
    /// The others, in docker_auth's order.
    pub backends: Vec<Backend>,
}

impl Authenticators {
    /// Checks credentials with each authenticator in turn.
    ///
    /// # Errors
    /// [`Error::Unauthorized`] when the first backend that knows the account refuses the
    /// password, or none knows it; a backend's own failure (e.g. unreachable) as it reports it.
    pub async fn authenticate(&self, creds: &Credentials) -> Result<Identity, Error> {
        match self.users.verdict(creds).await? {
            Verdict::Accepted(who) => return Ok(who),
            Verdict::WrongPassword => return Err(Error::Unauthorized),
            Verdict::NoMatch => {}
        }
        for backend in &self.backends {
            match backend.authenticate(creds).await? {
                Verdict::Accepted(who) => return Ok(who),
                Verdict::WrongPassword => return Err(Error::Unauthorized),
                Verdict::NoMatch => {}
            }
        }
        self.users.refuse_unknown(creds).await
    }
}
