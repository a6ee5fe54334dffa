//! The `kwctl` backend: every evaluation is one `kwctl run` of the annotated policy, with the
//! fixtures' trust root (`--sigstore-trust-config`) and plain-HTTP registry
//! (`--sources-path`), its host calls recorded (`--record-host-capabilities-interactions`)
//! and, on 1.35, only the granted capabilities allowed (`--allowed-host-capabilities`).

use anyhow::{bail, Context, Result};
use host_driver::{
    recorded_calls, AdmissionResponse, HostCalls, HostOptions, Kubewarden, Kwctl as Host, Run,
    RunOutcome,
};
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use serde_json::Value;

use super::{BackendConfig, Grant};

/// Where to keep every host-call recording, when set.
const RECORDINGS_VAR: &str = "E2E_KWCTL_RECORDINGS";

/// Runs the policy with `kwctl run`, one process per evaluation.
pub struct Kwctl {
    host: Host,
    policy: String,
    options: HostOptions,
    /// What `metadata.yml` declares: no recorded call may fall outside it.
    declared: Vec<String>,
}

impl Kwctl {
    pub fn new(config: &BackendConfig) -> Result<Self> {
        Ok(Self {
            host: Host::new(Kubewarden::from_env()?)?,
            policy: std::path::absolute(config.wasm)?.display().to_string(),
            options: HostOptions {
                sources_path: Some(config.fixtures.sources.clone()),
                trust_config: Some(config.fixtures.trust_config.clone()),
                capabilities: Some(config.grant.0.clone()),
            },
            declared: Grant::declared()?.0,
        })
    }

    /// `kwctl run` with `settings` on `request`; what it came to and the recorded host
    /// calls. With `E2E_KWCTL_RECORDINGS=DIR`, each recording is also kept in DIR (to read
    /// the real host's answers, failure texts included).
    fn run(&self, settings: &Value, request: &Value) -> Result<(RunOutcome, HostCalls)> {
        let dir = tempfile::Builder::new().prefix("kwctl-calls-").tempdir()?;
        let calls_path = dir.path().join("calls.yml");
        let outcome = self.host.run(&Run {
            policy: &self.policy,
            settings,
            request,
            host: &self.options,
            record: Some(&calls_path),
        });
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
        Ok((outcome?, calls))
    }

    /// The AdmissionResponse `kwctl run` prints, and the host calls of this evaluation. A
    /// call of a capability that `metadata.yml` does not declare is an error: an operator who
    /// grants what the metadata declares would have denied it.
    pub fn validate(
        &self,
        settings: &Value,
        request: &Value,
    ) -> Result<(AdmissionResponse, HostCalls)> {
        let (outcome, calls) = self.run(settings, request)?;
        if let Some(undeclared) = calls
            .per_operation
            .keys()
            .find(|operation| !self.declared.contains(operation))
        {
            bail!("the policy called {undeclared}, which metadata.yml does not declare");
        }
        match outcome {
            RunOutcome::Answered(response) => Ok((response, calls)),
            RunOutcome::SettingsRefused(line) => bail!("kwctl run failed: {line}"),
        }
    }

    /// The policy's verdict on `settings`, from one `kwctl run`.
    pub fn validate_settings(&self, settings: &Value) -> SettingsValidationResponse {
        let (valid, message) = match self
            .host
            .check_settings(&self.policy, settings, &self.options)
        {
            Ok(None) => (true, None),
            Ok(Some(line)) => (false, Some(line)),
            Err(e) => (false, Some(format!("{e:#}"))),
        };
        SettingsValidationResponse { valid, message }
    }
}
