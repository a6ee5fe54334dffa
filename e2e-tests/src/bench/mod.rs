//! What a policy costs: the policy alone (host calls answered instantly from memory, the
//! guest called on the measuring thread) and end to end (the project's host with real
//! Sigstore checks), with the host calls one evaluation makes and the guest's peak memory.
//!
//! Figures are printed, never asserted: timings depend on the machine. Host-call counts
//! are exact, and `tests/bench_counts.rs` asserts them.

pub mod cases;
pub mod cli;
mod kubewarden;
pub mod objects;
mod suite;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use kubewarden_policy_sdk::response::ValidationResponse;
use serde_json::{json, Value};

use crate::host::{AdmissionResponse, Host, HostBuilder, Sources, TrustRoot};

pub use kubewarden::run_kwctl_figures;
pub use suite::{run_suite, SuiteOptions};

/// The digest every instant `v2/verify` answer carries.
pub const INSTANT_DIGEST: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// How long a measurement runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Timed policy-alone evaluations.
    pub iterations: usize,
    /// Untimed policy-alone evaluations first (caches, allocator, page faults).
    pub warmup: usize,
    /// Timed end-to-end evaluations, cold and warm each, after one untimed; 0 skips them.
    pub e2e_iterations: usize,
}

/// One policy, its settings and a request, and where its registries are.
pub struct Target {
    pub wasm: Vec<u8>,
    pub settings: Value,
    /// An AdmissionRequest, or an AdmissionReview holding one.
    pub request: Value,
    pub sources: Sources,
    pub trust_root: Option<TrustRoot>,
}

/// What an evaluation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Accepted with changes (for this policy: images pinned to their digest).
    Mutated,
    Rejected(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Accepted => f.write_str("accepted"),
            Verdict::Mutated => f.write_str("mutated"),
            Verdict::Rejected(message) => write!(f, "rejected: {message}"),
        }
    }
}

/// The figures of one case.
#[derive(Debug, Clone)]
pub struct Figures {
    /// JSON size of the request's object.
    pub object_bytes: usize,
    pub module_bytes: usize,
    /// Median time to make an instance and run `wapc_init`, as the real host does it
    /// (copy-on-write memory image).
    pub instantiate: Duration,
    /// Per `validate` with instant host answers: the policy's own cost.
    pub policy_median: Duration,
    pub policy_p95: Duration,
    /// Per evaluation through the whole host with real Sigstore checks and the
    /// verification cache off (TTL 0): every `v2/verify` goes to the registry.
    pub e2e_cold_median: Option<Duration>,
    /// The same with the default cache, after one evaluation filled it.
    pub e2e_warm_median: Option<Duration>,
    /// Host calls of one evaluation, all capabilities.
    pub host_calls: f64,
    pub peak_memory_bytes: usize,
    /// With instant answers.
    pub verdict: Verdict,
    /// With real checks, when measured.
    pub e2e_verdict: Option<Verdict>,
}

/// Measures `target`: see [`Figures`].
pub fn measure(target: &Target, options: &Options) -> Result<Figures> {
    let request = match target.request.get("kind").and_then(Value::as_str) {
        Some("AdmissionReview") => target.request["request"].clone(),
        _ => target.request.clone(),
    };
    let payload = json!({"request": request, "settings": target.settings})
        .to_string()
        .into_bytes();
    let builder = || {
        let builder = Host::builder()
            .wasm_bytes(target.wasm.clone())
            .settings(target.settings.clone())
            .sources(target.sources.clone())
            .allow_unannotated();
        match &target.trust_root {
            Some(root) => builder.trust_root(root.clone()),
            None => builder,
        }
    };

    let alone = build(builder().instant_answers(INSTANT_DIGEST))?;
    let instance = alone.instance()?;
    let evaluate = || -> Result<Vec<u8>> {
        instance
            .call("validate", &payload)
            .map_err(|e| anyhow!("validate failed: {e}"))
    };
    let verdict = verdict_of(&evaluate()?)?;
    for _ in 0..options.warmup {
        evaluate()?;
    }
    let calls_before = alone.stats().total;
    let mut samples = Vec::with_capacity(options.iterations);
    for _ in 0..options.iterations.max(1) {
        let start = Instant::now();
        evaluate()?;
        samples.push(start.elapsed());
    }
    let host_calls = (alone.stats().total - calls_before) as f64 / samples.len() as f64;
    samples.sort();

    let tracked = build(
        builder()
            .instant_answers(INSTANT_DIGEST)
            .track_peak_memory(),
    )?;
    let tracked_instance = tracked.instance()?;
    for _ in 0..PEAK_MEMORY_RUNS {
        tracked_instance
            .call("validate", &payload)
            .map_err(|e| anyhow!("validate failed: {e}"))?;
    }

    let cold = build(
        builder()
            .execution_timeout(E2E_DEADLINE)
            .verification_cache_ttl(Duration::ZERO)
            .registry_cache_ttl(Duration::ZERO),
    )?;
    let instantiate = median_of(
        (0..INSTANTIATIONS)
            .map(|_| {
                let start = Instant::now();
                cold.instance().map(|_| start.elapsed())
            })
            .collect::<Result<Vec<_>>>()?,
    );
    let (e2e_cold_median, e2e_warm_median, e2e_verdict) = if options.e2e_iterations == 0 {
        (None, None, None)
    } else {
        let (cold_median, e2e_verdict) = time_end_to_end(&cold, &request, options)?;
        let warm = build(builder().execution_timeout(E2E_DEADLINE))?;
        let (warm_median, _) = time_end_to_end(&warm, &request, options)?;
        (Some(cold_median), Some(warm_median), Some(e2e_verdict))
    };

    Ok(Figures {
        object_bytes: request.get("object").map_or(0, |o| o.to_string().len()),
        module_bytes: target.wasm.len(),
        instantiate,
        policy_median: median_of(samples.clone()),
        policy_p95: samples[(samples.len() * 95).div_ceil(100) - 1],
        e2e_cold_median,
        e2e_warm_median,
        host_calls,
        peak_memory_bytes: tracked.peak_memory_bytes().unwrap_or_default(),
        verdict,
        e2e_verdict,
    })
}

/// Deadline of end-to-end evaluations: long, so that a cold evaluation slower than the
/// real host's deadline (2 s by default) is measured instead of cut short.
pub const E2E_DEADLINE: Duration = Duration::from_secs(120);

/// Instances made to time instantiation.
const INSTANTIATIONS: usize = 9;
/// Evaluations on the memory-tracking host: memory only grows, so a few suffice.
const PEAK_MEMORY_RUNS: usize = 3;

fn build(builder: HostBuilder) -> Result<Host> {
    let host = builder.build()?;
    let settings = host.validate_settings();
    if !settings.valid {
        bail!(
            "the policy refuses the settings: {}",
            settings.message.unwrap_or_default()
        );
    }
    Ok(host)
}

/// One untimed evaluation, then the median of `e2e_iterations` timed ones.
fn time_end_to_end(host: &Host, request: &Value, options: &Options) -> Result<(Duration, Verdict)> {
    let verdict = response_verdict(&host.validate(request)?);
    let samples = (0..options.e2e_iterations)
        .map(|_| {
            let start = Instant::now();
            host.validate(request).map(|_| start.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((median_of(samples), verdict))
}

fn median_of(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn verdict_of(answer: &[u8]) -> Result<Verdict> {
    let response: ValidationResponse = serde_json::from_slice(answer)?;
    Ok(match (response.accepted, response.mutated_object) {
        (true, Some(_)) => Verdict::Mutated,
        (true, None) => Verdict::Accepted,
        (false, _) => Verdict::Rejected(response.message.unwrap_or_default()),
    })
}

fn response_verdict(response: &AdmissionResponse) -> Verdict {
    match (response.allowed, &response.patch) {
        (true, Some(_)) => Verdict::Mutated,
        (true, None) => Verdict::Accepted,
        (false, _) => Verdict::Rejected(
            response
                .status
                .as_ref()
                .and_then(|s| s.message.clone())
                .unwrap_or_default(),
        ),
    }
}

/// Column headings of [`table_row`].
/// The machine a figure was measured on, e.g. `2 CPUs, load average 0.42`: other work on the
/// machine inflates every figure, so each command says how much there was.
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

pub fn table_header() -> String {
    format!(
        "| {:<36} | {:>9} | {:>11} | {:>11} | {:>13} | {:>10} | {:>13} | {:>13} | {:>10} | {:>9} | {} |\n|{}|",
        "case",
        "object",
        "module",
        "instantiate",
        "policy median",
        "policy p95",
        "e2e cold",
        "e2e warm",
        "host calls",
        "peak mem",
        "verdict",
        ["-"; 11].map(|_| "---").join("|"),
    )
}

/// One Markdown table row for `figures`.
pub fn table_row(case: &str, figures: &Figures) -> String {
    let optional = |d: Option<Duration>| d.map_or_else(|| "-".into(), duration);
    let calls = if figures.host_calls.fract() == 0.0 {
        format!("{}", figures.host_calls)
    } else {
        format!("{:.2}", figures.host_calls)
    };
    let mut verdict = short_verdict(&figures.verdict);
    if let Some(e2e) = &figures.e2e_verdict {
        if short_verdict(e2e) != verdict {
            let _ = write!(verdict, " (e2e: {e2e})");
        }
    }
    format!(
        "| {:<36} | {:>9} | {:>11} | {:>11} | {:>13} | {:>10} | {:>13} | {:>13} | {:>10} | {:>9} | {} |",
        case,
        kilobytes(figures.object_bytes),
        format!("{} B", figures.module_bytes),
        duration(figures.instantiate),
        duration(figures.policy_median),
        duration(figures.policy_p95),
        optional(figures.e2e_cold_median),
        optional(figures.e2e_warm_median),
        calls,
        mebibytes(figures.peak_memory_bytes),
        verdict,
    )
}

/// The verdict without a rejection's message, which belongs on its own line.
fn short_verdict(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Rejected(_) => "rejected".into(),
        other => other.to_string(),
    }
}

fn duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.1} µs")
    } else if micros < 1e6 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

fn kilobytes(bytes: usize) -> String {
    format!("{:.1} KB", bytes as f64 / 1000.0)
}

fn mebibytes(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}
