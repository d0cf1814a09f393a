//! registryd on PostgreSQL (the server `./scripts/test` starts): replicas sharing one database
//! and one data folder see each other's writes on the very next request, registryd reconnects
//! by itself after the server restarts, garbage collection runs on one replica at a time, and
//! hostile names, tags and paging parameters get the same answers as on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use berth_tests::content::Image;
use berth_tests::gc::{blob_files, run_gc};
use berth_tests::postgres::{self, Private};
use berth_tests::registry::{body_text, Registry};
use berth_tests::registryd::{RegistryAuth, Registryd};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// registryd (open, deletes on, collection only when asked, every blob a file) over `database`
/// and the data folder `data`, its config and log in `dir`.
async fn replica(dir: &Path, database: &Value, data: &Path) -> Registryd {
    let extra = json!({
        "database": database,
        "storage": {"filesystem": {"rootdirectory": data}, "inline": {"maxsize": 0},
                    "maintenance": {"gc": {"enabled": false, "grace": "0s"}}},
    });
    Registryd::start_merged(dir, &RegistryAuth::Open, true, extra).await
}

#[tokio::test]
async fn a_tag_moved_through_one_replica_is_served_moved_by_the_other_at_once() {
    let database = postgres::fresh_database();
    let (a_dir, b_dir, data) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let a = replica(a_dir.path(), &database, data.path()).await;
    let b = replica(b_dir.path(), &database, data.path()).await;
    let (a, b) = (Registry::new(&a.url()), Registry::new(&b.url()));
    for round in 0..5 {
        let image = Image::random(1);
        a.push_image("team/app", "latest", &image, None).await;
        // B has the old target cached from the round before (read twice: the second read is
        // the cache's); its first read after A's acknowledgement must be the new one.
        assert_eq!(
            b.served_digest("team/app", "latest").await,
            Ok(image.manifest.digest.clone()),
            "round {round}: B served a stale tag"
        );
        assert_eq!(
            b.served_digest("team/app", "latest").await,
            Ok(image.manifest.digest.clone())
        );
    }
    let image = Image::random(1);
    b.push_image("team/app", "other", &image, None).await;
    a.served_digest("team/app", "other").await.unwrap();
    let resp = b
        .send(b.request(
            Method::DELETE,
            &format!("/v2/team/app/manifests/{}", image.manifest.digest),
            None,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = a.get("/v2/team/app/manifests/other", None).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "A served a deleted tag"
    );
}

#[tokio::test]
async fn registryd_reconnects_by_itself_after_postgres_restarts() {
    let private = Private::start();
    let database = private.server.fresh_database();
    let (dir, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let daemon = replica(dir.path(), &database, data.path()).await;
    let registry = Registry::new(&daemon.url());
    let before = Image::random(1);
    registry.push_image("app", "before", &before, None).await;
    private.server.restart();
    // The very next requests, reads and writes, succeed on fresh connections.
    let resp = registry.get("/v2/app/tags/list", None).await;
    assert_eq!(resp.status(), StatusCode::OK, "{}", body_text(resp).await);
    assert_eq!(
        registry.served_digest("app", "before").await,
        Ok(before.manifest.digest.clone())
    );
    let after = Image::random(1);
    registry.push_image("app", "before", &after, None).await;
    assert_eq!(
        registry.served_digest("app", "before").await,
        Ok(after.manifest.digest.clone()),
        "the cache missed a write made after the listener came back"
    );
}

#[tokio::test]
async fn garbage_collection_waits_for_the_replica_that_holds_the_lock() {
    let database = postgres::fresh_database();
    let (dir, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let daemon = replica(dir.path(), &database, data.path()).await;
    let registry = Registry::new(&daemon.url());
    let image = Image::random(1);
    registry.push_image("gc/app", "v1", &image, None).await;
    let resp = registry
        .send(registry.request(
            Method::DELETE,
            &format!("/v2/gc/app/manifests/{}", image.manifest.digest),
            None,
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let before = blob_files(data.path());

    // Another replica collecting: it holds the lock registryd's collections take.
    let server = postgres::server();
    let mut holder = server.psql_session(database["dbname"].as_str().unwrap());
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(
        stdin,
        "SELECT pg_advisory_lock(hashtext('berth:gc')), 'locked';"
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("locked"), "{line}");
    let out = run_gc(daemon.config(), &[]);
    assert!(out.contains("skipped"), "{out}");
    assert_eq!(blob_files(data.path()), before, "collected beside another");

    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = run_gc(daemon.config(), &[]);
    assert!(out.contains("freed 3 blobs"), "{out}");
    assert_eq!(before.len() - blob_files(data.path()).len(), 3);
}

/// What registryd answers to requests with hostile names, tags and paging parameters: status
/// and body of each, to compare across databases.
async fn answers(registry: &Registry, image: &Image) -> Vec<(String, u16, String)> {
    for blob in image.blobs() {
        registry.push_blob("h/app", blob, None).await;
    }
    let long = "x".repeat(128);
    let tags = [
        "a",
        "A",
        "_",
        "_a",
        "a_b",
        "a-b",
        "a.b",
        "a__b",
        "Z9",
        "z",
        "9",
        &long,
        "a%",
        "a'b",
        "\u{fc}",
        "a.",
        "-a",
        &"y".repeat(129),
    ];
    let mut out = vec![];
    for tag in tags {
        // Tags the grammar refuses must be refused alike.
        let resp = registry
            .put_manifest("h/app", tag, &image.manifest, None)
            .await;
        out.push((format!("PUT {tag}"), resp.status().as_u16(), String::new()));
    }
    for repo in ["h/a_b", "h/a-b", "h/a.b", "h/a__b", "h/ab", "h/a/b"] {
        registry.push_image(repo, "v1", image, None).await;
    }
    let paths = [
        "/v2/h/app/tags/list".to_owned(),
        "/v2/h/app/tags/list?n=3".to_owned(),
        "/v2/h/app/tags/list?n=3&last=a".to_owned(),
        "/v2/h/app/tags/list?last=%27%3B%20DROP%20TABLE%20tags%3B--".to_owned(),
        "/v2/h/app/tags/list?last=%25".to_owned(),
        "/v2/h/app/tags/list?last=_".to_owned(),
        "/v2/h/app/tags/list?last=%C3%BC".to_owned(),
        "/v2/h/app/tags/list?last=%F0%9F%90%B3".to_owned(),
        format!("/v2/h/app/tags/list?last={}", "y".repeat(5000)),
        "/v2/h/app/tags/list?n=0".to_owned(),
        "/v2/h/app/tags/list?n=-1".to_owned(),
        "/v2/h/app/tags/list?n=99999999999999999999".to_owned(),
        "/v2/_catalog".to_owned(),
        "/v2/_catalog?n=2&last=h%2Fa".to_owned(),
        "/v2/_catalog?last=h%2Fa_".to_owned(),
        "/v2/_catalog?last=%27".to_owned(),
        "/v2/_catalog?last=%C3%BC".to_owned(),
        "/v2/h/app/manifests/%27".to_owned(),
        "/v2/h/app/manifests/a%25".to_owned(),
        "/v2/h/app%27/tags/list".to_owned(),
        "/v2/h/%C3%BC/tags/list".to_owned(),
        format!("/v2/{}/tags/list", "n".repeat(300)),
        "/v2/h/app/manifests/_".to_owned(),
        "/v2/h/app/manifests/a_b".to_owned(),
        "/v2/h/app/referrers/sha256:%27".to_owned(),
    ];
    for path in paths {
        let resp = registry.get(&path, None).await;
        let status = resp.status().as_u16();
        let link = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        out.push((path, status, format!("{link} {}", body_text(resp).await)));
    }
    out
}

#[tokio::test]
async fn hostile_names_tags_and_paging_answer_the_same_on_both_databases() {
    let (sqlite_dir, pg_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on_sqlite = Registryd::start_merged(
        sqlite_dir.path(),
        &RegistryAuth::Open,
        true,
        json!({"database": {"enabled": false}}),
    )
    .await;
    let on_pg = Registryd::start_merged(
        pg_dir.path(),
        &RegistryAuth::Open,
        true,
        json!({"database": postgres::fresh_database()}),
    )
    .await;
    let image = Image::random(1);
    let sqlite = answers(&Registry::new(&on_sqlite.url()), &image).await;
    let pg = answers(&Registry::new(&on_pg.url()), &image).await;
    assert_eq!(sqlite.len(), pg.len());
    for (s, p) in sqlite.iter().zip(&pg) {
        assert_eq!(s, p, "SQLite and PostgreSQL answer differently");
    }
    let list = sqlite
        .iter()
        .find(|a| a.0 == "/v2/h/app/tags/list")
        .unwrap();
    let tags: Value = serde_json::from_str(list.2.trim_start()).unwrap();
    let listed: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    assert_eq!(listed, sorted, "tags in byte order");
    assert!(listed.contains(&"A") && listed.contains(&"_"), "{listed:?}");
}
