//! `make bench-manifests`: check-manifests against one `kwctl run` per object; see
//! [`e2e_tests::bench_manifests`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use e2e_tests::bench_manifests::{run, Options};

/// Run check-manifests on a chart mix of really signed images, on policy-server and with
/// one `kwctl run` per object, and print both times side by side. Figures only; fails when
/// the two disagree on a verdict.
#[derive(Parser)]
#[command(name = "bench-manifests")]
struct Args {
    /// The annotated policy module.
    #[arg(long, default_value = "annotated-policy.wasm")]
    policy: PathBuf,
    /// The check-manifests binary.
    #[arg(long, default_value = "target/release/check-manifests")]
    check_manifests: PathBuf,
    /// Charts of 20 objects each (25: 500 objects).
    #[arg(long, default_value_t = 25)]
    charts: usize,
    /// Objects in flight at once on policy-server.
    #[arg(long, default_value_t = 4)]
    clients: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = Options {
        policy: args.policy,
        check_manifests: args.check_manifests,
        charts: args.charts,
        clients: args.clients,
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-manifests failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
