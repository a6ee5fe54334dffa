//! What a run is told: the command line ([`crate::cli`]) or a caller builds it.

use std::path::PathBuf;

use crate::host::Choice;
use crate::pin;

/// What standard output shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Everything a run is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub settings: PathBuf,
    pub manifests: Vec<PathBuf>,
    /// A file, `file://` path or `registry://` / `https://` reference.
    pub policy: String,
    pub metadata: PathBuf,
    /// The rules the cluster routes by, when not the module's own.
    pub rules: Option<PathBuf>,
    pub namespace: String,
    pub sources_path: Option<PathBuf>,
    pub trust_config: Option<PathBuf>,
    pub output: OutputFormat,
    pub junit: Option<PathBuf>,
    pub pin: Option<pin::Target>,
    pub kubewarden_version: Option<String>,
    pub host: Choice,
    pub clients: usize,
    pub policy_timeout: Option<u64>,
    pub max_file_size: u64,
}
