//! The pull-through cache: repositories under an upstream's prefix (`docker.io/library/alpine`
//! for the upstream named `docker.io`) are filled from that upstream when pulled, and are
//! otherwise ordinary repositories (catalog, tags, ACL, GC).
//!
//! - Routing ([`Registry::route_ns`], [`Registry::pull_name`], [`Registry::check_push`]):
//!   a name's prefix, containerd's `?ns=<host>`, or the default upstream for names no prefix
//!   claims and no local repository has (Docker's `registry-mirrors`).
//! - [`upstream`]: the client, with the registry token dance and per-scope token cache.
//! - [`manifests`]: by digest cached forever; by tag fresh for the upstream's `ttl`, then one
//!   `HEAD` revalidates; served stale when the upstream is away.
//! - [`blobs`]: a miss streams to the client while it is hashed and written, and is recorded
//!   only once its digest matches; the client's last piece waits for that check.
//! - [`flights`]: concurrent misses of one blob or tag share one upstream fetch.
//! - [`eviction`]: `proxy.maxsize`, least recently pulled cached images first.

mod blobs;
mod challenge;
mod credentials;
mod eviction;
mod flights;
mod manifests;
mod upstream;

use std::sync::Arc;

use super::Registry;
use crate::config::proxy::Proxy as ProxyConfig;
use crate::error::Error;
use crate::names::RepoName;

pub use blobs::ProxiedBlob;
pub use eviction::spawn_eviction;
pub use upstream::Upstream;

/// How a proxied manifest or blob was served (the `Berth-Cache` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache, without asking the upstream.
    Hit,
    /// Fetched from the upstream now.
    Miss,
    /// A tag past its ttl that one upstream `HEAD` found unchanged.
    Revalidated,
    /// From the cache because the upstream is unavailable.
    Stale,
}

impl CacheStatus {
    /// The header value and metrics label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Revalidated => "revalidated",
            Self::Stale => "stale",
        }
    }

    fn count(self, upstream: &str, kind: &'static str) {
        metrics::counter!("registry_proxy_requests_total",
            "upstream" => upstream.to_owned(), "kind" => kind, "result" => self.as_str())
        .increment(1);
    }
}

/// The configured upstreams and the fetches in progress.
#[derive(Debug)]
pub struct Proxy {
    upstreams: Vec<Arc<Upstream>>,
    /// Pushes into a proxied prefix are stored instead of refused.
    allow_push: bool,
    flights: flights::Flights,
    /// `proxy.maxsize`, when set.
    eviction: Option<eviction::Eviction>,
}

impl Proxy {
    /// The runtime form of the `proxy` section; `None` when it names no upstream.
    ///
    /// # Errors
    /// `Config` for a name that is not a repository name component path, a duplicate name or
    /// host, more than one default, or an unusable upstream.
    pub fn from_config(cfg: &ProxyConfig) -> Result<Option<Self>, Error> {
        if cfg.upstreams.is_empty() {
            return Ok(None);
        }
        let mut upstreams: Vec<Arc<Upstream>> = Vec::new();
        for u in &cfg.upstreams {
            RepoName::parse(&format!("{}/x", u.name)).map_err(|_| {
                Error::Config(format!(
                    "proxy.upstreams: name {:?} cannot prefix repository names (lowercase host names like docker.io)",
                    u.name
                ))
            })?;
            let up = Upstream::from_config(u)?;
            for other in &upstreams {
                let nested = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
                if nested(&up.name, &other.name) || nested(&other.name, &up.name) {
                    return Err(Error::Config(format!(
                        "proxy.upstreams: the prefixes {} and {} overlap",
                        up.name, other.name
                    )));
                }
                if let Some(h) = std::iter::once(&u.name)
                    .chain(&u.aliases)
                    .find(|h| other.answers_to(h))
                {
                    return Err(Error::Config(format!(
                        "proxy.upstreams: host {h} is claimed by both {} and {}",
                        other.name, up.name
                    )));
                }
            }
            upstreams.push(Arc::new(up));
        }
        if upstreams.iter().filter(|u| u.default).count() > 1 {
            return Err(Error::Config(
                "proxy.upstreams: at most one upstream may be the default".into(),
            ));
        }
        let prefixes = upstreams.iter().map(|u| u.name.clone()).collect();
        Ok(Some(Self {
            upstreams,
            allow_push: cfg.allowpush,
            flights: flights::Flights::default(),
            eviction: cfg
                .maxsize
                .map(|max| eviction::Eviction::new(max, prefixes)),
        }))
    }

    /// The upstream whose prefix `name` is under, with the rest of the name.
    fn by_prefix<'n>(&self, name: &'n str) -> Option<(&Arc<Upstream>, &'n str)> {
        self.upstreams.iter().find_map(|u| {
            name.strip_prefix(u.name.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .map(|rest| (u, rest))
        })
    }

    fn default_upstream(&self) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.default)
    }
}

/// A repository filled from an upstream, and the name to ask it for.
#[derive(Debug, Clone)]
pub struct Source {
    pub upstream: Arc<Upstream>,
    pub remote: String,
}

impl Registry {
    /// Caches the upstreams of `proxy` (see the module doc).
    #[must_use]
    pub fn with_proxy(mut self, proxy: Option<Proxy>) -> Self {
        self.proxy = proxy;
        self
    }

    /// The upstream that fills `repo`, if it is under a proxied prefix.
    #[must_use]
    pub fn source_of(&self, repo: &RepoName) -> Option<Source> {
        let (upstream, rest) = self.proxy.as_ref()?.by_prefix(repo.as_str())?;
        Some(Source {
            upstream: upstream.clone(),
            remote: upstream.remote_name(rest),
        })
    }

    /// containerd's mirror request for `name` at host `ns`: the cached repository
    /// (`<upstream>/<name>`) when an upstream answers to `ns`, else `None` (served as named).
    ///
    /// # Errors
    /// `NameInvalid` when the prefixed name is too long.
    pub fn route_ns(&self, name: &RepoName, ns: &str) -> Result<Option<RepoName>, Error> {
        let Some(up) = self
            .proxy
            .as_ref()
            .and_then(|p| p.upstreams.iter().find(|u| u.answers_to(ns)))
        else {
            return Ok(None);
        };
        Ok(Some(RepoName::parse(&format!("{}/{name}", up.name))?))
    }

    /// The cache a pull of `name` reads instead (`<default upstream>/<name>`): with a default
    /// upstream, for a name no prefix claims and no local repository has; else `None` (served
    /// as named).
    ///
    /// # Errors
    /// `Db` on failure; `NameInvalid` when the prefixed name is too long.
    pub async fn pull_name(&self, name: &RepoName) -> Result<Option<RepoName>, Error> {
        let Some(proxy) = &self.proxy else {
            return Ok(None);
        };
        let Some(default) = proxy.default_upstream() else {
            return Ok(None);
        };
        if proxy.by_prefix(name.as_str()).is_some()
            || self.db.repo_id(name.as_str()).await?.is_some()
        {
            return Ok(None);
        }
        Ok(Some(RepoName::parse(&format!("{}/{name}", default.name))?))
    }

    /// Refuses a push into a proxied prefix unless `proxy.allowpush`.
    ///
    /// # Errors
    /// `Unsupported` (405) naming the upstream.
    pub fn check_push(&self, repo: &RepoName) -> Result<(), Error> {
        match (&self.proxy, self.source_of(repo)) {
            (Some(p), Some(src)) if !p.allow_push => Err(Error::Unsupported(format!(
                "{repo} is a pull-through cache of {}: pushes are refused (proxy.allowpush)",
                src.upstream.name
            ))),
            _ => Ok(()),
        }
    }

    fn flights(&self) -> Option<&flights::Flights> {
        self.proxy.as_ref().map(|p| &p.flights)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(yaml: &str) -> Result<Option<Proxy>, Error> {
        Proxy::from_config(&serde_yaml::from_str(yaml).unwrap())
    }

    #[test]
    fn upstream_sets_that_cannot_route_are_refused() {
        assert!(proxy("{}").unwrap().is_none());
        let ok = proxy(
            "{upstreams: [{name: docker.io, remoteurl: 'http://a', default: true}, \
             {name: ghcr.io, aliases: ['ghcr.io:443'], remoteurl: 'http://b'}]}",
        )
        .unwrap()
        .unwrap();
        let (up, rest) = ok.by_prefix("ghcr.io/org/app").unwrap();
        assert_eq!((up.name.as_str(), rest), ("ghcr.io", "org/app"));
        assert!(ok.by_prefix("ghcr.iox/app").is_none());
        assert!(ok.by_prefix("ghcr.io").is_none());
        assert_eq!(ok.default_upstream().unwrap().name, "docker.io");
        for bad in [
            "{upstreams: [{name: Docker.IO, remoteurl: 'http://a'}]}",
            "{upstreams: [{name: 'a:5000', remoteurl: 'http://a'}]}",
            "{upstreams: [{name: a, remoteurl: 'http://a'}, {name: a, remoteurl: 'http://b'}]}",
            "{upstreams: [{name: a, remoteurl: 'http://a'}, {name: a/b, remoteurl: 'http://b'}]}",
            "{upstreams: [{name: a, remoteurl: 'http://a', default: true}, {name: b, remoteurl: 'http://b', default: true}]}",
            "{upstreams: [{name: a, aliases: [c], remoteurl: 'http://a'}, {name: b, aliases: [C], remoteurl: 'http://b'}]}",
        ] {
            assert!(matches!(proxy(bad), Err(Error::Config(_))), "{bad}");
        }
    }
}
