//! The command line, read into [`Options`].

use std::path::PathBuf;

use clap::Parser;

use crate::host::Choice;
use crate::options::{Options, OutputFormat};
use crate::pin::Target;

/// Check rendered Kubernetes manifests with verify-image-signatures in the real Kubewarden
/// host, with the settings the cluster uses, and report what the cluster would admit.
///
/// Exit codes: 0 when every object would be admitted (or is of a kind the policy is not
/// sent); 1 when any would be rejected; 2 when the settings are refused, an input could not
/// be read, an object could not be evaluated, or a pinned file could not be written (2 wins
/// over 1).
#[derive(Debug, Parser)]
#[command(name = "check-manifests", version)]
pub struct Args {
    /// Manifest files and directories (searched recursively for *.yaml, *.yml, *.json);
    /// `-` reads standard input.
    #[arg(required = true, value_name = "MANIFESTS")]
    manifests: Vec<PathBuf>,
    /// The policy's settings, as in the ClusterAdmissionPolicy's `spec.settings` (YAML or
    /// JSON).
    #[arg(short, long, value_name = "FILE")]
    settings: PathBuf,
    /// The annotated policy: a file, or a `registry://` (or `https://`) reference.
    #[arg(
        long,
        default_value = "annotated-policy.wasm",
        value_name = "PATH_OR_URI"
    )]
    policy: String,
    /// The policy's metadata.yml: the host capabilities it is granted.
    #[arg(long, default_value = "metadata.yml", value_name = "FILE")]
    metadata: PathBuf,
    /// The rules the cluster sends objects to the policy by: a ClusterAdmissionPolicy (its
    /// `spec.rules`) or a file with `rules`. Default: the rules embedded in the policy.
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// The namespace namespaced objects without `metadata.namespace` are created in.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Passed to the host: plain-HTTP and private registries.
    #[arg(long, value_name = "FILE")]
    sources_path: Option<PathBuf>,
    /// Passed to the host: a private Sigstore trust root (policy-server 1.35 and later).
    #[arg(long, value_name = "FILE")]
    sigstore_trust_config: Option<PathBuf>,
    /// What standard output shows.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write every manifest file read into DIR, with each admitted image pinned to the
    /// digest the policy sets.
    #[arg(long, value_name = "DIR", conflicts_with = "in_place")]
    write_pinned: Option<PathBuf>,
    /// Pin admitted images in the manifest files themselves.
    #[arg(long)]
    in_place: bool,
    /// Run `kwctl-VERSION` and `policy-server-VERSION` instead of `kwctl` and
    /// `policy-server`.
    #[arg(long, value_name = "VERSION")]
    kubewarden_version: Option<String>,
    /// The host: policy-server (started once), kwctl (one `kwctl run` per object), or auto:
    /// policy-server when installed.
    #[arg(long, value_enum, default_value_t = Choice::Auto)]
    host: Choice,
    /// Objects evaluated at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    clients: u16,
    /// policy-server's deadline for one evaluation, in seconds (its default: 2, as in a
    /// cluster).
    #[arg(long, value_name = "SECONDS")]
    policy_timeout: Option<u64>,
    /// Files larger than this many bytes are reported, not read.
    #[arg(long, default_value_t = 32 * 1024 * 1024, value_name = "BYTES")]
    max_file_size: u64,
}

impl Args {
    pub fn options(self) -> Options {
        Options {
            settings: self.settings,
            manifests: self.manifests,
            policy: self.policy,
            metadata: self.metadata,
            rules: self.rules,
            namespace: self.namespace,
            sources_path: self.sources_path,
            trust_config: self.sigstore_trust_config,
            output: self.output,
            junit: self.junit,
            pin: match (self.write_pinned, self.in_place) {
                (Some(dir), _) => Some(Target::Dir(dir)),
                (None, true) => Some(Target::InPlace),
                (None, false) => None,
            },
            kubewarden_version: self.kubewarden_version,
            host: self.host,
            clients: usize::from(self.clients),
            policy_timeout: self.policy_timeout,
            max_file_size: self.max_file_size,
        }
    }
}
