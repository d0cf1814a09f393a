//! The one error type of the serving crate: what can go wrong binding, loading PEM files and
//! htpasswd files, and hashing passwords. Each daemon wraps it in its own error.

use std::path::PathBuf;

/// Everything that can go wrong here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listen address that does not parse.
    #[error("{0:?} is not an address:port (e.g. 127.0.0.1:5000, [::1]:5000 or :5000)")]
    ListenAddr(String),
    /// Binding or listening failed.
    #[error("binding {addr}: {cause}")]
    Bind {
        /// What was asked for: `host:port` or `unix:PATH`.
        addr: String,
        /// Why it failed.
        cause: std::io::Error,
    },
    /// A file that cannot be read.
    #[error("{path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A certificate or key that cannot be used.
    #[error("{0}")]
    Pem(String),
    /// A malformed line of an htpasswd file.
    #[error("{path}: line {line}: {reason}")]
    Htpasswd {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// bcrypt refused to hash (a cost outside 4..=31).
    #[error("bcrypt: {0}")]
    Bcrypt(String),
}
