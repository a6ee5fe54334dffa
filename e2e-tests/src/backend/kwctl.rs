//! The `kwctl` backend: every evaluation is one `kwctl run` of the annotated policy, with the
//! fixtures' trust root (`--sigstore-trust-config`) and plain-HTTP registry
//! (`--sources-path`), its host calls recorded (`--record-host-capabilities-interactions`)
//! and, on 1.35, only the granted capabilities allowed (`--allowed-host-capabilities`).

use std::path::PathBuf;
use std::process::Output;

use anyhow::{bail, Context, Result};
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use serde_json::{json, Value};
use tempfile::TempDir;

use super::{BackendConfig, Grant};
use crate::kubewarden::{declared_capabilities, Kubewarden};
use crate::response::{AdmissionResponse, HostCalls};

/// Where to keep every host-call recording, when set.
const RECORDINGS_VAR: &str = "E2E_KWCTL_RECORDINGS";

/// What `kwctl run` prints when the policy refuses its settings.
const SETTINGS_NOT_VALID: &str = "Provided settings are not valid";

/// Runs the policy with `kwctl run`, one process per evaluation.
pub struct Kwctl {
    kubewarden: &'static Kubewarden,
    wasm: PathBuf,
    trust_config: PathBuf,
    sources: PathBuf,
    grant: Grant,
    /// What `metadata.yml` declares: no recorded call may fall outside it.
    declared: Vec<String>,
    /// HOME of every run of this test process (one wasmtime cache, shared).
    home: TempDir,
}

impl Kwctl {
    pub fn new(config: &BackendConfig) -> Result<Self> {
        Ok(Self {
            kubewarden: Kubewarden::get()?,
            wasm: std::path::absolute(config.wasm)?,
            trust_config: config.fixtures.trust_config.clone(),
            sources: config.fixtures.sources.clone(),
            grant: config.grant.clone(),
            declared: declared_capabilities()?,
            home: tempfile::Builder::new().prefix("kwctl-home-").tempdir()?,
        })
    }

    /// `kwctl run` with `settings` on `request`; the output and the recorded host calls.
    /// With `E2E_KWCTL_RECORDINGS=DIR`, each recording is also kept in DIR (to read the
    /// real host's answers, failure texts included).
    fn run(&self, settings: &Value, request: &Value) -> Result<(Output, HostCalls)> {
        let dir = tempfile::Builder::new().prefix("kwctl-run-").tempdir()?;
        let request_path = dir.path().join("request.json");
        let calls_path = dir.path().join("calls.yml");
        std::fs::write(&request_path, serde_json::to_vec(request)?)?;
        let mut command = self.kubewarden.kwctl(self.home.path());
        command.arg("run");
        if self.kubewarden.grants_capabilities() {
            // One flag, every capability after it; the next `--flag` ends the list.
            command
                .arg("--allowed-host-capabilities")
                .args(&self.grant.0);
        }
        command
            .arg("--sigstore-trust-config")
            .arg(&self.trust_config)
            .arg("--sources-path")
            .arg(&self.sources)
            .arg("--record-host-capabilities-interactions")
            .arg(&calls_path)
            .arg("--request-path")
            .arg(&request_path)
            .arg("--settings-json")
            .arg(settings.to_string());
        let output = command
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
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => HostCalls::default(),
            Err(e) => return Err(e).context("cannot read kwctl's host-call recording"),
        };
        Ok((output, calls))
    }

    /// The AdmissionResponse `kwctl run` prints, and the host calls of this evaluation. A
    /// call of a capability that `metadata.yml` does not declare is an error: an operator who
    /// grants what the metadata declares would have denied it.
    pub fn validate(
        &self,
        settings: &Value,
        request: &Value,
    ) -> Result<(AdmissionResponse, HostCalls)> {
        let (output, calls) = self.run(settings, request)?;
        if let Some(undeclared) = calls
            .per_operation
            .keys()
            .find(|operation| !self.declared.contains(operation))
        {
            bail!("the policy called {undeclared}, which metadata.yml does not declare");
        }
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
}

/// The host calls in a `--record-host-capabilities-interactions` file: a list of exchanges
/// whose `request` is YAML text starting with its type's tag (`!SigstorePubKeyVerify`, ...).
pub fn recorded_calls(text: &str) -> Result<HostCalls> {
    #[derive(serde::Deserialize)]
    struct Exchange {
        request: String,
    }
    let exchanges: Option<Vec<Exchange>> =
        serde_yaml::from_str(text).context("kwctl's host-call recording is unreadable")?;
    let mut calls = HostCalls::default();
    for exchange in exchanges.into_iter().flatten() {
        let tag = exchange
            .request
            .split_whitespace()
            .next()
            .and_then(|first| first.strip_prefix('!'))
            .unwrap_or("untagged");
        *calls.per_operation.entry(operation_of(tag)).or_default() += 1;
    }
    Ok(calls)
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
