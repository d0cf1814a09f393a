//! Command line: raw options as typed, then the [`Plan`] the run follows (`--quick` picks small
//! defaults, each explicit option overrides them).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Measures Berth's registryd and distribution's registry:2 side by side, on loopback, with
/// tokens from Berth's authd, and prints a table of figures, ratios, machine limits and targets.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Args {
    #[command(subcommand)]
    pub mode: Option<Mode>,
    /// Small sizes and short runs: a smoke run in about two minutes.
    #[arg(long)]
    pub quick: bool,
    /// Folder holding the release `authd` and `registryd` [default: this program's folder].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// distribution's registry:2 program (Debian's `docker-registry`).
    #[arg(long, default_value = "docker-registry")]
    pub registry2: PathBuf,
    /// Size of the large blob pushed and pulled, MiB [default: 256, quick 32].
    #[arg(long)]
    pub blob_mib: Option<usize>,
    /// PATCH size of the chunked push, MiB.
    #[arg(long, default_value_t = 8)]
    pub chunk_mib: usize,
    /// Pushes (and pulls) of the large blob per registry [default: 3, quick 2].
    #[arg(long)]
    pub blob_rounds: Option<u32>,
    /// Seconds each request-rate workload runs per registry, split over two alternating rounds
    /// [default: 4, quick 1].
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Tags / repositories of the smaller scaling size [default: 10000, quick 300].
    #[arg(long)]
    pub scale_small: Option<u64>,
    /// Tags / repositories of the larger scaling size [default: 100000, quick 3000].
    #[arg(long)]
    pub scale_large: Option<u64>,
    /// Longest time spent filling one registry to one scaling size, seconds [default: 90,
    /// quick 20]; a registry that is not full by then is measured at the size it reached.
    #[arg(long)]
    pub populate_seconds: Option<f64>,
    /// Fill registry:2 to the larger scaling size too (slow: by default it gets the smaller).
    #[arg(long)]
    pub registry2_large: bool,
    /// nginx program (Debian's `nginx-light`): the static-file limit of the pull rows.
    #[arg(long, default_value = "nginx")]
    pub nginx: PathBuf,
    /// curl program: the client of the single-connection pull rows.
    #[arg(long, default_value = "curl")]
    pub curl: PathBuf,
    /// Rounds of the curl pull rows, one download from each server per round [default: 8,
    /// quick 3].
    #[arg(long)]
    pub curl_rounds: Option<u32>,
    /// Berth's `storage.inline.maxsize` in bytes (blobs up to it live in the database; 0: none)
    /// [default: registryd's own].
    #[arg(long)]
    pub inline_maxsize: Option<u64>,
    /// Run only these workloads (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Workload>,
    /// Where both registries keep their data.
    #[arg(long, value_enum, default_value_t = Store::Local)]
    pub store: Store,
}

/// Where both registries keep their data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Store {
    /// Berth on SQLite and a local folder; registry:2 on a local folder.
    Local,
    /// One three-node Garage cluster (S3) for both; Berth's metadata in a PostgreSQL cluster of
    /// its own (`BERTH_TEST_POSTGRES_BIN` names its programs); blobs streamed through both
    /// registries (no redirects). The curl-pull, cache and gc workloads run on `local` only.
    S3,
}

/// Helper modes of this program.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Serve `GET /` → `hello` (the trivial server whose rate is a machine limit).
    #[command(hide = true)]
    HelloServer {
        #[arg(long)]
        addr: SocketAddr,
    },
}

/// The workloads, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Monolithic push of the large blob.
    Monolithic,
    /// Chunked push of the large blob.
    Chunked,
    /// Pull of the large blob.
    Pull,
    /// Pull of the large blob by curl, beside nginx serving it as a file.
    CurlPull,
    /// The pull-through cache beside registry:2's: cold and warm pulls, concurrent misses.
    Cache,
    /// Tiny images (layer + config + manifest), 8 workers.
    Tiny,
    /// Manifest GET by tag, 32 connections.
    Manifest,
    /// Tag PUT (re-tag one manifest), 8 workers.
    Retag,
    /// Tiny-image pushes and pulls beside a deleter: without GC, with a `registryd gc` loop, and
    /// on a registryd collecting every second itself.
    Gc,
    /// authd's token endpoint, 32 clients.
    Token,
    /// authd's token endpoint for an LDAP user (slapd), bind cache warm and off.
    LdapToken,
    /// Tags list at two sizes, then the web pages of that repository.
    Tags,
    /// Catalog page at two sizes.
    Catalog,
    /// Tiny images and manifest GETs through nginx over one replica and over two
    /// (`--store s3` only).
    Replicas,
}

/// The run, sizes resolved.
#[derive(Clone, Debug)]
pub struct Plan {
    pub bin_dir: PathBuf,
    pub registry2: PathBuf,
    pub nginx: PathBuf,
    pub curl: PathBuf,
    pub blob_bytes: usize,
    pub chunk_bytes: usize,
    pub blob_rounds: u32,
    pub curl_rounds: u32,
    /// Time per registry per request-rate workload (two rounds of half each).
    pub rate_time: Duration,
    /// Time each machine-limit measurement takes.
    pub limit_time: Duration,
    pub scale_small: u64,
    pub scale_large: u64,
    pub populate_time: Duration,
    pub registry2_large: bool,
    pub inline_maxsize: Option<u64>,
    pub quick: bool,
    pub store: Store,
    only: Vec<Workload>,
}

/// Workloads that run on [`Store::Local`] only: the curl rows compare with nginx serving a local
/// file, and the cache and GC rows start registries of their own on local folders.
const LOCAL_ONLY: [Workload; 3] = [Workload::CurlPull, Workload::Cache, Workload::Gc];

impl Plan {
    /// Resolves `args`.
    ///
    /// # Errors
    /// A size is zero or inconsistent, or the program's own folder cannot be found.
    pub fn from_args(args: &Args) -> Result<Plan, String> {
        let q = args.quick;
        let bin_dir = match &args.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()
                .ok()
                .and_then(|exe| exe.parent().map(PathBuf::from))
                .ok_or("cannot find this program's folder; pass --bin-dir")?,
        };
        let blob_bytes = args.blob_mib.unwrap_or(if q { 32 } else { 256 }) << 20;
        let chunk_bytes = args.chunk_mib << 20;
        if chunk_bytes == 0 || blob_bytes < chunk_bytes {
            return Err(format!(
                "--chunk-mib must be at least 1 and at most the blob size ({} MiB)",
                blob_bytes >> 20
            ));
        }
        let seconds = args.seconds.unwrap_or(if q { 1.0 } else { 4.0 });
        let populate = args.populate_seconds.unwrap_or(if q { 20.0 } else { 90.0 });
        let positive = |s: f64| Duration::try_from_secs_f64(s).ok().filter(|d| !d.is_zero());
        let (Some(rate_time), Some(populate_time)) = (positive(seconds), positive(populate)) else {
            return Err("--seconds and --populate-seconds must be positive numbers".into());
        };
        let scale_small = args.scale_small.unwrap_or(if q { 300 } else { 10_000 });
        let scale_large = args.scale_large.unwrap_or(if q { 3_000 } else { 100_000 });
        if scale_small == 0 || scale_large < scale_small {
            return Err("--scale-small must be at least 1 and at most --scale-large".into());
        }
        let blob_rounds = args.blob_rounds.unwrap_or(if q { 2 } else { 3 }).max(1);
        let refused = |w: &&Workload| match args.store {
            Store::Local => **w == Workload::Replicas,
            Store::S3 => LOCAL_ONLY.contains(w),
        };
        if let Some(w) = args.only.iter().find(refused) {
            return Err(format!(
                "--only {w:?}: that workload does not run on --store {:?}",
                args.store
            ));
        }
        Ok(Plan {
            bin_dir,
            registry2: args.registry2.clone(),
            nginx: args.nginx.clone(),
            curl: args.curl.clone(),
            blob_bytes,
            chunk_bytes,
            blob_rounds,
            curl_rounds: args.curl_rounds.unwrap_or(if q { 3 } else { 8 }).max(1),
            rate_time,
            limit_time: Duration::from_secs(if q { 1 } else { 2 }),
            scale_small,
            scale_large,
            populate_time,
            registry2_large: args.registry2_large,
            inline_maxsize: args.inline_maxsize,
            quick: q,
            store: args.store,
            only: args.only.clone(),
        })
    }

    /// Whether `workload` is part of this run.
    pub fn runs(&self, workload: Workload) -> bool {
        let runs_here = match self.store {
            Store::Local => workload != Workload::Replicas,
            Store::S3 => !LOCAL_ONLY.contains(&workload),
        };
        if !runs_here {
            return false;
        }
        self.only.is_empty() || self.only.contains(&workload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(argv: &[&str]) -> Result<Plan, String> {
        let mut all = vec!["berth-bench", "--bin-dir", "/bin"];
        all.extend_from_slice(argv);
        Plan::from_args(&Args::parse_from(all))
    }

    #[test]
    fn quick_picks_small_sizes_and_options_override_them() {
        let p = plan(&["--quick", "--blob-mib", "16"]).unwrap();
        assert_eq!(
            (p.blob_bytes, p.scale_small, p.scale_large),
            (16 << 20, 300, 3_000)
        );
        let p = plan(&[]).unwrap();
        assert_eq!(
            (p.blob_bytes, p.scale_small, p.scale_large),
            (256 << 20, 10_000, 100_000)
        );
    }

    #[test]
    fn inconsistent_sizes_are_refused() {
        assert!(plan(&["--blob-mib", "4", "--chunk-mib", "8"]).is_err());
        assert!(plan(&["--scale-small", "10", "--scale-large", "5"]).is_err());
        assert!(plan(&["--seconds=-1"]).is_err());
        assert!(plan(&["--populate-seconds", "0"]).is_err());
    }

    #[test]
    fn only_limits_the_workloads() {
        let p = plan(&["--only", "tags,token"]).unwrap();
        assert!(p.runs(Workload::Tags) && p.runs(Workload::Token) && !p.runs(Workload::Pull));
        assert!(plan(&[]).unwrap().runs(Workload::Pull));
    }

    #[test]
    fn the_s3_store_leaves_out_the_local_only_workloads() {
        let p = plan(&["--store", "s3"]).unwrap();
        assert!(p.runs(Workload::Pull) && p.runs(Workload::Tiny) && p.runs(Workload::Catalog));
        assert!(!p.runs(Workload::CurlPull) && !p.runs(Workload::Cache) && !p.runs(Workload::Gc));
        assert!(plan(&["--store", "s3", "--only", "pull,gc"]).is_err());
        assert!(plan(&["--only", "gc"]).unwrap().runs(Workload::Gc));
        assert!(p.runs(Workload::Replicas) && !plan(&[]).unwrap().runs(Workload::Replicas));
        assert!(plan(&["--only", "replicas"]).is_err());
    }
}
