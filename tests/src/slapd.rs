//! A real OpenLDAP server (Debian's `slapd`) for the `ldap_auth` tests: its own `slapd.conf`,
//! MDB database and TLS certificate (from `authd gen-cert`) in a temp dir, listening on
//! loopback for `ldap://` (StartTLS too) and `ldaps://`, loaded with people and groups by
//! `ldapadd`, its `memberOf` kept by the memberof overlay. It runs in the foreground with stats
//! logging, so the binds it served can be counted from its log; it can be stopped and started
//! again over the same database. Needs `slapd` and `ldap-utils` (installed by `scripts/test`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::authd::{gen_cert, AuthSpec};

/// The directory's suffix.
pub const BASE: &str = "dc=berth,dc=test";
/// The service account authd searches as.
pub const READER_DN: &str = "cn=reader,dc=berth,dc=test";
/// Its password.
pub const READER_PASSWORD: &str = "reader-pass";
const ADMIN_DN: &str = "cn=admin,dc=berth,dc=test";
const ADMIN_PASSWORD: &str = "admin-secret";

/// A person in `ou=people`, and the groups (`ou=groups`) it is a member of.
#[derive(Clone, Debug)]
pub struct Person {
    pub uid: String,
    pub password: String,
    pub groups: Vec<String>,
}

impl Person {
    pub fn new(uid: &str, password: &str, groups: &[&str]) -> Person {
        Person {
            uid: uid.into(),
            password: password.into(),
            groups: groups.iter().map(|g| (*g).to_string()).collect(),
        }
    }

    /// The DN of this person's entry.
    pub fn dn(&self) -> String {
        format!("uid={},ou=people,{BASE}", self.uid)
    }
}

/// A running (or stopped) slapd; killed on drop.
pub struct Slapd {
    pub dir: TempDir,
    /// `ldap://127.0.0.1:port` (plain, and StartTLS).
    pub port: u16,
    /// `ldaps://127.0.0.1:tls_port`.
    pub tls_port: u16,
    child: Option<Child>,
    /// Log of every run so far.
    logs: Vec<PathBuf>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

impl Slapd {
    /// Starts slapd with a TLS certificate of its own (`authd gen-cert` into `certs/`, whose
    /// `ca.crt` clients must trust) and loads `people` and their groups.
    pub fn start(people: &[Person]) -> Slapd {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"));
        gen_cert(&dir.path().join("certs"), &[]);
        Slapd::start_in(dir, people)
    }

    /// As [`Slapd::start`] in `dir`, whose `certs/` already holds `authd gen-cert`'s files
    /// (for the benchmark, which runs its own authd binary).
    pub fn start_in(dir: TempDir, people: &[Person]) -> Slapd {
        let certs = dir.path().join("certs");
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).unwrap_or_else(|e| panic!("cannot create the db dir: {e}"));
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload memberof\n\
             pidfile {dir}/slapd.pid\n\
             argsfile {dir}/slapd.args\n\
             TLSCertificateFile {certs}/server.crt\n\
             TLSCertificateKeyFile {certs}/server.key\n\
             database mdb\n\
             maxsize 16777216\n\
             suffix \"{BASE}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\n\
             directory {db}\n\
             overlay memberof\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by anonymous auth by users read\n",
            dir = dir.path().display(),
            certs = certs.display(),
            db = db.display(),
        );
        write(&dir.path().join("slapd.conf"), &conf);
        let mut slapd = Slapd {
            dir,
            port: free_port(),
            tls_port: free_port(),
            child: None,
            logs: Vec::new(),
        };
        slapd.run();
        slapd.add(&directory_ldif(people));
        slapd
    }

    /// Starts slapd (again) over the same database and ports, and waits until it answers.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "slapd is already running");
        let log = self
            .dir
            .path()
            .join(format!("slapd-{}.log", self.logs.len()));
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("cannot create log: {e}"));
        let urls = format!(
            "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
            self.port, self.tls_port
        );
        let child = Command::new("slapd")
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .args(["-h", &urls, "-d", "stats"])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run slapd (scripts/test installs it): {e}"));
        self.child = Some(child);
        self.logs.push(log);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("slapd exited ({status}):\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not answer in 20 s:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops slapd (kill, then waits for the exit); the database stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn answers(&self) -> bool {
        Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                &self.url(),
                "-s",
                "base",
                "-b",
                "",
                "-LLL",
                "1.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// `ldap://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Adds the entries of `ldif` as the directory's administrator.
    pub fn add(&self, ldif: &str) {
        let path = self.dir.path().join("add.ldif");
        write(&path, ldif);
        let out = Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
                "-f",
            ])
            .arg(&path)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run ldapadd (scripts/test installs ldap-utils): {e}")
            });
        assert!(
            out.status.success(),
            "ldapadd failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The CA certificate slapd's TLS certificate chains to.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs/ca.crt")
    }

    /// Everything slapd logged, over all its runs.
    pub fn log_text(&self) -> String {
        self.logs
            .iter()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .collect()
    }

    /// How many simple binds slapd was asked for, over all its runs (its stats lines `BIND
    /// dn="…" method=128`).
    pub fn binds(&self) -> usize {
        self.binds_as("")
    }

    /// How many simple binds as a DN starting with `dn` slapd was asked for.
    pub fn binds_as(&self, dn: &str) -> usize {
        let prefix = format!(" BIND dn=\"{dn}");
        self.log_text()
            .lines()
            .filter(|l| l.contains(&prefix) && l.contains("method=128"))
            .count()
    }

    /// The search filters slapd was asked for (its stats lines `SRCH … filter="…"`).
    pub fn filters(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| {
                l.split_once(" filter=\"")
                    .map(|(_, f)| f.trim_end_matches('"').to_string())
            })
            .collect()
    }

    /// The `ldap_auth` section of auth.yaml for this server: the service account (its
    /// password in a file), uid lookup under `ou=people`, label `groups` from `memberOf`.
    /// `tls` is `none`, `starttls` or `always`; `ca` the CA file authd trusts.
    pub fn ldap_auth(&self, tls: &str, ca: &Path) -> Value {
        let password_file = self.dir.path().join("reader.pw");
        write(&password_file, &format!("{READER_PASSWORD}\n"));
        let port = if tls == "always" {
            self.tls_port
        } else {
            self.port
        };
        json!({
            "addr": format!("127.0.0.1:{port}"),
            "tls": tls,
            "ca_certificate": ca,
            "bind_dn": READER_DN,
            "bind_password_file": password_file,
            "base": format!("ou=people,{BASE}"),
            "filter": "(&(objectClass=inetOrgPerson)(uid=${account}))",
            "labels": {"groups": {"attribute": "memberOf", "parse_cn": true}},
        })
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tree: base, `ou=people`, `ou=groups`, the service account, `people`, and a
/// `groupOfNames` per group naming its members.
fn directory_ldif(people: &[Person]) -> String {
    let mut out = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: berth\no: Berth\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n\
         cn: reader\nuserPassword: {READER_PASSWORD}\n\n"
    );
    for p in people {
        out.push_str(&format!(
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {}\ncn: {}\nsn: {}\nuserPassword: {}\n\n",
            p.dn(),
            p.uid,
            p.uid,
            p.uid,
            p.password
        ));
    }
    let mut groups: Vec<&String> = people.iter().flat_map(|p| &p.groups).collect();
    groups.sort();
    groups.dedup();
    for g in groups {
        out.push_str(&format!(
            "dn: cn={g},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: {g}\n"
        ));
        for p in people.iter().filter(|p| p.groups.contains(g)) {
            out.push_str(&format!("member: {}\n", p.dn()));
        }
        out.push('\n');
    }
    out
}

/// The people the `ldap_*` tests use: `dave` (group developers), `erin` (readers), `frank`
/// (no group), `star*` (a uid holding a filter metacharacter), and an `alice` whose name a
/// static user also has.
pub fn people() -> Vec<Person> {
    vec![
        Person::new("dave", "dave-pass", &["developers"]),
        Person::new("erin", "erin-pass", &["readers"]),
        Person::new("frank", "frank-pass", &[]),
        Person::new("star*", "star-pass", &[]),
        Person::new("alice", "ldap-alice-pass", &["developers"]),
    ]
}

/// [`AuthSpec::standard`] with two rules first: group `developers` pushes and pulls `dev/*`,
/// group `readers` pulls it (labels `groups` from `memberOf`, see [`Slapd::ldap_auth`]).
pub fn ldap_spec() -> AuthSpec {
    let mut spec = AuthSpec::standard();
    let mut rules = vec![
        json!({"match": {"labels": {"groups": "developers"}, "name": "dev/*"},
               "actions": ["push", "pull"], "comment": "developers own dev/*"}),
        json!({"match": {"labels": {"groups": "readers"}, "name": "dev/*"},
               "actions": ["pull"], "comment": "readers pull dev/*"}),
    ];
    rules.extend(spec.acl.as_array().cloned().unwrap_or_default());
    spec.acl = Value::Array(rules);
    spec
}
