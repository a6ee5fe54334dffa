//! `kwhost bench` and `kwhost bench-suite`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::Value;

use super::{
    measure, run_kwctl_figures, run_suite, table_header, table_row, Options, SuiteOptions, Target,
    Verdict,
};
use crate::host::{read_yaml_or_json, Sources, TrustRoot};

#[derive(clap::Args)]
pub struct Timing {
    /// Timed policy-alone evaluations.
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    /// Untimed policy-alone evaluations before them.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    /// Timed end-to-end evaluations, cold and warm each (0: policy alone only).
    #[arg(long, default_value_t = 5)]
    e2e_iterations: usize,
}

impl Timing {
    fn options(&self) -> Options {
        Options {
            iterations: self.iterations,
            warmup: self.warmup,
            e2e_iterations: self.e2e_iterations,
        }
    }
}

/// Measure one policy on one request; see `kwhost bench --help`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// The policy module.
    #[arg(long)]
    wasm: PathBuf,
    /// Policy settings, YAML or JSON (`{}` when absent).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// AdmissionRequest or AdmissionReview, YAML or JSON.
    #[arg(long)]
    request: PathBuf,
    /// Registry sources, YAML or JSON, for the end-to-end figures.
    #[arg(long)]
    sources_path: Option<PathBuf>,
    /// Sigstore ClientTrustConfig JSON, for keyless signatures end to end.
    #[arg(long)]
    sigstore_trust_config: Option<PathBuf>,
    #[command(flatten)]
    timing: Timing,
}

impl BenchArgs {
    /// Prints the figures of this one case as a one-row table.
    pub fn run(self) -> Result<()> {
        let target = Target {
            wasm: std::fs::read(&self.wasm)
                .with_context(|| format!("cannot read {}", self.wasm.display()))?,
            settings: match &self.settings {
                Some(path) => read_yaml_or_json(path)?,
                None => Value::Null,
            },
            request: read_yaml_or_json(&self.request)?,
            sources: match &self.sources_path {
                Some(path) => Sources::from_file(path)?,
                None => Sources::default(),
            },
            trust_root: self
                .sigstore_trust_config
                .as_deref()
                .map(TrustRoot::from_file)
                .transpose()?,
        };
        let figures = measure(&target, &self.timing.options())?;
        println!("{}", table_header());
        println!(
            "{}",
            table_row(&self.request.display().to_string(), &figures)
        );
        for verdict in std::iter::once(&figures.verdict).chain(&figures.e2e_verdict) {
            if let Verdict::Rejected(message) = verdict {
                println!("\nrejection: {message}");
            }
        }
        Ok(())
    }
}

/// The fixed cases of `make bench` against a local registry with real signed images.
#[derive(clap::Args)]
pub struct BenchSuiteArgs {
    /// The policy module.
    #[arg(long)]
    wasm: PathBuf,
    #[command(flatten)]
    timing: Timing,
}

impl BenchSuiteArgs {
    pub fn run(self) -> Result<()> {
        run_suite(SuiteOptions {
            wasm: std::fs::read(&self.wasm)
                .with_context(|| format!("cannot read {}", self.wasm.display()))?,
            options: self.timing.options(),
        })
    }
}

/// The cases of `bench-suite` in the real `kwctl run`: its cold cost and recorded host calls.
#[derive(clap::Args)]
pub struct BenchKwctlArgs {
    /// The annotated policy module.
    #[arg(long)]
    wasm: PathBuf,
    /// `kwctl run`s per case.
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

impl BenchKwctlArgs {
    pub fn run(self) -> Result<()> {
        run_kwctl_figures(&self.wasm, self.runs)
    }
}
