//! `make bench`: the policy's own cost in the real `kwctl bench`; see [`e2e_tests::bench`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use e2e_tests::bench::floor::FloorBuild;
use e2e_tests::bench::{run, BenchOptions};

/// Time the policy, the floor policy and each case's host-call floor with `kwctl bench` on
/// fixed cases against a live local registry, and print the policy's cost above both floors.
/// Figures only.
#[derive(Parser)]
#[command(name = "bench")]
struct Args {
    /// The annotated policy module; repeat to compare builds in the same rounds.
    #[arg(long, default_value = "annotated-policy.wasm")]
    policy: Vec<PathBuf>,
    /// The annotated floor policy module.
    #[arg(long, default_value = "floor-policy.wasm")]
    floor: PathBuf,
    /// The floor policy's crate, built once per case with its host calls.
    #[arg(long, default_value = "e2e-tests/floor-policy")]
    floor_crate: PathBuf,
    /// The cargo target directory for those builds.
    #[arg(long, default_value = "target/floor")]
    floor_target: PathBuf,
    /// Interleaved policy/floor rounds per case; the fastest of each is kept.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// `kwctl bench --measurement-time` in seconds.
    #[arg(long, default_value_t = 2)]
    measurement_seconds: u64,
    /// Only the cases whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = BenchOptions {
        policies: args.policy,
        floor: args.floor,
        floor_build: FloorBuild {
            crate_dir: args.floor_crate,
            target_dir: args.floor_target,
        },
        rounds: args.rounds,
        measurement_seconds: args.measurement_seconds,
        filter: args.filter,
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
