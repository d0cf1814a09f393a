//! `registryd migrate`: a registry on SQLite and a data folder copied into PostgreSQL (the server
//! `./scripts/test` starts) and a three-node Garage cluster, while a registryd already serves the
//! destination. A run killed mid-blob is resumed by running again; the destination then serves
//! the same catalog, tags, manifests, blobs and referrers, with the original push times, and
//! `docker pull` and `skopeo copy --all` read it. A source blob whose bytes do not match its
//! digest stops the copy before anything of it is recorded, and leaves no object behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_tests::bins::binary;
use berth_tests::content::{artifact, empty_config, index, sha256, Content, Image, OCI_INDEX};
use berth_tests::docker::Docker;
use berth_tests::garage::Garage;
use berth_tests::oci_layout::OciLayout;
use berth_tests::postgres;
use berth_tests::registry::Registry;
use berth_tests::registryd::{RegistryAuth, Registryd};
use berth_tests::skopeo::skopeo_ok;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

/// A registryd on SQLite and its data folder.
async fn on_sqlite(dir: &Path) -> Registryd {
    let extra = json!({"database": {"enabled": false}});
    Registryd::start_merged(dir, &RegistryAuth::Open, true, extra).await
}

/// A registryd on a fresh PostgreSQL database and `garage`; its database's name.
async fn on_postgres_and_garage(dir: &Path, garage: &Garage) -> (Registryd, String) {
    let database = postgres::fresh_database();
    let dbname = database["dbname"].as_str().unwrap().to_owned();
    let extra = json!({"database": database, "storage": {"s3": garage.storage_s3(1, "moved")}});
    let registryd = Registryd::start_merged(dir, &RegistryAuth::Open, true, extra).await;
    (registryd, dbname)
}

fn migrate_command(from: &Registryd, to: &Registryd) -> Command {
    let mut cmd = Command::new(binary("registryd"));
    cmd.arg("migrate")
        .arg("--from")
        .arg(from.config())
        .arg("--to")
        .arg(to.config())
        .env("RUST_LOG", "warn");
    cmd
}

fn migrate(from: &Registryd, to: &Registryd) -> Output {
    migrate_command(from, to)
        .output()
        .expect("cannot run registryd migrate")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One number of the summary line `migrate copied …`: the one before `what`.
fn reported(out: &str, what: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with("migrate copied"))
        .unwrap_or_else(|| panic!("no summary in:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.trim_matches(|c: char| !c.is_alphanumeric()) == what)
        .unwrap_or_else(|| panic!("no {what} in {line}"));
    words[at - 1].trim_start_matches('(').parse().unwrap()
}

fn psql_count(dbname: &str, sql: &str) -> u64 {
    postgres::server().psql(dbname, sql).parse().unwrap()
}

/// Blobs recorded whose bytes are an object (not inline in the database).
fn objects_recorded(dbname: &str) -> u64 {
    psql_count(
        dbname,
        "SELECT count(*) FROM blobs b WHERE NOT EXISTS \
         (SELECT 1 FROM blob_bytes i WHERE i.digest = b.digest)",
    )
}

/// GET `path` as JSON with `accept`; its bytes and `Docker-Content-Digest`.
async fn get_raw(registry: &Registry, path: &str, accept: &str) -> (Vec<u8>, String) {
    let resp = registry
        .send(
            registry
                .request(Method::GET, path, None)
                .header("Accept", accept),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK, "GET {path}");
    let digest = resp
        .headers()
        .get("Docker-Content-Digest")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (resp.bytes().await.unwrap().to_vec(), digest)
}

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.oci.image.manifest.v1+json";

#[tokio::test]
async fn a_killed_migration_resumes_and_the_copy_serves_the_same() {
    let garage = Garage::start().await;
    let (src_dir, dst_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = on_sqlite(src_dir.path()).await;
    let (target, dbname) = on_postgres_and_garage(dst_dir.path(), &garage).await;
    let src = Registry::new(&source.url());

    // a/multi: an index of two images, tagged, and a signature of one; b/big: one large layer
    // (the kill lands while it streams); c/mounted: a layer mounted from a/multi.
    let amd = Image::oci_gzip("amd64", 3);
    let arm = Image::oci_gzip("arm64", 2);
    src.push_image("a/multi", "amd", &amd, None).await;
    src.push_image("a/multi", "arm", &arm, None).await;
    let list = index(OCI_INDEX, &[("amd64", &amd), ("arm64", &arm)]);
    src.push_manifest("a/multi", "v1", &list, None).await;
    let signed = Content::random(300);
    src.push_blob("a/multi", &empty_config(), None).await;
    src.push_blob("a/multi", &signed, None).await;
    let signature = artifact("application/vnd.test.signature", &signed, &amd.manifest);
    src.push_manifest("a/multi", &signature.digest, &signature, None)
        .await;
    let big = Image::oci("amd64", vec![Content::tar_layer("big", 96 * MIB)]);
    src.push_image("b/big", "v1", &big, None).await;
    let shared = amd.layers[0].clone();
    let mounted = Image::oci("amd64", vec![shared.clone()]);
    src.push_image("c/mounted", "v1", &mounted, None).await;
    let pushed_before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();

    // Killed once the first repository is copied: the second is streaming its large layer.
    let mut child = migrate_command(&source, &target)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if line.unwrap() == "copied a/multi" {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        postgres::server().psql(&dbname, "SELECT name FROM repositories ORDER BY name"),
        "a/multi",
        "the killed run restored more than the first repository"
    );
    let recorded = psql_count(&dbname, "SELECT count(*) FROM blobs");

    let out = migrate(&source, &target);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert_eq!(reported(&all, "repositories"), 3, "{all}");
    assert_eq!(reported(&all, "tags"), 5, "{all}");
    assert!(
        reported(&all, "already") >= recorded,
        "the blobs of the first run were copied again:\n{all}"
    );
    assert_eq!(
        objects_recorded(&dbname),
        garage
            .objects_settled(|n| n == objects_recorded(&dbname))
            .await,
        "objects in the bucket that no row records (or rows without bytes)"
    );
    assert_eq!(
        psql_count(
            &dbname,
            &format!("SELECT count(*) FROM manifests WHERE pushed_at > {pushed_before}")
        ),
        0,
        "push times were not kept"
    );

    // The registryd that served the destination all along now serves the same content.
    let dst = Registry::new(&target.url());
    for path in [
        "/v2/_catalog",
        "/v2/a/multi/tags/list",
        "/v2/b/big/tags/list",
        "/v2/c/mounted/tags/list",
    ] {
        let (a, _) = get_raw(&src, path, "application/json").await;
        let (b, _) = get_raw(&dst, path, "application/json").await;
        assert_eq!(
            serde_json::from_slice::<Value>(&a).unwrap(),
            serde_json::from_slice::<Value>(&b).unwrap(),
            "{path}"
        );
    }
    for (repo, reference) in [
        ("a/multi", "v1"),
        ("a/multi", "amd"),
        ("a/multi", signature.digest.as_str()),
        ("b/big", "v1"),
        ("c/mounted", "v1"),
    ] {
        let path = format!("/v2/{repo}/manifests/{reference}");
        assert_eq!(
            get_raw(&src, &path, ACCEPT).await,
            get_raw(&dst, &path, ACCEPT).await,
            "{path}"
        );
    }
    let referrers = format!("/v2/a/multi/referrers/{}", amd.manifest.digest);
    let (a, _) = get_raw(&src, &referrers, OCI_INDEX).await;
    let (b, _) = get_raw(&dst, &referrers, OCI_INDEX).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&a).unwrap(),
        serde_json::from_slice::<Value>(&b).unwrap()
    );
    for (repo, blob) in [("b/big", &big.layers[0]), ("c/mounted", &shared)] {
        assert_eq!(
            sha256(&dst.blob_bytes(repo, &blob.digest).await),
            blob.digest
        );
    }

    // Real clients read the copy.
    let host = target.url().trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let out = OciLayout::create(dir.path());
    skopeo_ok(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{host}/a/multi:v1"),
        &out.reference("v1"),
    ]);
    let copied: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(copied["manifests"][0]["digest"], list.digest);
    let docker = Docker::connect();
    let reference = format!("{host}/b/big:v1");
    docker.remember(&reference);
    let pulled = docker.run(&["pull", &reference]);
    assert!(pulled.success, "docker pull:\n{}", pulled.all());
}

#[tokio::test]
async fn a_source_blob_that_does_not_match_its_digest_stops_the_copy_and_leaves_nothing() {
    let garage = Garage::start().await;
    let (src_dir, dst_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = on_sqlite(src_dir.path()).await;
    let (target, dbname) = on_postgres_and_garage(dst_dir.path(), &garage).await;
    let image = Image::oci("amd64", vec![Content::tar_layer("rotten", 7 * MIB)]);
    Registry::new(&source.url())
        .push_image("team/app", "v1", &image, None)
        .await;
    let layer = &image.layers[0];
    let file = source
        .data()
        .join("blobs/sha256")
        .join(&layer.hex()[..2])
        .join(layer.hex());
    let mut rotten = layer.bytes.clone();
    rotten[MIB] ^= 0xff;
    std::fs::write(&file, &rotten).unwrap();

    let out = migrate(&source, &target);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(&layer.digest) && all.contains("whose digest is"),
        "{all}"
    );
    assert_eq!(
        postgres::server().psql(&dbname, "SELECT count(*) FROM repositories"),
        "0"
    );
    assert_eq!(
        objects_recorded(&dbname),
        garage
            .objects_settled(|n| n == objects_recorded(&dbname))
            .await,
        "the refused blob left an object behind"
    );
    assert_eq!(
        psql_count(
            &dbname,
            &format!(
                "SELECT count(*) FROM blobs WHERE digest = '{}'",
                layer.digest
            )
        ),
        0
    );

    // Mended, the next run finishes.
    std::fs::write(&file, &layer.bytes).unwrap();
    let out = migrate(&source, &target);
    assert!(out.status.success(), "{}", text(&out));
    let dst = Registry::new(&target.url());
    assert_eq!(
        sha256(&dst.blob_bytes("team/app", &layer.digest).await),
        layer.digest
    );
}
