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
use serde_json::Value;

use crate::backend::kwctl::recorded_calls;
use crate::fixtures::{push_signed_images, Registry};
use crate::kubewarden::Kubewarden;
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
    let kubewarden = Kubewarden::get()?;
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
        kubewarden,
        dir: dir.path(),
        sources: &sources,
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
    kubewarden: &'static Kubewarden,
    dir: &'a Path,
    sources: &'a Path,
    options: &'a BenchOptions,
}

impl Bench<'_> {
    /// Records the case's host calls for every policy, then measures them and the floor in
    /// interleaved rounds.
    fn case(&self, case: &Case) -> Result<String> {
        let request = self.dir.join("request.json");
        let settings = self.dir.join("settings.json");
        std::fs::write(&request, case.request.to_string())?;
        std::fs::write(&settings, case.settings.to_string())?;
        let mut recordings = Vec::new();
        let mut verdict = "";
        for (i, policy) in self.options.policies.iter().enumerate() {
            let calls = self.dir.join(format!("calls-{i}.yml"));
            verdict = self.record(case, policy, &request, &settings, &calls)?;
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
                *time = (*time).min(self.bench(policy, &request, &settings, Some(calls))?);
            }
            floor = floor.min(self.bench(&self.options.floor, &request, &settings, None)?);
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

    /// One `kwctl run` of `policy` recording its host calls into `calls`: the verdict, after
    /// checking that it is admitted and made exactly the case's calls.
    fn record(
        &self,
        case: &Case,
        policy: &Path,
        request: &Path,
        settings: &Path,
        calls: &Path,
    ) -> Result<&'static str> {
        let output = self
            .kwctl()
            .arg("run")
            .arg("--sources-path")
            .arg(self.sources)
            .arg("--record-host-capabilities-interactions")
            .arg(calls)
            .arg("-r")
            .arg(request)
            .arg("-s")
            .arg(settings)
            .arg(policy)
            .output()?;
        ensure!(
            output.status.success(),
            "kwctl run {}: {}",
            policy.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let response: Value = serde_json::from_slice(&output.stdout)?;
        let verdict = match (response["allowed"].as_bool(), response["patch"].is_string()) {
            (Some(true), true) => "mutated",
            (Some(true), false) => "accepted",
            _ => bail!("{}: rejected: {}", policy.display(), response["status"]),
        };
        let recorded = recorded_calls(&std::fs::read_to_string(calls).unwrap_or_default())?;
        ensure!(
            recorded.calls("oci/v2/verify") == case.verify_calls
                && recorded.total() == case.verify_calls,
            "{}: expected {} oci/v2/verify calls, kwctl recorded {:?}",
            policy.display(),
            case.verify_calls,
            recorded.per_operation
        );
        Ok(verdict)
    }

    /// The median time of one `validate` as `kwctl bench` reports it.
    fn bench(
        &self,
        wasm: &Path,
        request: &Path,
        settings: &Path,
        replay: Option<&Path>,
    ) -> Result<Duration> {
        let mut command = self.kwctl();
        command
            .arg("bench")
            .arg("--warm-up-time")
            .arg("1")
            .arg("--measurement-time")
            .arg(self.options.measurement_seconds.to_string())
            .arg("--num-samples")
            .arg("50")
            .arg("--sources-path")
            .arg(self.sources)
            .arg("-r")
            .arg(request)
            .arg("-s")
            .arg(settings);
        if let Some(calls) = replay {
            command
                .arg("--replay-host-capabilities-interactions")
                .arg(calls);
        }
        let output = command.arg(wasm).output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success(),
            "kwctl bench {}: {}{}",
            wasm.display(),
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        validate_median(&without_colours(&stdout))
            .with_context(|| format!("no `validate` median in kwctl bench's output:\n{stdout}"))
    }

    fn kwctl(&self) -> std::process::Command {
        self.kubewarden.kwctl(&self.dir.join("home"))
    }
}

/// The `med = ...` of the `validate` block of `kwctl bench`'s output (not `validate_settings`).
fn validate_median(output: &str) -> Option<Duration> {
    let block = output.split("validate [").nth(1)?;
    let median = block.split("med = ").nth(1)?;
    let end = median.find(',')?;
    parse_duration(&median[..end])
}

/// `text` without ANSI colour sequences (`ESC [ ... m`), which kwctl bench always writes.
fn without_colours(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

/// `8.27µs`, `912.00ns`, `1.20ms`, `2.00s`.
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "ns" => 1e-9,
        "µs" | "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(number * scale))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_validate_median_of_kwctl_bench() {
        let output = "validate_settings [873.6 thousand iterations in 1.44s with 100.0 samples]:\n\telapsed\t[min mean max]:\t[1.50µs 1.79µs 2.56µs] (sample data: med = 1.58µs, var = 146.69µs², stddev = 383.00ns)\nvalidate [242.4 thousand iterations in 2.06s with 100.0 samples]:\n\telapsed\t[min mean max]:\t[8.06µs 8.41µs 11.11µs] (sample data: med = 8.27µs, var = 227.94µs², stddev = 477.43ns)\n";
        assert_eq!(validate_median(output), Some(Duration::from_nanos(8270)));
        assert_eq!(parse_duration("1.20ms"), Some(Duration::from_micros(1200)));
        assert_eq!(parse_duration("912.00ns"), Some(Duration::from_nanos(912)));
        assert_eq!(validate_median("validate_settings [..] med = 1µs,"), None);
        let coloured = "\u{1b}[1;32mvalidate\u{1b}[0m [1 samples]: (sample data: med = \u{1b}[0;97m2.00µs\u{1b}[0m, var";
        assert_eq!(
            validate_median(&without_colours(coloured)),
            Some(Duration::from_micros(2))
        );
    }
}
