//! What a benchmark needs from the host: host calls answered instantly from memory, so
//! that a timing shows the policy's own cost; instances driven from the caller's thread,
//! without the hop to a worker thread; and the guest's peak linear memory.

use std::sync::Arc;

use wapc::WapcHost;

use super::peak_memory::PeakMemory;
use super::{Host, HostBuilder};

/// Answers the registry capabilities that only return a digest without any I/O.
pub(crate) struct InstantAnswers {
    verify: Vec<u8>,
    manifest_digest: Vec<u8>,
}

impl InstantAnswers {
    fn new(digest: &str) -> Self {
        let answer = |value: serde_json::Value| value.to_string().into_bytes();
        Self {
            verify: answer(serde_json::json!({"is_trusted": true, "digest": digest})),
            manifest_digest: answer(serde_json::json!({ "digest": digest })),
        }
    }

    /// The canned answer to `namespace/operation`, if it has one.
    pub(crate) fn answer(&self, namespace: &str, operation: &str) -> Option<Vec<u8>> {
        match (namespace, operation) {
            ("oci", "v2/verify") => Some(self.verify.clone()),
            ("oci", "v1/manifest_digest") => Some(self.manifest_digest.clone()),
            _ => None,
        }
    }
}

/// Bench-only settings of a [`HostBuilder`].
#[derive(Default)]
pub(crate) struct BenchOptions {
    pub(crate) instant_answers: Option<InstantAnswers>,
    pub(crate) peak_memory: Option<Arc<PeakMemory>>,
}

impl HostBuilder {
    /// Answers every `oci/v2/verify` with `{"is_trusted":true,"digest":DIGEST}` and every
    /// `oci/v1/manifest_digest` with `{"digest":DIGEST}`, from memory. The calls are still
    /// counted in [`Host::stats`]; other capabilities are served as usual.
    pub fn instant_answers(mut self, digest: &str) -> Self {
        self.bench.instant_answers = Some(InstantAnswers::new(digest));
        self
    }

    /// Records the largest size the guest's linear memory reaches, for
    /// [`Host::peak_memory_bytes`]. Such a host has no execution deadline and its
    /// instances start without copy-on-write memory images: time on another host.
    pub fn track_peak_memory(mut self) -> Self {
        self.bench.peak_memory = Some(Arc::new(PeakMemory::default()));
        self
    }
}

impl Host {
    /// A fresh instance of the policy (with `wapc_init` run) that serves calls on the
    /// calling thread: what a benchmark times, without the worker threads' hand-off.
    pub fn instance(&self) -> anyhow::Result<PolicyInstance> {
        let wapc = self
            .module
            .instantiate()
            .map_err(|e| anyhow::anyhow!("cannot instantiate the policy: {e}"))?;
        Ok(PolicyInstance { wapc })
    }

    /// The largest linear memory any instance of this host has had, in bytes; `None`
    /// unless built with [`HostBuilder::track_peak_memory`].
    pub fn peak_memory_bytes(&self) -> Option<usize> {
        self.peak_memory.as_ref().map(|peak| peak.peak_bytes())
    }
}

/// One policy instance, used from the thread that made it.
pub struct PolicyInstance {
    wapc: WapcHost,
}

impl PolicyInstance {
    /// Calls a waPC operation of the guest; `Err` holds the waPC error text.
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.wapc
            .call(operation, payload)
            .map_err(|e| e.to_string())
    }
}
