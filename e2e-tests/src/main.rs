//! `kwhost`: a stand-in for `kwctl run` that evaluates a Kubewarden waPC policy
//! with real host capabilities (Sigstore checks against real registries), and times it.
//! Annotating and publishing the policy are the real `kwctl`'s job.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use e2e_tests::bench::cli::{BenchArgs, BenchKwctlArgs, BenchSuiteArgs};
use e2e_tests::host::{read_yaml_or_json, Host, Sources, TrustRoot, DEFAULT_EXECUTION_TIMEOUT};

#[derive(Parser)]
#[command(name = "kwhost", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the settings, then evaluate one request, printing the AdmissionResponse.
    Run(RunArgs),
    /// Time a policy on one request: alone (instant host answers) and end to end.
    Bench(BenchArgs),
    /// Time the policy on the fixed cases of `make bench`, against a local registry.
    BenchSuite(BenchSuiteArgs),
    /// The cases of `bench-suite` in the real `kwctl run`: cold cost and host calls.
    BenchKwctl(BenchKwctlArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// AdmissionRequest or AdmissionReview JSON file.
    #[arg(long, short = 'r')]
    request_path: PathBuf,
    /// Policy settings, YAML or JSON (`{}` when absent).
    #[arg(long, short = 's')]
    settings_path: Option<PathBuf>,
    /// Registry sources, YAML or JSON (`insecure_sources: ["127.0.0.1:5000"]`).
    #[arg(long)]
    sources_path: Option<PathBuf>,
    /// Sigstore ClientTrustConfig JSON with the Fulcio CAs and Rekor keys to trust.
    #[arg(long)]
    sigstore_trust_config: Option<PathBuf>,
    /// Deadline of each policy call, in seconds.
    #[arg(long, default_value_t = DEFAULT_EXECUTION_TIMEOUT.as_secs())]
    execution_timeout_seconds: u64,
    /// The policy: a `.wasm` file or `registry://HOST[:PORT]/REPO:TAG`.
    policy: String,
}

fn run(args: RunArgs) -> Result<ExitCode> {
    let request = read_yaml_or_json(&args.request_path)?;
    let mut builder = Host::builder()
        .policy_location(args.policy)
        .execution_timeout(Duration::from_secs(args.execution_timeout_seconds));
    if let Some(path) = &args.settings_path {
        builder = builder.settings(read_yaml_or_json(path)?);
    }
    if let Some(path) = &args.sources_path {
        builder = builder.sources(Sources::from_file(path)?);
    }
    if let Some(path) = &args.sigstore_trust_config {
        builder = builder.trust_root(TrustRoot::from_file(path)?);
    }
    let host = builder.build()?;

    let settings = host.validate_settings();
    if !settings.valid {
        eprintln!(
            "Provided settings are not valid: {}",
            settings.message.unwrap_or_default()
        );
        return Ok(ExitCode::FAILURE);
    }
    let response = host.validate(&request)?;
    println!("{}", serde_json::to_string(&response)?);
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    let result = match command {
        Command::Run(args) => run(args),
        Command::Bench(args) => args.run().map(|()| ExitCode::SUCCESS),
        Command::BenchSuite(args) => args.run().map(|()| ExitCode::SUCCESS),
        Command::BenchKwctl(args) => args.run().map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("Error: {e:#}");
        ExitCode::FAILURE
    })
}
