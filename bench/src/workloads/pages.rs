//! The web pages (`/ui/`) on the repository the tags rows filled (100,000 tags unless asked
//! otherwise): the repositories page, the tags page's first page and one from the middle, and
//! one image's page, each read over and over by one logged-in client. registry:2 has no pages.

use std::net::SocketAddr;

use http::{Method, StatusCode};

use crate::error::BenchError;
use crate::http::{request, Conn, Keep, Payload};
use crate::load::{drive, Bounds, Worker};
use crate::table::{Figure, Row};

use super::images::TagWorker;
use super::scaling::{TAGS_REPO, TAG_PREFIX};
use super::{failures, Env};

/// Requests per page, at most.
const MAX_OPS: u64 = 500;
/// The bound for every page, milliseconds (p99 here).
const TARGET_MS: f64 = 50.0;

/// Reads one page with a session cookie.
struct PageWorker {
    conn: Conn,
    uri: String,
    cookie: String,
}

impl Worker for PageWorker {
    async fn op(&mut self, _seq: u64) -> Result<u64, BenchError> {
        let req = request(
            Method::GET,
            &self.uri,
            &[("cookie", &self.cookie)],
            Payload::empty(),
        )?;
        let answer = self.conn.send(req, Keep::Count).await?;
        Ok(answer
            .expect(&format!("GET {}", self.uri), StatusCode::OK)?
            .len)
    }
}

/// Logs in through the login form as a browser does; the session cookie (`name=value`).
async fn log_in(conn: &mut Conn, env: &Env<'_>) -> Result<String, BenchError> {
    let form = format!(
        "username={}&password={}",
        form_value(&env.login.user),
        form_value(&env.login.password)
    );
    let req = request(
        Method::POST,
        "/ui/login",
        &[("content-type", "application/x-www-form-urlencoded")],
        Payload::new([form.into()]),
    )?;
    let answer = conn
        .send(req, Keep::Body)
        .await?
        .expect("POST /ui/login", StatusCode::SEE_OTHER)?;
    let cookie = answer.header("set-cookie");
    cookie
        .split(';')
        .next()
        .filter(|c| c.starts_with("berth_session="))
        .map(str::to_owned)
        .ok_or_else(|| BenchError::protocol("POST /ui/login", format!("set-cookie {cookie:?}")))
}

/// `value` percent-encoded for a form body (letters and digits kept).
fn form_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One row per page.
///
/// # Errors
/// Logging in failed.
pub async fn rows(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let berth: SocketAddr = env.registries.berth;
    let middle = TagWorker::tag(TAG_PREFIX, env.plan.scale_small / 2);
    let pages = [
        ("repositories page", "/ui/".to_owned()),
        ("tags page, first", format!("/ui/r/{TAGS_REPO}")),
        (
            "tags page from the middle",
            format!("/ui/r/{TAGS_REPO}?last={middle}"),
        ),
        ("image page", format!("/ui/r/{TAGS_REPO}/-/{middle}")),
    ];
    let mut conn = Conn::new(berth);
    let cookie = log_in(&mut conn, env).await?;
    let mut rows = Vec::new();
    for (what, uri) in pages {
        let worker = PageWorker {
            conn: Conn::new(berth),
            uri,
            cookie: cookie.clone(),
        };
        let bounds = Bounds {
            duration: env.rate_round().duration,
            max_ops: MAX_OPS,
        };
        let (out, _, _) = drive(vec![worker], bounds, 0).await?;
        let (p50, p99) = (out.latency_ms(0.5), out.latency_ms(0.99));
        let ok = out.ops > 0 && out.errors == 0;
        rows.push(Row {
            workload: format!("web {what}, repository of the tags rows (one client)"),
            berth: ok.then(|| Figure::latency(p50, p99)),
            registry2: None,
            limit: None,
            target: format!("p99 < {TARGET_MS} ms"),
            met: Some(ok && p99 < TARGET_MS),
            note: [
                failures("Berth", &out),
                "registry:2 has no web pages".to_owned(),
            ]
            .into_iter()
            .filter(|n| !n.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        });
    }
    Ok(rows)
}
