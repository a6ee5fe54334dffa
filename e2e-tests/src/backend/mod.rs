//! The host an end-to-end suite evaluates the policy in, chosen by `E2E_BACKEND`:
//!
//! - `kwhost` (default): this crate's own host, in process;
//! - `kwctl`: the real `kwctl run`, one subprocess per evaluation;
//! - `policy-server`: a real policy-server on 127.0.0.1 that loads the policy from the local
//!   registry by `registry://` and answers AdmissionReviews POSTed over HTTP.
//!
//! The suite's assertions are the same on every backend; [`Backend::lacks`] says what a backend
//! cannot do (a custom Sigstore trust root, recording host calls), so a test that needs it is
//! skipped with the reason printed, never silently.

mod kwctl;
mod server;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use serde_json::Value;

use crate::fixtures::Fixtures;
use crate::host::{AdmissionResponse, Host, HostCallStats, Sources, TrustRoot};

pub use kwctl::{kwctl_command, Kwctl};
pub use server::PolicyServerBackend;

/// The environment variable that chooses the backend.
pub const BACKEND_VAR: &str = "E2E_BACKEND";

/// Where users get the real binaries.
pub const KUBEWARDEN_RELEASES: &str =
    "Kubewarden's GitHub releases (github.com/kubewarden/kwctl and github.com/kubewarden/policy-server)";

/// Which host runs the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Kwhost,
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
}

impl BackendKind {
    /// The backend `E2E_BACKEND` names (`kwhost` when unset).
    pub fn from_env() -> Result<Self> {
        match std::env::var(BACKEND_VAR).as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("") | Ok("kwhost") => Ok(Self::Kwhost),
            Ok("kwctl") => Ok(Self::Kwctl),
            Ok("policy-server") => Ok(Self::PolicyServer),
            Ok(other) => bail!("{BACKEND_VAR}={other}: expected kwhost, kwctl or policy-server"),
            Err(e) => bail!("{BACKEND_VAR}: {e}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Kwhost => "kwhost",
            Self::Kwctl => "kwctl",
            Self::PolicyServer => "policy-server",
        }
    }

    /// Why this backend cannot provide `need`, or `None` when it can.
    pub fn lacks(self, need: Need) -> Option<&'static str> {
        match (self, need) {
            (Self::PolicyServer, Need::CustomTrustRoot) => Some(
                "policy-server 1.31 has no custom Sigstore trust root offline (it loads the public TUF root), so keyless, certificate and Rekor-bundle signatures of the private Fulcio/Rekor cannot verify",
            ),
            (Self::PolicyServer, Need::HostCallCounts) => {
                Some("policy-server cannot record the host calls of an evaluation")
            }
            _ => None,
        }
    }
}

/// What every backend needs: the annotated policy and the fixtures' registry and trust root.
pub struct BackendConfig<'a> {
    /// The annotated policy module.
    pub wasm: &'a Path,
    pub fixtures: &'a Fixtures,
}

/// A host running the policy; the suite's evaluations go through it.
pub enum Backend {
    Kwhost(Box<Host>),
    Kwctl(Kwctl),
    PolicyServer(PolicyServerBackend),
}

impl Backend {
    /// Starts a backend of `kind` for the policy and fixtures of `config`.
    pub fn start(kind: BackendKind, config: &BackendConfig) -> Result<Self> {
        Ok(match kind {
            BackendKind::Kwhost => {
                let wasm = std::fs::read(config.wasm)
                    .with_context(|| format!("cannot read {}", config.wasm.display()))?;
                Self::Kwhost(Box::new(
                    Host::builder()
                        .wasm_bytes(wasm)
                        .trust_root(TrustRoot::from_file(&config.fixtures.trust_config)?)
                        .sources(Sources::from_file(&config.fixtures.sources)?)
                        .workers(2)
                        .build()?,
                ))
            }
            BackendKind::Kwctl => Self::Kwctl(Kwctl::new(config)?),
            BackendKind::PolicyServer => Self::PolicyServer(PolicyServerBackend::new(config)?),
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Self::Kwhost(_) => BackendKind::Kwhost,
            Self::Kwctl(_) => BackendKind::Kwctl,
            Self::PolicyServer(_) => BackendKind::PolicyServer,
        }
    }

    /// The policy's verdict on `settings`, as the host reports it.
    pub fn validate_settings_with(&self, settings: &Value) -> SettingsValidationResponse {
        match self {
            Self::Kwhost(host) => host.validate_settings_with(settings),
            Self::Kwctl(kwctl) => kwctl.validate_settings(settings),
            Self::PolicyServer(server) => server.validate_settings(settings),
        }
    }

    /// Evaluates an AdmissionRequest with `settings`.
    pub fn validate_with(&self, settings: &Value, request: &Value) -> Result<AdmissionResponse> {
        match self {
            Self::Kwhost(host) => host.validate_with(settings, request),
            Self::Kwctl(kwctl) => kwctl.validate(settings, request),
            Self::PolicyServer(server) => server.validate(settings, request),
        }
    }

    /// The host calls this backend served so far. Panics on a backend that cannot count
    /// them: a test that asserts counts starts with a [`skip`] for [`Need::HostCallCounts`].
    pub fn stats(&self) -> HostCallStats {
        match self {
            Self::Kwhost(host) => host.stats(),
            Self::Kwctl(kwctl) => kwctl.stats(),
            Self::PolicyServer(_) => panic!(
                "{}: start the test with `if skip(Need::HostCallCounts) {{ return; }}`",
                BackendKind::PolicyServer
                    .lacks(Need::HostCallCounts)
                    .unwrap_or_default()
            ),
        }
    }
}

/// Whether the calling test must be skipped on `kind` for want of `need`; when it must, says
/// so on the terminal (past the test harness's output capture) with the test's name.
pub fn skip(kind: BackendKind, need: Need) -> bool {
    let Some(reason) = kind.lacks(need) else {
        return false;
    };
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // `std::io::stderr()` is not captured by libtest, unlike `eprintln!`.
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED on {}: {test}: {reason}",
        kind.name()
    );
    true
}

/// `name` on PATH, or an error saying where to get the Kubewarden binaries.
pub fn require_binary(name: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| {
            format!("`{name}` is not on PATH: install it from {KUBEWARDEN_RELEASES} (here: ../shared/kubewarden/install)")
        })
}
