//! registryd's own integration tests: the real server on 127.0.0.1:0 over a temporary data
//! directory, driven over HTTP. Behaviour across restarts, the auth schemes, TLS and metrics
//! live here; the black-box suite with real clients (and the kill -9 crash test) is the
//! `berth-tests` package.

// Test helpers outside #[test] functions panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod proxy_upstream;
mod restart;

use std::path::{Path, PathBuf};
use std::time::Duration;

use registryd::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A registryd running in this process.
pub struct Server {
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts registryd with `extra` YAML (an `auth:` section, say) over `data`.
    pub async fn start(data: &Path, extra: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let yaml = format!(
            "http: {{addr: \"127.0.0.1:0\"}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\n{extra}",
            data.display()
        );
        let cfg = Config::parse(&yaml, Path::new("/")).unwrap();
        let app = registryd::build(&cfg).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!(
            "{scheme}://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            registryd::serve(listener, app, tls, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Self {
            url,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops it and waits until it has let go of the data directory.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .unwrap()
                .unwrap();
        }
    }
}

/// A plain HTTP client with a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    registryd::names::Digest::of(bytes).to_string()
}

/// A fresh temporary directory and a path inside it for the data.
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    (dir, data)
}

/// Pushes `blob` monolithically to `repo`; returns its digest.
pub async fn push_blob(
    c: &reqwest::Client,
    url: &str,
    repo: &str,
    blob: &[u8],
    auth: Option<&str>,
) -> String {
    let d = digest(blob);
    let mut req = c
        .post(format!("{url}/v2/{repo}/blobs/uploads/?digest={d}"))
        .body(blob.to_vec());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(
        resp.status(),
        201,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    d
}
