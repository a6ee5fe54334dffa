//! `make bench`: what the policy itself costs in the real host, on the path each case names.
//! Every case runs against a live local registry holding images signed for real: `kwctl
//! run` records the case's host calls and verdict, then `kwctl bench` times the policy and
//! its floors in interleaved rounds, each in a kwctl whose host cache (successes kept 60 s
//! per request) its warm-up fills, as a warm policy-server's is:
//!
//! - the floor: the floor policy, which accepts without reading its payload (what the host
//!   spends on any policy: instance, payload, response);
//! - the host-call floor, on cases with host calls: the floor policy built with the case's
//!   calls and answer ([`floor`]), which makes the same calls with the same payloads and
//!   gives the same verdict and patch without reading the request (what the host spends on
//!   that case whatever the policy does around the calls);
//! - the reading floor: the same, after reading its whole payload once with serde_json, every
//!   value skipped (the least a policy that reads its request with serde pays above the
//!   host-call floor, or above the floor where the case makes no call).
//!
//! A bench during which kwctl logs a failed host call is refused: every timed iteration made
//! its calls and got the answers the recording got, so the verdict printed is theirs.
//! Replaying the recording instead is no floor: kwctl answers each recorded exchange once,
//! and from the second iteration on every call fails (`tests/bench.rs`).
//!
//! Other builds of the policy (`--policy` again) are timed in the same rounds, so figures
//! before and after a change come from the same minutes. Figures are printed, never
//! asserted: they depend on the machine. Host-call counts are exact and checked.

pub mod cases;
pub mod floor;
pub mod objects;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use host_driver::{
    recorded_calls, recorded_wapc_calls, HostOptions, Kubewarden, Kwctl, Run, RunOutcome,
};

use crate::fixtures::{push_signed_images, write_sources, Registry};
use cases::{cases, Case, CaseImages, IMAGES, KEYS, REPOSITORY_PREFIX};
use floor::{validation_response, FloorBuild};

/// How long the host keeps a verified answer: a bench longer than this would time some
/// iterations against the registry.
const HOST_CACHE: Duration = Duration::from_secs(60);

/// The goal on matching cases: the policy's cost above the host-call floor, at most this
/// share of the floor.
const GOAL: f64 = 1.0 / 3.0;

/// What `make bench` runs.
pub struct BenchOptions {
    /// The annotated policies: the first, then the builds to compare with it.
    pub policies: Vec<PathBuf>,
    /// The annotated floor policy.
    pub floor: PathBuf,
    /// Where the host-call floors are built from.
    pub floor_build: FloorBuild,
    /// Interleaved measurements per case; the fastest of each is kept.
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
    write_sources(&sources, &[registry.host()])?;
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
        "`kwctl bench` (kwctl {}), live local registry, host cache warm; median of one \
         `validate`, fastest of {} interleaved rounds; {}\n",
        kubewarden.version,
        options.rounds,
        machine()
    );
    let names: Vec<String> = options.policies.iter().map(|p| label(p)).collect();
    let columns: String = names
        .iter()
        .map(|n| format!(" {n} | above floor | above call floor | above call floor / floor |"))
        .collect();
    println!(
        "| case | object | host calls | verdict | floor | host-call floor | reading floor | \
         reading above call floor / floor |{columns}"
    );
    println!(
        "|---|---|---|---|---|---|---|---|{}",
        "---|---|---|---|".repeat(names.len())
    );
    let all = cases(&CaseImages {
        registry: registry.host(),
        images: &images,
        keys: &signed.keys,
    });
    let mut goals = Vec::new();
    for case in all
        .iter()
        .filter(|c| options.filter.as_deref().is_none_or(|f| c.name.contains(f)))
    {
        let measured = bench.case(case).with_context(|| case.name.clone())?;
        println!("{}", measured.row(case));
        std::io::stdout().flush()?;
        if case.verify_calls > 0 {
            goals.push(measured.goal(case, &names));
        }
    }
    for path in options.policies.iter().chain([&options.floor]) {
        println!(
            "\n{}: {} bytes",
            label(path),
            std::fs::metadata(path)?.len()
        );
    }
    if !goals.is_empty() {
        println!(
            "\nGoal on the matching cases: the policy's cost above the host-call floor at most \
             {GOAL:.2} of the floor."
        );
        for line in goals.concat() {
            println!("- {line}");
        }
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

/// One case's fastest medians.
struct Measured {
    verdict: &'static str,
    floor: Duration,
    /// `None` when the case calls the host not at all: its floor is the plain floor.
    call_floor: Option<Duration>,
    read_floor: Duration,
    policies: Vec<Duration>,
}

impl Measured {
    fn row(&self, case: &Case) -> String {
        let columns: String = self
            .policies
            .iter()
            .map(|&time| {
                format!(
                    " {} | {} | {} | {:.2} |",
                    micros(time),
                    signed_micros(time, self.floor),
                    signed_micros(time, self.call_floor.unwrap_or(self.floor)),
                    self.above_call_floor(time)
                )
            })
            .collect();
        let call_floor = self
            .call_floor
            .map_or_else(|| "(no calls)".to_owned(), micros);
        format!(
            "| {} | {:.1} KB | {} | {} | {} | {call_floor} | {} | {:.2} |{columns}",
            case.name,
            case.request["object"].to_string().len() as f64 / 1000.0,
            case.verify_calls,
            self.verdict,
            micros(self.floor),
            micros(self.read_floor),
            self.above_call_floor(self.read_floor),
        )
    }

    /// A cost above the host-call floor, as a share of the floor.
    fn above_call_floor(&self, time: Duration) -> f64 {
        let call_floor = self.call_floor.unwrap_or(self.floor);
        (time.as_secs_f64() - call_floor.as_secs_f64()) / self.floor.as_secs_f64()
    }

    fn goal(&self, case: &Case, names: &[String]) -> Vec<String> {
        names
            .iter()
            .zip(&self.policies)
            .map(|(name, &time)| {
                let share = self.above_call_floor(time);
                let met = if share <= GOAL { "met" } else { "missed" };
                format!(
                    "{}, {name}: {share:.2} ({met}; reading the payload alone: {:.2})",
                    case.name,
                    self.above_call_floor(self.read_floor)
                )
            })
            .collect()
    }
}

impl Bench<'_> {
    /// Records the case for every policy, builds its host-call and reading floors, then
    /// measures the policies and the floors in interleaved rounds.
    fn case(&self, case: &Case) -> Result<Measured> {
        let mut recorded = Vec::new();
        for policy in &self.options.policies {
            recorded.push(self.record(case, policy)?);
        }
        let (verdict, answer, calls) = recorded.swap_remove(0);
        for (other, policy) in recorded.iter().zip(&self.options.policies[1..]) {
            ensure!(
                other.0 == verdict && other.2 == calls,
                "{} answers or calls otherwise than {}",
                policy.display(),
                self.options.policies[0].display()
            );
        }
        // The host-call and reading floors' modules and their fastest medians.
        let build = |kind: &str, read: bool| {
            let name = format!("{kind}-{}", case.name.replace([' ', ','], "-"));
            let wasm = self.options.floor_build.build(
                &self.kwctl,
                self.dir,
                &name,
                read,
                &calls,
                &answer,
            )?;
            Ok::<_, anyhow::Error>((wasm, Duration::MAX))
        };
        let mut call_floor = match calls.is_empty() {
            true => None,
            false => Some(build("call-floor", false)?),
        };
        let mut read_floor = build("read-floor", true)?;
        let mut policies = vec![Duration::MAX; self.options.policies.len()];
        let mut floor = Duration::MAX;
        for _ in 0..self.options.rounds.max(1) {
            for (policy, time) in self.options.policies.iter().zip(&mut policies) {
                *time = (*time).min(self.bench(case, policy)?);
            }
            floor = floor.min(self.bench(case, &self.options.floor)?);
            if let Some((wasm, time)) = &mut call_floor {
                *time = (*time).min(self.bench(case, wasm)?);
            }
            let (wasm, time) = &mut read_floor;
            *time = (*time).min(self.bench(case, wasm)?);
        }
        Ok(Measured {
            verdict,
            floor,
            call_floor: call_floor.map(|(_, time)| time),
            read_floor: read_floor.1,
            policies,
        })
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

    /// One `kwctl run` of `policy` recording its host calls: the verdict, the policy's
    /// answer and its calls, after checking that it admits and made exactly the case's calls.
    fn record(
        &self,
        case: &Case,
        policy: &Path,
    ) -> Result<(&'static str, serde_json::Value, Vec<host_driver::WapcCall>)> {
        let name = policy.display().to_string();
        let recording = self.dir.join("calls.yml");
        let _ = std::fs::remove_file(&recording);
        let response = match self
            .kwctl
            .run(&self.evaluation(case, &name, Some(&recording)))?
        {
            RunOutcome::Answered(response) => response,
            RunOutcome::SettingsRefused(line) => bail!("{name}: {line}"),
        };
        let verdict = match (response.allowed, response.patch.is_some()) {
            (true, true) => "mutated",
            (true, false) => "accepted",
            _ => bail!("{name}: rejected: {}", response.message()),
        };
        let text = std::fs::read_to_string(&recording).unwrap_or_default();
        let counted = recorded_calls(&text)?;
        ensure!(
            counted.calls("oci/v2/verify") == case.verify_calls
                && counted.total() == case.verify_calls,
            "{name}: expected {} oci/v2/verify calls, kwctl recorded {:?}",
            case.verify_calls,
            counted.per_operation
        );
        let answer = validation_response(&response, &case.request["object"])?;
        Ok((verdict, answer, recorded_wapc_calls(&text)?))
    }

    /// The median time of one `validate` as `kwctl bench` reports it, refused if a host
    /// call failed or the host's cache may have expired during it.
    fn bench(&self, case: &Case, wasm: &Path) -> Result<Duration> {
        let name = wasm.display().to_string();
        let started = Instant::now();
        let result = self.kwctl.bench(
            &self.evaluation(case, &name, None),
            self.options.measurement_seconds,
            None,
        )?;
        let failed = result.failed_callbacks();
        if let Some(first) = failed.first() {
            bail!(
                "{name}: kwctl logged {} failed host call(s) during the bench; the first: {first}",
                failed.len()
            );
        }
        ensure!(
            started.elapsed() < HOST_CACHE,
            "{name}: the bench took longer than the host keeps its answers ({} s): lower \
             --measurement-seconds",
            HOST_CACHE.as_secs()
        );
        Ok(result.validate_median)
    }
}

fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

/// `time - base`, which noise can make negative.
fn signed_micros(time: Duration, base: Duration) -> String {
    format!("{:.1} µs", (time.as_secs_f64() - base.as_secs_f64()) * 1e6)
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
