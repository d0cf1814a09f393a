//! Manifests of cached repositories. By digest: immutable, fetched once. By tag: served while
//! younger than the upstream's `ttl`; then one `HEAD` (which Docker Hub does not count as a
//! pull) says whether the digest moved, and only a moved tag is fetched again. When the upstream
//! is away a cached tag is served stale; only a miss fails.

use axum::http::{header, HeaderValue, Method};
use bytes::Bytes;

use super::super::gc::unix_millis;
use super::super::manifest_doc;
use super::upstream::UpstreamError;
use super::{CacheStatus, Source};
use crate::db::Origin;
use crate::error::Error;
use crate::names::{Digest, Reference, RepoName};
use crate::service::{Registry, StoredManifest, MAX_MANIFEST};

/// `Docker-Content-Digest`.
const DIGEST_HEADER: &str = "docker-content-digest";

impl Registry {
    /// A manifest of the cached repository `repo`, filled from `src` as needed.
    ///
    /// # Errors
    /// `ManifestUnknown` when neither the cache nor the upstream has it; `Upstream` (503) when
    /// the upstream is away and it is not cached; as [`Registry::get_manifest`].
    pub async fn proxied_manifest(
        &self,
        src: &Source,
        repo: &RepoName,
        reference: &Reference,
        with_body: bool,
        accept: Option<&HeaderValue>,
    ) -> Result<(StoredManifest, CacheStatus), Error> {
        let up = &src.upstream;
        let status = match self.cache_state(repo, reference).await? {
            Freshness::Pushed | Freshness::Fresh => CacheStatus::Hit,
            _ => {
                let flights = self
                    .flights()
                    .ok_or_else(|| Error::Internal("no proxy".into()))?;
                let _flight = flights.enter(format!("m {repo}:{reference}")).await;
                // Whoever held the flight before may have filled or revalidated it.
                match self.cache_state(repo, reference).await? {
                    Freshness::Pushed | Freshness::Fresh => CacheStatus::Hit,
                    Freshness::Stale => self.revalidate(src, repo, reference, accept).await?,
                    Freshness::Missing => {
                        self.fill_manifest(src, repo, reference, accept).await?;
                        CacheStatus::Miss
                    }
                }
            }
        };
        status.count(&up.name, "manifest");
        let found = self.get_manifest(repo, reference, with_body).await?;
        self.note_use(repo.as_str(), found.digest.as_str());
        if status == CacheStatus::Miss {
            self.wake_eviction();
        }
        Ok((found, status))
    }

    /// How the cache holds `reference`.
    async fn cache_state(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<Freshness, Error> {
        let ttl = self
            .source_of(repo)
            .map_or(std::time::Duration::ZERO, |s| s.upstream.ttl);
        Ok(match reference {
            Reference::Digest(d) => {
                if self.db.manifest(repo.as_str(), d.as_str()).await?.is_some() {
                    Freshness::Fresh
                } else {
                    Freshness::Missing
                }
            }
            Reference::Tag(t) => match self.db.tag_checked_at(repo.as_str(), t).await? {
                None => Freshness::Missing,
                Some(None) => Freshness::Pushed,
                Some(Some(at)) => {
                    let age = unix_millis(std::time::SystemTime::now()).saturating_sub(at);
                    if u128::try_from(age).unwrap_or(0) < ttl.as_millis() {
                        Freshness::Fresh
                    } else {
                        Freshness::Stale
                    }
                }
            },
        })
    }

    /// A tag past its ttl: `HEAD` upstream; unchanged → renewed, moved → fetched, upstream away
    /// → served stale.
    async fn revalidate(
        &self,
        src: &Source,
        repo: &RepoName,
        reference: &Reference,
        accept: Option<&HeaderValue>,
    ) -> Result<CacheStatus, Error> {
        let Reference::Tag(tag) = reference else {
            return Ok(CacheStatus::Hit);
        };
        let up = &src.upstream;
        let head = up
            .send(
                Method::HEAD,
                &src.remote,
                &format!("manifests/{tag}"),
                accept_or_all(accept).as_ref(),
            )
            .await;
        let upstream_digest = match head {
            Ok(resp) => resp
                .headers()
                .get(DIGEST_HEADER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| Digest::parse(v).ok()),
            Err(UpstreamError::Unavailable(why)) => {
                tracing::warn!(upstream = %up.name, %repo, %tag, why, "upstream unavailable: serving a stale tag");
                return Ok(CacheStatus::Stale);
            }
            Err(e) => {
                return Err(e.into_error(&up.name, Error::ManifestUnknown(format!("{repo}:{tag}"))))
            }
        };
        let cached = self.db.manifest_by_tag(repo.as_str(), tag).await?;
        if let (Some(d), Some((c, _, _))) = (&upstream_digest, &cached) {
            if d.as_str() == c {
                self.db
                    .tag_checked(
                        repo.as_str(),
                        tag,
                        unix_millis(std::time::SystemTime::now()),
                    )
                    .await?;
                return Ok(CacheStatus::Revalidated);
            }
        }
        self.fill_manifest(src, repo, reference, accept).await?;
        Ok(CacheStatus::Miss)
    }

    /// Fetches a manifest, checks it is what was asked for, and stores it (tagged when asked by
    /// tag) as cached.
    async fn fill_manifest(
        &self,
        src: &Source,
        repo: &RepoName,
        reference: &Reference,
        accept: Option<&HeaderValue>,
    ) -> Result<(), Error> {
        let up = &src.upstream;
        let unknown = || Error::ManifestUnknown(format!("{repo}:{reference}"));
        let resp = up
            .send(
                Method::GET,
                &src.remote,
                &format!("manifests/{reference}"),
                accept_or_all(accept).as_ref(),
            )
            .await
            .map_err(|e| e.into_error(&up.name, unknown()))?;
        let content_type = manifest_doc::declared_type(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let claimed = resp
            .headers()
            .get(DIGEST_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_bounded(resp, MAX_MANIFEST).await.map_err(|why| {
            Error::Upstream(format!("upstream {} sent a bad manifest: {why}", up.name))
        })?;
        metrics::counter!("registry_proxy_upstream_bytes_total", "upstream" => up.name.clone())
            .increment(body.len() as u64);
        let digest = Digest::of(&body);
        let wrong = match (reference, claimed) {
            (Reference::Digest(d), _) => (d != &digest).then(|| d.to_string()),
            (Reference::Tag(_), Some(c)) => (c != digest.as_str()).then_some(c),
            (Reference::Tag(_), None) => None,
        };
        if let Some(expected) = wrong {
            tracing::warn!(upstream = %up.name, %repo, %reference, %expected, actual = %digest, "upstream manifest does not match its digest: not cached");
            return Err(Error::Upstream(format!(
                "upstream {} sent a manifest whose digest is {digest}, not {expected}",
                up.name
            )));
        }
        let parsed = manifest_doc::parse(content_type.as_deref(), &body).map_err(|e| {
            Error::Upstream(format!(
                "upstream {} sent an invalid manifest: {e}",
                up.name
            ))
        })?;
        let origin = Origin::Cached {
            checked_at: unix_millis(std::time::SystemTime::now()),
        };
        self.store_manifest(repo, reference, &digest, &body, &parsed, origin)
            .await
    }
}

/// How the cache holds a reference.
enum Freshness {
    /// A tag pushed here (with `proxy.allowpush`): never revalidated.
    Pushed,
    /// Cached and within the ttl, or a digest (immutable).
    Fresh,
    /// A cached tag past the ttl.
    Stale,
    /// Not cached.
    Missing,
}

/// The client's `Accept`, or every manifest type we store when it names none (absent, or
/// only `*/*`: registry:2 then hides OCI manifests).
fn accept_or_all(accept: Option<&HeaderValue>) -> Option<HeaderValue> {
    let names_types = accept
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.contains("/vnd.")));
    match accept {
        Some(a) if names_types => Some(a.clone()),
        _ => HeaderValue::from_str(&manifest_doc::MANIFEST_TYPES.join(", ")).ok(),
    }
}

/// An upstream body of at most `limit` bytes.
async fn read_bounded(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, String> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(format!("larger than {limit} bytes"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > limit {
            return Err(format!("larger than {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_is_passed_through_when_it_names_types() {
        let docker =
            HeaderValue::from_static("application/vnd.docker.distribution.manifest.v2+json");
        assert_eq!(accept_or_all(Some(&docker)), Some(docker));
        for vague in [None, Some(HeaderValue::from_static("*/*"))] {
            let sent = accept_or_all(vague.as_ref()).unwrap();
            let sent: Vec<&str> = sent.to_str().unwrap().split(", ").collect();
            assert_eq!(sent, manifest_doc::MANIFEST_TYPES);
        }
    }
}
