//! The real Kubewarden binaries, `kwctl` and `policy-server`, and what each version can do.
//!
//! A version is found on PATH by name: `kwctl-1.35.0` and `policy-server-1.35.0` for a
//! version (the names `../shared/kubewarden/install` gives every version), or the plain
//! `kwctl` and `policy-server`. The version is read from the binaries themselves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};

/// The environment variable that chooses the Kubewarden version of [`Kubewarden::from_env`].
pub const VERSION_VAR: &str = "E2E_KUBEWARDEN_VERSION";

/// Where users get the real binaries.
pub const KUBEWARDEN_RELEASES: &str = "Kubewarden's GitHub releases";

/// The first version that grants host capabilities per policy and gives policy-server a
/// custom Sigstore trust root (`--sigstore-trust-config`).
const GRANTS_SINCE: (u32, u32) = (1, 35);

/// The Kubewarden binaries of one version.
#[derive(Debug, Clone)]
pub struct Kubewarden {
    pub kwctl: PathBuf,
    /// `None` when only kwctl is installed ([`Kubewarden::locate_kwctl`]).
    policy_server: Option<PathBuf>,
    /// `major.minor.patch`, as `kwctl --version` prints it.
    pub version: String,
}

impl Kubewarden {
    /// The binaries `E2E_KUBEWARDEN_VERSION` names (unset: the plain names), both required;
    /// one lookup per process.
    pub fn from_env() -> Result<&'static Kubewarden> {
        static ONE: OnceLock<std::result::Result<Kubewarden, String>> = OnceLock::new();
        ONE.get_or_init(|| {
            let version = std::env::var(VERSION_VAR).ok().filter(|v| !v.is_empty());
            Self::locate(version.as_deref()).map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// `kwctl` and `policy-server` of `version` (the plain names when `None`), of one version.
    pub fn locate(version: Option<&str>) -> Result<Kubewarden> {
        let mut found = Self::locate_kwctl(version)?;
        let policy_server = require_binary(&name("policy-server", version))?;
        let server_version = version_of(&policy_server)?;
        ensure!(
            found.version == server_version,
            "kwctl is {} but policy-server is {server_version}",
            found.version
        );
        found.policy_server = Some(policy_server);
        Ok(found)
    }

    /// `kwctl` of `version`, and its policy-server when one is installed (of the same
    /// version): what a tool that can fall back to `kwctl run` needs.
    pub fn locate_available(version: Option<&str>) -> Result<Kubewarden> {
        if require_binary(&name("policy-server", version)).is_ok() {
            Self::locate(version)
        } else {
            Self::locate_kwctl(version)
        }
    }

    /// `kwctl` of `version` alone, for what needs no policy-server.
    pub fn locate_kwctl(version: Option<&str>) -> Result<Kubewarden> {
        let kwctl = require_binary(&name("kwctl", version))?;
        let version = version_of(&kwctl)?;
        Ok(Kubewarden {
            kwctl,
            policy_server: None,
            version,
        })
    }

    /// The policy-server binary, or why there is none.
    pub fn policy_server(&self) -> Result<&Path> {
        self.policy_server.as_deref().with_context(|| {
            format!("`policy-server` is not on PATH: install it from {KUBEWARDEN_RELEASES}")
        })
    }

    /// Whether a policy-server of this version was found.
    pub fn has_policy_server(&self) -> bool {
        self.policy_server.is_some()
    }

    fn at_least(&self, (major, minor): (u32, u32)) -> bool {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        found >= (major, minor)
    }

    /// Whether this version checks each host call against the policy's grant.
    pub fn grants_capabilities(&self) -> bool {
        self.at_least(GRANTS_SINCE)
    }

    /// Whether policy-server takes `--sigstore-trust-config` (1.31 only loads the public TUF
    /// root, which is out of reach offline).
    pub fn server_takes_trust_config(&self) -> bool {
        self.at_least(GRANTS_SINCE)
    }
}

/// `tool` or `tool-VERSION`.
fn name(tool: &str, version: Option<&str>) -> String {
    match version {
        Some(version) => format!("{tool}-{version}"),
        None => tool.to_owned(),
    }
}

/// `name` on PATH, or an error saying where to get the Kubewarden binaries.
pub fn require_binary(name: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| format!("`{name}` is not on PATH: install it from {KUBEWARDEN_RELEASES}"))
}

/// `1.31.0` of `kwctl 1.31.0` / `policy-server 1.31.0`.
fn version_of(binary: &Path) -> Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .map(str::to_owned)
        .with_context(|| format!("{} --version printed no version", binary.display()))
}
