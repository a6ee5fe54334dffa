//! The end-to-end side of verify-image-signatures: signed-image fixtures in a local registry,
//! and what the suite, the demo, the benchmark and the load test run on the real Kubewarden
//! host, which `host-driver` starts.

pub mod backend;
pub mod bench;
pub mod bench_manifests;
pub mod charts;
pub mod fault_proxy;
pub mod fixtures;
pub mod load;

use std::path::{Path, PathBuf};

/// A file of this repository, e.g. `metadata.yml`.
pub fn repo_file(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(name)
}

/// The annotated policy the end-to-end suites run: `POLICY_WASM` (which `make` sets), else
/// the one `make annotated-policy.wasm` writes. Panics, saying how to build it, when there
/// is none.
pub fn policy_wasm() -> PathBuf {
    let wasm = std::env::var_os("POLICY_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_file("annotated-policy.wasm"));
    assert!(
        wasm.is_file(),
        "no {}: run `make e2e-tests`",
        wasm.display()
    );
    wasm
}
