//! The bounds on what a client controls, as both daemons configure them: how long it may take
//! to send its headers, to finish a TLS handshake, to make progress on a body, how long an idle
//! connection is kept, how many connections are served at once and how large a header block may
//! be. Durations are written Go-style (`20s`, `1h30m`), as registry:2 writes them.

use std::time::Duration;

use serde::Deserialize;

/// The smallest header bound hyper can enforce (its minimum read buffer).
pub const MIN_HEADER_BYTES: usize = 8192;
/// Default connection cap: far above what a registry's clients open (a push uses a handful),
/// far below the open-file limits daemons get, and about 4096 × 20 KiB of buffers at worst.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default header bound: a Bearer token with many scopes is a few KiB; 64 KiB leaves room
/// and keeps 4096 slow clients under 256 MiB of header buffers.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 << 10;

/// `timeouts`: each bound on a client's slowness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// From a request's first byte (or the end of the previous answer's idle time) to its last
    /// header line. 20 s: generous for any real client, short for a slowloris.
    #[serde(default = "default_header", deserialize_with = "go_duration")]
    pub header: Duration,
    /// How long a connection with no request in flight and no bytes arriving is kept. 120 s:
    /// longer than Go's and Docker's 90 s client-side idle timeout, so clients close first and
    /// never send a request on a connection the server is closing.
    #[serde(default = "default_idle", deserialize_with = "go_duration")]
    pub idle: Duration,
    /// How long a request body may make no progress before it is cut off. 60 s: a slow link
    /// still delivers something every few seconds; a minute of nothing is a stalled client.
    #[serde(default = "default_body", deserialize_with = "go_duration")]
    pub body: Duration,
    /// How long the TLS handshake may take. 10 s: a handshake is a few round trips.
    #[serde(default = "default_handshake", deserialize_with = "go_duration")]
    pub handshake: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            header: default_header(),
            idle: default_idle(),
            body: default_body(),
            handshake: default_handshake(),
        }
    }
}

fn default_header() -> Duration {
    Duration::from_secs(20)
}
fn default_idle() -> Duration {
    Duration::from_secs(120)
}
fn default_body() -> Duration {
    Duration::from_secs(60)
}
fn default_handshake() -> Duration {
    Duration::from_secs(10)
}

/// Every bound the accept loop enforces, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The timeouts.
    pub timeouts: Timeouts,
    /// Connections served at once; at the cap the listener stops accepting (the kernel's
    /// backlog holds the next ones) until one closes.
    pub max_connections: usize,
    /// Largest request line plus header block, refused (431 or close) before it is buffered.
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub drain: Duration,
}

impl Limits {
    /// Checks the configured values; `what` prefixes errors with the config keys' section.
    ///
    /// # Errors
    /// A zero timeout or connection cap, or a header bound below [`MIN_HEADER_BYTES`].
    pub fn new(
        what: &str,
        timeouts: Timeouts,
        max_connections: usize,
        max_header_bytes: usize,
        drain: Duration,
    ) -> Result<Self, String> {
        let t = &timeouts;
        for (key, d) in [
            ("header", t.header),
            ("idle", t.idle),
            ("body", t.body),
            ("handshake", t.handshake),
        ] {
            if d.is_zero() {
                return Err(format!("{what}.timeouts.{key}: must be more than 0s"));
            }
        }
        if max_connections == 0 {
            return Err(format!("{what}: the connection cap must be at least 1"));
        }
        if max_header_bytes < MIN_HEADER_BYTES {
            return Err(format!(
                "{what}: the header bound must be at least {MIN_HEADER_BYTES} bytes"
            ));
        }
        Ok(Self {
            timeouts,
            max_connections,
            max_header_bytes,
            drain,
        })
    }
}

/// Deserializes a Go-style duration (`24h`, `1h30m`, `250ms`).
///
/// # Errors
/// Text that [`parse_duration`] refuses.
pub fn go_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse_duration(&text).ok_or_else(|| {
        serde::de::Error::custom(format!("{text:?} is not a duration like 24h, 1h30m or 10s"))
    })
}

/// A Go-style duration: number+unit pairs, units `h`, `m`, `s`, `ms`; `None` on overflow.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => Duration::from_secs(3600),
            "m" => Duration::from_secs(60),
            "s" => Duration::from_secs(1),
            "ms" => Duration::from_millis(1),
            _ => return None,
        };
        total = total.checked_add(unit.checked_mul(u32::try_from(n).ok()?)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        for bad in ["", "h", "5", "5d", "-1h", "1.5h", "99999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn timeouts_default_per_key_and_refuse_unknown_keys() {
        let t: Timeouts = serde_yaml::from_str("header: 2s\nbody: 1m\n").unwrap();
        assert_eq!(t.header, Duration::from_secs(2));
        assert_eq!(t.body, Duration::from_secs(60));
        assert_eq!(t.idle, Timeouts::default().idle);
        assert!(serde_yaml::from_str::<Timeouts>("hedaer: 2s\n").is_err());
        assert!(serde_yaml::from_str::<Timeouts>("header: soon\n").is_err());
    }

    #[test]
    fn limits_refuse_zero_and_tiny_values() {
        let ok = |t, c, h| Limits::new("http", t, c, h, Duration::from_secs(1));
        let t = Timeouts::default();
        assert!(ok(t, 1, MIN_HEADER_BYTES).is_ok());
        assert!(ok(t, 0, MIN_HEADER_BYTES).is_err_and(|e| e.contains("cap")));
        assert!(ok(t, 1, MIN_HEADER_BYTES - 1).is_err_and(|e| e.contains("header bound")));
        let zero = Timeouts {
            body: Duration::ZERO,
            ..t
        };
        assert!(ok(zero, 1, MIN_HEADER_BYTES).is_err_and(|e| e.contains("http.timeouts.body")));
    }
}
