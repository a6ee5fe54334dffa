//! What the real host answers: the AdmissionResponse (`kwctl run` prints it; policy-server
//! returns it inside an AdmissionReview), and the host calls kwctl recorded.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
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

/// The host calls in a `--record-host-capabilities-interactions` file: a list of exchanges
/// whose `request` is YAML text starting with its type's tag (`!SigstorePubKeyVerify`, ...).
pub fn recorded_calls(text: &str) -> Result<HostCalls> {
    #[derive(serde::Deserialize)]
    struct Exchange {
        request: String,
    }
    let exchanges: Option<Vec<Exchange>> =
        serde_yaml::from_str(text).context("kwctl's host-call recording is unreadable")?;
    let mut calls = HostCalls::default();
    for exchange in exchanges.into_iter().flatten() {
        let tag = exchange
            .request
            .split_whitespace()
            .next()
            .and_then(|first| first.strip_prefix('!'))
            .unwrap_or("untagged");
        *calls.per_operation.entry(operation_of(tag)).or_default() += 1;
    }
    Ok(calls)
}

/// The `namespace/operation` of a recorded request type, as the policy called it.
fn operation_of(tag: &str) -> String {
    match tag {
        t if t.starts_with("Sigstore") => "oci/v2/verify".to_owned(),
        "OciManifestDigest" => "oci/v1/manifest_digest".to_owned(),
        "OciManifest" => "oci/v1/oci_manifest".to_owned(),
        "OciManifestAndConfig" => "oci/v1/oci_manifest_config".to_owned(),
        "CryptoVerifyCert" | "CryptoVerifyCertificate" => {
            "crypto/v1/is_certificate_trusted".to_owned()
        }
        other => format!("kwctl/{other}"),
    }
}
