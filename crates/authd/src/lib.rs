//! authd: Berth's token server, speaking Docker's token protocol with a docker_auth-compatible
//! configuration.
//!
//! - [`config`]: `auth.yaml` as written ([`config::raw`]) and as checked ([`config::Config`]).
//! - [`authn`]: users (auth.yaml, htpasswd), bcrypt off the runtime, the login cache, `ext_auth`.
//! - [`acl`]: docker_auth's rule semantics: first match decides, requested ∩ allowed.
//! - [`ext_authz`]: the program asked for scopes no rule matched; [`program`]: running the
//!   programs of `ext_auth` and `ext_authz` (no shell, timeout, bounded output and concurrency).
//! - [`issue`]: per-scope decisions, claims, signing, the response body.
//! - [`refresh`]: OAuth2 refresh tokens bound to the user's password hash.
//! - [`throttle`]: lockout after repeated failures.
//! - [`flow`]: one token request end to end, with its log line and metrics.
//! - [`http`]: routes; [`server`]: serving them with the shared crate, TLS cert per handshake.
//! - [`reload`]: hot reload on file change or SIGHUP; [`app`]: the shared state.
//! - [`certs`]: `gen-cert`; [`check`]: `check`; [`metrics`]: metric names; [`mac`]: keyed digests.
//! - [`error`]: the crate's one error type.

pub mod acl;
pub mod app;
pub mod authn;
pub mod certs;
pub mod check;
pub mod config;
pub mod error;
pub mod ext_authz;
pub mod flow;
pub mod http;
pub mod issue;
pub mod metrics;
pub mod program;
pub mod refresh;
pub mod reload;
pub mod server;
pub mod throttle;

pub use ::server::mac;
pub use error::Error;
