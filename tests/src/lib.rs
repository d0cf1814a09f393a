//! End-to-end test harness: Berth's daemons run as real processes and are driven by real
//! clients (reqwest, docker, skopeo). Everything listens on 127.0.0.1 ports the daemons bind themselves (port 0) and
//! lives in a temp dir; daemons are killed when their handles drop.
//!
//! Typical use (an async test, `#[tokio::test]`):
//!
//! ```no_run
//! # async fn example() {
//! use berth_tests::{content::Image, env::TestEnv, registry::header};
//! let env = TestEnv::standard().await;             // gen-cert, authd, registryd (token auth)
//! let token = env.token("alice", &["repository:alice/app:pull,push"]).await;
//! let registry = env.registry();
//! registry.push_image("alice/app", "v1", &Image::random(2), Some(&token)).await;
//! let resp = registry.get("/v2/alice/app/manifests/v1", Some(&token)).await;
//! assert!(header(&resp, "Docker-Content-Digest").starts_with("sha256:"));
//! # }
//! ```
//!
//! Modules:
//! - [`bins`]: `authd`/`registryd` in `target/<profile>/`, built fresh (`cargo build
//!   --workspace`) once per test process.
//! - [`daemon`]: a child process with a log file, the address it announces, healthz wait,
//!   kill -9, SIGTERM.
//! - [`authd`]: users + ACL ([`authd::AuthSpec::standard`] = the example users admin, alice, bob,
//!   anonymous), `auth.yaml`, `gen-cert`, token requests.
//! - [`registryd`]: `registry.yaml` (token auth or open), restart over the same data.
//! - [`env`]: [`env::TestEnv`], the whole setup in one call.
//! - [`registry`]: a reqwest client for the distribution API, push helpers, `expect_error`;
//!   [`uploads`] and [`manifests`] add the upload steps and manifest checks to it.
//! - [`content`]: random blobs, tar layers, images, indexes, artifacts (with digests).
//! - [`oci_layout`]: OCI image layouts on disk for skopeo.
//! - [`tokens`]: tokens authd would not issue (expired, signed by another key) via the `token` crate.
//! - [`raw_http`]: requests whose path must not be normalised (`a/../b`), connection reuse.
//! - [`bodies`]: request bodies that stall or break off mid-upload.
//! - [`gc`]: `registryd gc` runs, the blob files and trash of a data directory, byte-exact pulls.
//! - [`seed`]: seeded randomness that `BERTH_SEED` replays.
//! - [`hostile`]: daemons with extra serving keys, and their memory and sockets from /proc.
//! - [`upstream`]: registry:2 as a stand-in upstream (Bearer or Basic) on a fixed port, its
//!   access log, its stored blobs; [`fault_relay`]: a relay cutting its answers mid-blob;
//!   [`redirecting_front`]: a front sending its blob downloads to another host;
//!   [`pull_through`]: Berth caching it ([`reference_registry`] is registry:2 itself).
//! - [`mirror_dockerd`]: a second dockerd pulling through a registry mirror, and its
//!   containerd, which [`ctr`] drives with a hosts directory.
//! - [`compose`]: the Dockerfile built from the host's binaries, docker-compose.yml run by
//!   `docker-compose` in a temp project folder.
//! - [`nginx`]: nginx as the reverse proxy in front of a daemon.
//! - [`slapd`]: a real OpenLDAP server with people and groups, for `ldap_auth`.
//! - [`browser`]: headless chromium through chromedriver (WebDriver, fantoccini), for the web
//!   pages, with screenshots under `target/ui-screenshots/`.
//! - [`postgres`]: the PostgreSQL server `./scripts/test` starts, a database per registryd
//!   (every registryd of the run when `BERTH_TEST_ON_POSTGRES=1`), psql, `pg_ctl restart`.
//! - [`cli`], [`docker`], [`skopeo`]: the client CLIs. Docker tests need `DOCKER_HOST` to name a
//!   running daemon and fail (never skip) without one: run them through `./scripts/test`.

pub mod auth_yaml;
pub mod authd;
pub mod bins;
pub mod bodies;
pub mod browser;
pub mod cli;
pub mod compose;
pub mod content;
pub mod ctr;
pub mod daemon;
pub mod docker;
pub mod docker_flows;
pub mod env;
pub mod fault_relay;
pub mod garage;
pub mod gc;
pub mod hostile;
pub mod manifests;
pub mod mirror_dockerd;
pub mod nginx;
pub mod oci_layout;
pub mod podman;
pub mod postgres;
pub mod pull_through;
pub mod quickstart;
pub mod raw_http;
pub mod redirecting_front;
pub mod reference_registry;
pub mod registry;
pub mod registryd;
pub mod seed;
pub mod skopeo;
pub mod slapd;
pub mod spawned;
pub mod tokens;
pub mod uploads;
pub mod upstream;
