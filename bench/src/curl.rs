//! One download with curl, a process of its own: one connection, curl's own buffers, the body
//! thrown away. The single-connection pull rows use it for nginx and the registries alike, so
//! all of them are measured by the same client.

use std::path::Path;
use std::time::Duration;

use crate::error::BenchError;

/// Longest a download may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// What one download measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Download {
    /// Body bytes received.
    pub bytes: u64,
    /// curl's `time_total`: from the start of the connection to the last byte.
    pub seconds: f64,
}

impl Download {
    /// Bytes per second.
    pub fn throughput(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-9)
    }
}

/// `GET url` with `headers` (`name: value`) by the curl program `curl`; the answer must be a
/// 200 of `want` bytes.
///
/// # Errors
/// curl could not run, failed, or the answer was not what was wanted.
pub async fn download(
    curl: &Path,
    url: &str,
    headers: &[String],
    want: u64,
) -> Result<Download, BenchError> {
    let mut cmd = tokio::process::Command::new(curl);
    cmd.args(["--silent", "--show-error", "--output", "/dev/null"])
        .args(["--write-out", "%{http_code} %{size_download} %{time_total}"])
        .arg("--max-time")
        .arg(TIMEOUT.as_secs().to_string());
    for header in headers {
        cmd.arg("--header").arg(header);
    }
    let out = cmd
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(BenchError::io(format!("run {}", curl.display())))?;
    let said = String::from_utf8_lossy(&out.stdout);
    let what = format!("curl GET {url}");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(BenchError::protocol(
            what,
            format!("{} ({said}): {}", out.status, err.trim()),
        ));
    }
    let download = parse(&said).ok_or_else(|| {
        BenchError::protocol(what.clone(), format!("unreadable --write-out {said:?}"))
    })?;
    match download {
        (200, bytes, seconds) if bytes == want => Ok(Download { bytes, seconds }),
        (status, bytes, _) => Err(BenchError::protocol(
            what,
            format!("answered {status} with {bytes} bytes (wanted 200 with {want})"),
        )),
    }
}

/// `%{http_code} %{size_download} %{time_total}`.
fn parse(text: &str) -> Option<(u16, u64, f64)> {
    let mut fields = text.split_whitespace();
    let status = fields.next()?.parse().ok()?;
    let bytes = fields.next()?.parse().ok()?;
    let seconds = fields.next()?.parse().ok()?;
    fields.next().is_none().then_some((status, bytes, seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_write_out_line() {
        assert_eq!(
            parse("200 268435456 0.094211"),
            Some((200, 268_435_456, 0.094211))
        );
        assert_eq!(parse("404 19 0.001"), Some((404, 19, 0.001)));
        for bad in ["", "200 12", "200 x 0.1", "200 12 0.1 extra"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn throughput_is_bytes_over_seconds() {
        let d = Download {
            bytes: 3_000_000,
            seconds: 0.5,
        };
        assert!((d.throughput() - 6e6).abs() < 1.0);
    }
}
