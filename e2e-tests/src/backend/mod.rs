//! The real host an end-to-end suite evaluates the policy in, chosen by `E2E_BACKEND`:
//!
//! - `kwctl` (default): the real `kwctl run`, one subprocess per evaluation;
//! - `policy-server`: a real policy-server on 127.0.0.1 that loads the policy from the local
//!   registry by `registry://` and answers AdmissionReviews POSTed over HTTP.
//!
//! The Kubewarden version is `E2E_KUBEWARDEN_VERSION`'s ([`Kubewarden`]). On versions that
//! grant host capabilities per policy (1.35), the policy is granted exactly what `metadata.yml`
//! declares, as a least-privilege operator would. The suite's assertions are the same on every
//! backend; [`BackendKind::lacks`] says what a backend cannot do, so a test that needs it is
//! skipped with the reason printed, never silently.

pub mod kwctl;
mod server;

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use serde_json::Value;

use host_driver::{declared_capabilities, AdmissionResponse, HostCalls, Kubewarden};

use crate::fixtures::Fixtures;
use crate::repo_file;

pub use kwctl::Kwctl;
pub use server::PolicyServerBackend;

/// The environment variable that chooses the backend.
pub const BACKEND_VAR: &str = "E2E_BACKEND";

/// Which host runs the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Kwctl,
    PolicyServer,
}

/// Something a test needs that not every backend has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Keyless, GitHub Actions, certificate and Rekor-bundle checks: the fixtures' private
    /// Fulcio CA and Rekor key as the Sigstore trust root.
    CustomTrustRoot,
    /// Exact counts of the host calls of an evaluation.
    HostCallCounts,
    /// Host capabilities granted per policy (Kubewarden 1.35).
    CapabilityGrants,
}

impl BackendKind {
    /// The backend `E2E_BACKEND` names (`kwctl` when unset).
    pub fn from_env() -> Result<Self> {
        match std::env::var(BACKEND_VAR).as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("") | Ok("kwctl") => Ok(Self::Kwctl),
            Ok("policy-server") => Ok(Self::PolicyServer),
            Ok(other) => bail!("{BACKEND_VAR}={other}: expected kwctl or policy-server"),
            Err(e) => bail!("{BACKEND_VAR}: {e}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Kwctl => "kwctl",
            Self::PolicyServer => "policy-server",
        }
    }

    /// Why this backend, in Kubewarden `version`, cannot provide `need`; `None` when it can.
    pub fn lacks(self, need: Need, kubewarden: &Kubewarden) -> Option<&'static str> {
        match (self, need) {
            (Self::PolicyServer, Need::CustomTrustRoot)
                if !kubewarden.server_takes_trust_config() =>
            {
                Some("policy-server before 1.35 has no custom Sigstore trust root (it loads the public TUF root, out of reach offline), so keyless, certificate and Rekor-bundle signatures of the private Fulcio/Rekor cannot verify")
            }
            (Self::PolicyServer, Need::HostCallCounts) => {
                Some("policy-server cannot record the host calls of an evaluation")
            }
            (_, Need::CapabilityGrants) if !kubewarden.grants_capabilities() => {
                Some("Kubewarden before 1.35 grants every host capability to every policy")
            }
            _ => None,
        }
    }
}

/// The host capabilities a backend grants the policy (honoured from Kubewarden 1.35).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant(pub Vec<String>);

impl Grant {
    /// What `metadata.yml` declares: the least privilege an operator would grant.
    pub fn declared() -> Result<Grant> {
        Ok(Grant(declared_capabilities(&repo_file("metadata.yml"))?))
    }

    /// The declared capabilities less `capability`.
    pub fn declared_without(capability: &str) -> Result<Grant> {
        let mut grant = Self::declared()?;
        grant.0.retain(|c| c != capability);
        Ok(grant)
    }
}

/// What every backend needs: the annotated policy, the fixtures' registry and trust root,
/// and the grant.
pub struct BackendConfig<'a> {
    /// The annotated policy module.
    pub wasm: &'a Path,
    pub fixtures: &'a Fixtures,
    pub grant: Grant,
}

/// A real host running the policy; the suite's evaluations go through it.
pub enum Backend {
    Kwctl(Kwctl),
    PolicyServer(PolicyServerBackend),
}

impl Backend {
    /// Starts a backend of `kind` for the policy and fixtures of `config`.
    pub fn start(kind: BackendKind, config: &BackendConfig) -> Result<Self> {
        Ok(match kind {
            BackendKind::Kwctl => Self::Kwctl(Kwctl::new(config)?),
            BackendKind::PolicyServer => Self::PolicyServer(PolicyServerBackend::new(config)?),
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Self::Kwctl(_) => BackendKind::Kwctl,
            Self::PolicyServer(_) => BackendKind::PolicyServer,
        }
    }

    /// The policy's verdict on `settings`, as the host reports it.
    pub fn validate_settings_with(&self, settings: &Value) -> SettingsValidationResponse {
        match self {
            Self::Kwctl(kwctl) => kwctl.validate_settings(settings),
            Self::PolicyServer(server) => server.validate_settings(settings),
        }
    }

    /// Readies the backend for each of `settings` at once: a policy-server takes new
    /// settings only by restarting, so this is one restart instead of one per settings.
    /// kwctl takes the settings with each evaluation.
    pub fn prepare(&self, settings: &[Value]) -> Result<()> {
        match self {
            Self::Kwctl(_) => Ok(()),
            Self::PolicyServer(server) => server.prepare(settings),
        }
    }

    /// Evaluates an AdmissionRequest with `settings`.
    pub fn validate_with(&self, settings: &Value, request: &Value) -> Result<AdmissionResponse> {
        match self {
            Self::Kwctl(kwctl) => kwctl.validate(settings, request).map(|(r, _)| r),
            Self::PolicyServer(server) => server.validate(settings, request),
        }
    }

    /// Evaluates and returns the host calls of this evaluation, where the backend records
    /// them (kwctl); `None` on a backend that cannot.
    pub fn validate_counting(
        &self,
        settings: &Value,
        request: &Value,
    ) -> Result<(AdmissionResponse, Option<HostCalls>)> {
        match self {
            Self::Kwctl(kwctl) => kwctl
                .validate(settings, request)
                .map(|(response, calls)| (response, Some(calls))),
            Self::PolicyServer(server) => Ok((server.validate(settings, request)?, None)),
        }
    }
}

/// Whether the calling test must be skipped on `kind` for want of `need`; when it must, says
/// so on the terminal (past the test harness's output capture) with the test's name.
pub fn skip(kind: BackendKind, need: Need) -> bool {
    let kubewarden = Kubewarden::from_env().expect("the Kubewarden binaries");
    let Some(reason) = kind.lacks(need, kubewarden) else {
        return false;
    };
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // `std::io::stderr()` is not captured by libtest, unlike `eprintln!`.
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on {} {}: {test}: {reason}",
        kind.name(),
        kubewarden.version
    );
    true
}
