//! What the real host answers: the AdmissionResponse (`kwctl run` prints it; policy-server
//! returns it inside an AdmissionReview).

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
