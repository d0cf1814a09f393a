//! `berth-bench`: Berth's registryd and distribution's registry:2 side by side on loopback,
//! both behind authd's tokens, with the machine's limits measured in the same run.
//!
//! Modules: `args` (command line and plan), `stack` (the servers), `scaled` (the Garage and
//! PostgreSQL store of `--store s3`), `cache_stack` (the
//! pull-through caches and their upstream), `daemon` (one server
//! process), `http` (the client connection), `client` (token + registry API calls), `collector`
//! (a `registryd gc` loop), `content` (blobs and images), `curl` (one
//! download by curl), `nginx` (the static-file server), `load` (the load generator), `limits`
//! (machine limits), `workloads` (one file per kind of workload), `table` (the result), `run`
//! (the whole run).

mod args;
mod cache_stack;
mod client;
mod collector;
mod content;
mod curl;
mod daemon;
mod error;
mod http;
mod limits;
mod load;
mod nginx;
mod run;
mod scaled;
mod stack;
mod table;
mod workloads;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Args, Mode, Plan};

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match &args.mode {
        Some(Mode::HelloServer { addr }) => runtime.block_on(limits::serve_hello(*addr)),
        None => match Plan::from_args(&args) {
            Ok(plan) => runtime.block_on(run::run(&plan)),
            Err(e) => {
                eprintln!("berth-bench: {e}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
