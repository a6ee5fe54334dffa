//! The `kwctl` backend: every evaluation is one `kwctl run` of the annotated policy, with the
//! fixtures' trust root (`--sigstore-trust-config`) and plain-HTTP registry
//! (`--sources-path`), its host calls recorded (`--record-host-capabilities-interactions`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use serde_json::{json, Value};
use tempfile::TempDir;

use super::{require_binary, BackendConfig};
use crate::host::{AdmissionResponse, HostCallStats};
use crate::policy_server::KWCTL_BIN;

/// Where to keep every host-call recording, when set.
const RECORDINGS_VAR: &str = "E2E_KWCTL_RECORDINGS";

/// What `kwctl run` prints when the policy refuses its settings.
const SETTINGS_NOT_VALID: &str = "Provided settings are not valid";

/// `kwctl` with `home` as its HOME: kwctl keeps its policy store and wasmtime cache there,
/// and nothing of the user's leaks in.
pub fn kwctl_command(kwctl: &Path, home: &Path) -> Command {
    let mut command = Command::new(kwctl);
    command
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0");
    command
}

/// Runs the policy with `kwctl run`, one process per evaluation.
pub struct Kwctl {
    kwctl: PathBuf,
    wasm: PathBuf,
    trust_config: Option<PathBuf>,
    sources: PathBuf,
    /// HOME of every run of this test process (one wasmtime cache, shared).
    home: TempDir,
    stats: Mutex<HostCallStats>,
}

impl Kwctl {
    pub fn new(config: &BackendConfig) -> Result<Self> {
        Self::with(
            config.wasm,
            &config.fixtures.sources,
            Some(&config.fixtures.trust_config),
        )
    }

    /// Runs `wasm` (a file, or `registry://`) with a sources file and maybe a trust config.
    pub fn with(wasm: &Path, sources: &Path, trust_config: Option<&Path>) -> Result<Self> {
        Ok(Self {
            kwctl: require_binary(KWCTL_BIN)?,
            wasm: std::path::absolute(wasm)?,
            trust_config: trust_config.map(Path::to_owned),
            sources: sources.to_owned(),
            home: tempfile::Builder::new().prefix("kwctl-home-").tempdir()?,
            stats: Mutex::default(),
        })
    }

    /// `kwctl run` with `settings` on `request`; the output and the recorded host calls.
    /// With `E2E_KWCTL_RECORDINGS=DIR`, each recording is also kept in DIR (to read the
    /// real host's answers, failure texts included).
    fn run(&self, settings: &Value, request: &Value) -> Result<(Output, HostCallStats)> {
        let dir = tempfile::Builder::new().prefix("kwctl-run-").tempdir()?;
        let request_path = dir.path().join("request.json");
        let calls_path = dir.path().join("calls.yml");
        std::fs::write(&request_path, serde_json::to_vec(request)?)?;
        let mut command = kwctl_command(&self.kwctl, self.home.path());
        command.arg("run");
        if let Some(trust_config) = &self.trust_config {
            command.arg("--sigstore-trust-config").arg(trust_config);
        }
        let output = command
            .arg("--sources-path")
            .arg(&self.sources)
            .arg("--record-host-capabilities-interactions")
            .arg(&calls_path)
            .arg("--request-path")
            .arg(&request_path)
            .arg("--settings-json")
            .arg(settings.to_string())
            .arg(&self.wasm)
            .output()
            .context("cannot run kwctl")?;
        if let Some(keep) = std::env::var_os(RECORDINGS_VAR) {
            let (_, kept) = tempfile::Builder::new()
                .prefix("calls-")
                .suffix(".yml")
                .tempfile_in(keep)?
                .keep()?;
            let _ = std::fs::copy(&calls_path, kept);
        }
        let calls = match std::fs::read_to_string(&calls_path) {
            Ok(text) => recorded_calls(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HostCallStats::default(),
            Err(e) => return Err(e).context("cannot read kwctl's host-call recording"),
        };
        Ok((output, calls))
    }

    pub fn validate(&self, settings: &Value, request: &Value) -> Result<AdmissionResponse> {
        self.validate_recorded(settings, request)
            .map(|(response, _)| response)
    }

    /// [`Self::validate`], and the host calls of this evaluation.
    pub fn validate_recorded(
        &self,
        settings: &Value,
        request: &Value,
    ) -> Result<(AdmissionResponse, HostCallStats)> {
        let (output, calls) = self.run(settings, request)?;
        self.add(&calls);
        if !output.status.success() {
            bail!(
                "kwctl run failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let response = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "kwctl printed no AdmissionResponse: {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })?;
        Ok((response, calls))
    }

    /// `kwctl run` validates the settings before it evaluates; on a request of a kind the
    /// policy ignores, its exit status is the settings' verdict.
    pub fn validate_settings(&self, settings: &Value) -> SettingsValidationResponse {
        let namespace = json!({
            "uid": "settings",
            "kind": {"group": "", "version": "v1", "kind": "Namespace"},
            "resource": {"group": "", "version": "v1", "resource": "namespaces"},
            "operation": "CREATE",
            "userInfo": {"username": "e2e"},
            "object": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
        });
        match self.run(settings, &namespace) {
            Ok((output, _)) if output.status.success() => SettingsValidationResponse {
                valid: true,
                message: None,
            },
            Ok((output, _)) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let message = stderr
                    .lines()
                    .find(|line| line.contains(SETTINGS_NOT_VALID))
                    .or_else(|| stderr.lines().find(|line| line.starts_with("Error:")))
                    .unwrap_or(&stderr);
                SettingsValidationResponse {
                    valid: false,
                    message: Some(message.trim().to_owned()),
                }
            }
            Err(e) => SettingsValidationResponse {
                valid: false,
                message: Some(format!("{e:#}")),
            },
        }
    }

    pub fn stats(&self) -> HostCallStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn add(&self, calls: &HostCallStats) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        for (operation, count) in &calls.per_operation {
            *stats.per_operation.entry(operation.clone()).or_default() += count;
        }
        stats.total += calls.total;
    }
}

/// The host calls in a `--record-host-capabilities-interactions` file: a list of exchanges
/// whose `request` is YAML text starting with its type's tag (`!SigstorePubKeyVerify`, ...).
fn recorded_calls(text: &str) -> Result<HostCallStats> {
    #[derive(serde::Deserialize)]
    struct Exchange {
        request: String,
    }
    let exchanges: Option<Vec<Exchange>> =
        serde_yaml::from_str(text).context("kwctl's host-call recording is unreadable")?;
    let mut stats = HostCallStats::default();
    for exchange in exchanges.into_iter().flatten() {
        let tag = exchange
            .request
            .split_whitespace()
            .next()
            .and_then(|first| first.strip_prefix('!'))
            .unwrap_or("untagged");
        *stats.per_operation.entry(operation_of(tag)).or_default() += 1;
        stats.total += 1;
    }
    Ok(stats)
}

/// The `namespace/operation` of a recorded request type, as the policy called it.
fn operation_of(tag: &str) -> String {
    match tag {
        t if t.starts_with("Sigstore") => "oci/v2/verify".to_owned(),
        "OciManifestDigest" => "oci/v1/manifest_digest".to_owned(),
        "OciManifest" => "oci/v1/oci_manifest".to_owned(),
        "OciManifestAndConfig" => "oci/v1/oci_manifest_config".to_owned(),
        "CryptoVerifyCert" | "CryptoVerifyCertificate" => {
            "crypto/v1/is_certificate_trusted".to_owned()
        }
        other => format!("kwctl/{other}"),
    }
}
