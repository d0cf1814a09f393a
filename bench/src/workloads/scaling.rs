//! Listing rows at two sizes 10× apart: a tags list page (`n=100`) of a repository filled by
//! concurrent tag PUTs, and a catalog page (`n=100`) of a registry filled with repositories (two
//! blob mounts and a manifest PUT each). Pages are read from the middle (`last=` the middle
//! name), so an implementation that walks everything before the page cannot hide it.

use std::time::{Duration, Instant};

use crate::client::{Client, Login};
use crate::content::TinyImage;
use crate::error::BenchError;
use crate::load::{drive, Bounds, Outcome, Worker};
use crate::table::{Figure, Row};

use super::images::TagWorker;
use super::{alternate, error_note, secs, Env, Pair, BASE_REPO};

pub(super) const TAGS_REPO: &str = "bench/tags";
pub(super) const TAG_PREFIX: &str = "t";
const REPO_PREFIX: &str = "bench/cat/c";
/// Concurrent clients filling a registry.
const FILL_WORKERS: usize = 32;
/// Repositories created per token (one token names them all).
const REPO_BATCH: u64 = 50;
/// Listing requests per measuring round, at most.
const LIST_MAX_OPS: u64 = 500;
/// The most a listing figure may grow from the smaller to the larger size and still be "flat":
/// this factor, or [`FLAT_SLACK_MS`] where that is more (sub-millisecond figures jitter by more
/// than half on a busy 2-core machine).
const FLAT: f64 = 1.5;
const FLAT_SLACK_MS: f64 = 0.5;
/// The listing target, milliseconds (p50).
const TARGET_MS: f64 = 2.0;

/// Creates a batch of [`REPO_BATCH`] repositories per operation.
struct RepoWorker {
    client: Client,
    login: Login,
    base: TinyImage,
}

impl Worker for RepoWorker {
    async fn op(&mut self, batch: u64) -> Result<u64, BenchError> {
        let repos: Vec<String> = (batch * REPO_BATCH..(batch + 1) * REPO_BATCH)
            .map(repo_name)
            .collect();
        let mut scopes = format!("repository:{BASE_REPO}:pull");
        for repo in &repos {
            scopes.push_str(&format!(" repository:{repo}:pull,push"));
        }
        self.client.renew(&self.login, &scopes).await?;
        for repo in &repos {
            self.client
                .mount(repo, BASE_REPO, &self.base.layer.digest)
                .await?;
            self.client
                .mount(repo, BASE_REPO, &self.base.config.digest)
                .await?;
            self.client
                .put_manifest(repo, "latest", &self.base.manifest)
                .await?;
        }
        Ok(0)
    }
}

fn repo_name(n: u64) -> String {
    format!("{REPO_PREFIX}{n:07}")
}

/// Gets one listing page over and over.
struct ListWorker {
    client: Client,
    uri: String,
}

impl Worker for ListWorker {
    async fn op(&mut self, _seq: u64) -> Result<u64, BenchError> {
        self.client.get_listing(&self.uri).await
    }
}

/// How far filling one registry got.
#[derive(Debug, Default)]
struct Filled {
    /// Operations issued (tags, or batches of repositories).
    ops: u64,
    /// Failed operations and the first failure.
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
}

impl Filled {
    /// Names (tags or repositories) there are after filling, at most `size`.
    fn names(&self, listing: &Listing, size: u64) -> u64 {
        (self.ops * listing.per_op).min(size)
    }
}

/// Runs `workers` from operation `from` up to `to` within the plan's populate time.
async fn fill<W: Worker>(
    workers: Vec<W>,
    from: u64,
    to: u64,
    env: &Env<'_>,
    done: &mut Filled,
) -> Result<Vec<W>, BenchError> {
    if from >= to {
        return Ok(workers);
    }
    let bounds = Bounds {
        duration: env.plan.populate_time,
        max_ops: to - from,
    };
    let begun = Instant::now();
    let (out, back, next) = drive(workers, bounds, from).await?;
    done.ops = next;
    done.errors += out.errors;
    done.first_error = done.first_error.take().or(out.first_error);
    done.elapsed += begun.elapsed();
    Ok(back)
}

/// The two rows of one listing (tags or catalog).
struct Listing {
    /// "tags" or "repositories".
    what: &'static str,
    /// Names per fill operation.
    per_op: u64,
    /// The row's title at a size.
    title: fn(u64) -> String,
    /// The page's URI when there are `n` filled names.
    uri: fn(u64) -> String,
    /// Scopes of the measuring client.
    list_scopes: String,
}

/// Tags list rows at the smaller and larger size.
///
/// # Errors
/// A registry could not be seeded or a token fetched.
pub async fn tags(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let scopes = format!("repository:{TAGS_REPO}:pull,push repository:{BASE_REPO}:pull");
    for addr in [env.registries.berth, env.registries.registry2] {
        let mut client = Client::login(addr, &env.login, &scopes).await?;
        client
            .mount(TAGS_REPO, BASE_REPO, &env.base.layer.digest)
            .await?;
        client
            .mount(TAGS_REPO, BASE_REPO, &env.base.config.digest)
            .await?;
        client
            .put_manifest(TAGS_REPO, "latest", &env.base.manifest)
            .await?;
    }
    let manifest = env.base.manifest.clone();
    let fillers = env
        .workers(FILL_WORKERS, &scopes, |client| TagWorker {
            client,
            repo: TAGS_REPO.into(),
            prefix: TAG_PREFIX,
            manifest: manifest.clone(),
        })
        .await?;
    let listing = Listing {
        what: "tags",
        per_op: 1,
        title: |n| format!("tags list `n=100` (middle page), {n} tags"),
        uri: |n| {
            format!(
                "/v2/{TAGS_REPO}/tags/list?n=100&last={}",
                TagWorker::tag(TAG_PREFIX, n / 2)
            )
        },
        list_scopes: format!("repository:{TAGS_REPO}:pull"),
    };
    rows(env, fillers, &listing).await
}

/// Catalog rows at the smaller and larger size.
///
/// # Errors
/// A token could not be fetched.
pub async fn catalog(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let scopes = format!("repository:{BASE_REPO}:pull");
    let fillers = env
        .workers(FILL_WORKERS, &scopes, |client| RepoWorker {
            client,
            login: env.login.clone(),
            base: env.base.clone(),
        })
        .await?;
    let listing = Listing {
        what: "repositories",
        per_op: REPO_BATCH,
        title: |n| format!("catalog `n=100` (middle page), {n} repositories"),
        uri: |n| format!("/v2/_catalog?n=100&last={}", repo_name(n / 2)),
        list_scopes: "registry:catalog:*".into(),
    };
    rows(env, fillers, &listing).await
}

/// Fills both registries to the smaller size and measures, then Berth (and registry:2 when
/// asked) to the larger size and measures again.
async fn rows<W: Worker>(
    env: &Env<'_>,
    fillers: Pair<Vec<W>>,
    listing: &Listing,
) -> Result<Vec<Row>, BenchError> {
    let (small, large) = (env.plan.scale_small, env.plan.scale_large);
    let ops_for = |names: u64| names.div_ceil(listing.per_op);
    let Pair { berth, registry2 } = fillers;
    let mut filled = Pair {
        berth: Filled::default(),
        registry2: Filled::default(),
    };
    let berth = fill(berth, 0, ops_for(small), env, &mut filled.berth).await?;
    let registry2 = fill(registry2, 0, ops_for(small), env, &mut filled.registry2).await?;
    let at_small = measure(env, listing, &filled, small, true).await?;
    let small_row = listing_row(listing, small, &at_small, None, &filled, env);

    fill(
        berth,
        ops_for(small),
        ops_for(large),
        env,
        &mut filled.berth,
    )
    .await?;
    let registry2_large = env.plan.registry2_large;
    if registry2_large {
        fill(
            registry2,
            ops_for(small),
            ops_for(large),
            env,
            &mut filled.registry2,
        )
        .await?;
    }
    let at_large = measure(env, listing, &filled, large, registry2_large).await?;
    let mut large_row = listing_row(
        listing,
        large,
        &at_large,
        Some(&at_small.berth),
        &filled,
        env,
    );
    if !registry2_large {
        large_row.note = join(
            &large_row.note,
            "registry:2 filled to the smaller size only (--registry2-large fills it too)",
        );
    }
    Ok(vec![small_row, large_row])
}

/// Two alternating rounds of one client reading the middle page of what each registry holds
/// (`size` at most; Berth only unless `both`).
async fn measure(
    env: &Env<'_>,
    listing: &Listing,
    filled: &Pair<Filled>,
    size: u64,
    both: bool,
) -> Result<Pair<Outcome>, BenchError> {
    let uri = (listing.uri)(filled.berth.names(listing, size));
    let mut workers = env
        .workers(1, &listing.list_scopes, |client| ListWorker {
            client,
            uri: uri.clone(),
        })
        .await?;
    let uri = (listing.uri)(filled.registry2.names(listing, size));
    for worker in &mut workers.registry2 {
        worker.uri.clone_from(&uri);
    }
    if !both {
        workers.registry2.clear();
    }
    let bounds = Bounds {
        duration: env.rate_round().duration,
        max_ops: LIST_MAX_OPS,
    };
    alternate(workers, 2, bounds).await
}

fn listing_row(
    listing: &Listing,
    size: u64,
    out: &Pair<Outcome>,
    smaller: Option<&Outcome>,
    filled: &Pair<Filled>,
    env: &Env<'_>,
) -> Row {
    let figure =
        |o: &Outcome| (o.ops > 0).then(|| Figure::latency(o.latency_ms(0.5), o.latency_ms(0.99)));
    let p50 = out.berth.latency_ms(0.5);
    let flat = smaller.map(|s| s.latency_ms(0.5));
    let met = (out.berth.ops > 0 && out.berth.errors == 0).then(|| {
        p50 <= TARGET_MS
            && flat.is_none_or(|before| p50 <= (FLAT * before).max(before + FLAT_SLACK_MS))
    });
    let target = match flat {
        None => format!("p50 ≤ {TARGET_MS} ms"),
        Some(before) => format!(
            "p50 ≤ {TARGET_MS} ms and ≤ {FLAT} × (or + {FLAT_SLACK_MS} ms) the smaller size's ({})",
            crate::table::ms(before)
        ),
    };
    let mut note = error_note(&Pair {
        berth: &out.berth,
        registry2: &out.registry2,
    });
    for (name, f) in [("Berth", &filled.berth), ("registry:2", &filled.registry2)] {
        let names = f.names(listing, size);
        let rate = names as f64 / f.elapsed.as_secs_f64().max(1e-9);
        let mut text = format!(
            "{name} filled to {names} {} in {} ({rate:.0}/s)",
            listing.what,
            secs(f.elapsed)
        );
        if f.errors > 0 {
            text.push_str(&format!(
                ", {} failed fills (first: {})",
                f.errors,
                f.first_error.as_deref().unwrap_or("?")
            ));
        }
        if names < size && (name == "Berth" || env.plan.registry2_large || smaller.is_none()) {
            text.push_str(&format!(" — short of {size} within --populate-seconds"));
        }
        note = join(&note, &text);
    }
    let reached = filled.berth.names(listing, size);
    let mut workload = (listing.title)(reached);
    if reached < size {
        workload.push_str(&format!(" (of {size} asked)"));
    }
    Row {
        workload,
        berth: figure(&out.berth),
        registry2: figure(&out.registry2),
        limit: None,
        target,
        met,
        note,
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}; {b}")
    }
}
