//! The pull-through cache: Berth's registryd and registry:2 (`proxy.remoteurl`) caching the same
//! upstream (a plain registry:2), with direct pulls from the upstream as the cold reference and
//! nginx serving the same bytes as the warm limit. Cold pulls take content never pulled before
//! (new for each pull); warm pulls take it again. Rows: a 256 MiB layer by curl (one
//! connection), an image of many small layers (manifest, then each blob, on one keep-alive
//! connection), and 8 curl downloads of one uncached layer at once, counting the bytes the
//! upstream sent (its access log).

use std::time::Instant;

use crate::cache_stack::{blob_bytes_sent, CacheStack, PREFIX};
use crate::client::Client;
use crate::content::{BigBlob, BlobFamily, LayeredImage};
use crate::curl::download;
use crate::error::BenchError;
use crate::nginx::Nginx;
use crate::stack::Programs;
use crate::table::{mib, ms, Figure, Row};

use super::curl_pull::{flush_disk_writes, median, ratio_row, static_limit_row, Samples, Source};
use super::{Env, Pair};

/// The upstream repository of the large layers.
const BIG_REPO: &str = "bench/big";
/// The upstream repository of the many-layer images.
const IMAGE_REPO: &str = "bench/layers";
/// Layers of a many-layer image, and their size.
const LAYERS: usize = 32;
const LAYER_LEN: usize = 64 << 10;
/// Downloads at once in the concurrent row.
const CONCURRENT: usize = 8;
/// Berth's cold pull may take this much longer than a direct pull (the same for warm images).
const COLD_SLACK: f64 = 1.1;

/// Where each server has a repository: the upstream and registry:2 under its own name, Berth
/// under [`PREFIX`].
struct Addrs {
    upstream: String,
    berth: String,
    registry2: String,
}

impl Addrs {
    fn blob(&self, base: &str, repo: &str, digest: &str) -> Source {
        Source::open(format!("{base}/v2/{repo}/blobs/{digest}"))
    }

    fn upstream_blob(&self, digest: &str) -> Source {
        self.blob(&self.upstream, BIG_REPO, digest)
    }

    fn berth_blob(&self, digest: &str) -> Source {
        self.blob(&self.berth, &format!("{PREFIX}/{BIG_REPO}"), digest)
    }

    fn registry2_blob(&self, digest: &str) -> Source {
        self.blob(&self.registry2, BIG_REPO, digest)
    }
}

/// Every cache row.
///
/// # Errors
/// A server did not start, the upstream could not be filled, or a pull failed.
pub async fn rows(env: &Env<'_>) -> Result<Vec<Row>, BenchError> {
    let programs = Programs {
        bin_dir: env.plan.bin_dir.clone(),
        registry2: env.plan.registry2.clone(),
        inline_maxsize: env.plan.inline_maxsize,
    };
    let stack = CacheStack::start(&programs).await?;
    let addrs = Addrs {
        upstream: format!("http://{}", stack.upstream.addr),
        berth: format!("http://{}", stack.berth.addr),
        registry2: format!("http://{}", stack.registry2.addr),
    };
    let rounds = env.plan.blob_rounds as usize;
    // Layers: `rounds` cold ones for each cache, then one for each concurrent download.
    let family = BlobFamily::new(env.plan.blob_bytes, env.plan.chunk_bytes);
    let layers: Vec<BigBlob> = (0..2 * rounds as u64 + 2)
        .map(|n| family.member(n))
        .collect();
    let images: Vec<LayeredImage> = (0..2 * rounds as u64)
        .map(|n| LayeredImage::new(n, LAYERS, LAYER_LEN))
        .collect();
    let mut upstream = Client::anonymous(stack.upstream.addr);
    for layer in &layers {
        upstream.push_monolithic(BIG_REPO, layer).await?;
    }
    for (n, image) in images.iter().enumerate() {
        for blob in &image.blobs {
            upstream.push_small(IMAGE_REPO, blob).await?;
        }
        upstream
            .put_manifest(IMAGE_REPO, &format!("i{n}"), &image.manifest)
            .await?;
    }

    flush_disk_writes()?;
    let curl = &env.plan.curl;
    let len = env.plan.blob_bytes as u64;
    let mib_text = env.plan.blob_bytes >> 20;
    let mut rows = Vec::new();

    download(curl, &addrs.upstream_blob(&layers[0].digest).url, &[], len).await?;
    let mut cold = Samples::default();
    for i in 0..rounds {
        let sources = [
            addrs.upstream_blob(&layers[i].digest),
            addrs.berth_blob(&layers[i].digest),
            addrs.registry2_blob(&layers[rounds + i].digest),
        ];
        cold.round(curl, [&sources[0], &sources[1], &sources[2]], len)
            .await?;
    }
    let mut row = ratio_row(
        format!("cached pull, cold (miss), {mib_text} MiB layer, curl"),
        "direct",
        "direct from the upstream",
        &cold,
    );
    row.note = format!("{}; each pull a layer not cached before", row.note);
    rows.push(row);

    let nginx = Nginx::start(&env.plan.nginx, &[&layers[0]]).await?;
    let sources = [
        Source::open(nginx.url(&layers[0].digest)),
        addrs.berth_blob(&layers[0].digest),
        addrs.registry2_blob(&layers[rounds].digest),
    ];
    rows.push(
        static_limit_row(
            curl,
            [&sources[0], &sources[1], &sources[2]],
            len,
            env.plan.curl_rounds,
            format!("cached pull, warm (hit), {mib_text} MiB layer, curl"),
        )
        .await?,
    );
    drop(nginx);

    for warm in [false, true] {
        rows.push(image_row(&stack, &images, rounds, warm).await?);
    }
    rows.push(concurrent_row(&stack, &addrs, env, &layers[2 * rounds..]).await?);
    Ok(rows)
}

/// Pulls `image` (manifest by `tag`, then each blob) from `repo`; returns the time it took.
async fn pull_image(
    client: &mut Client,
    repo: &str,
    tag: &str,
    image: &LayeredImage,
) -> Result<f64, BenchError> {
    let begun = Instant::now();
    client.get_manifest(repo, tag).await?;
    for blob in &image.blobs {
        let got = client.pull_blob(repo, &blob.digest).await?;
        if got != blob.data.len() as u64 {
            return Err(BenchError::protocol(
                "image layer GET",
                format!("{got} bytes, wanted {}", blob.data.len()),
            ));
        }
    }
    Ok(begun.elapsed().as_secs_f64())
}

/// The many-layer image row, cold (the first pull of each image through each cache) or warm
/// (the same pulls again): median pull times against pulls of the same images direct from the
/// upstream.
async fn image_row(
    stack: &CacheStack,
    images: &[LayeredImage],
    rounds: usize,
    warm: bool,
) -> Result<Row, BenchError> {
    let mut clients = [
        Client::anonymous(stack.upstream.addr),
        Client::anonymous(stack.berth.addr),
        Client::anonymous(stack.registry2.addr),
    ];
    let berth_repo = format!("{PREFIX}/{IMAGE_REPO}");
    let mut times: [Vec<f64>; 3] = Default::default();
    for i in 0..rounds {
        let picks = [
            (IMAGE_REPO, i),
            (berth_repo.as_str(), i),
            (IMAGE_REPO, rounds + i),
        ];
        for ((client, (repo, n)), list) in clients.iter_mut().zip(picks).zip(times.iter_mut()) {
            list.push(pull_image(client, repo, &format!("i{n}"), &images[n]).await?);
        }
    }
    let [direct, berth, registry2] = times.map(|t| median(&t) * 1000.0);
    let against = |value: f64| {
        Figure::text(
            value,
            format!("{} ({:.2} × direct)", ms(value), value / direct.max(1e-6)),
        )
        .lower_better()
    };
    let state = if warm { "warm (hit)" } else { "cold (miss)" };
    Ok(Row {
        workload: format!(
            "cached image pull, {state}, {LAYERS} layers of {} KiB + config, one connection",
            LAYER_LEN >> 10
        ),
        berth: Some(against(berth)),
        registry2: Some(against(registry2)),
        limit: Some(format!("{} (direct from the upstream)", ms(direct))),
        target: format!("≤ {COLD_SLACK} × direct = {}", ms(COLD_SLACK * direct)),
        met: Some(berth <= COLD_SLACK * direct),
        note: format!("median pull time of {rounds} images each, manifest then blobs in turn"),
    })
}

/// `CONCURRENT` downloads at once of one uncached layer through each cache (`layers[0]`
/// through Berth, `layers[1]` through registry:2): the bytes the upstream sent for it and the
/// time until the last download ended.
async fn concurrent_row(
    stack: &CacheStack,
    addrs: &Addrs,
    env: &Env<'_>,
    layers: &[BigBlob],
) -> Result<Row, BenchError> {
    let len = env.plan.blob_bytes as u64;
    let mut figures = Vec::new();
    for (source, layer) in [
        addrs.berth_blob(&layers[0].digest),
        addrs.registry2_blob(&layers[1].digest),
    ]
    .iter()
    .zip(layers)
    {
        let begun = Instant::now();
        let mut downloads = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENT {
            let (curl, url) = (env.plan.curl.clone(), source.url.clone());
            downloads.spawn(async move { download(&curl, &url, &[], len).await });
        }
        while let Some(done) = downloads.join_next().await {
            done.map_err(|e| BenchError::protocol("download task", e.to_string()))??;
        }
        let seconds = begun.elapsed().as_secs_f64();
        let sent = blob_bytes_sent(&stack.upstream.log_text(), &layer.digest);
        figures.push(Figure::text(
            sent as f64,
            format!(
                "{:.2} × the layer from upstream, {seconds:.1} s",
                sent as f64 / len as f64
            ),
        ));
    }
    let peak = Pair {
        berth: stack.berth.memory()?.peak,
        registry2: stack.registry2.memory()?.peak,
    };
    let registry2 = figures.pop().map(Figure::lower_better);
    let berth = figures.pop().map(Figure::lower_better);
    let met = berth.as_ref().map(|b| b.value as u64 == len);
    Ok(Row {
        workload: format!(
            "{CONCURRENT} concurrent cold pulls of one {} MiB layer, curl",
            len >> 20
        ),
        berth,
        registry2,
        limit: None,
        target: "the layer from upstream once".into(),
        met,
        note: format!(
            "bytes from the upstream's access log; the caches' peak memory (VmHWM) after all cache rows: Berth {}, registry:2 {}",
            mib(peak.berth),
            mib(peak.registry2)
        ),
    })
}
