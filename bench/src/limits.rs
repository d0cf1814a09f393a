//! The machine's limits, measured in the same run as the registries: single-core SHA-256
//! throughput (the sha2 crate), loopback TCP throughput between two tokio tasks, the request
//! rate of a trivial axum "hello" server (a child process, like the registries) under the same
//! load generator, and what the disk under the data folders takes: fsyncs per second and
//! durable write throughput.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::content::random_bytes;
use crate::daemon::{free_addr, Daemon};
use crate::error::BenchError;
use crate::http::{request, Conn, Keep, Payload};
use crate::load::{drive, Bounds, Outcome, Worker};

/// Buffer hashed (SHA-256) or written (loopback) per step.
const STEP: usize = 16 << 20;
/// Upper bound on the bytes one limit measurement moves.
const MAX_BYTES: u64 = 64 << 30;

/// Bytes per second SHA-256 hashes on one core, over about `duration`.
pub fn sha256_throughput(duration: Duration) -> f64 {
    let data = random_bytes(STEP);
    let mut hasher = Sha256::new();
    let begun = Instant::now();
    let mut bytes = 0u64;
    while begun.elapsed() < duration && bytes < MAX_BYTES {
        hasher.update(&data);
        bytes += STEP as u64;
    }
    std::hint::black_box(hasher.finalize());
    bytes as f64 / begun.elapsed().as_secs_f64()
}

/// 4 KiB appends each made durable by `fsync`, per second, in a new file in `dir`.
///
/// # Errors
/// The file could not be made or written.
pub fn fsync_rate(dir: &std::path::Path, duration: Duration) -> Result<f64, BenchError> {
    use std::io::Write;
    let mut file = tempfile::tempfile_in(dir).map_err(BenchError::io(format!(
        "create a file in {}",
        dir.display()
    )))?;
    let block = [0x5au8; 4096];
    let begun = Instant::now();
    let mut syncs = 0u64;
    while begun.elapsed() < duration && syncs < 1_000_000 {
        file.write_all(&block)
            .map_err(BenchError::io("write the fsync probe"))?;
        file.sync_all().map_err(BenchError::io("fsync the probe"))?;
        syncs += 1;
    }
    Ok(syncs as f64 / begun.elapsed().as_secs_f64())
}

/// Bytes per second a file of `len` bytes is written (1 MiB writes) and made durable (`fsync`)
/// in `dir`, repeated for about `duration` (at least once): what a durable blob push costs the
/// disk.
///
/// # Errors
/// The file could not be made or written.
pub fn durable_write_throughput(
    dir: &std::path::Path,
    len: usize,
    duration: Duration,
) -> Result<f64, BenchError> {
    use std::io::Write;
    let block = random_bytes(1 << 20);
    let begun = Instant::now();
    let mut bytes = 0u64;
    while bytes == 0 || (begun.elapsed() < duration && bytes < MAX_BYTES) {
        let mut file = tempfile::tempfile_in(dir).map_err(BenchError::io(format!(
            "create a file in {}",
            dir.display()
        )))?;
        let mut left = len;
        while left > 0 {
            let n = left.min(block.len());
            file.write_all(&block[..n])
                .map_err(BenchError::io("write the disk probe"))?;
            left -= n;
        }
        file.sync_all()
            .map_err(BenchError::io("fsync the disk probe"))?;
        bytes += len as u64;
    }
    Ok(bytes as f64 / begun.elapsed().as_secs_f64())
}

/// Bytes per second one TCP connection on 127.0.0.1 carries between two tokio tasks.
///
/// # Errors
/// The socket could not be set up.
pub async fn loopback_throughput(duration: Duration) -> Result<f64, BenchError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(BenchError::io("bind 127.0.0.1:0"))?;
    let addr = listener
        .local_addr()
        .map_err(BenchError::io("read the bound address"))?;
    let reader = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<u64, std::io::Error>(total);
            }
            total += n as u64;
        }
    });
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(BenchError::io(format!("connect to {addr}")))?;
    let data = random_bytes(1 << 20);
    let begun = Instant::now();
    let mut sent = 0u64;
    while begun.elapsed() < duration && sent < MAX_BYTES {
        stream
            .write_all(&data)
            .await
            .map_err(BenchError::io("write to loopback"))?;
        sent += data.len() as u64;
    }
    stream
        .shutdown()
        .await
        .map_err(BenchError::io("close loopback"))?;
    drop(stream);
    let received = reader
        .await
        .map_err(|e| BenchError::protocol("loopback reader", e.to_string()))?
        .map_err(BenchError::io("read from loopback"))?;
    Ok(received as f64 / begun.elapsed().as_secs_f64())
}

/// Serves `GET /` → `hello` on `addr` until the process is stopped (the `hello-server` mode).
///
/// # Errors
/// The address could not be bound.
pub async fn serve_hello(addr: SocketAddr) -> Result<(), BenchError> {
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(BenchError::io(format!("bind {addr}")))?;
    axum::serve(listener, app)
        .await
        .map_err(BenchError::io("serve hello"))
}

/// A client of the hello server.
struct HelloWorker {
    conn: Conn,
}

impl Worker for HelloWorker {
    async fn op(&mut self, _seq: u64) -> Result<u64, BenchError> {
        let req = request(Method::GET, "/", &[], Payload::empty())?;
        self.conn
            .send(req, Keep::Body)
            .await?
            .expect("hello GET", StatusCode::OK)?;
        Ok(0)
    }
}

/// Starts this program's hello server as a child process and drives it with `connections`
/// workers within `bounds`.
///
/// # Errors
/// The server did not start or the load could not be run.
pub async fn hello_rate(connections: usize, bounds: Bounds) -> Result<Outcome, BenchError> {
    let exe = std::env::current_exe().map_err(BenchError::io("find this program"))?;
    let addr = free_addr()?;
    let log = std::env::temp_dir().join(format!("berth-bench-hello-{}.log", std::process::id()));
    let mut cmd = Command::new(exe);
    cmd.arg("hello-server").arg("--addr").arg(addr.to_string());
    let mut server = Daemon::spawn("hello server", cmd, addr, &log)?;
    server.wait_ready("/", |s| s == StatusCode::OK).await?;
    let workers = (0..connections)
        .map(|_| HelloWorker {
            conn: Conn::new(addr),
        })
        .collect();
    let (outcome, _, _) = drive(workers, bounds, 0).await?;
    server.stop();
    let _ = std::fs::remove_file(&log);
    Ok(outcome)
}
