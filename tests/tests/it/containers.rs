//! Berth in containers: the repository's Dockerfile built (from the host's release binaries, on
//! the `debian:bookworm-slim` scripts/test makes) and its docker-compose.yml run as written by
//! Debian's docker-compose: both services healthy, the README's journey against them, a registryd
//! restart keeping the data volume, a live ACL edit through the mounted auth.yaml, the image's
//! user and what it may write, a clean stop on SIGTERM; and a broken auth.yaml reported in the
//! logs with its file, line and reason.
//!
//! Uses the example's fixed ports 5000 and 5001 (taking turns with the journey test), and needs
//! `DOCKER_HOST` naming a running daemon: run through `./scripts/test`.

use std::time::Duration;

use berth_tests::auth_yaml::{self, Write};
use berth_tests::compose::{build_image, Compose, IMAGE, UID};
use berth_tests::docker::Docker;
use berth_tests::docker_flows::{acl_edit_lets_bob_push, forget};
use berth_tests::quickstart::{EXAMPLE_PORTS, REGISTRY};

use crate::journey::{login, readme_journey};

const SERVICES: [&str; 2] = ["authd", "registryd"];

/// Waits for both services, then checks that Docker runs the file's healthcheck on each.
async fn both_healthy(compose: &Compose, docker: &Docker) {
    for service in SERVICES {
        compose.wait_healthy(docker, service).await;
        let check = compose.inspect(docker, service, "{{json .Config.Healthcheck.Test}}");
        assert!(
            check.contains("/healthz"),
            "{service}'s container has no /healthz healthcheck: {check}"
        );
    }
}

#[tokio::test]
async fn berth_runs_in_containers() {
    let _ports = EXAMPLE_PORTS.lock().await;
    let docker = Docker::connect();
    build_image(&docker);
    compose_as_written(&docker).await;
    broken_auth_yaml_in_the_logs(&docker).await;
}

/// The image, then docker-compose.yml from `up -d` to `down`.
async fn compose_as_written(docker: &Docker) {
    let user = docker.inspect(IMAGE, "{{.Config.User}}");
    assert_eq!(user, format!("{UID}:{UID}"), "the image's user");
    let size: u64 = docker
        .inspect(IMAGE, "{{.Size}}")
        .parse()
        .unwrap_or_else(|e| panic!("docker inspect printed no size: {e}"));
    eprintln!("{IMAGE}: {} MB", size / 1_000_000);

    let compose = Compose::new();
    compose.ok(&["up", "-d"]);
    both_healthy(&compose, docker).await;

    // The README's lines after ./scripts/run, as written, against the containers.
    let app = format!("{REGISTRY}/alice/app:1");
    let (cleaner, _work) = readme_journey(&app, "docker-compose");
    let bob = login("bob", "bob-pass");
    forget(&cleaner, &app);
    let pulled = bob.run(&["pull", &app]);
    assert!(
        pulled.success,
        "bob could not pull {app}:\n{}",
        pulled.all()
    );
    forget(&bob, &app);

    // The data volume outlives a registryd restart.
    let started = compose.inspect(docker, "registryd", "{{.State.StartedAt}}");
    compose.ok(&["restart", "registryd"]);
    assert_ne!(
        compose.inspect(docker, "registryd", "{{.State.StartedAt}}"),
        started,
        "registryd was not restarted"
    );
    compose.wait_healthy(docker, "registryd").await;
    let pulled = bob.run(&["pull", &app]);
    assert!(
        pulled.success,
        "{app} is gone after `docker-compose restart registryd`:\n{}",
        pulled.all()
    );
    bob.remember(&app);

    // An edit of the mounted auth.yaml reaches bob's next push, without a restart.
    let authd_started = compose.inspect(docker, "authd", "{{.State.StartedAt}}");
    let bobs_app = format!("{REGISTRY}/bob/app:1");
    acl_edit_lets_bob_push(&bob, &app, &bobs_app, &compose.auth_yaml()).await;
    assert_eq!(
        compose.inspect(docker, "authd", "{{.State.StartedAt}}"),
        authd_started,
        "authd was restarted for the ACL edit"
    );

    // Both run as uid 10001 and write only to the data volume.
    for service in SERVICES {
        let id = compose.sh(service, "id -u");
        assert_eq!(
            id.stdout.trim(),
            UID.to_string(),
            "{service}'s uid: {}",
            id.all()
        );
        for path in [
            "/etc/berth",
            "/etc/berth/certs",
            "/tmp",
            "/usr/local/bin",
            "/",
        ] {
            let out = compose.sh(service, &format!("touch {path}/berth-probe"));
            assert!(
                !out.success,
                "{service} could write to {path}: the container must write only to its data volume"
            );
        }
    }
    let out = compose.sh(
        "registryd",
        "touch /etc/berth/data/berth-probe && rm /etc/berth/data/berth-probe",
    );
    assert!(
        out.success,
        "registryd cannot write to its data volume:\n{}",
        out.all()
    );

    // `docker-compose stop` sends SIGTERM: both drain and exit 0 within stop_grace_period (Docker
    // would SIGKILL them after it: exit code 137).
    compose.ok(&["stop"]);
    for service in SERVICES {
        let code = compose.inspect(docker, service, "{{.State.ExitCode}}");
        assert_eq!(code, "0", "{service}'s exit code after docker-compose stop");
    }
    for service in SERVICES {
        let logs = compose.ok(&["logs", "--no-color", service]);
        assert!(
            logs.contains("draining requests"),
            "{service} did not drain on SIGTERM:\n{logs}"
        );
    }
    compose.ok(&["down", "--volumes"]);
    assert!(
        compose.ok(&["ps", "-q"]).trim().is_empty(),
        "containers left after docker-compose down"
    );
}

/// authd started on an auth.yaml that does not parse says where and why in its logs.
async fn broken_auth_yaml_in_the_logs(docker: &Docker) {
    let compose = Compose::new();
    let path = compose.auth_yaml();
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read auth.yaml: {e}"));
    let line = 1 + text
        .lines()
        .position(|l| l.trim_start().starts_with("expiration:"))
        .unwrap_or_else(|| panic!("the example auth.yaml has no token.expiration"));
    auth_yaml::write_text(
        &path,
        &text.replacen("expiration: 900", "expiration: [soon]", 1),
        Write::InPlace,
    );

    compose.ok(&["up", "-d", "authd"]);
    let mut logs = String::new();
    for _ in 0..30 {
        logs = compose.run(&["logs", "--no-color", "authd"]).all();
        if logs.contains("token.expiration") {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for part in [
        "/etc/berth/auth.yaml",
        "token.expiration",
        "invalid type",
        &format!("line {line}"),
    ] {
        assert!(
            logs.contains(part),
            "`docker-compose logs authd` does not show {part:?}:\n{logs}"
        );
    }
    assert_ne!(
        compose.inspect(docker, "authd", "{{.State.Health.Status}}"),
        "healthy",
        "authd with a broken auth.yaml is reported healthy"
    );
}
