//! registryd: Berth's registry, the OCI distribution API (v1.1) on SQLite + the local
//! filesystem, guarded by authd's Bearer tokens (or htpasswd Basic auth, or open).
//!
//! Layers, each calling only the ones below it:
//! - [`app`]: wiring — config to router, the request observer, [`app::serve`] (plain or TLS,
//!   with the shared `server` crate).
//! - [`routes`]: HTTP — one dispatcher over [`endpoint::Endpoint`], thin handlers per spec area,
//!   typed responses; [`auth`] checks access once per request.
//! - [`service`]: behaviour — uploads, blobs, manifests, listings, referrers, and the
//!   pull-through cache of upstream registries (`service/proxy/`).
//! - [`db`] (SQLite metadata, all SQL) and [`storage`] (blob bytes, all paths).
//! - [`ui`]: the web pages for people under `/ui/`, beside [`routes`], calling [`service`].
//! - [`names`], [`error`], [`config`]: shared vocabulary; [`drain`]: connection hygiene for
//!   requests answered before their body was read.
//!
//! Metrics (at `/metrics`, recorder from the shared `server` crate):
//! `registry_http_requests_total{route,method,status}`, `registry_http_request_duration_seconds`,
//! `registry_bytes_received_total`, `registry_bytes_sent_total`, `registry_uploads_in_progress`,
//! `registry_db_commits_total`; the pull-through cache adds `registry_proxy_requests_total`,
//! `registry_proxy_upstream_requests_total`, `registry_proxy_upstream_bytes_total`,
//! `registry_proxy_cache_bytes` and `registry_proxy_evictions_total`/`…_evicted_bytes_total`;
//! htpasswd mode adds `registry_bcrypt_seconds` and
//! `registry_bcrypt_cache_hits_total`.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod drain;
pub mod endpoint;
pub mod error;
pub mod names;
pub mod routes;
pub mod service;
pub mod storage;
pub mod ui;

pub use app::{build, serve, App};
pub use config::Config;
pub use error::Error;
