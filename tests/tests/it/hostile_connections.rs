//! Hostile connections against both daemons, which bound what a client controls without any
//! credentials: thousands of loopback connections trickling header bytes (slowloris), a
//! connection cap that stops accepting, an upload body that stalls, a TLS handshake that never
//! comes, a keep-alive connection left idle, an oversized header block, and `/metrics` moved to
//! a listener of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use berth_tests::authd::gen_cert;
use berth_tests::bodies::stalling_body;
use berth_tests::daemon::Daemon;
use berth_tests::hostile::{
    authd, metrics_addr, registryd, registryd_tls, rss_kib, sockets, with_header_of,
};
use berth_tests::registry::header;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Short bounds so the tests see them act; every wait below is many times longer.
fn short_timeouts() -> Value {
    json!({"header": "2s", "idle": "4s", "body": "2s", "handshake": "2s"})
}

/// How long a trickling connection goes on at most: 15 times the header timeout. A daemon
/// without one keeps every connection that long, and the test fails.
const TRICKLE_FOR: Duration = Duration::from_secs(30);
/// How many slowloris connections each daemon gets.
const FLOOD: usize = 2000;
/// How far above its idle figure a daemon's RSS may stay once the flood is gone: the allocator
/// keeps some freed pages, the runtime keeps a few task slabs; a daemon that still holds the
/// flood's buffers (~10 KiB per connection, 20 MiB for 2000) does not fit.
const RSS_SLACK_KIB: u64 = 8 * 1024;

/// How a slowloris connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trickle {
    /// The server closed it (or answered and closed).
    Closed,
    /// Still open after [`TRICKLE_FOR`].
    StillOpen,
    /// Never connected.
    Refused,
}

/// Opens a connection, starts a request head, then sends one more header byte every 500 ms
/// until the server closes the connection or [`TRICKLE_FOR`] is over.
async fn trickle(addr: SocketAddr) -> Trickle {
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr)).await
    else {
        return Trickle::Refused;
    };
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .is_err()
    {
        return Trickle::Closed;
    }
    let end = Instant::now() + TRICKLE_FOR;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            // Any answer (an error status) or EOF or reset: the server ended it.
            _ = stream.read(&mut buf) => return Trickle::Closed,
            _ = tick.tick() => {
                if stream.write_all(b"a").await.is_err() {
                    return Trickle::Closed;
                }
            }
            () = tokio::time::sleep_until(end) => return Trickle::StillOpen,
        }
    }
}

/// `GET /healthz` on a fresh connection, bounded.
async fn healthz(addr: SocketAddr) -> reqwest::StatusCode {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap();
    client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET /healthz during the flood: {e}"))
        .status()
}

/// Floods `daemon` with `count` slowloris connections; checks that a normal request is
/// answered meanwhile, that every trickling connection is closed by the server, and returns
/// the most sockets the daemon held at once.
async fn flood(daemon: &Daemon, count: usize) -> usize {
    let addr = daemon.addr;
    let mut conns = tokio::task::JoinSet::new();
    for _ in 0..count {
        conns.spawn(trickle(addr));
    }
    // Let the connections be accepted (or queue) before the normal request joins them.
    let mut most = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        most = most.max(sockets(daemon.pid()));
    }
    assert_eq!(healthz(addr).await, reqwest::StatusCode::OK);
    let mut ends = Vec::with_capacity(count);
    let mut sampled = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            end = conns.join_next() => match end {
                Some(end) => ends.push(end.unwrap()),
                None => break,
            },
            _ = sampled.tick() => most = most.max(sockets(daemon.pid())),
        }
    }
    let open = ends.iter().filter(|e| **e == Trickle::StillOpen).count();
    let refused = ends.iter().filter(|e| **e == Trickle::Refused).count();
    assert_eq!(
        (open, refused),
        (0, 0),
        "of {count} trickling connections, {open} were still open after {TRICKLE_FOR:?} and \
         {refused} could not connect"
    );
    most
}

/// Waits (bounded: 30 s, three times jemalloc's 10 s decay) for the daemon's RSS to come back
/// within [`RSS_SLACK_KIB`] of `idle`.
async fn rss_returns(daemon: &Daemon, idle: u64, peak: u64) {
    let mut now = rss_kib(daemon.pid());
    for _ in 0..150 {
        if now <= idle + RSS_SLACK_KIB {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        now = rss_kib(daemon.pid());
    }
    eprintln!("RSS KiB: idle {idle}, peak {peak}, after {now}");
    assert!(
        now <= idle + RSS_SLACK_KIB,
        "RSS stayed at {now} KiB after the flood (idle {idle} KiB, peak {peak} KiB)"
    );
}

/// Measures idle RSS, floods, and checks memory afterwards.
async fn survives_slowloris(daemon: &Daemon) {
    for _ in 0..20 {
        assert_eq!(healthz(daemon.addr).await, reqwest::StatusCode::OK);
    }
    let idle = rss_kib(daemon.pid());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(idle));
    let sampler = {
        let (pid, peak) = (daemon.pid(), peak.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    flood(daemon, FLOOD).await;
    sampler.abort();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    rss_returns(daemon, idle, peak).await;
}

#[tokio::test]
async fn registryd_survives_a_slowloris_flood_and_gives_the_memory_back() {
    server::raise_fd_limit();
    let (_dir, daemon) = registryd(json!({"timeouts": short_timeouts()})).await;
    survives_slowloris(&daemon).await;
}

#[tokio::test]
async fn authd_survives_a_slowloris_flood_and_gives_the_memory_back() {
    server::raise_fd_limit();
    let (_dir, daemon) = authd(json!({"timeouts": short_timeouts()})).await;
    survives_slowloris(&daemon).await;
}

#[tokio::test]
async fn at_the_connection_cap_both_daemons_stop_accepting_and_still_answer() {
    const CAP: usize = 50;
    let (_r, registry) =
        registryd(json!({"timeouts": short_timeouts(), "maxconnections": CAP})).await;
    let (_a, auth) = authd(json!({"timeouts": short_timeouts(), "max_connections": CAP})).await;
    for daemon in [&registry, &auth] {
        let before = sockets(daemon.pid());
        let most = flood(daemon, CAP * 4).await;
        assert!(
            most <= before + CAP,
            "the daemon held {most} sockets with a cap of {CAP} ({before} before the flood)"
        );
    }
}

#[tokio::test]
async fn a_stalled_upload_body_is_cut_off_and_the_session_resumes() {
    let (_dir, daemon) = registryd(json!({"timeouts": short_timeouts()})).await;
    let base = daemon.url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(40))
        .build()
        .unwrap();
    let (first, second) = (vec![7u8; 1000], vec![9u8; 1000]);
    let resp = client
        .post(format!("{base}/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = format!("{base}{}", header(&resp, "Location"));
    let resp = client
        .patch(&location)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "0-999")
        .header("Content-Length", "1000")
        .body(first.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(header(&resp, "Range"), "0-999");

    // Half of the next chunk, then nothing: the daemon ends the request after its body timeout.
    let (sent, _) = tokio::sync::oneshot::channel();
    let stalled = client
        .patch(&location)
        .header("Content-Type", "application/octet-stream")
        .body(stalling_body(second[..500].to_vec(), sent))
        .send()
        .await;
    match stalled {
        Ok(resp) => assert!(
            resp.status().is_client_error(),
            "stalled PATCH got {}",
            resp.status()
        ),
        Err(e) => assert!(!e.is_timeout(), "the stalled PATCH was never cut off: {e}"),
    }

    // The session is as it was before the stalled chunk, and carries on from there.
    let resp = client.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(header(&resp, "Range"), "0-999");
    let resp = client
        .patch(&location)
        .header("Content-Type", "application/octet-stream")
        .header("Content-Range", "1000-1999")
        .header("Content-Length", "1000")
        .body(second.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let whole = [first, second].concat();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&whole)));
    let resp = client
        .put(format!("{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        201,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    let got = client
        .get(format!("{base}/v2/team/app/blobs/{digest}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), whole.as_slice());
}

#[tokio::test]
async fn oversized_header_blocks_are_refused_by_both_daemons() {
    let (_r, registry) = registryd(json!({})).await;
    let (_a, auth) = authd(json!({})).await;
    let (_s, small) = registryd(json!({"maxheaderbytes": 16384})).await;
    for (daemon, limit) in [(&registry, 64 << 10), (&auth, 64 << 10), (&small, 16 << 10)] {
        assert_eq!(with_header_of(daemon.addr, limit / 2).await, Some(200));
        for size in [limit * 2, 1 << 20] {
            let code = with_header_of(daemon.addr, size).await;
            assert!(
                matches!(code, None | Some(431)),
                "a {size}-byte header (limit {limit}) got {code:?}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_can_move_off_the_public_address() {
    let (_r, registry) = registryd(json!({"debug": {"addr": "127.0.0.1:0"}})).await;
    let (_a, auth) = authd(json!({"debug": {"addr": "127.0.0.1:0"}})).await;
    for (daemon, metric) in [
        (&registry, "registry_http_requests_total"),
        (&auth, "authd_config_last_reload_ok"),
    ] {
        assert_eq!(healthz(daemon.addr).await, reqwest::StatusCode::OK);
        let public = reqwest::get(format!("{}/metrics", daemon.url()))
            .await
            .unwrap();
        assert_eq!(public.status(), 404);
        let private = metrics_addr(daemon).await;
        let text = reqwest::get(format!("http://{private}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(metric), "{metric} not in {text}");
    }
    // Without the key, /metrics stays where it was.
    let (_d, default) = registryd(json!({})).await;
    let resp = reqwest::get(format!("{}/metrics", default.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_tls_handshake_that_never_comes_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    gen_cert(&certs, &[]);
    let tls = json!({"certificate": certs.join("server.crt"), "key": certs.join("server.key")});
    let (_dir, _daemon, addr) =
        registryd_tls(json!({"timeouts": short_timeouts(), "tls": tls})).await;
    // Connected, silent: no ClientHello ever. The daemon closes the connection.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(TRICKLE_FOR, stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "a silent TLS client was not cut off: {read:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_header_timeout_then_closes() {
    let timeouts = json!({"header": "2s", "idle": "10s"});
    let (_r, registry) = registryd(json!({ "timeouts": timeouts })).await;
    let (_a, auth) = authd(json!({ "timeouts": timeouts })).await;
    for daemon in [&registry, &auth] {
        let mut stream = TcpStream::connect(daemon.addr).await.unwrap();
        let ask = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        stream.write_all(ask).await.unwrap();
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        // Idle past the header timeout (2 s), well before the idle one (10 s): still usable.
        tokio::time::sleep(Duration::from_secs(4)).await;
        stream.write_all(ask).await.unwrap();
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
        // Then nothing: the daemon closes it.
        let read = tokio::time::timeout(TRICKLE_FOR, stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "an idle connection was kept: {read:?}"
        );
    }
}
