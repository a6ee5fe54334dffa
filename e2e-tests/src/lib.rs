//! The end-to-end side of verify-image-signatures: signed-image fixtures in a local registry,
//! and what the suite, the demo, the benchmark and the load test run on the real Kubewarden
//! host, which `host-driver` starts.

pub mod backend;
pub mod bench;
pub mod bench_manifests;
pub mod charts;
pub mod fixtures;
pub mod load;

use std::path::{Path, PathBuf};

/// A file of this repository, e.g. `metadata.yml`.
pub fn repo_file(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(name)
}
