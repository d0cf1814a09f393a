//! The benchmark's one error type: what went wrong while setting up, driving or measuring.

/// Everything that stops a step of the benchmark.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A daemon did not come up.
    #[error("{name} did not start: {reason}; the end of its log:\n{log_tail}")]
    Start {
        name: String,
        reason: String,
        log_tail: String,
    },
    /// The HTTP exchange itself failed (connect, send, receive).
    #[error("HTTP {what}: {source}")]
    Http {
        what: String,
        #[source]
        source: hyper::Error,
    },
    /// A server answered something other than what the protocol says.
    #[error("{what}: {detail}")]
    Protocol { what: String, detail: String },
    /// A configuration file could not be written.
    #[error("cannot write {what}: {detail}")]
    Config { what: String, detail: String },
}

impl BenchError {
    /// An [`BenchError::Io`] saying what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }

    /// A [`BenchError::Protocol`].
    pub fn protocol(what: impl Into<String>, detail: impl Into<String>) -> BenchError {
        BenchError::Protocol {
            what: what.into(),
            detail: detail.into(),
        }
    }
}
