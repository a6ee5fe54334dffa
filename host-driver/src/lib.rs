//! Drives the real Kubewarden host: finds `kwctl` and `policy-server` of a version, starts
//! them, and talks to them as the API server and a developer do.
//!
//! **Only this crate starts kwctl or policy-server.** The end-to-end suite, the demo, the
//! bench, the load test and `check-manifests` all go through it, so a flag the host needs
//! (a trust root, a grant) is passed the same way everywhere. It knows nothing of fixtures
//! or of any one policy.
//!
//! - [`Kubewarden`]: the binaries of one version, and what that version can do;
//! - [`Kwctl`]: `kwctl run`, `bench`, `push` and any other command, with a HOME of its own;
//! - [`PolicyServer`]: a policy-server on 127.0.0.1, fed AdmissionReviews over HTTP;
//! - [`AdmissionResponse`]: what the host answers;
//! - [`HostCalls`] and [`WapcCall`]: the host calls kwctl recorded, counted or made again;
//! - [`process`]: child processes that never outlive the caller, and free ports.

mod binaries;
mod kwctl;
mod metadata;
mod policy_server;
pub mod process;
mod recording;
mod response;

use std::path::PathBuf;

pub use binaries::{require_binary, Kubewarden, KUBEWARDEN_RELEASES, VERSION_VAR};
pub use kwctl::{policy_argument, BenchResult, Kwctl, Run, RunOutcome, SETTINGS_NOT_VALID};
pub use metadata::declared_capabilities;
pub use policy_server::{
    admission_review, Policy, PolicyServer, PolicyServerConfig, SettingsRefused,
};
pub use recording::{recorded_calls, recorded_wapc_calls, HostCalls, WapcCall};
pub use response::{AdmissionResponse, AdmissionResponseStatus};

/// What `kwctl run` and `kwctl bench` give the host besides the policy.
#[derive(Clone, Debug, Default)]
pub struct HostOptions {
    /// `--sources-path`: plain-HTTP and private registries.
    pub sources_path: Option<PathBuf>,
    /// `--sigstore-trust-config`: a private Fulcio and Rekor.
    pub trust_config: Option<PathBuf>,
    /// `--allowed-host-capabilities`, passed on versions that grant per policy; `None`
    /// leaves kwctl's default (everything).
    pub capabilities: Option<Vec<String>>,
}
