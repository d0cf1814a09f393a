//! Replayable randomness for the storm-like tests: each prints the seed it runs with, and
//! `BERTH_SEED=<n>` makes it run with that seed again.

use rand::rngs::StdRng;
use rand::SeedableRng;

/// The environment variable that replays a seed.
pub const SEED_VAR: &str = "BERTH_SEED";

/// A generator seeded from `BERTH_SEED` when set (and a number), else at random; the seed is
/// printed with `test`'s name, so a failure can be replayed.
///
/// # Panics
/// When `BERTH_SEED` is set but is not a number.
pub fn rng(test: &str) -> (StdRng, u64) {
    let seed = match std::env::var(SEED_VAR) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{SEED_VAR}={text:?} is not a u64: {e}")),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: seed {seed} (replay with {SEED_VAR}={seed})");
    (StdRng::seed_from_u64(seed), seed)
}
