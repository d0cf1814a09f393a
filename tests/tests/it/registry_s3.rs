//! registryd with its blobs in a real three-node Garage cluster (replication factor 3): docker
//! and skopeo push and pull, with blob GETs redirected to presigned URLs or streamed through
//! registryd; chunked uploads whose chunks are merged into parts, a cut chunk resumed at its
//! last good offset on a restarted registryd (the upload's state lives in the bucket); a
//! refused upload leaving no object; mount, delete and garbage collection emptying the
//! bucket; one Garage node down while pulls and pushes go on; small blobs kept as database rows,
//! not objects, and sent without a redirect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_tests::bodies::broken_body;
use berth_tests::content::{random_bytes, sha256, Content, Image};
use berth_tests::docker::Docker;
use berth_tests::docker_flows::import_tiny;
use berth_tests::env::TestEnv;
use berth_tests::garage::Garage;
use berth_tests::gc::run_gc;
use berth_tests::oci_layout::OciLayout;
use berth_tests::registry::{expect_error, header};
use berth_tests::skopeo::skopeo;
use berth_tests::uploads::upload_range;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

/// An open registryd on `garage` under key prefix `root`, with `extra` keys in `storage`.
async fn on_garage(garage: &Garage, root: &str, extra: Value) -> TestEnv {
    let mut storage = json!({
        "s3": garage.storage_s3(0, root),
        "maintenance": {"gc": {"enabled": false, "grace": "0s"}},
    });
    berth_tests::registryd::merge(&mut storage, extra);
    TestEnv::open_with(storage).await
}

/// A client that does not follow redirects.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Pushes `image` as `repo:v1` with skopeo from an OCI layout.
fn skopeo_push(env: &TestEnv, image: &Image, repo: &str) {
    let mut layout = OciLayout::create(
        &env.dir
            .path()
            .join(format!("layout-{}", image.manifest.hex())),
    );
    layout.add_image(image);
    layout.tag(&image.manifest, "v1");
    let out = skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &layout.reference("v1"),
        &format!("docker://{}/{repo}:v1", env.registry_host()),
    ]);
    assert!(out.success, "skopeo push failed:\n{}", out.all());
}

#[tokio::test]
async fn docker_and_skopeo_push_and_pull_through_redirects_or_streaming() {
    let garage = Garage::start().await;
    let redirecting = on_garage(&garage, "redirecting", json!({})).await;
    let streaming = on_garage(&garage, "streaming", json!({"redirect": {"disable": true}})).await;
    let layer = Content::tar_layer("big", 12 * MIB);
    let image = Image::oci("amd64", vec![layer.clone()]);
    let docker = Docker::connect();
    for (env, redirected) in [(&redirecting, true), (&streaming, false)] {
        env.registry()
            .push_image("s3/app", "v1", &image, None)
            .await;
        skopeo_push(env, &image, "s3/copied");
        let url = env
            .registry()
            .url(&format!("/v2/s3/app/blobs/{}", layer.digest));
        let resp = no_redirects().get(&url).send().await.unwrap();
        let body = if redirected {
            assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
            let location = header(&resp, "Location");
            assert!(location.contains("X-Amz-Signature="), "{location}");
            assert!(location.starts_with(&garage.endpoint(0)), "{location}");
            reqwest::get(&location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        } else {
            assert_eq!(resp.status(), StatusCode::OK);
            resp.bytes().await.unwrap()
        };
        assert_eq!(sha256(&body), layer.digest, "redirected: {redirected}");
        let ranged = no_redirects()
            .get(&url)
            .header("Range", "bytes=10-19")
            .send()
            .await
            .unwrap();
        if !redirected {
            assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
            assert_eq!(ranged.bytes().await.unwrap()[..], layer.bytes[10..20]);
        }

        let remote = format!("{}/s3/app:v1", env.registry_host());
        docker.remember(&remote);
        let pulled = docker.run(&["pull", &remote]);
        assert!(
            pulled.success,
            "docker pull (redirected: {redirected}):\n{}",
            pulled.all()
        );
        assert!(
            pulled.all().contains(&image.manifest.digest),
            "{}",
            pulled.all()
        );
        let tiny = format!("{}/s3/tiny:v1", env.registry_host());
        import_tiny(&docker, &tiny);
        let pushed = docker.run(&["push", &tiny]);
        assert!(pushed.success, "docker push:\n{}", pushed.all());
        docker.ok(&["rmi", &tiny]);
        let again = docker.run(&["pull", &tiny]);
        assert!(
            again.success,
            "docker pull of the pushed image:\n{}",
            again.all()
        );
    }
}

#[tokio::test]
async fn chunked_upload_survives_a_cut_chunk_and_a_restart_and_gc_empties_the_bucket() {
    let garage = Garage::start().await;
    let chunked = json!({"s3": {"chunksize": 5 * MIB}});
    let mut env = on_garage(&garage, "chunks", chunked).await;
    let data = random_bytes(13 * MIB);
    let digest = sha256(&data);
    let token = "";
    let location = env.registry().start_upload("s3/chunks", token).await;
    // Two small chunks merged into one part, then one that crosses a part boundary.
    let mut at = 0;
    for len in [MIB, MIB, 5 * MIB] {
        let range = format!("{at}-{}", at + len - 1);
        let resp = env
            .registry()
            .patch_chunk(&location, token, &data[at..at + len], Some(&range))
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "chunk {range}");
        at += len;
        assert_eq!(upload_range(&resp), format!("0-{}", at - 1));
    }
    // A chunk cut by the client leaves the session at its last good offset.
    let cut = env
        .registry()
        .request(Method::PATCH, &location, None)
        .header("Content-Type", "application/octet-stream")
        .body(broken_body(data[at..at + 3 * MIB].to_vec()))
        .send()
        .await;
    assert!(cut.map_or(true, |r| r.status().is_client_error()));
    // Another process continues it: nothing of the session lived only in the first one.
    env.registryd.restart().await;
    let status = env.registry().get(&location, None).await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(upload_range(&status), format!("0-{}", at - 1));
    let resp = env
        .registry()
        .finish_upload(&location, token, &digest, &data[at..])
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        sha256(&env.registry().blob_bytes("s3/chunks", &digest).await),
        digest
    );
    let stored = garage.object_count().await;

    // A refused upload leaves no object behind.
    let location = env.registry().start_upload("s3/chunks", token).await;
    env.registry()
        .patch_chunk(&location, token, &data[..6 * MIB], None)
        .await;
    let wrong = env
        .registry()
        .finish_upload(&location, token, &sha256(b"other"), &[])
        .await;
    expect_error(wrong, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_eq!(garage.objects_settled(|n| n == stored).await, stored);

    // Mounted elsewhere, then deleted from both repositories and collected.
    let registry = env.registry();
    let mount = registry
        .send(registry.request(
            Method::POST,
            &format!("/v2/s3/other/blobs/uploads/?mount={digest}&from=s3/chunks"),
            None,
        ))
        .await;
    assert_eq!(mount.status(), StatusCode::CREATED);
    for repo in ["s3/chunks", "s3/other"] {
        let resp = registry
            .send(registry.request(Method::DELETE, &format!("/v2/{repo}/blobs/{digest}"), None))
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
    }
    let out = run_gc(env.registryd.config(), &[]);
    assert!(out.contains("freed 1 blobs"), "{out}");
    assert_eq!(
        garage.objects_settled(|n| n == stored - 1).await,
        stored - 1
    );
}

#[tokio::test]
async fn pulls_and_pushes_go_on_with_one_garage_node_down() {
    let mut garage = Garage::start().await;
    let env = on_garage(&garage, "degraded", json!({"redirect": {"disable": true}})).await;
    let registry = env.registry();
    let before = Image::oci("amd64", vec![Content::tar_layer("before", 6 * MIB)]);
    registry.push_image("s3/app", "before", &before, None).await;
    garage.stop_node(2);
    let after = Image::oci("amd64", vec![Content::tar_layer("after", 6 * MIB)]);
    registry.push_image("s3/app", "after", &after, None).await;
    for image in [&before, &after] {
        for blob in image.blobs() {
            let got = env.registry().blob_bytes("s3/app", &blob.digest).await;
            assert_eq!(sha256(&got), blob.digest);
        }
    }
}

#[tokio::test]
async fn small_blobs_are_rows_not_objects_and_are_sent_without_a_redirect() {
    let garage = Garage::start().await;
    let env = on_garage(&garage, "inline", json!({})).await;
    let registry = env.registry();
    let image = Image::oci("amd64", vec![Content::random(16 * 1024)]);
    registry.push_image("s3/tiny", "v1", &image, None).await;
    assert_eq!(garage.object_count().await, 0, "a tiny image made objects");
    let get = |digest: &str| {
        no_redirects()
            .get(registry.url(&format!("/v2/s3/tiny/blobs/{digest}")))
            .send()
    };
    for blob in image.blobs() {
        let resp = get(&blob.digest).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{}", blob.digest);
        assert_eq!(sha256(&resp.bytes().await.unwrap()), blob.digest);
    }
    let above = Content::random(16 * 1024 + 1);
    registry.push_blob("s3/tiny", &above, None).await;
    assert_eq!(garage.object_count().await, 1);
    let resp = get(&above.digest).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
}
