//! Garage, a distributed S3-compatible object store, as a real three-node cluster on loopback
//! ports with replication factor 3: one `garage server` per node (its `garage.toml`, metadata
//! and data in a temp dir), connected, given a layout, with one bucket and one key allowed to
//! read and write it. Dropping the cluster kills its nodes. `./scripts/test` installs the
//! `garage` binary (`cargo install garage --locked`) when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;
use serde_json::{json, Value};

use crate::upstream::free_port;

/// The bucket the cluster serves Berth.
pub const BUCKET: &str = "berth";
/// Garage's S3 region.
pub const REGION: &str = "garage";
/// Attempts of a `garage` command that may fail while the cluster forms (every 500 ms).
const ATTEMPTS: u32 = 60;
/// Starts of a whole cluster before [`Garage::start`] gives up.
const STARTS: usize = 3;

/// A running cluster.
pub struct Garage {
    /// The nodes' configs, metadata and data (removed on drop).
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
    /// The key allowed on [`BUCKET`].
    pub key_id: String,
    pub secret: String,
}

struct Node {
    config: PathBuf,
    s3_port: u16,
    child: Option<Child>,
}

/// The `garage` binary: `GARAGE_BIN`, else `garage` on the `PATH`, else cargo's bin folder.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("GARAGE_BIN") {
        return bin.into();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("garage"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        Path::new(&std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/garage")
    })
}

impl Garage {
    /// Starts three nodes and sets up the layout, the bucket and the key. A cluster that does
    /// not form (a node lost its port to another process between the port pick and its start,
    /// say) is stopped and started again on fresh ports, up to [`STARTS`] times.
    ///
    /// # Panics
    /// When no start formed a cluster; with each try's reason and the nodes' logs.
    pub async fn start() -> Garage {
        let mut failures = vec![];
        for _ in 0..STARTS {
            match Self::try_start().await {
                Ok(garage) => return garage,
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "Garage did not form in {STARTS} starts:\n{}",
            failures.join("\n----\n")
        );
    }

    async fn try_start() -> Result<Garage, String> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let secret: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let mut nodes = vec![];
        for i in 0..3 {
            let root = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("node dir: {e}"));
            let (rpc, s3_port) = (free_port(), free_port());
            let config = root.join("garage.toml");
            let toml = format!(
                "metadata_dir = \"{meta}\"\ndata_dir = \"{data}\"\n\
                 replication_factor = 3\nrpc_secret = \"{secret}\"\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\n\
                 [s3_api]\napi_bind_addr = \"127.0.0.1:{s3_port}\"\ns3_region = \"{REGION}\"\n\
                 root_domain = \".s3.garage.localhost\"\n",
                meta = root.join("meta").display(),
                data = root.join("data").display(),
            );
            std::fs::write(&config, toml).unwrap_or_else(|e| panic!("garage.toml: {e}"));
            let mut node = Node {
                config,
                s3_port,
                child: None,
            };
            node.spawn();
            nodes.push(node);
        }
        let mut garage = Garage {
            _dir: dir,
            nodes,
            key_id: String::new(),
            secret: String::new(),
        };
        match garage.form().await {
            Ok(()) => Ok(garage),
            Err(e) => Err(format!("{e}\n{}", garage.logs())),
        }
    }

    /// The last lines each node's log holds.
    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let text = std::fs::read_to_string(node.log()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                format!("node {i}'s log:\n{tail}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Connects the nodes, gives each 1 GB in zone `dc1` of the layout, creates the bucket and
    /// the key.
    async fn form(&mut self) -> Result<(), String> {
        let mut ids = vec![];
        for i in 0..3 {
            let out = self.cli_retry(i, &["node", "id"]).await?;
            let id = out
                .split_whitespace()
                .find(|w| w.split_once('@').is_some_and(|(id, _)| id.len() == 64))
                .unwrap_or_else(|| panic!("no node id in `garage node id`:\n{out}"));
            ids.push(id.to_owned());
        }
        for id in &ids[1..] {
            self.cli_retry(0, &["node", "connect", id]).await?;
        }
        for id in &ids {
            let short = id.split('@').next().unwrap_or_default();
            self.cli_retry(0, &["layout", "assign", "-z", "dc1", "-c", "1G", short])
                .await?;
        }
        self.cli_retry(0, &["layout", "apply", "--version", "1"])
            .await?;
        let key = self.cli_retry(0, &["key", "create", "berth-key"]).await?;
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .map(|v| v.trim_start_matches(':').trim().to_owned())
                .unwrap_or_else(|| panic!("no {name} in `garage key create`:\n{key}"))
        };
        self.key_id = field("Key ID");
        self.secret = field("Secret key");
        self.cli_retry(0, &["bucket", "create", BUCKET]).await?;
        self.cli_retry(
            0,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                "berth-key",
            ],
        )
        .await?;
        for i in 0..3 {
            self.cli_retry(i, &["bucket", "info", BUCKET]).await?;
        }
        Ok(())
    }

    /// `garage -c <node i's config> args…`, retried while it fails; its stdout. An error when it
    /// kept failing, or at once when a node has exited.
    async fn cli_retry(&mut self, node: usize, args: &[&str]) -> Result<String, String> {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            if let Some(exited) = self.nodes.iter_mut().position(Node::exited) {
                return Err(format!("garage {args:?}: node {exited} has exited"));
            }
            let out = Command::new(binary())
                .arg("-c")
                .arg(&self.nodes[node].config)
                .args(args)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap_or_else(|e| panic!("cannot run garage: {e}"));
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!("garage {args:?} kept failing:\n{last}"))
    }

    /// The S3 endpoint of node `i`.
    pub fn endpoint(&self, node: usize) -> String {
        format!("http://127.0.0.1:{}", self.nodes[node].s3_port)
    }

    /// registryd's `storage.s3` section for this cluster, talking to node `node`, keys under
    /// `root`.
    pub fn storage_s3(&self, node: usize, root: &str) -> Value {
        json!({
            "accesskey": self.key_id, "secretkey": self.secret, "region": REGION,
            "regionendpoint": self.endpoint(node), "bucket": BUCKET, "rootdirectory": root,
            "forcepathstyle": true, "secure": false,
        })
    }

    /// Kills node `i` (SIGKILL), as a machine that goes away.
    pub fn stop_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its data.
    pub fn restart_node(&mut self, i: usize) {
        self.nodes[i].spawn();
    }

    /// The bucket's object count once `settled` accepts it, or after 15 s whatever it is: a
    /// delete may take a moment to show in a listing on a loaded machine, so a count that must
    /// fall is read until it does (one that never does still fails the caller's assertion).
    pub async fn objects_settled(&self, settled: impl Fn(u64) -> bool) -> u64 {
        let mut count = self.object_count().await;
        for _ in 0..60 {
            if settled(count) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            count = self.object_count().await;
        }
        count
    }

    /// How many objects the bucket holds, as a listing of it through node 0 finds them (the
    /// counters of `garage bucket info` are updated in the background, so they may lag).
    pub async fn object_count(&self) -> u64 {
        bucket_objects(&self.endpoint(0), &self.key_id, &self.secret).await
    }
}

/// How many objects [`BUCKET`] holds, listed through the S3 API at `endpoint` with the key
/// `key_id` and its `secret`.
pub async fn bucket_objects(endpoint: &str, key_id: &str, secret: &str) -> u64 {
    let bucket = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region(REGION)
        .with_bucket_name(BUCKET)
        .with_access_key_id(key_id)
        .with_secret_access_key(secret)
        .build()
        .unwrap_or_else(|e| panic!("a client of the bucket: {e}"));
    let keys: Vec<_> = bucket
        .list(None)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("listing the bucket: {e}"));
    keys.len() as u64
}

impl Node {
    fn log(&self) -> PathBuf {
        self.config.with_file_name("garage.log")
    }

    /// Whether the node's process has ended.
    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    fn spawn(&mut self) {
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap_or_else(|e| panic!("garage log: {e}"));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("garage log: {e}"));
        let child = Command::new(binary())
            .arg("-c")
            .arg(&self.config)
            .arg("server")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start garage ({}): {e}", binary().display()));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
