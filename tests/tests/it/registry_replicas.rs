//! The scaled setup: two registryd replicas on one PostgreSQL database (the server
//! `./scripts/test` starts) and one three-node Garage cluster, each replica talking to a
//! different Garage node, behind nginx balancing round-robin per request, so consecutive
//! requests of one push land on different replicas. Docker and skopeo push and pull through the
//! balancer; a chunked upload's chunks, status checks and commit alternate between replicas; a
//! tag moved and a manifest deleted through the balancer are seen at once by each replica; the
//! catalog pages; garbage collection on one replica frees what was deleted while the other
//! serves; a replica killed while a layer streams into it costs Docker a retry, and nothing
//! acknowledged or partial shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use berth_tests::content::{random_bytes, sha256, Content, Image};
use berth_tests::docker::Docker;
use berth_tests::docker_flows::import_tiny;
use berth_tests::garage::Garage;
use berth_tests::gc::run_gc;
use berth_tests::nginx::Nginx;
use berth_tests::oci_layout::OciLayout;
use berth_tests::postgres;
use berth_tests::registry::{body_text, header, Registry};
use berth_tests::registryd::{RegistryAuth, Registryd};
use berth_tests::skopeo::skopeo_ok;
use berth_tests::uploads::upload_range;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;
/// The header nginx adds to every answer: the replica that gave it.
const REPLICA: &str = "X-Berth-Replica";

/// Garage, both replicas and the balancer in front of them.
struct Scaled {
    garage: Garage,
    replicas: [Registryd; 2],
    balancer: Nginx,
    _dirs: [tempfile::TempDir; 2],
}

impl Scaled {
    async fn start() -> Scaled {
        let garage = Garage::start().await;
        let database = postgres::fresh_database();
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let mut replicas = Vec::new();
        for (node, dir) in dirs.iter().enumerate() {
            let extra = json!({
                "database": database,
                "storage": {
                    "s3": garage.storage_s3(node, "scaled"),
                    "maintenance": {"gc": {"enabled": false, "grace": "0s"}},
                },
            });
            replicas
                .push(Registryd::start_merged(dir.path(), &RegistryAuth::Open, true, extra).await);
        }
        let servers: String = replicas
            .iter()
            .map(|r| format!("    server {};\n", r.url().trim_start_matches("http://")))
            .collect();
        let balancer = Nginx::start_with(
            &format!("  upstream replicas {{\n{servers}  }}"),
            &format!(
                "    client_max_body_size 0;\n    proxy_request_buffering off;\n    \
                 location /v2/ {{\n      proxy_pass http://replicas;\n      \
                 proxy_set_header Host $http_host;\n      \
                 add_header {REPLICA} $upstream_addr always;\n    }}"
            ),
        )
        .await;
        let replicas: [Registryd; 2] = replicas.try_into().ok().unwrap();
        Scaled {
            garage,
            replicas,
            balancer,
            _dirs: dirs,
        }
    }

    /// A client of the balancer.
    fn registry(&self) -> Registry {
        Registry::new(&self.balancer.url(false))
    }

    /// `127.0.0.1:PORT`, the balancer as Docker and skopeo name it.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.balancer.port)
    }

    /// A client of replica `i` alone.
    fn replica(&self, i: usize) -> Registry {
        Registry::new(&self.replicas[i].url())
    }
}

/// Which replica answered, as nginx tells.
fn replica_of(resp: &Response) -> String {
    header(resp, REPLICA)
}

/// skopeo copies `image` into `dir`'s layout as `v1`, then to `remote`, and back out into a
/// second layout whose manifest must be the same.
fn skopeo_round_trip(dir: &Path, image: &Image, remote: &str) {
    let mut source = OciLayout::create(&dir.join("in"));
    source.add_image(image);
    source.tag(&image.manifest, "v1");
    skopeo_ok(&[
        "copy",
        "--dest-tls-verify=false",
        &source.reference("v1"),
        remote,
    ]);
    let back = OciLayout::create(&dir.join("out"));
    skopeo_ok(&[
        "copy",
        "--src-tls-verify=false",
        remote,
        &back.reference("v1"),
    ]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("out/index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"], image.manifest.digest,
        "skopeo read back another manifest"
    );
}

#[tokio::test]
async fn docker_and_skopeo_push_and_pull_through_the_balancer_and_the_catalog_pages() {
    let scaled = Scaled::start().await;
    let dir = tempfile::tempdir().unwrap();
    skopeo_round_trip(
        dir.path(),
        &Image::oci_gzip("amd64", 4),
        &format!("docker://{}/team/skopeo:v1", scaled.host()),
    );

    let docker = Docker::connect();
    let tiny = format!("{}/team/docker:v1", scaled.host());
    import_tiny(&docker, &tiny);
    let pushed = docker.run(&["push", &tiny]);
    assert!(pushed.success, "docker push:\n{}", pushed.all());
    docker.ok(&["rmi", &tiny]);
    let pulled = docker.run(&["pull", &tiny]);
    assert!(pulled.success, "docker pull:\n{}", pulled.all());
    docker.ok(&["rmi", &tiny]);

    // Both replicas answered parts of it.
    let registry = scaled.registry();
    let mut answered = BTreeSet::new();
    for _ in 0..4 {
        answered.insert(replica_of(&registry.get("/v2/", None).await));
    }
    assert_eq!(
        answered.len(),
        2,
        "the balancer used one replica: {answered:?}"
    );

    // The catalog pages the same whichever replica answers each page.
    for i in 0..5 {
        registry
            .push_image(&format!("paged/r{i}"), "v1", &Image::random(1), None)
            .await;
    }
    let mut repos = Vec::new();
    let mut next = Some("/v2/_catalog?n=2".to_owned());
    while let Some(page) = next.take() {
        let resp = registry.get(&page, None).await;
        assert_eq!(resp.status(), StatusCode::OK, "GET {page}");
        next = resp
            .headers()
            .get("Link")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| Some(l.split_once('<')?.1.split_once('>')?.0.to_owned()));
        let body: Value = resp.json().await.unwrap();
        repos.extend(
            body["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(
        repos,
        [
            "paged/r0",
            "paged/r1",
            "paged/r2",
            "paged/r3",
            "paged/r4",
            "team/docker",
            "team/skopeo"
        ]
    );
}

#[tokio::test]
async fn chunks_tags_deletes_and_gc_alternate_between_replicas() {
    let scaled = Scaled::start().await;
    let registry = scaled.registry();

    // A chunked upload whose requests alternate: every chunk continues on the other replica
    // from the state the previous one left in the bucket.
    let data = random_bytes(9 * MIB);
    let digest = sha256(&data);
    let location = registry.start_upload("team/chunks", "").await;
    let mut answered = BTreeSet::new();
    let mut at = 0;
    for len in [MIB, 3 * MIB, MIB / 2, 2 * MIB] {
        let range = format!("{at}-{}", at + len - 1);
        let resp = registry
            .patch_chunk(&location, "", &data[at..at + len], Some(&range))
            .await;
        answered.insert(replica_of(&resp));
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "chunk {range}");
        at += len;
        assert_eq!(upload_range(&resp), format!("0-{}", at - 1));
        // Each replica reports the same offset, and refuses a chunk that repeats the last one.
        for i in 0..2 {
            let replica = scaled.replica(i);
            let status = replica.get(&location, None).await;
            assert_eq!(status.status(), StatusCode::NO_CONTENT);
            assert_eq!(upload_range(&status), format!("0-{}", at - 1));
            let repeated = replica
                .patch_chunk(&location, "", &data[at - len..at], Some(&range))
                .await;
            assert_eq!(
                repeated.status(),
                StatusCode::RANGE_NOT_SATISFIABLE,
                "replica {i} took chunk {range} twice: {}",
                body_text(repeated).await
            );
        }
    }
    assert_eq!(answered.len(), 2, "the chunks all went to {answered:?}");
    let resp = registry
        .finish_upload(&location, "", &digest, &data[at..])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CREATED,
        "{}",
        body_text(resp).await
    );
    for i in 0..2 {
        assert_eq!(
            sha256(&scaled.replica(i).blob_bytes("team/chunks", &digest).await),
            digest
        );
    }

    // Tags moved and manifests deleted through the balancer: each replica's next answer agrees.
    let old = Image::oci("amd64", vec![Content::tar_layer("old", 2 * MIB)]);
    let new = Image::oci("amd64", vec![Content::tar_layer("new", 2 * MIB)]);
    for image in [&old, &new] {
        registry.push_image("team/app", "latest", image, None).await;
        for i in 0..2 {
            assert_eq!(
                scaled.replica(i).served_digest("team/app", "latest").await,
                Ok(image.manifest.digest.clone()),
                "replica {i}"
            );
        }
    }
    let resp = registry
        .send(registry.request(
            Method::DELETE,
            &format!("/v2/team/app/manifests/{}", old.manifest.digest),
            None,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    for i in 0..2 {
        assert_eq!(
            scaled
                .replica(i)
                .served_digest("team/app", &old.manifest.digest)
                .await,
            Err(StatusCode::NOT_FOUND),
            "replica {i} still serves the deleted manifest"
        );
    }

    // Collection on replica 0 frees the old image's blobs (and the unreferenced upload) while
    // replica 1 serves the new one.
    let before = scaled.garage.object_count().await;
    let out = run_gc(scaled.replicas[0].config(), &[]);
    assert!(out.contains("freed"), "{out}");
    let after = scaled.garage.objects_settled(|n| n + 2 <= before).await;
    assert!(
        after + 2 <= before,
        "objects: {before} before, {after} after:\n{out}"
    );
    for blob in new.blobs() {
        assert_eq!(
            sha256(&scaled.replica(1).blob_bytes("team/app", &blob.digest).await),
            blob.digest
        );
    }
    for blob in old.blobs() {
        let resp = scaled
            .replica(1)
            .get(&format!("/v2/team/app/blobs/{}", blob.digest), None)
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{}", blob.digest);
    }
}

/// Bytes replica `port` has received on its established connections so far, as `ss` reports.
fn bytes_received(port: u16) -> u64 {
    let out = std::process::Command::new("ss")
        .args([
            "-tinH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("bytes_received:")?.parse::<u64>().ok())
        .sum()
}

fn port_of(replica: &Registryd) -> u16 {
    replica.url().rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_replica_killed_in_the_middle_of_a_docker_push_loses_nothing() {
    let mut scaled = Scaled::start().await;
    let docker = Docker::connect();
    // Acknowledged before the kill.
    let before = format!("{}/team/before:v1", scaled.host());
    import_tiny(&docker, &before);
    let pushed = docker.run(&["push", &before]);
    assert!(pushed.success, "docker push:\n{}", pushed.all());

    // A layer large enough that its upload is still streaming when one replica dies.
    let big = format!("{}/team/big:v1", scaled.host());
    let layer = Content::tar_layer("big.bin", 64 * MIB);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &layer.bytes).unwrap();
    docker.ok(&["import", file.path().to_str().unwrap(), &big]);
    docker.remember(&big);
    let id = docker.inspect(&big, "{{.Id}}");
    let ports = [port_of(&scaled.replicas[0]), port_of(&scaled.replicas[1])];
    let start = ports.map(bytes_received);

    let push = {
        let big = big.clone();
        tokio::task::spawn_blocking(move || {
            let out = docker.run(&["push", &big]);
            (docker, out)
        })
    };
    // The replica the layer streams into is killed once it holds 16 MiB of it.
    let mut killed = None;
    for _ in 0..600 {
        if push.is_finished() {
            break;
        }
        if let Some(i) = (0..2).find(|&i| bytes_received(ports[i]) > start[i] + 16 * MIB as u64) {
            scaled.replicas[i].daemon.kill9();
            killed = Some(i);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let killed = killed.expect("no replica received 16 MiB of the layer before the push ended");
    let (docker, out) = push.await.unwrap();
    assert!(
        out.success,
        "docker push did not complete after replica {killed} died:\n{}",
        out.all()
    );

    // Everything is served by the replica that lives: the image acknowledged before the kill,
    // and the retried push whole; no partial blob is visible.
    let alive = scaled.replica(1 - killed);
    let catalog: Value = alive.get("/v2/_catalog", None).await.json().await.unwrap();
    assert_eq!(
        catalog["repositories"],
        json!(["team/before", "team/big"]),
        "{catalog}"
    );
    assert!(alive.served_digest("team/before", "v1").await.is_ok());
    let manifest: Value = alive
        .send(
            alive
                .request(Method::GET, "/v2/team/big/manifests/v1", None)
                .header(
                    "Accept",
                    "application/vnd.docker.distribution.manifest.v2+json",
                ),
        )
        .await
        .json()
        .await
        .unwrap();
    for blob in manifest["layers"].as_array().unwrap() {
        let digest = blob["digest"].as_str().unwrap();
        let bytes = alive.blob_bytes("team/big", digest).await;
        assert_eq!(sha256(&bytes), digest);
        assert_eq!(bytes.len() as u64, blob["size"].as_u64().unwrap());
    }
    for image in [&before, &big] {
        docker.ok(&["rmi", image]);
        let pulled = docker.run(&["pull", image]);
        assert!(pulled.success, "docker pull {image}:\n{}", pulled.all());
    }
    assert_eq!(
        docker.inspect(&big, "{{.Id}}"),
        id,
        "the pulled image differs"
    );
}
