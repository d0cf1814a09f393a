//! Starting authd in-process over a temp dir with a given auth.yaml, and small request helpers.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use authd::app::App;
use authd::certs::{generate, CertRequest};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Basic credentials, `None` for anonymous.
pub type Creds<'a> = Option<(&'a str, &'a str)>;
/// Query or form pairs.
pub type Pairs<'a> = Vec<(&'a str, &'a str)>;

pub const ISSUER: &str = "berth-auth";
pub const SERVICE: &str = "registry";

/// Certificates made once per test binary (key generation is the slow part).
pub fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")).keep();
        generate(&CertRequest {
            out: dir.clone(),
            dns: vec![],
            ips: vec![],
            force: false,
            rsa: false,
        })
        .unwrap_or_else(|e| panic!("gen-cert: {e}"));
        dir
    })
}

/// bcrypt cost 4 hash of `password`.
pub fn hash(password: &str) -> String {
    authd::authn::hash_password(password, 4).unwrap_or_else(|e| panic!("{e}"))
}

/// An auth.yaml with the example's users (passwords `<name>-pass`) and `acl` (YAML list text),
/// `extra` appended at top level.
pub fn yaml(acl: &str, extra: &str) -> String {
    let certs = certs().display();
    format!(
        r#"server:
  addr: "127.0.0.1:0"
token:
  issuer: {ISSUER}
  expiration: 300
  certificate: {certs}/token.crt
  key: {certs}/token.key
  services: [{SERVICE}]
users:
  admin: {{password: "{admin}"}}
  alice: {{password: "{alice}"}}
  bob:
    password: "{bob}"
    labels: {{group: [readers]}}
  "": {{}}
acl:
{acl}
{extra}
"#,
        admin = hash("admin-pass"),
        alice = hash("alice-pass"),
        bob = hash("bob-pass"),
    )
}

/// The example auth.yaml's rules.
pub const STANDARD_ACL: &str = r#"  - match: {account: admin}
    actions: ["*"]
  - match: {account: alice, name: "alice/**"}
    actions: [pull, push]
  - match: {account: alice, type: registry, name: catalog}
    actions: ["*"]
  - match: {account: alice, type: repository}
    actions: [pull]
  - match: {labels: {group: readers}, type: repository}
    actions: [pull]
  - match: {account: "", type: repository, name: "public/**"}
    actions: [pull]
"#;

/// A running authd; stops when dropped.
pub struct Authd {
    pub url: String,
    pub app: Arc<App>,
    pub config: PathBuf,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
}

impl Authd {
    /// Serves `yaml` (written to `<tmp>/auth.yaml`), watching it for changes.
    pub async fn start(yaml: &str) -> Authd {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = dir.path().join("auth.yaml");
        std::fs::write(&config, yaml).unwrap_or_else(|e| panic!("{e}"));
        let loaded = authd::config::load(&config).unwrap_or_else(|e| panic!("{e}"));
        let scheme = if loaded.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "{scheme}://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let app = App::new(loaded, config.clone(), server::metrics::handle());
        let (stop, stopped) = oneshot::channel::<()>();
        let watcher = tokio::spawn(authd::reload::watch(app.clone()));
        let server_app = app.clone();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
                watcher.abort();
            };
            authd::server::serve(listener, None, server_app, shutdown).await
        });
        Authd {
            url,
            app,
            config,
            _dir: dir,
            _stop: stop,
        }
    }

    pub fn auth_url(&self) -> String {
        format!("{}/auth", self.url)
    }

    /// `GET /auth` with `query` pairs and optional Basic credentials.
    pub async fn get(
        &self,
        creds: Option<(&str, &str)>,
        query: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = reqwest::Client::new().get(self.auth_url()).query(query);
        if let Some((u, p)) = creds {
            req = req.basic_auth(u, Some(p));
        }
        respond(req).await
    }

    /// `POST /auth` with a form body.
    pub async fn post(&self, form: &[(&str, &str)]) -> (u16, Value, reqwest::header::HeaderMap) {
        respond(reqwest::Client::new().post(self.auth_url()).form(form)).await
    }
}

/// Writes `lines` (a request line and header lines; `Host` and `Connection: close` are added)
/// byte for byte to a new connection to `url`, so repeated header lines stay as written.
pub async fn send_raw(url: &str, lines: &[String]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let head = format!(
        "{}\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        lines.join("\r\n")
    );
    stream
        .write_all(head.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    stream
}

/// Reads the answer to [`send_raw`]: status and JSON body (Null if not JSON).
pub async fn read_raw(mut stream: tokio::net::TcpStream) -> (u16, Value) {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer}"));
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The request line and `Authorization` header of `GET /auth?service=…[&scope=…]` as `user`.
pub fn raw_get(user: &str, password: &str, scope: &str) -> Vec<String> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    vec![
        format!("GET /auth?service={SERVICE}&scope={scope} HTTP/1.1"),
        format!("Authorization: Basic {basic}"),
    ]
}

/// [`send_raw`] then [`read_raw`].
pub async fn raw(url: &str, lines: &[String]) -> (u16, Value) {
    read_raw(send_raw(url, lines).await).await
}

/// Sends `req`; returns status, JSON body (Null if not JSON) and headers.
pub async fn respond(req: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("request failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

/// The claims of `jwt`, checked against the test certificate, issuer and service.
pub fn claims(jwt: &str) -> token::Claims {
    let bundle = std::fs::read(certs().join("token.crt")).unwrap_or_else(|e| panic!("{e}"));
    let verifier = token::Verifier::from_bundle_pem(&bundle, ISSUER, SERVICE)
        .unwrap_or_else(|e| panic!("{e}"));
    verifier
        .verify(jwt)
        .unwrap_or_else(|e| panic!("token does not verify: {e}"))
}

/// `type:name:actions` of each access entry of a token response body.
pub fn granted(body: &Value) -> Vec<String> {
    let jwt = body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {body}"));
    claims(jwt)
        .access
        .iter()
        .map(|a| format!("{}:{}:{}", a.kind, a.name, a.actions.join(",")))
        .collect()
}

/// Polls `check` (at most ~10 s, 100 ms apart) until it holds; reports whether it did.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
