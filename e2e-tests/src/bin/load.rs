//! `make load`: the real policy-server under load; see [`e2e_tests::load`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use e2e_tests::load::{run, LoadOptions};

/// Start a local registry with signed images, push the policy with `kwctl push`, load it in a
/// real policy-server from `registry://`, and send it AdmissionReviews from concurrent
/// clients. Prints latency, throughput and memory; fails only on a transport error or a
/// wrong verdict.
#[derive(Parser)]
#[command(name = "load")]
struct Args {
    /// The annotated policy module.
    #[arg(long, default_value = "annotated-policy.wasm")]
    policy: PathBuf,
    /// Requests under load (after one cold request of each kind).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// policy-server's --workers (default: the number of CPUs).
    #[arg(long)]
    workers: Option<usize>,
    /// policy-server's --policy-timeout under load, in seconds.
    #[arg(long, default_value_t = 30)]
    policy_timeout: u64,
    /// --policy-timeout of the server that first gets the cold 50-container Deployment
    /// (default: policy-server's own, 2 s).
    #[arg(long)]
    probe_policy_timeout: Option<u64>,
    /// The policy's `timeoutEvalSeconds` on that server (policy-server 1.35).
    #[arg(long)]
    probe_timeout_eval_seconds: Option<u64>,
    /// Requests in each phase of the registry outage (slow, down, back).
    #[arg(long, default_value_t = 100)]
    outage_requests: usize,
    /// How long the slow registry holds back each exchange, in milliseconds.
    #[arg(long, default_value_t = 100)]
    slow_delay_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = LoadOptions {
        policy: args.policy,
        requests: args.requests,
        clients: args.clients,
        workers: args
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        policy_timeout: args.policy_timeout,
        probe_policy_timeout: args.probe_policy_timeout,
        probe_timeout_eval_seconds: args.probe_timeout_eval_seconds,
        outage_requests: args.outage_requests,
        slow_delay: std::time::Duration::from_millis(args.slow_delay_ms),
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("load test failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
