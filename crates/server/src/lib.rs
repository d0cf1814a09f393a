//! What both Berth daemons do to serve, written once:
//!
//! - [`listen`]: listen-address parsing (`:5000` is every interface, IPv6 included), dual-stack
//!   binding, and raising the open-file limit at start; [`listener`]: TCP or a Unix socket, and
//!   the peer of each connection.
//! - [`limits`]: the bounds on what a client controls (timeouts, connection cap, header size),
//!   as configured in either daemon's file, with Go-style durations.
//! - [`serve`]: the accept loop (plain HTTP or TLS) enforcing those bounds, graceful shutdown
//!   with a drain deadline, SIGINT/SIGTERM; [`conn`] watches one connection and its bodies.
//! - [`tls`]: PEM certificate and key loading, the rustls acceptor; [`tls_policy`]: docker_auth's
//!   TLS version, cipher suite and curve settings by their Go names, mapped to rustls.
//! - [`htpasswd`]: bcrypt hashes and htpasswd files, parsed strictly; [`passwords`]: checking a
//!   password so that every failure costs the same, with a [`login_cache`] of recent successes
//!   (keyed digests from [`mac`]).
//! - [`logging`]: text or JSON log lines; [`metrics`]: the Prometheus recorder.
//! - [`error`]: this crate's one error type.

pub mod conn;
pub mod error;
pub mod htpasswd;
pub mod limits;
pub mod listen;
pub mod listener;
pub mod logging;
pub mod login_cache;
pub mod mac;
pub mod metrics;
pub mod passwords;
pub mod serve;
pub mod tls;
pub mod tls_policy;

pub use error::Error;
pub use limits::{go_duration, Limits, Timeouts};
pub use listen::{bind, parse_listen_addr, raise_fd_limit};
pub use listener::{ListenOn, Listener, Peer};
pub use serve::{serve, shutdown_signal, Stop};
