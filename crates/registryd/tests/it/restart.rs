//! Uploads resume across a restart; the data directory is all the state there is.

use crate::{client, data_dir, digest, Server};

#[tokio::test]
async fn chunked_upload_resumes_after_a_restart() {
    let (_dir, data) = data_dir();
    let c = client();
    let server = Server::start(&data, "", None).await;
    let resp = c
        .post(format!("{}/v2/team/app/blobs/uploads/", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let resp = c
        .patch(format!("{}{location}", server.url))
        .header("content-range", "0-4")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    server.stop().await;

    let server = Server::start(&data, "", None).await;
    let resp = c
        .get(format!("{}{location}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["range"], "0-4");
    // Out of order after the restart still answers with the range kept on disk.
    let resp = c
        .patch(format!("{}{location}", server.url))
        .header("content-range", "3-7")
        .body("xxxxx")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 416);
    assert_eq!(resp.headers()["range"], "0-4");
    let resp = c
        .patch(format!("{}{location}", server.url))
        .header("content-range", "5-10")
        .body(" world")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert_eq!(resp.headers()["range"], "0-10");
    let d = digest(b"hello world");
    let resp = c
        .put(format!("{}{location}?digest={d}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let body = c
        .get(format!("{}/v2/team/app/blobs/{d}", server.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"hello world");
    server.stop().await;
}

#[tokio::test]
async fn pushed_content_survives_a_restart_and_is_stored_once() {
    let (_dir, data) = data_dir();
    let c = client();
    let server = Server::start(&data, "", None).await;
    // Larger than storage.inline.maxsize: a file, not a database row.
    let layer = vec![7u8; 64 * 1024];
    let d1 = crate::push_blob(&c, &server.url, "a/one", &layer, None).await;
    let d2 = crate::push_blob(&c, &server.url, "b/two", &layer, None).await;
    assert_eq!(d1, d2);
    server.stop().await;

    let server = Server::start(&data, "", None).await;
    for repo in ["a/one", "b/two"] {
        let resp = c
            .get(format!("{}/v2/{repo}/blobs/{d1}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().await.unwrap().len(), 64 * 1024);
    }
    let stored: usize = walk(&data.join("blobs")).len();
    assert_eq!(stored, 1, "one copy of a blob pushed to two repositories");
    assert_eq!(
        std::fs::read_dir(data.join("uploads")).unwrap().count(),
        0,
        "no upload left behind"
    );
    server.stop().await;
}

/// Every file under `dir`.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
