//! Berth as a pull-through cache of an [`Upstream`]: authd with the cache's users and ACL, and
//! registryd listening on ::1 (reached as `berth.test:PORT`) with a `proxy` section naming the
//! upstream `docker.io` (the default upstream, with the upstream's `host:port` as an alias for
//! containerd's `ns`); and what tests read from it: the `Berth-Cache` header and its metrics.

use reqwest::{Method, Response};
use serde_json::json;

use crate::authd::{AuthSpec, User};
use crate::content::{unique, Image};
use crate::env::TestEnv;
use crate::registry::{header, Registry};
use crate::registryd::merge;
use crate::upstream::{Upstream, UpstreamAuth};

/// The `Accept` header of a client that takes any image manifest or index.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// The host name of the cache (`./scripts/test` maps it to ::1 in /etc/hosts).
pub const BERTH_HOST: &str = "berth.test";

/// The name of the upstream in the cache's configuration: the prefix of its cached names.
pub const PREFIX: &str = "docker.io";

/// The cache's users and ACL. `alice` pulls (and may push, as far as the ACL goes) everything
/// under `docker.io/` and `alice/`, pulls un-prefixed `library/` names (Docker's
/// `registry-mirrors` path) and lists the catalog; `carol` pulls `alice/` only; anonymous
/// clients pull un-prefixed `library/` names.
pub fn cache_auth_spec() -> AuthSpec {
    AuthSpec {
        users: vec![
            User::new("alice", "alice-pass"),
            User::new("carol", "carol-pass"),
        ],
        acl: json!([
            {"match": {"account": "alice", "type": "registry", "name": "catalog"}, "actions": ["*"]},
            {"match": {"account": "alice", "name": "alice/**"}, "actions": ["push", "pull"]},
            {"match": {"account": "alice", "name": "docker.io/**"}, "actions": ["push", "pull"]},
            {"match": {"account": "alice", "name": "library/**"}, "actions": ["pull"]},
            {"match": {"account": "carol", "name": "alice/**"}, "actions": ["pull"]},
            {"match": {"account": "", "name": "library/**"}, "actions": ["pull"]},
        ]),
        expiration: 900,
        disable_legacy_key_id: false,
    }
}

/// Berth (authd + registryd) caching an upstream; everything stops on drop.
pub struct PullThrough {
    pub env: TestEnv,
    pub upstream: Upstream,
}

impl PullThrough {
    /// Berth caching `upstream`, tags served from the cache for `ttl` (a Go-style duration).
    pub async fn start(upstream: Upstream, ttl: &str) -> PullThrough {
        let remoteurl = upstream.url();
        PullThrough::start_via(upstream, &remoteurl, ttl).await
    }

    /// As [`PullThrough::start`], reaching the upstream at `remoteurl` (e.g. a relay before it).
    pub async fn start_via(upstream: Upstream, remoteurl: &str, ttl: &str) -> PullThrough {
        PullThrough::start_with(upstream, remoteurl, ttl, json!({})).await
    }

    /// As [`PullThrough::start_via`], with the keys of `proxy` (e.g. `maxsize`) added to the
    /// `proxy` section.
    pub async fn start_with(
        upstream: Upstream,
        remoteurl: &str,
        ttl: &str,
        proxy: serde_json::Value,
    ) -> PullThrough {
        let mut entry = upstream_entry(&upstream, remoteurl, ttl);
        merge(
            &mut entry,
            json!({"username": upstream.puller.name, "password": upstream.puller.password}),
        );
        let mut section = json!({"upstreams": [entry]});
        merge(&mut section, proxy);
        PullThrough::launch(upstream, section, Vec::new()).await
    }

    /// Berth caching `upstream` (tags fresh for 10m) with the account given by `credentials`
    /// (the upstream's keys for it, e.g. `passwordenv` or `authfile`) instead of
    /// `username`/`password`, and the variables `env` (name, value) in registryd's environment.
    pub async fn start_credentialed(
        upstream: Upstream,
        credentials: serde_json::Value,
        env: Vec<(String, String)>,
    ) -> PullThrough {
        let mut entry = upstream_entry(&upstream, &upstream.url(), "10m");
        merge(&mut entry, credentials);
        PullThrough::launch(upstream, json!({"upstreams": [entry]}), env).await
    }

    /// Berth (authd with [`cache_auth_spec`], registryd on ::1) with this `proxy` section.
    async fn launch(
        upstream: Upstream,
        section: serde_json::Value,
        env: Vec<(String, String)>,
    ) -> PullThrough {
        let extra = json!({"http": {"addr": "[::1]:0"}, "proxy": section});
        let env = TestEnv::with_auth_merged_env(cache_auth_spec(), true, extra, env).await;
        PullThrough { env, upstream }
    }

    /// A cache (tags fresh for `ttl`) of a new upstream authenticating as `auth` that holds
    /// `image` as `library/<stem>-<random>:1`; returns it with that upstream name.
    pub async fn stocked(
        auth: UpstreamAuth,
        ttl: &str,
        stem: &str,
        image: &Image,
    ) -> (PullThrough, String) {
        let upstream = Upstream::start(auth).await;
        let repo = format!("library/{stem}-{}", unique());
        upstream.push(&repo, "1", image).await;
        (PullThrough::start(upstream, ttl).await, repo)
    }

    /// `METHOD /v2/<name>/manifests/<reference>` on the cache, accepting every manifest type.
    pub async fn manifest(
        &self,
        method: Method,
        name: &str,
        reference: &str,
        token: Option<&str>,
    ) -> Response {
        let registry = self.registry();
        let path = format!("/v2/{name}/manifests/{reference}");
        let req = registry.request(method, &path, token);
        registry.send(req.header("Accept", ACCEPT_MANIFESTS)).await
    }

    /// `GET /v2/<name>/blobs/<digest>` on the cache.
    pub async fn blob(&self, name: &str, digest: &str, token: Option<&str>) -> Response {
        self.registry()
            .get(&format!("/v2/{name}/blobs/{digest}"), token)
            .await
    }

    /// `berth.test:PORT`, as Docker names the cache.
    pub fn host(&self) -> String {
        format!("{BERTH_HOST}:{}", self.env.registryd.daemon.addr.port())
    }

    /// `http://berth.test:PORT`: the mirror URL for Docker and containerd.
    pub fn mirror_url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// A client for the cache.
    pub fn registry(&self) -> Registry {
        self.env.registry()
    }

    /// A token from the cache's authd for `user` (of [`cache_auth_spec`]) covering `scopes`.
    pub async fn token(&self, user: &str, scopes: &[&str]) -> String {
        self.env.token(user, scopes).await
    }

    /// The sum of the samples of `name` in the cache's `/metrics` whose labels include all of
    /// `labels` (0 when there is none).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.registry().get("/metrics", None).await.text().await;
        let text = text.unwrap_or_else(|e| panic!("GET /metrics: {e}"));
        metric_sum(&text, name, labels)
    }
}

/// The entry of `proxy.upstreams` for `upstream` (no account): named [`PREFIX`], the default,
/// with its `host:port` as an alias (containerd's `ns`).
fn upstream_entry(upstream: &Upstream, remoteurl: &str, ttl: &str) -> serde_json::Value {
    json!({
        "name": PREFIX,
        "aliases": [upstream.host()],
        "remoteurl": remoteurl,
        "ttl": ttl,
        "default": true,
    })
}

/// The `Berth-Cache` header of a cache's answer (`hit`, `miss`, `revalidated`, `stale`; "" when
/// absent).
pub fn cache_state(resp: &reqwest::Response) -> String {
    header(resp, "Berth-Cache")
}

/// The sum of the samples of `name` in the Prometheus text `text` whose labels include all of
/// `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
        })
        .filter_map(|(_, value)| value.trim().parse::<f64>().ok())
        .fold(0.0, |sum, value| sum + value)
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn sums_the_samples_whose_labels_match() {
        let text = "# TYPE x counter\n\
            x{upstream=\"docker.io\",kind=\"blob\",result=\"hit\"} 2\n\
            x{upstream=\"docker.io\",kind=\"blob\",result=\"miss\"} 1\n\
            x{upstream=\"docker.io\",kind=\"manifest\",result=\"hit\"} 4\n\
            x_total 9\n";
        assert_eq!(metric_sum(text, "x", &[("kind", "blob")]), 3.0);
        assert_eq!(metric_sum(text, "x", &[("result", "hit")]), 6.0);
        assert_eq!(metric_sum(text, "x", &[]), 7.0);
        assert_eq!(metric_sum(text, "x_total", &[]), 9.0);
        assert_eq!(metric_sum(text, "y", &[]), 0.0);
    }
}
