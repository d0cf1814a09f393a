//! A stand-in for the registries a pull-through cache fetches from (Docker Hub, ECR, …):
//! registry:2 on a fixed loopback port, reached as `upstream.test:PORT`, behind authd's Bearer
//! tokens (as Docker Hub) or htpasswd Basic auth (as ECR). It can be stopped and started again
//! on the same port, stocked with images, asked what it was asked (its access log), and made to
//! serve other bytes for a stored blob.

use std::cell::Cell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tempfile::TempDir;

use crate::authd::{gen_cert, write_htpasswd, AuthSpec, Authd, User};
use crate::content::{index, unique, Content, Image, OCI_INDEX};
use crate::reference_registry::{serve, storage, write_config, Registry2Auth};
use crate::registry::Registry;
use crate::spawned::Spawned;

/// The host name the tests give upstreams (`./scripts/test` maps it to 127.0.0.1 in /etc/hosts).
pub const HOST: &str = "upstream.test";

/// The path of the requests [`Upstream::requests`] sends to see its access log caught up.
const MARKER: &str = "/?berth-tests-marker=";

/// How an upstream authenticates its clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamAuth {
    /// Bearer tokens from its own authd, as Docker Hub, ghcr and quay.
    Bearer,
    /// `WWW-Authenticate: Basic` against an htpasswd file, as ECR.
    Basic,
}

/// One line of the upstream's access log: a request it answered.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent, query included.
    pub uri: String,
    pub status: u16,
    pub user_agent: String,
}

impl Request {
    /// The request target without its query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    /// Whether this was `method path` (the query aside).
    pub fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path() == path
    }

    /// Parses a combined-format line: `IP - - [date] "METHOD URI HTTP/1.1" STATUS BYTES "REF" "UA"`.
    fn parse(line: &str) -> Option<Request> {
        let (_, rest) = line.split_once("] \"")?;
        let (request, rest) = rest.split_once('"')?;
        let mut words = request.split(' ');
        let method = words.next()?.to_string();
        let uri = words.next()?.to_string();
        let status = rest.split_whitespace().next()?.parse().ok()?;
        let user_agent = rest
            .trim_end()
            .strip_suffix('"')
            .and_then(|r| r.rsplit_once('"'))
            .map(|(_, ua)| ua.to_string())?;
        Some(Request {
            method,
            uri,
            status,
            user_agent,
        })
    }
}

/// How many of `requests` were `method path` answered with success (2xx): fetches, not the
/// 401s that send a client for a token first.
pub fn count(requests: &[Request], method: &str, path: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.is(method, path) && (200..300).contains(&r.status))
        .count()
}

/// A stand-in upstream registry; stopped when dropped.
pub struct Upstream {
    /// Its fixed port on 127.0.0.1.
    pub port: u16,
    pub auth: UpstreamAuth,
    /// May pull: what a cache is configured with. The password is unique to this upstream, so
    /// that a test can look for it where it must not be.
    pub puller: User,
    /// May push: what the tests stock the upstream with.
    pusher: User,
    /// The token server of a Bearer upstream.
    pub authd: Option<Authd>,
    /// Its registry2.yml, for starting it again.
    config: PathBuf,
    process: Option<Spawned>,
    /// Marker requests sent so far.
    markers: Cell<u32>,
    // Dropped last: the processes above stop before their files go away.
    dir: TempDir,
}

impl Upstream {
    /// Starts an upstream authenticating as `auth` on a free 127.0.0.1 port, which it keeps.
    ///
    /// # Panics
    /// When `upstream.test` does not resolve to 127.0.0.1 only (run through `./scripts/test`),
    /// or the registry does not start.
    pub async fn start(auth: UpstreamAuth) -> Upstream {
        assert_host_resolves();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        let puller = User::new("puller", &format!("upstream-secret-{}", unique()));
        let pusher = User::new("pusher", "pusher-pass");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let (authd, config) = match auth {
            UpstreamAuth::Bearer => {
                let certs = dir.path().join("certs");
                gen_cert(&certs, &[]);
                let spec = AuthSpec {
                    users: vec![puller.clone(), pusher.clone()],
                    acl: json!([
                        {"match": {"account": "pusher"}, "actions": ["*"]},
                        {"match": {"account": "puller"}, "actions": ["pull"]},
                    ]),
                    expiration: 900,
                    disable_legacy_key_id: false,
                };
                let authd = Authd::start(dir.path(), &certs, spec).await;
                let realm = authd.realm();
                let token = Registry2Auth::Token {
                    realm: &realm,
                    rootcertbundle: &certs.join("token.crt"),
                };
                let config = write_config(dir.path(), &addr, token);
                (Some(authd), config)
            }
            UpstreamAuth::Basic => {
                let path = dir.path().join("htpasswd");
                write_htpasswd(&path, &[puller.clone(), pusher.clone()]);
                let config =
                    write_config(dir.path(), &addr, Registry2Auth::Htpasswd { path: &path });
                (None, config)
            }
        };
        let mut upstream = Upstream {
            port,
            auth,
            puller,
            pusher,
            authd,
            config,
            process: None,
            markers: Cell::new(0),
            dir,
        };
        upstream.resume().await;
        upstream
    }

    /// `upstream.test:PORT`: the host as clients name it (and containerd's `ns`).
    pub fn host(&self) -> String {
        format!("{HOST}:{}", self.port)
    }

    /// `http://upstream.test:PORT`: the `remoteurl` of a cache of it.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Stops the registry (SIGTERM, then waits): its port refuses connections until
    /// [`Upstream::resume`].
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Starts the registry again (or the first time) on its port, over the same storage.
    pub async fn resume(&mut self) {
        self.stop();
        let (process, addr) = serve(self.dir.path(), &self.config).await;
        assert_eq!(addr, self.addr(), "registry:2 bound another port");
        self.process = Some(process);
    }

    /// Pushes `image` (blobs, then the manifest) to `repo` under `tag`, as the pusher.
    pub async fn push(&self, repo: &str, tag: &str, image: &Image) {
        let (registry, token) = self.pusher_client(repo).await;
        for blob in image.blobs() {
            registry.upload_blob(repo, blob, token.as_deref()).await;
        }
        registry
            .push_manifest(repo, tag, &image.manifest, token.as_deref())
            .await;
    }

    /// Pushes each of `images` (blobs, then the manifest by digest) to `repo`, then an OCI index
    /// over them, each with its `linux/<arch>` platform, under `tag`; returns the index.
    pub async fn push_index(&self, repo: &str, tag: &str, images: &[(&str, &Image)]) -> Content {
        let (registry, token) = self.pusher_client(repo).await;
        for (_, image) in images {
            for blob in image.blobs() {
                registry.upload_blob(repo, blob, token.as_deref()).await;
            }
            let digest = &image.manifest.digest;
            registry
                .push_manifest(repo, digest, &image.manifest, token.as_deref())
                .await;
        }
        let index = index(OCI_INDEX, images);
        registry
            .push_manifest(repo, tag, &index, token.as_deref())
            .await;
        index
    }

    /// A client of the upstream as the pusher, and the token (Bearer) it sends for `repo`.
    async fn pusher_client(&self, repo: &str) -> (Registry, Option<String>) {
        let base = format!("http://{}", self.addr());
        match &self.authd {
            Some(authd) => {
                let scope = format!("repository:{repo}:pull,push");
                let token = authd.token(&self.pusher.name, &[&scope]).await;
                (Registry::new(&base), Some(token))
            }
            None => (
                Registry::basic(&base, &self.pusher.name, &self.pusher.password),
                None,
            ),
        }
    }

    /// Every request the upstream answered so far, across restarts, in the order it logged them.
    /// While it runs, a marker request is sent first and awaited in the log, so that what was
    /// answered before the call is in it.
    pub async fn requests(&self) -> Vec<Request> {
        if self.process.is_some() {
            let n = self.markers.get() + 1;
            self.markers.set(n);
            let marker = format!("{MARKER}{n}");
            let url = format!("http://{}{marker}", self.addr());
            let resp = reqwest::get(&url)
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
            let logged = |text: &str| text.contains(&format!("\"GET {marker} "));
            let mut tries = 0;
            while !logged(&self.log_text()) {
                tries += 1;
                assert!(tries < 200, "registry:2 never logged {marker}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        self.log_text()
            .lines()
            .filter_map(Request::parse)
            .filter(|r| !r.uri.starts_with(MARKER))
            .collect()
    }

    /// Replaces the stored bytes of `blob` with as many other bytes (each inverted), so that the
    /// upstream serves content that does not match its digest.
    pub fn corrupt_blob(&self, blob: &Content) {
        let wrong: Vec<u8> = blob.bytes.iter().map(|b| !b).collect();
        self.write_blob(blob, &wrong);
    }

    /// Puts the right bytes of `blob` back after [`Upstream::corrupt_blob`].
    pub fn restore_blob(&self, blob: &Content) {
        self.write_blob(blob, &blob.bytes);
    }

    fn write_blob(&self, blob: &Content, bytes: &[u8]) {
        let hex = blob.hex();
        let path = storage(self.dir.path())
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        let stored = std::fs::metadata(&path).unwrap_or_else(|e| {
            panic!(
                "blob {} is not stored at {}: {e}",
                blob.digest,
                path.display()
            )
        });
        assert_eq!(stored.len(), bytes.len() as u64, "{}", path.display());
        std::fs::write(&path, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Everything registry:2 printed so far, across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry2.log")).unwrap_or_default()
    }
}

/// A port that was free on 127.0.0.1 a moment ago (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a loopback port: {e}"))
}

/// Panics unless [`HOST`] resolves to 127.0.0.1 only.
fn assert_host_resolves() {
    let resolved: Vec<SocketAddr> = (HOST, 80)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    assert!(
        !resolved.is_empty()
            && resolved
                .iter()
                .all(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST),
        "{HOST} must resolve to 127.0.0.1 only (got {resolved:?}): run through ./scripts/test, \
         which adds it to /etc/hosts"
    );
}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn reads_registry2_access_lines() {
        let line = r#"127.0.0.1 - - [30/Nov/2026:21:19:59 +0000] "HEAD /v2/library/x/manifests/1?ns=foo HTTP/1.1" 404 91 "" "containerd/1.6""#;
        let r = Request::parse(line).unwrap_or_else(|| panic!("not parsed: {line}"));
        assert!(r.is("HEAD", "/v2/library/x/manifests/1"), "{r:?}");
        assert_eq!(r.uri, "/v2/library/x/manifests/1?ns=foo");
        assert_eq!((r.status, r.user_agent.as_str()), (404, "containerd/1.6"));
        assert!(Request::parse(r#"time="x" level=info msg="response completed""#).is_none());
    }
}
