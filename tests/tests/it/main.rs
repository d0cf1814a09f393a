//! End-to-end tests, one binary: Berth's daemons driven by real clients (docker, skopeo, curl,
//! registry:2), one module per area. Docker-driven tests need `DOCKER_HOST`: run them through
//! `./scripts/test`.

mod hostile_connections;
mod interop_registry2;
mod journey;
mod registry_abuse;
mod registry_auth;
mod registry_blobs;
mod registry_crash;
mod registry_descriptors;
mod registry_discovery;
mod registry_disk_full;
mod registry_docker;
mod registry_edges;
mod registry_fuzz;
mod registry_gc;
mod registry_gc_soak;
mod registry_htpasswd;
mod registry_http;
mod registry_manifest_errors;
mod registry_manifests;
mod registry_names;
mod registry_ops;
mod registry_races;
mod registry_referrers;
mod registry_restart;
mod registry_skopeo;
mod registry_slow_pulls;
mod registry_upload_caps;
mod registry_uploads;
mod tls;
