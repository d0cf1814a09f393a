//! The contract between `authd` and `registryd`: what a token says and how it is checked.
//!
//! - [`scope`]: the `type:name:actions` grammar of Docker's token protocol.
//! - [`name`]: the repository-name grammar of the distribution spec.
//! - [`claims`]: the JWT claim set, with its `access` list.
//! - [`keys`]: signing keys, their certificates and key ids (libtrust and RFC 7638).
//! - [`verify`]: checking a token against a certificate bundle, issuer and audience.
//! - [`challenge`]: the `WWW-Authenticate: Bearer …` header a registry answers with.
//!
//! No I/O and no HTTP here: both daemons share these types so the wire format cannot drift.

pub mod challenge;
pub mod claims;
pub mod keys;
pub mod name;
pub mod scope;
pub mod verify;

pub use challenge::Challenge;
pub use claims::{unix_now, Access, Audience, Claims};
pub use keys::{KeyError, KidStyle, SigningKey};
pub use name::{NameError, RepoName};
pub use scope::{parse_scopes, Scope, ScopeError};
pub use verify::{Verifier, VerifyError};
