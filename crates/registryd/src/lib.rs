//! registryd: Berth's registry, the OCI distribution API (v1.1) on SQLite + the local
//! filesystem, guarded by authd's Bearer tokens (or htpasswd Basic auth, or open).
//!
//! Layers, each calling only the ones below it:
//! - [`app`]: wiring — config to router, the request observer, [`app::serve`] (plain or [`tls`]).
//! - [`routes`]: HTTP — one dispatcher over [`endpoint::Endpoint`], thin handlers per spec area,
//!   typed responses; [`auth`] checks access once per request.
//! - [`service`]: behaviour — uploads, blobs, manifests, listings, referrers.
//! - [`db`] (SQLite metadata, all SQL) and [`storage`] (blob bytes, all paths).
//! - [`names`], [`error`], [`config`], [`metrics`]: shared vocabulary; [`drain`]: connection
//!   hygiene for requests answered before their body was read.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod drain;
pub mod endpoint;
pub mod error;
pub mod metrics;
pub mod names;
pub mod routes;
pub mod service;
pub mod storage;
pub mod tls;

pub use app::{build, serve, App};
pub use config::Config;
pub use error::Error;
