//! The AdmissionResponse the real host answers with (`kwctl run` prints it; policy-server
//! returns it inside an AdmissionReview), as the suite reads it.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

/// Why the request was rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AdmissionResponseStatus {
    pub message: Option<String>,
    pub code: Option<u16>,
}

/// `admission.k8s.io/v1` AdmissionResponse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    #[serde(default)]
    pub uid: String,
    pub allowed: bool,
    /// `JSONPatch` whenever `patch` is set.
    pub patch_type: Option<String>,
    /// Base64 of the JSON text of an RFC 6902 patch.
    pub patch: Option<String>,
    pub status: Option<AdmissionResponseStatus>,
    pub audit_annotations: Option<BTreeMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

impl AdmissionResponse {
    /// The rejection message, or `""`.
    pub fn message(&self) -> &str {
        self.status
            .as_ref()
            .and_then(|s| s.message.as_deref())
            .unwrap_or_default()
    }

    /// The decoded RFC 6902 operations of `patch`.
    pub fn decoded_patch(&self) -> Option<Value> {
        let text = STANDARD.decode(self.patch.as_ref()?).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// The host calls of one or more evaluations, as kwctl recorded them
/// (`--record-host-capabilities-interactions`), keyed `namespace/operation`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCalls {
    pub per_operation: BTreeMap<String, u64>,
}

impl HostCalls {
    /// Calls of one `namespace/operation` (0 when never called).
    pub fn calls(&self, operation: &str) -> u64 {
        self.per_operation.get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.per_operation.values().sum()
    }

    pub fn add(&mut self, other: &HostCalls) {
        for (operation, count) in &other.per_operation {
            *self.per_operation.entry(operation.clone()).or_default() += count;
        }
    }
}
