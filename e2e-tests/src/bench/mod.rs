//! `make bench`: what the policy itself costs in the real host. For each case, `kwctl bench`
//! runs the policy and then the floor policy (a module that accepts without reading its
//! payload, built by this project) on the same request, in rounds; the policy's own cost is
//! the difference. Other builds of the policy (`--policy` again) are measured in the same
//! rounds, so that figures before and after a change come from the same minutes. The policy's host calls are recorded once with `kwctl run` and replayed
//! by `kwctl bench`, so no registry time is measured.
//!
//! Figures are printed, never asserted: they depend on the machine. Host-call counts are
//! exact and checked.

pub mod cases;
pub mod objects;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use host_driver::{recorded_calls, HostOptions, Kubewarden, Kwctl, Run, RunOutcome};

use crate::fixtures::{push_signed_images, Registry};
use cases::{cases, Case, CaseImages, IMAGES, KEYS, REPOSITORY_PREFIX};

/// What `make bench` runs.
pub struct BenchOptions {
    /// The annotated policies: the first, then the builds to compare with it.
    pub policies: Vec<PathBuf>,
    /// The annotated floor policy.
    pub floor: PathBuf,
    /// Interleaved policy/floor measurements per case; the fastest of each is kept.
    pub rounds: usize,
    /// `kwctl bench --measurement-time`, in seconds.
    pub measurement_seconds: u64,
    /// Only the cases whose name contains this.
    pub filter: Option<String>,
}

/// Sets up the registry and images, measures every case and prints the table.
pub fn run(options: &BenchOptions) -> Result<()> {
    let kubewarden = Kubewarden::from_env()?;
    eprintln!("Starting a local registry and signing {IMAGES} images with {KEYS} keys each...");
    let registry = Registry::start()?;
    let signed = push_signed_images(&registry, REPOSITORY_PREFIX, IMAGES, KEYS)?;
    let images: Vec<String> = signed.images.iter().map(|i| i.reference.clone()).collect();
    let dir = tempfile::Builder::new().prefix("kw-bench-").tempdir()?;
    let sources = dir.path().join("sources.yml");
    std::fs::write(
        &sources,
        format!("insecure_sources: [\"{}\"]\n", registry.host()),
    )?;
    let bench = Bench {
        kwctl: Kwctl::new(kubewarden)?,
        dir: dir.path(),
        host: HostOptions {
            sources_path: Some(sources),
            ..HostOptions::default()
        },
        options,
    };
    println!(
        "`kwctl bench` (kwctl {}), median of one `validate`, fastest of {} interleaved rounds; {}\n",
        kubewarden.version,
        options.rounds,
        machine()
    );
    let names: Vec<String> = options.policies.iter().map(|p| label(p)).collect();
    let columns: String = names
        .iter()
        .map(|n| format!(" {n} | {n} own cost | own / floor |"))
        .collect();
    println!("| case | object | host calls | verdict | floor |{columns}");
    println!(
        "|---|---|---|---|---|{}",
        "---|---|---|".repeat(names.len())
    );
    let all = cases(&CaseImages {
        registry: registry.host(),
        images: &images,
        keys: &signed.keys,
    });
    for case in all
        .iter()
        .filter(|c| options.filter.as_deref().is_none_or(|f| c.name.contains(f)))
    {
        let row = bench.case(case).with_context(|| case.name.clone())?;
        println!("{row}");
        std::io::stdout().flush()?;
    }
    for path in options.policies.iter().chain([&options.floor]) {
        println!(
            "\n{}: {} bytes",
            label(path),
            std::fs::metadata(path)?.len()
        );
    }
    Ok(())
}

/// A policy's column name: its file name.
fn label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

struct Bench<'a> {
    kwctl: Kwctl,
    dir: &'a Path,
    host: HostOptions,
    options: &'a BenchOptions,
}

impl Bench<'_> {
    /// Records the case's host calls for every policy, then measures them and the floor in
    /// interleaved rounds.
    fn case(&self, case: &Case) -> Result<String> {
        let mut recordings = Vec::new();
        let mut verdict = "";
        for (i, policy) in self.options.policies.iter().enumerate() {
            let calls = self.dir.join(format!("calls-{i}.yml"));
            verdict = self.record(case, policy, &calls)?;
            recordings.push(calls);
        }
        let mut times = vec![Duration::MAX; recordings.len()];
        let mut floor = Duration::MAX;
        for _ in 0..self.options.rounds.max(1) {
            for ((policy, calls), time) in self
                .options
                .policies
                .iter()
                .zip(&recordings)
                .zip(&mut times)
            {
                *time = (*time).min(self.bench(case, policy, Some(calls))?);
            }
            floor = floor.min(self.bench(case, &self.options.floor, None)?);
        }
        let columns: String = times
            .iter()
            .map(|&time| {
                let own = time.saturating_sub(floor);
                format!(
                    " {} | {} | {:.2} |",
                    micros(time),
                    micros(own),
                    own.as_secs_f64() / floor.as_secs_f64()
                )
            })
            .collect();
        Ok(format!(
            "| {} | {:.1} KB | {} | {verdict} | {} |{columns}",
            case.name,
            case.request["object"].to_string().len() as f64 / 1000.0,
            case.verify_calls,
            micros(floor),
        ))
    }

    /// The evaluation of `case` by `policy`.
    fn evaluation<'r>(
        &'r self,
        case: &'r Case,
        policy: &'r str,
        record: Option<&'r Path>,
    ) -> Run<'r> {
        Run {
            policy,
            settings: &case.settings,
            request: &case.request,
            host: &self.host,
            record,
        }
    }

    /// One `kwctl run` of `policy` recording its host calls into `calls`: the verdict, after
    /// checking that it is admitted and made exactly the case's calls.
    fn record(&self, case: &Case, policy: &Path, calls: &Path) -> Result<&'static str> {
        let name = policy.display().to_string();
        let response = match self.kwctl.run(&self.evaluation(case, &name, Some(calls)))? {
            RunOutcome::Answered(response) => response,
            RunOutcome::SettingsRefused(line) => bail!("{name}: {line}"),
        };
        let verdict = match (response.allowed, response.patch.is_some()) {
            (true, true) => "mutated",
            (true, false) => "accepted",
            _ => bail!("{name}: rejected: {}", response.message()),
        };
        let recorded = recorded_calls(&std::fs::read_to_string(calls).unwrap_or_default())?;
        ensure!(
            recorded.calls("oci/v2/verify") == case.verify_calls
                && recorded.total() == case.verify_calls,
            "{name}: expected {} oci/v2/verify calls, kwctl recorded {:?}",
            case.verify_calls,
            recorded.per_operation
        );
        Ok(verdict)
    }

    /// The median time of one `validate` as `kwctl bench` reports it.
    fn bench(&self, case: &Case, wasm: &Path, replay: Option<&Path>) -> Result<Duration> {
        let name = wasm.display().to_string();
        let result = self.kwctl.bench(
            &self.evaluation(case, &name, None),
            self.options.measurement_seconds,
            replay,
        )?;
        Ok(result.validate_median)
    }
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

/// The machine a figure was measured on: CPUs and load average.
pub fn machine() -> String {
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{} CPUs, load average {load}",
        std::thread::available_parallelism().map_or(0, usize::from)
    )
}
