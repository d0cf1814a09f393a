//! Berth scaled out in containers: scaled/docker-compose.yml run as written by Debian's
//! docker-compose, on the images of the repository's Dockerfile and scaled/Dockerfile (Garage
//! from the binary the tests run): PostgreSQL, three Garage nodes, two registryd replicas, authd
//! and nginx, all healthy; the README's journey through the balancer; each replica serving what
//! the other took; the blobs in the bucket and no volume on a replica; a replica killed and a
//! Garage node stopped while pushes and pulls go on (each docker command must succeed).
//!
//! Uses the fixed ports of the file (5000 and 5001 taken in turns with the journey and the
//! other container test), and needs `DOCKER_HOST` naming a running daemon: run through
//! `./scripts/test`.

use berth_tests::compose::{build_image, build_scaled_images, Compose};
use berth_tests::docker::Docker;
use berth_tests::docker_flows::{forget, import_random};
use berth_tests::garage::bucket_objects;
use berth_tests::quickstart::{EXAMPLE_PORTS, REGISTRY};

use crate::journey::{login, readme_journey};

/// The services with a healthcheck.
const HEALTHY: [&str; 5] = [
    "postgres",
    "authd",
    "registryd-a",
    "registryd-b",
    "balancer",
];
/// The replicas and their own addresses (REGISTRY_HTTP_ADDR in the file).
const REPLICAS: [(&str, &str); 2] = [
    ("registryd-a", "127.0.0.1:5010"),
    ("registryd-b", "127.0.0.1:5011"),
];
/// The S3 API through the balancer.
const S3: &str = "http://127.0.0.1:3909";

#[tokio::test]
async fn berth_scaled_out_in_containers() {
    let _ports = EXAMPLE_PORTS.lock().await;
    let docker = Docker::connect();
    build_image(&docker);
    build_scaled_images(&docker);

    let compose = Compose::scaled();
    compose.ok(&["up", "-d"]);
    for service in HEALTHY {
        compose.wait_healthy(&docker, service).await;
    }
    let setup = compose.inspect(
        &docker,
        "garage-setup",
        "{{.State.Status}} {{.State.ExitCode}}",
    );
    assert_eq!(setup, "exited 0", "garage-setup did not finish cleanly");

    // The README's lines after ./scripts/run, as written, through the balancer.
    let app = format!("{REGISTRY}/alice/app:1");
    let (cleaner, _work) = readme_journey(&app, "scaled/docker-compose.yml");
    forget(&cleaner, &app);

    // A layer too large to live in the database goes to the bucket.
    let alice = login("alice", "alice-pass");
    let big = format!("{REGISTRY}/alice/big:1");
    import_random(&alice, &big, 256 * 1024);
    alice.ok(&["push", &big]);
    let (key, secret) = (compose.env("S3_ACCESS_KEY"), compose.env("S3_SECRET_KEY"));
    let objects = bucket_objects(S3, &key, &secret).await;
    assert!(
        objects > 0,
        "the bucket is empty after a push of a 256 KiB layer"
    );

    // Each replica on its own serves both images: the metadata and the blobs are shared.
    for (replica, addr) in REPLICAS {
        let bob = Docker::connect();
        let out = bob.login(addr, "bob", "bob-pass");
        assert!(out.success, "docker login {addr}:\n{}", out.all());
        for image in [&app, &big] {
            let direct = image.replacen(REGISTRY, addr, 1);
            bob.remember(&direct);
            eprintln!("{replica} ({addr}) serves {direct}");
            bob.ok(&["pull", &direct]);
        }
        // Nothing of the registry is on the replica's disk: no volume, only the read-only
        // configuration and certificates.
        let mounts = compose.inspect(
            &docker,
            replica,
            "{{range .Mounts}}{{.Type}}:{{.RW}} {{end}}",
        );
        assert!(
            !mounts.contains("volume") && !mounts.contains(":true"),
            "{replica} has a volume or a writable mount: {mounts}"
        );
    }

    // One replica killed: the balancer sends pulls and pushes to the other.
    compose.ok(&["kill", "registryd-a"]);
    let bob = login("bob", "bob-pass");
    bob.remember(&big);
    bob.ok(&["pull", &big]);
    forget(&bob, &big);
    let during = format!("{REGISTRY}/alice/big:killed");
    import_random(&alice, &during, 64 * 1024);
    alice.ok(&["push", &during]);
    compose.ok(&["start", "registryd-a"]);
    compose.wait_healthy(&docker, "registryd-a").await;

    // One Garage node stopped: replication factor 3 keeps the bucket readable and writable.
    compose.ok(&["stop", "garage3"]);
    let more = format!("{REGISTRY}/alice/big:2");
    import_random(&alice, &more, 256 * 1024);
    alice.ok(&["push", &more]);
    forget(&alice, &more);
    for image in [&big, &more, &during] {
        bob.remember(image);
        bob.ok(&["pull", image]);
    }
    assert!(
        bucket_objects(S3, &key, &secret).await > objects,
        "the second push left nothing in the bucket"
    );

    compose.ok(&["down", "--volumes"]);
    assert!(
        compose.ok(&["ps", "-q"]).trim().is_empty(),
        "containers left after docker-compose down"
    );
}
