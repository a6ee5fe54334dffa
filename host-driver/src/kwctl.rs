//! The real `kwctl`: `run` (one evaluation per process), `bench`, `push`, and any other
//! command, each with a HOME of its own so that no store, cache or credential of the user's
//! is used.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use tempfile::TempDir;

use crate::binaries::Kubewarden;
use crate::response::AdmissionResponse;
use crate::HostOptions;

/// What `kwctl run` prints when the policy refuses its settings.
pub const SETTINGS_NOT_VALID: &str = "Provided settings are not valid";

/// kwctl of one Kubewarden version, with its own HOME (its policy store and wasmtime cache,
/// shared by every command of this value).
pub struct Kwctl {
    kubewarden: Kubewarden,
    home: TempDir,
}

/// One evaluation: the policy (a path or a `registry://` URI), its settings, the
/// AdmissionRequest, and what the host is given.
pub struct Run<'a> {
    pub policy: &'a str,
    pub settings: &'a Value,
    pub request: &'a Value,
    pub host: &'a HostOptions,
    /// `--record-host-capabilities-interactions FILE`: every host call, as YAML.
    pub record: Option<&'a Path>,
}

/// What one `kwctl run` came to.
#[derive(Debug)]
pub enum RunOutcome {
    /// The AdmissionResponse kwctl printed.
    Answered(AdmissionResponse),
    /// The policy refused its settings: kwctl's line saying so.
    SettingsRefused(String),
}

/// `kwctl bench` of one evaluation: the median of `validate`, and what kwctl logged.
#[derive(Debug)]
pub struct BenchResult {
    pub validate_median: Duration,
    /// kwctl's log (stderr): a failed host call during the bench is logged there.
    pub log: String,
}

impl BenchResult {
    /// The host calls that failed during the bench, as kwctl logged them (one `ERROR` line
    /// `callback evaluation failed ... error=REASON` per failed call), without colours.
    pub fn failed_callbacks(&self) -> Vec<String> {
        without_colours(&self.log)
            .lines()
            .filter(|line| line.contains("callback evaluation failed"))
            .map(str::to_owned)
            .collect()
    }
}

impl Kwctl {
    pub fn new(kubewarden: &Kubewarden) -> Result<Kwctl> {
        Ok(Kwctl {
            kubewarden: kubewarden.clone(),
            home: tempfile::Builder::new().prefix("kwctl-home-").tempdir()?,
        })
    }

    pub fn kubewarden(&self) -> &Kubewarden {
        &self.kubewarden
    }

    /// `kwctl` with this HOME and no colours: a command to add arguments to.
    pub fn command(&self) -> Command {
        let home = self.home.path();
        let mut command = Command::new(&self.kubewarden.kwctl);
        command
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0");
        command
    }

    /// `kwctl ARGS`: stdout, or an error with what kwctl printed.
    pub fn output(&self, args: &[&str]) -> Result<String> {
        let output = self
            .command()
            .args(args)
            .output()
            .context("cannot run kwctl")?;
        ensure!(
            output.status.success(),
            "kwctl {}: {}\n{}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `kwctl run`, as a process: its whole output.
    pub fn run_output(&self, run: &Run) -> Result<Output> {
        let dir = tempfile::Builder::new().prefix("kwctl-run-").tempdir()?;
        let mut command = self.command();
        command.arg("run");
        self.evaluation_flags(&mut command, run, dir.path())?;
        command.output().context("cannot run kwctl")
    }

    /// `kwctl run`: the AdmissionResponse, or the settings' refusal. Any other failure of
    /// kwctl is an error with its log.
    pub fn run(&self, run: &Run) -> Result<RunOutcome> {
        let output = self.run_output(run)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            if let Some(line) = stderr.lines().find(|l| l.contains(SETTINGS_NOT_VALID)) {
                return Ok(RunOutcome::SettingsRefused(line.trim().to_owned()));
            }
            bail!("kwctl run failed: {}\n{stderr}", output.status);
        }
        let response = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "kwctl printed no AdmissionResponse: {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })?;
        Ok(RunOutcome::Answered(response))
    }

    /// The policy's verdict on `settings`: `None` when it accepts them, else kwctl's line
    /// saying why not. kwctl validates the settings before it evaluates, so one run of a
    /// request of a kind the policy is never sent (a Namespace) gives the verdict alone.
    pub fn check_settings(
        &self,
        policy: &str,
        settings: &Value,
        host: &HostOptions,
    ) -> Result<Option<String>> {
        let namespace = serde_json::json!({
            "uid": "settings",
            "kind": {"group": "", "version": "v1", "kind": "Namespace"},
            "resource": {"group": "", "version": "v1", "resource": "namespaces"},
            "operation": "CREATE",
            "userInfo": {"username": "settings"},
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "settings"}},
        });
        let run = Run {
            policy,
            settings,
            request: &namespace,
            host,
            record: None,
        };
        Ok(match self.run(&run)? {
            RunOutcome::Answered(_) => None,
            RunOutcome::SettingsRefused(line) => Some(line),
        })
    }

    /// `kwctl bench` of one evaluation, `--measurement-time seconds` after one second of
    /// warm-up; with `replay`, the host calls are answered from that recording.
    pub fn bench(
        &self,
        run: &Run,
        measurement_seconds: u64,
        replay: Option<&Path>,
    ) -> Result<BenchResult> {
        let dir = tempfile::Builder::new().prefix("kwctl-bench-").tempdir()?;
        let mut command = self.command();
        command
            .arg("bench")
            .arg("--warm-up-time")
            .arg("1")
            .arg("--measurement-time")
            .arg(measurement_seconds.to_string())
            .arg("--num-samples")
            .arg("50");
        if let Some(calls) = replay {
            command
                .arg("--replay-host-capabilities-interactions")
                .arg(calls);
        }
        self.evaluation_flags(&mut command, run, dir.path())?;
        let output = command.output().context("cannot run kwctl bench")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        ensure!(
            output.status.success(),
            "kwctl bench {}: {stdout}{log}",
            run.policy
        );
        let validate_median = validate_median(&without_colours(&stdout))
            .with_context(|| format!("no `validate` median in kwctl bench's output:\n{stdout}"))?;
        Ok(BenchResult {
            validate_median,
            log,
        })
    }

    /// The metadata embedded in `policy` (a path, or a URI as [`policy_argument`] gives it),
    /// as `kwctl inspect -o yaml` prints it. kwctl inspects only what is in its store, so a
    /// policy in a registry or on a web server is pulled first (with `sources` for
    /// plain-HTTP and private registries).
    pub fn inspect(&self, policy: &str, sources: Option<&Path>) -> Result<String> {
        let sources = sources.map(|path| path.display().to_string());
        let sources_args = sources
            .iter()
            .flat_map(|path| ["--sources-path", path.as_str()]);
        if !policy.starts_with("file://") && policy.contains("://") {
            let pull: Vec<&str> = ["pull"]
                .into_iter()
                .chain(sources_args.clone())
                .chain([policy])
                .collect();
            self.output(&pull)?;
        }
        let inspect: Vec<&str> = ["inspect", "-o", "yaml"]
            .into_iter()
            .chain(sources_args)
            .chain([policy])
            .collect();
        self.output(&inspect)
    }

    /// Pushes an annotated policy to `uri` (`registry://HOST[:PORT]/REPO:TAG`).
    pub fn push(&self, policy: &Path, uri: &str, sources: Option<&Path>) -> Result<()> {
        let mut command = self.command();
        command.arg("push");
        if let Some(sources) = sources {
            command.arg("--sources-path").arg(sources);
        }
        let output = command
            .arg(policy)
            .arg(uri)
            .output()
            .context("cannot run kwctl")?;
        ensure!(
            output.status.success(),
            "kwctl push {} {uri}: {}\n{}",
            policy.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// The flags `run` and `bench` share, the policy last; the request and settings are
    /// written into `dir` (settings as a file: one argument holds at most 128 KiB). On a
    /// version that grants capabilities per policy, the grant is one
    /// `--allowed-host-capabilities` followed by every capability: kwctl takes every value
    /// after it, and refuses the flag twice.
    fn evaluation_flags(&self, command: &mut Command, run: &Run, dir: &Path) -> Result<()> {
        let request = dir.join("request.json");
        let settings = dir.join("settings.json");
        std::fs::write(&request, serde_json::to_vec(run.request)?)?;
        std::fs::write(&settings, serde_json::to_vec(run.settings)?)?;
        let host = run.host;
        if let (Some(grant), true) = (&host.capabilities, self.kubewarden.grants_capabilities()) {
            command.arg("--allowed-host-capabilities").args(grant);
        }
        if let Some(sources) = &host.sources_path {
            command.arg("--sources-path").arg(sources);
        }
        if let Some(trust) = &host.trust_config {
            command.arg("--sigstore-trust-config").arg(trust);
        }
        if let Some(record) = run.record {
            command
                .arg("--record-host-capabilities-interactions")
                .arg(record);
        }
        command
            .arg("--request-path")
            .arg(request)
            .arg("--settings-path")
            .arg(settings)
            .arg(run.policy);
        Ok(())
    }
}

/// A path as `kwctl run` takes a policy: a `registry://` URI as it is, a file as an
/// absolute path.
pub fn policy_argument(policy: &str) -> Result<String> {
    if policy.contains("://") {
        return Ok(policy.to_owned());
    }
    let path = PathBuf::from(policy);
    ensure!(path.is_file(), "{policy}: no such policy module");
    Ok(std::path::absolute(path)?.display().to_string())
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

    #[test]
    fn finds_the_failed_host_calls_kwctl_logged() {
        let log = "\u{1b}[2m2026-12-07T13:27:17Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m kwctl: host capabilities proxy enabled with replay mode\n\u{1b}[2m2026-12-07T13:27:19Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m \u{1b}[1mvalidate\u{1b}[0m: policy_evaluator::runtimes::callback: callback evaluation failed \u{1b}[3mbinding\u{1b}[0m=\"kubewarden\" operation=\"v2/verify\" error=the list of recorded responses is empty\n";
        let bench = BenchResult {
            validate_median: Duration::from_micros(1),
            log: log.to_owned(),
        };
        let failed = bench.failed_callbacks();
        assert_eq!(failed.len(), 1);
        assert!(failed[0].ends_with("error=the list of recorded responses is empty"));
        assert!(failed[0].contains("binding=\"kubewarden\""));
    }
}
