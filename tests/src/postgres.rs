//! The PostgreSQL server `./scripts/test` starts for the tests (its own cluster in a temp dir,
//! on a loopback port, trust auth), named by the environment: `BERTH_TEST_POSTGRES` is its
//! `host:port`, `BERTH_TEST_POSTGRES_BIN` its binaries and `BERTH_TEST_POSTGRES_DATA` its data
//! directory. Each registryd gets a database of its own ([`fresh_database`]); with
//! `BERTH_TEST_ON_POSTGRES=1` every registryd of the suite runs on one ([`suite_on_postgres`]).
//! Tests that need the server fail (never skip) without it: run them through `./scripts/test`.

use std::path::PathBuf;
use std::process::{Command, Output};

use tempfile::TempDir;

use serde_json::{json, Value};

use crate::content::unique;

/// The server of `./scripts/test`.
pub struct Server {
    pub host: String,
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is unset: run the PostgreSQL tests through ./scripts/test, which starts the server")
    })
}

/// The server `./scripts/test` started.
pub fn server() -> Server {
    let addr = var("BERTH_TEST_POSTGRES");
    let (host, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("BERTH_TEST_POSTGRES={addr} is not host:port"));
    Server {
        host: host.into(),
        port: port
            .parse()
            .unwrap_or_else(|e| panic!("BERTH_TEST_POSTGRES={addr}: {e}")),
        bin: var("BERTH_TEST_POSTGRES_BIN").into(),
        data: var("BERTH_TEST_POSTGRES_DATA").into(),
    }
}

/// Whether every registryd of this run keeps its metadata in PostgreSQL.
pub fn suite_on_postgres() -> bool {
    std::env::var("BERTH_TEST_ON_POSTGRES").is_ok_and(|v| v == "1")
}

/// A database of its own on the shared server, for one registryd: its `database` section.
pub fn fresh_database() -> Value {
    server().fresh_database()
}

impl Server {
    /// Creates a database of its own for one registryd and returns its `database` section.
    pub fn fresh_database(&self) -> Value {
        let name = format!("berth_{}", unique());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.section(&name)
    }

    /// The `database` section of registry.yaml for database `dbname`.
    pub fn section(&self, dbname: &str) -> Value {
        json!({"enabled": true, "host": self.host, "port": self.port, "user": "postgres",
               "dbname": dbname, "sslmode": "disable"})
    }

    /// Runs `sql` in `dbname` with psql; its output (unaligned, tuples only). Panics on failure.
    pub fn psql(&self, dbname: &str, sql: &str) -> String {
        let out = self
            .psql_command(dbname)
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        checked("psql", &out);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `psql` reading its statements from standard input, kept open (e.g. to hold a lock while
    /// a test runs): the session ends when the child is killed.
    pub fn psql_session(&self, dbname: &str) -> std::process::Child {
        self.psql_command(dbname)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"))
    }

    /// psql connected to `dbname` as `postgres`, printing bare values.
    fn psql_command(&self, dbname: &str) -> Command {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args([
            "-h",
            &self.host,
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", dbname, "-X", "-A", "-t"]);
        cmd
    }

    /// `pg_ctl restart` (fast shutdown: every connection is cut), as the `postgres` user. The
    /// server logs to `server.log` in its data directory (else it would keep this process's
    /// output open).
    pub fn restart(&self) {
        run(
            "pg_ctl restart",
            as_postgres(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&self.data)
                .arg("-l")
                .arg(self.data.join("server.log"))
                .args(["-m", "fast", "-w", "restart"]),
        );
    }
}

/// A cluster of one test's own, for a test that restarts it (the shared one serves the tests
/// running beside it); stopped and removed when dropped.
pub struct Private {
    pub server: Server,
    _dir: TempDir,
}

impl Private {
    /// initdb and pg_ctl start as the `postgres` user, trust auth, on a free loopback port.
    pub fn start() -> Private {
        use std::os::unix::fs::PermissionsExt;
        let bin = PathBuf::from(var("BERTH_TEST_POSTGRES_BIN"));
        let dir = tempfile::Builder::new()
            .prefix("berth-pg")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot make a temp dir: {e}"));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.path().display()));
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("no free port: {e}"))
            .port();
        let mut install = Command::new("install");
        install
            .args(["-d", "-o", "postgres", "-g", "postgres", "-m", "700"])
            .arg(&data);
        run("install -d", &mut install);
        run(
            "initdb",
            as_postgres(&bin.join("initdb")).arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]),
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off",
            data.display()
        );
        run(
            "pg_ctl start",
            as_postgres(&bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(data.join("server.log"))
                .args(["-w", "-o", &options, "start"]),
        );
        Private {
            server: Server {
                host: "127.0.0.1".into(),
                port,
                bin,
                data,
            },
            _dir: dir,
        }
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = as_postgres(&self.server.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.server.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// `program` run as the `postgres` user (initdb and the server refuse root).
fn as_postgres(program: &std::path::Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    checked(what, &out);
}

fn checked(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
