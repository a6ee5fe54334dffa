//! `make bench-kubewarden`: the cases of `make bench` in the real host, `kwctl run`, to say
//! what a cold evaluation costs there and how many host calls it records. Each `kwctl run` is a
//! fresh process, so its registry and verification caches start empty: every run is cold.
//! Figures only, never pass/fail.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::cases::{cases, CaseImages, REPOSITORY_PREFIX};
use crate::backend::Kwctl;
use crate::fixtures::{push_signed_images, Registry};

/// Distinct images of the largest case, and keys of the three-rule case (as `make bench`).
const IMAGES: usize = 50;
const KEYS: usize = 3;

/// Prints, per case, the median wall time of `runs` `kwctl run`s (process start and module
/// load included: the "no rule matches" rows show that fixed part) and the host calls kwctl
/// recorded.
pub fn run_kwctl_figures(wasm: &Path, runs: usize) -> Result<()> {
    eprintln!("Starting a local registry and signing {IMAGES} images with {KEYS} keys each...");
    let registry = Registry::start()?;
    let signed = push_signed_images(&registry, REPOSITORY_PREFIX, IMAGES, KEYS)?;
    let images: Vec<String> = signed.images.iter().map(|i| i.reference.clone()).collect();
    let sources = tempfile::NamedTempFile::new()?;
    std::fs::write(
        sources.path(),
        format!("insecure_sources: [\"{}\"]\n", registry.host()),
    )?;
    let kwctl = Kwctl::with(wasm, sources.path(), None)?;
    println!(
        "`kwctl run` ({} per case, each a new process with empty caches); {}\n",
        runs,
        super::machine(),
    );
    println!("| case | kwctl run median | host calls recorded | verdict |\n|---|---|---|---|");
    let cases = cases(&CaseImages {
        registry: registry.host(),
        images: &images,
        keys: &signed.keys,
    });
    // One untimed run compiles the module into kwctl's wasmtime cache.
    kwctl.validate(&cases[0].settings, &cases[0].request)?;
    for case in &cases {
        let mut times = Vec::with_capacity(runs);
        let mut outcome = None;
        for _ in 0..runs {
            let started = Instant::now();
            let (response, calls) = kwctl.validate_recorded(&case.settings, &case.request)?;
            times.push(started.elapsed());
            outcome = Some((response, calls));
        }
        let Some((response, calls)) = outcome else {
            bail!("no runs");
        };
        times.sort();
        let verdict = match (response.allowed, response.patch.is_some()) {
            (true, true) => "mutated".to_owned(),
            (true, false) => "accepted".to_owned(),
            (false, _) => format!("rejected: {:?}", response.status),
        };
        println!(
            "| {} | {} | {} | {} |",
            case.name,
            seconds(times[times.len() / 2]),
            calls.calls("oci/v2/verify"),
            verdict
        );
        std::io::stdout().flush()?;
    }
    Ok(())
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}
