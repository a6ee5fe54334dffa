//! Counters of the host calls served, so tests can assert exact call counts.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A snapshot of what the host has served since it was built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCallStats {
    /// Host calls received, keyed `namespace/operation` (e.g. `oci/v2/verify`),
    /// whether they succeeded or failed.
    pub per_operation: BTreeMap<String, u64>,
    /// Sum of `per_operation`.
    pub total: u64,
    /// `v2/verify` calls that really went to the registry (cache misses).
    pub verifications_performed: u64,
    /// `v2/verify` calls answered from the success cache.
    pub verification_cache_hits: u64,
    /// Times an image's signatures were read from its registry (registry-cache misses).
    pub signature_reads: u64,
}

impl HostCallStats {
    /// Calls received for one `namespace/operation` key (0 when never called).
    pub fn calls(&self, operation: &str) -> u64 {
        self.per_operation.get(operation).copied().unwrap_or(0)
    }
}

#[derive(Default)]
pub(crate) struct StatsRecorder(Mutex<HostCallStats>);

impl StatsRecorder {
    fn update(&self, f: impl FnOnce(&mut HostCallStats)) {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub(crate) fn record_call(&self, namespace: &str, operation: &str) {
        self.update(|s| {
            *s.per_operation
                .entry(format!("{namespace}/{operation}"))
                .or_default() += 1;
            s.total += 1;
        });
    }

    pub(crate) fn record_verification_performed(&self) {
        self.update(|s| s.verifications_performed += 1);
    }

    pub(crate) fn record_signatures_read(&self) {
        self.update(|s| s.signature_reads += 1);
    }

    pub(crate) fn record_cache_hit(&self) {
        self.update(|s| s.verification_cache_hits += 1);
    }

    pub(crate) fn snapshot(&self) -> HostCallStats {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
