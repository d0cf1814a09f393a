//! authd's token endpoint: 32 clients, one known user, Basic auth on every request.

use crate::client::Login;
use crate::error::BenchError;
use crate::http::Conn;
use crate::load::{drive, Worker};
use crate::table::{Figure, Row};

use super::{Env, BASE_REPO};

const CLIENTS: usize = 32;

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

/// Token endpoint row: ≥ 2,000 tokens/s (authd only; registry:2 has no token server).
///
/// # Errors
/// The outcome could not be made.
pub async fn token_endpoint(env: &Env<'_>) -> Result<Row, BenchError> {
    let scopes = format!("repository:{BASE_REPO}:pull");
    let workers = (0..CLIENTS)
        .map(|_| TokenWorker {
            conn: Conn::new(env.login.authd),
            login: env.login.clone(),
            scopes: scopes.clone(),
        })
        .collect();
    let mut bounds = env.rate_round();
    bounds.duration *= 2;
    let (out, _, _) = drive(workers, bounds, 0).await?;
    let note = match out.errors {
        0 => String::new(),
        n => format!(
            "authd: {n} failed requests (first: {})",
            out.first_error.as_deref().unwrap_or("?")
        ),
    };
    Ok(Row {
        workload: "token requests (authd), one known user, 32 clients".into(),
        berth: (out.ops > 0).then(|| {
            Figure::rate_with_latency(
                out.rate(),
                "tokens/s",
                out.latency_ms(0.5),
                out.latency_ms(0.99),
            )
        }),
        registry2: None,
        limit: Some(format!(
            "{} (hello)",
            Figure::rate(env.limits.hello, "req/s").text
        )),
        target: "≥ 2,000/s".into(),
        met: (out.ops > 0).then(|| out.rate() >= 2000.0 && out.errors == 0),
        note,
    })
}
