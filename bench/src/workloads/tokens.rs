//! authd's token endpoint: 32 clients, Basic auth on every request; one known static user, and
//! a user of an LDAP directory (slapd on loopback) with the bind cache warm (one search and
//! bind, then every request from the cache) and off (`cache_ttl: 0`: every request searches
//! and binds, as a cold cache does), beside the static user's figure of the same call.

use berth_tests::slapd::{Person, Slapd};
use serde_json::json;

use crate::client::Login;
use crate::daemon::Daemon;
use crate::error::BenchError;
use crate::http::Conn;
use crate::load::{drive, Outcome, Worker};
use crate::stack::{gen_cert, start_authd};
use crate::table::{Figure, Row};

use super::{Env, BASE_REPO};

const CLIENTS: usize = 32;
/// The directory's one user.
const LDAP_USER: &str = "ldap-user";
const LDAP_PASSWORD: &str = "ldap-pass";

/// Asks authd for a pull token over its own keep-alive connection.
struct TokenWorker {
    conn: Conn,
    login: Login,
    scopes: String,
}

impl Worker for TokenWorker {
    async fn op(&mut self, _seq: u64) -> Result<u64, BenchError> {
        self.login.token(&mut self.conn, &self.scopes).await?;
        Ok(0)
    }
}

/// Token requests by `login` from 32 clients for twice a rate round.
async fn measure(env: &Env<'_>, login: &Login) -> Result<Outcome, BenchError> {
    let scopes = format!("repository:{BASE_REPO}:pull");
    let workers = (0..CLIENTS)
        .map(|_| TokenWorker {
            conn: Conn::new(login.authd),
            login: login.clone(),
            scopes: scopes.clone(),
        })
        .collect();
    let mut bounds = env.rate_round();
    bounds.duration *= 2;
    let (out, _, _) = drive(workers, bounds, 0).await?;
    Ok(out)
}

fn figure(out: &Outcome) -> Option<Figure> {
    (out.ops > 0).then(|| {
        Figure::rate_with_latency(
            out.rate(),
            "tokens/s",
            out.latency_ms(0.5),
            out.latency_ms(0.99),
        )
    })
}

fn errors_note(out: &Outcome) -> String {
    match out.errors {
        0 => String::new(),
        n => format!(
            "authd: {n} failed requests (first: {})",
            out.first_error.as_deref().unwrap_or("?")
        ),
    }
}

/// Token endpoint row: ≥ 2,000 tokens/s (authd only; registry:2 has no token server).
///
/// # Errors
/// The outcome could not be made.
pub async fn token_endpoint(env: &Env<'_>) -> Result<Row, BenchError> {
    let out = measure(env, &env.login).await?;
    Ok(Row {
        workload: "token requests (authd), one known user, 32 clients".into(),
        berth: figure(&out),
        registry2: None,
        limit: Some(format!(
            "{} (hello)",
            Figure::rate(env.limits.hello, "req/s").text
        )),
        target: "≥ 2,000/s".into(),
        met: (out.ops > 0).then(|| out.rate() >= 2000.0 && out.errors == 0),
        note: errors_note(&out),
    })
}

/// The LDAP rows: the static user measured first, then an LDAP user on an authd whose bind
/// cache is warm, and on one without it. The warm row's target is half the static figure (a
/// cache hit costs an HMAC, as a static user's cached login does); the cold row has none: it
/// is bounded by slapd's search and binds, and reported for what it is.
///
/// # Errors
/// slapd's folder, an authd or a measurement could not be made.
pub async fn ldap(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let statics = measure(env, &env.login).await?;
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-ldap.")
        .tempdir()
        .map_err(BenchError::io("create a temporary folder"))?;
    let root = dir.path().to_path_buf();
    gen_cert(&env.plan.bin_dir.join("authd"), &root.join("certs"))?;
    let slapd = Slapd::start_in(dir, &[Person::new(LDAP_USER, LDAP_PASSWORD, &["bench"])]);
    let mut rows = Vec::new();
    for (name, ttl) in [("warm", 60), ("cold", 0)] {
        let mut section = slapd.ldap_auth("none", &slapd.ca());
        section["cache_ttl"] = json!(ttl);
        let mut authd: Daemon = start_authd(
            &env.plan.bin_dir,
            &root,
            &format!("authd-ldap-{name}"),
            &json!({ "ldap_auth": section }),
        )
        .await?;
        let login = Login {
            authd: authd.addr,
            service: env.login.service.clone(),
            user: LDAP_USER.into(),
            password: LDAP_PASSWORD.into(),
        };
        let out = measure(env, &login).await?;
        authd.stop();
        let (what, target, met) = match name {
            "warm" => (
                "bind cache warm",
                "≥ 0.5 × static user".to_owned(),
                Some(out.rate() >= 0.5 * statics.rate() && out.errors == 0),
            ),
            _ => (
                "bind cache off (a search and two binds each)",
                "— (slapd-bound)".to_owned(),
                None,
            ),
        };
        rows.push(Row {
            workload: format!("token requests (authd), LDAP user, {what}, 32 clients"),
            berth: figure(&out),
            registry2: None,
            limit: figure(&statics).map(|f| format!("{} (static user)", f.text)),
            target,
            met: (out.ops > 0).then_some(met).flatten(),
            note: errors_note(&out),
        });
    }
    Ok(rows)
}
