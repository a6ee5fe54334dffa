//! `kwhost`: a stand-in for `kwctl run` that evaluates a Kubewarden waPC policy
//! with real host capabilities (Sigstore checks against real registries), and for
//! `kwctl annotate` and `kwctl push`, which ship it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use e2e_tests::bench::cli::{BenchArgs, BenchSuiteArgs};
use e2e_tests::host::{read_yaml_or_json, Host, Sources, TrustRoot, DEFAULT_EXECUTION_TIMEOUT};
use e2e_tests::policy_artifact;

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
    /// Embed the metadata (and the README) in the policy module, like `kwctl annotate`.
    Annotate(AnnotateArgs),
    /// Push an annotated policy to an OCI registry, like `kwctl push`.
    Push(PushArgs),
    /// Time a policy on one request: alone (instant host answers) and end to end.
    Bench(BenchArgs),
    /// Time the policy on the fixed cases of `make bench`, against a local registry.
    BenchSuite(BenchSuiteArgs),
}

#[derive(clap::Args)]
struct AnnotateArgs {
    /// The policy's `metadata.yml`.
    #[arg(long, short = 'm')]
    metadata_path: PathBuf,
    /// Usage text (the README), stored under `io.kubewarden.policy.usage`.
    #[arg(long, short = 'u')]
    usage_path: Option<PathBuf>,
    /// Where to write the annotated module.
    #[arg(long, short = 'o')]
    output_path: PathBuf,
    /// The module to annotate.
    wasm_path: PathBuf,
}

#[derive(clap::Args)]
struct PushArgs {
    /// Registry sources, YAML or JSON (`insecure_sources: ["127.0.0.1:5000"]` for plain HTTP).
    #[arg(long)]
    sources_path: Option<PathBuf>,
    /// Directory of a Docker `config.json` with registry credentials (`docker login`);
    /// `$DOCKER_CONFIG`, else `~/.docker`, by default.
    #[arg(long)]
    docker_config_json_path: Option<PathBuf>,
    /// The annotated module.
    policy: PathBuf,
    /// `registry://HOST[:PORT]/REPO:TAG`.
    uri: String,
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

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn annotate(args: AnnotateArgs) -> Result<ExitCode> {
    let usage = args.usage_path.as_deref().map(read_text).transpose()?;
    let annotated = policy_artifact::annotate(
        &read(&args.wasm_path)?,
        &read_text(&args.metadata_path)?,
        usage.as_deref(),
    )?;
    std::fs::write(&args.output_path, annotated)
        .with_context(|| format!("cannot write {}", args.output_path.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn push(args: PushArgs) -> Result<ExitCode> {
    let sources = match &args.sources_path {
        Some(path) => Sources::from_file(path)?,
        None => Sources::default(),
    };
    let docker_config = args.docker_config_json_path.or_else(|| {
        std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".docker")))
    });
    let digest = policy_artifact::push(
        &read(&args.policy)?,
        &args.uri,
        &sources,
        docker_config.as_deref(),
    )?;
    println!("Policy successfully pushed: {}@{digest}", args.uri);
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let Cli { command } = Cli::parse();
    let result = match command {
        Command::Run(args) => run(args),
        Command::Annotate(args) => annotate(args),
        Command::Push(args) => push(args),
        Command::Bench(args) => args.run().map(|()| ExitCode::SUCCESS),
        Command::BenchSuite(args) => args.run().map(|()| ExitCode::SUCCESS),
    };
    result.unwrap_or_else(|e| {
        eprintln!("Error: {e:#}");
        ExitCode::FAILURE
    })
}
