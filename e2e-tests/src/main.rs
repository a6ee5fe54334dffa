//! `kwhost`: times a Kubewarden waPC policy in the project's host (the policy alone, and end to
//! end with real Sigstore checks) and in the real `kwctl run`. Running, annotating and
//! publishing the policy are the real `kwctl`'s job (`kwctl run`, `annotate`, `push`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use e2e_tests::bench::cli::{BenchArgs, BenchKwctlArgs, BenchSuiteArgs};

#[derive(Parser)]
#[command(name = "kwhost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Time a policy on one request: alone (instant host answers) and end to end.
    Bench(BenchArgs),
    /// Time the policy on the fixed cases of `make bench`, against a local registry.
    BenchSuite(BenchSuiteArgs),
    /// The cases of `bench-suite` in the real `kwctl run`: cold cost and host calls.
    BenchKwctl(BenchKwctlArgs),
}

fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    let result = match command {
        Command::Bench(args) => args.run().map(|()| ExitCode::SUCCESS),
        Command::BenchSuite(args) => args.run().map(|()| ExitCode::SUCCESS),
        Command::BenchKwctl(args) => args.run().map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("Error: {e:#}");
        ExitCode::FAILURE
    })
}
