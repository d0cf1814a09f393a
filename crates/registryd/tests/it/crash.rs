//! kill -9 in the middle of concurrent pushes: after a restart every acknowledged push pulls
//! back byte-identical, and nothing half-written is visible (every stored blob matches its
//! digest; every tagged manifest's blobs are there).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::restart::walk;
use crate::{client, data_dir, digest, manifest};

/// The registryd binary, serving `data` on a free port; returns the child and its URL.
fn spawn(dir: &Path, data: &Path) -> (Child, String) {
    let config = dir.join("registry.yaml");
    std::fs::write(
        &config,
        format!(
            "http: {{addr: \"127.0.0.1:0\"}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_registryd"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("registryd exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

/// One acknowledged push: its tag, manifest bytes and layer bytes.
struct Pushed {
    repo: String,
    tag: String,
    manifest: Vec<u8>,
    layer: Vec<u8>,
}

/// Push one image (layer in two chunks, config monolithic, manifest); `None` once the server is
/// gone.
async fn push(
    c: &reqwest::Client,
    url: &str,
    repo: &str,
    tag: &str,
    layer: &[u8],
) -> Option<Vec<u8>> {
    let resp = c
        .post(format!("{url}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .ok()?;
    let location = resp.headers().get("location")?.to_str().ok()?.to_owned();
    let half = layer.len() / 2;
    let r = c
        .patch(format!("{url}{location}"))
        .header("content-range", format!("0-{}", half - 1))
        .body(layer[..half].to_vec())
        .send()
        .await
        .ok()?;
    (r.status() == 202).then_some(())?;
    let d = digest(layer);
    let r = c
        .put(format!("{url}{location}?digest={d}"))
        .body(layer[half..].to_vec())
        .send()
        .await
        .ok()?;
    (r.status() == 201).then_some(())?;
    let config = format!("{{\"tag\":\"{tag}\"}}").into_bytes();
    let cd = digest(&config);
    let r = c
        .post(format!("{url}/v2/{repo}/blobs/uploads/?digest={cd}"))
        .body(config.clone())
        .send()
        .await
        .ok()?;
    (r.status() == 201).then_some(())?;
    let m = manifest((&cd, config.len()), &[(&d, layer.len())]);
    let r = c
        .put(format!("{url}/v2/{repo}/manifests/{tag}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(m.clone())
        .send()
        .await
        .ok()?;
    (r.status() == 201).then_some(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_pushes_loses_nothing_acknowledged() {
    let (dir, data) = data_dir();
    let (mut child, url) = spawn(dir.path(), &data);
    let acked: Arc<Mutex<Vec<Pushed>>> = Arc::default();
    let mut tasks = vec![];
    for t in 0..4u8 {
        let (url, acked) = (url.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let c = client();
            for i in 0..40u32 {
                let repo = format!("crash/r{t}");
                let tag = format!("t{i}");
                let layer: Vec<u8> = (0..96 * 1024u32)
                    .map(|k| (k.wrapping_mul(31) ^ i ^ u32::from(t) << 8) as u8)
                    .collect();
                match push(&c, &url, &repo, &tag, &layer).await {
                    Some(manifest) => acked.lock().unwrap().push(Pushed {
                        repo,
                        tag,
                        manifest,
                        layer,
                    }),
                    None => return,
                }
            }
        }));
    }
    for _ in 0..1200 {
        if acked.lock().unwrap().len() >= 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        !acked.is_empty(),
        "some pushes were acknowledged before the kill"
    );

    let (mut child, url) = spawn(dir.path(), &data);
    let c = client();
    for p in &acked {
        let resp = c
            .get(format!("{url}/v2/{}/manifests/{}", p.repo, p.tag))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{}:{}", p.repo, p.tag);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), p.manifest.as_slice());
        let layer = c
            .get(format!("{url}/v2/{}/blobs/{}", p.repo, digest(&p.layer)))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(layer.as_ref(), p.layer.as_slice());
    }
    for file in walk(&data.join("blobs")) {
        let name = file.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(
            digest(&std::fs::read(&file).unwrap()),
            format!("sha256:{name}"),
            "partial blob {name}"
        );
    }
    for t in 0..4 {
        let resp = c
            .get(format!("{url}/v2/crash/r{t}/tags/list"))
            .send()
            .await
            .unwrap();
        if resp.status() == 404 {
            continue;
        }
        let tags: serde_json::Value = resp.json().await.unwrap();
        for tag in tags["tags"].as_array().unwrap() {
            let m: serde_json::Value = c
                .get(format!(
                    "{url}/v2/crash/r{t}/manifests/{}",
                    tag.as_str().unwrap()
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().unwrap()) {
                let resp = c
                    .head(format!(
                        "{url}/v2/crash/r{t}/blobs/{}",
                        d["digest"].as_str().unwrap()
                    ))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200, "tag {tag} names a missing blob");
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
