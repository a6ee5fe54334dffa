//! The real Kubewarden binaries the suite runs, and what each version can do.
//!
//! `E2E_KUBEWARDEN_VERSION=1.35.0` runs `kwctl-1.35.0` and `policy-server-1.35.0` (the names
//! `../shared/kubewarden/install` gives every version); unset, the plain `kwctl` and
//! `policy-server` on PATH. The version is read from the binaries themselves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{ensure, Context, Result};

/// The environment variable that chooses the Kubewarden version.
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
    pub policy_server: PathBuf,
    /// `major.minor.patch`, as `kwctl --version` prints it.
    pub version: String,
}

impl Kubewarden {
    /// The binaries `E2E_KUBEWARDEN_VERSION` names, found on PATH; one lookup per process.
    pub fn get() -> Result<&'static Kubewarden> {
        static ONE: OnceLock<std::result::Result<Kubewarden, String>> = OnceLock::new();
        ONE.get_or_init(|| Self::from_env().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    fn from_env() -> Result<Kubewarden> {
        let suffix = match std::env::var(VERSION_VAR) {
            Ok(version) if !version.is_empty() => format!("-{version}"),
            _ => String::new(),
        };
        let kwctl = require_binary(&format!("kwctl{suffix}"))?;
        let policy_server = require_binary(&format!("policy-server{suffix}"))?;
        let version = version_of(&kwctl)?;
        let server_version = version_of(&policy_server)?;
        ensure!(
            version == server_version,
            "kwctl is {version} but policy-server is {server_version}"
        );
        Ok(Kubewarden {
            kwctl,
            policy_server,
            version,
        })
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

    /// `kwctl` with `home` as its HOME: kwctl keeps its policy store and wasmtime cache there,
    /// and nothing of the user's leaks in.
    pub fn kwctl(&self, home: &Path) -> Command {
        let mut command = Command::new(&self.kwctl);
        command
            .env("HOME", home)
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "0");
        command
    }

    /// Pushes an annotated policy to `uri` (`registry://HOST[:PORT]/REPO:TAG`) with
    /// `kwctl push`, with a HOME of its own so that no store or credentials of the user are used.
    pub fn push(&self, policy: &Path, uri: &str, sources: &Path) -> Result<()> {
        let home = tempfile::Builder::new().prefix("kwctl-home-").tempdir()?;
        let output = self
            .kwctl(home.path())
            .arg("push")
            .arg("--sources-path")
            .arg(sources)
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
}

/// The host capabilities `metadata.yml` declares: what an operator who grants exactly the
/// declared capabilities gives the policy.
pub fn declared_capabilities() -> Result<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../metadata.yml");
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata {
        host_capabilities: Vec<String>,
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let metadata: Metadata =
        serde_yaml::from_str(&text).with_context(|| format!("{path}: no hostCapabilities"))?;
    Ok(metadata.host_capabilities)
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
