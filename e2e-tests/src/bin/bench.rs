//! `make bench`: the policy's own cost in the real `kwctl bench`; see [`e2e_tests::bench`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use e2e_tests::bench::{run, BenchOptions};

/// Measure the policy and the floor policy with `kwctl bench` on fixed cases, and print the
/// policy's own cost (policy minus floor). Figures only.
#[derive(Parser)]
#[command(name = "bench")]
struct Args {
    /// The annotated policy module; repeat to compare builds in the same rounds.
    #[arg(long, default_value = "annotated-policy.wasm")]
    policy: Vec<PathBuf>,
    /// The annotated floor policy module.
    #[arg(long, default_value = "floor-policy.wasm")]
    floor: PathBuf,
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
