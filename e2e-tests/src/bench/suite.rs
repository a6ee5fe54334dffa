//! `make bench`: the fixed cases against a local registry with real signed images.

use std::io::Write as _;

use anyhow::{bail, Result};

use super::cases::{cases, CaseImages, REPOSITORY_PREFIX};
use super::{measure, table_header, table_row, Options, Target, Verdict};
use crate::fixtures::{push_signed_images, Registry};
use crate::host::Sources;

/// Distinct images of the largest case, and keys of the three-rule case.
const IMAGES: usize = 50;
const KEYS: usize = 3;

pub struct SuiteOptions {
    pub wasm: Vec<u8>,
    pub options: Options,
}

/// Starts a registry, pushes and signs the images, and prints one Markdown table row per
/// case as it is measured. Fails after the table if a case did not decide or count as
/// expected, since its figures would then measure something else.
pub fn run_suite(suite: SuiteOptions) -> Result<()> {
    eprintln!("Starting a local registry and signing {IMAGES} images with {KEYS} keys each...");
    let registry = Registry::start()?;
    let signed = push_signed_images(&registry, REPOSITORY_PREFIX, IMAGES, KEYS)?;
    let images: Vec<String> = signed.images.iter().map(|i| i.reference.clone()).collect();
    let cases = cases(&CaseImages {
        registry: registry.host(),
        images: &images,
        keys: &signed.keys,
    });
    let options = suite.options;
    println!(
        "{} timed evaluations after {} warm-up for the policy alone; {} end to end (cold: cache TTL 0; warm: 60 s cache, filled); {}\n",
        options.iterations,
        options.warmup,
        options.e2e_iterations,
        super::machine(),
    );
    println!("{}", table_header());
    let mut surprises = Vec::new();
    for case in &cases {
        let target = Target {
            wasm: suite.wasm.clone(),
            settings: case.settings.clone(),
            request: case.request.clone(),
            sources: Sources::insecure([registry.host()]),
            trust_root: None,
        };
        let figures = measure(&target, &options)?;
        println!("{}", table_row(&case.name, &figures));
        std::io::stdout().flush()?;
        let expected = if case.pinned {
            Verdict::Mutated
        } else {
            Verdict::Accepted
        };
        for verdict in std::iter::once(&figures.verdict).chain(&figures.e2e_verdict) {
            if *verdict != expected {
                surprises.push(format!("{}: {verdict}, expected {expected}", case.name));
            }
        }
        if figures.host_calls != case.verify_calls as f64 {
            surprises.push(format!(
                "{}: {} host calls per evaluation, expected {}",
                case.name, figures.host_calls, case.verify_calls
            ));
        }
    }
    if !surprises.is_empty() {
        bail!("unexpected results:\n{}", surprises.join("\n"));
    }
    Ok(())
}
