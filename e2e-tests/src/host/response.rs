//! The AdmissionResponse the Kubewarden host sends back to the API server, built
//! from the policy's ValidationResponse. A mutation arrives as the whole mutated
//! object; the API server wants an RFC 6902 patch against the original object.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use kubewarden_policy_sdk::response::ValidationResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why the API server rejected or accepted the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdmissionResponseStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
}

/// `admission.k8s.io/v1` AdmissionResponse, serialized like the real host does
/// (`auditAnnotations` and `warnings` are always present, possibly `null`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    /// `JSONPatch` whenever `patch` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    /// Base64 of the JSON text of an RFC 6902 patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmissionResponseStatus>,
    pub audit_annotations: Option<BTreeMap<String, String>>,
    pub warnings: Option<Vec<String>>,
}

impl AdmissionResponse {
    /// A rejection with a message and code.
    pub fn reject(uid: &str, message: String, code: Option<u16>) -> Self {
        Self {
            uid: uid.to_owned(),
            allowed: false,
            status: Some(AdmissionResponseStatus {
                message: Some(message),
                code,
            }),
            ..Self::default()
        }
    }

    /// What the host answers when the policy itself failed (trap, timeout, bad output).
    pub fn internal_server_error(uid: &str, message: impl std::fmt::Display) -> Self {
        Self::reject(uid, format!("internal server error: {message}"), Some(500))
    }

    /// Turns the policy's verdict into the response. `object` is the request's
    /// `object` (absent on DELETE, where a mutation is refused).
    pub fn from_validation_response(
        uid: &str,
        object: Option<&Value>,
        verdict: ValidationResponse,
    ) -> Result<Self, serde_json::Error> {
        let patch = match (verdict.mutated_object.as_ref(), object) {
            (Some(_), None) => {
                return Ok(Self::reject(
                    uid,
                    "Incoming object is null, which happens only with DELETE operations, but the policy is attempting a mutation. This is not allowed".to_owned(),
                    None,
                ));
            }
            (Some(mutated), Some(original)) => json_patch_base64(original, mutated)?,
            (None, _) => None,
        };
        let status = (verdict.message.is_some() || verdict.code.is_some()).then_some(
            AdmissionResponseStatus {
                message: verdict.message,
                code: verdict.code,
            },
        );
        Ok(Self {
            uid: uid.to_owned(),
            allowed: verdict.accepted,
            patch_type: patch.as_ref().map(|_| "JSONPatch".to_owned()),
            patch,
            status,
            audit_annotations: verdict.audit_annotations.map(|a| a.into_iter().collect()),
            warnings: verdict.warnings,
        })
    }

    /// The decoded RFC 6902 operations of `patch`, for tests and reports.
    pub fn decoded_patch(&self) -> Option<Value> {
        let text = STANDARD.decode(self.patch.as_ref()?).ok()?;
        serde_json::from_slice(&text).ok()
    }
}

/// The base64 JSON patch from `original` to `mutated`, or `None` when they are equal.
fn json_patch_base64(
    original: &Value,
    mutated: &Value,
) -> Result<Option<String>, serde_json::Error> {
    let patch = json_patch::diff(original, mutated);
    if patch.0.is_empty() {
        return Ok(None);
    }
    Ok(Some(STANDARD.encode(serde_json::to_string(&patch)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn verdict(value: Value) -> ValidationResponse {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn mutation_becomes_a_base64_json_patch() {
        let original =
            json!({"spec": {"containers": [{"name": "a", "image": "busybox:1.36"}], "dropMe": 1}});
        let mutated =
            json!({"spec": {"containers": [{"name": "a", "image": "busybox:1.36@sha256:abc"}]}});
        let resp = AdmissionResponse::from_validation_response(
            "uid-1",
            Some(&original),
            verdict(json!({"accepted": true, "mutated_object": mutated})),
        )
        .unwrap();
        assert!(resp.allowed);
        assert_eq!(resp.patch_type.as_deref(), Some("JSONPatch"));
        let ops = resp.decoded_patch().unwrap();
        assert!(ops
            .as_array()
            .unwrap()
            .contains(&json!({"op": "remove", "path": "/spec/dropMe"})));
        assert!(ops.as_array().unwrap().contains(
            &json!({"op": "replace", "path": "/spec/containers/0/image", "value": "busybox:1.36@sha256:abc"})
        ));
        // Applying the patch to the original yields the mutated object.
        let mut patched = original.clone();
        let patch: json_patch::Patch = serde_json::from_value(ops).unwrap();
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(patched, mutated);
    }

    #[test]
    fn identical_mutation_has_no_patch() {
        let object = json!({"a": 1});
        let resp = AdmissionResponse::from_validation_response(
            "u",
            Some(&object),
            verdict(json!({"accepted": true, "mutated_object": {"a": 1}})),
        )
        .unwrap();
        assert_eq!(resp.patch, None);
        assert_eq!(resp.patch_type, None);
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            json!({"uid": "u", "allowed": true, "auditAnnotations": null, "warnings": null})
        );
    }

    #[test]
    fn rejection_shape() {
        let resp = AdmissionResponse::from_validation_response(
            "u",
            Some(&json!({})),
            ValidationResponse {
                accepted: false,
                message: Some("no".into()),
                code: Some(400),
                mutated_object: None,
                audit_annotations: Some(HashMap::from([("k".into(), "v".into())])),
                warnings: Some(vec!["w".into()]),
            },
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&resp).unwrap(),
            json!({"uid": "u", "allowed": false, "status": {"message": "no", "code": 400},
                   "auditAnnotations": {"k": "v"}, "warnings": ["w"]})
        );
        let err = AdmissionResponse::internal_server_error("u", "boom");
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"uid": "u", "allowed": false,
                   "status": {"message": "internal server error: boom", "code": 500},
                   "auditAnnotations": null, "warnings": null})
        );
    }

    #[test]
    fn mutation_without_object_is_refused() {
        let resp = AdmissionResponse::from_validation_response(
            "u",
            None,
            verdict(json!({"accepted": true, "mutated_object": {"a": 1}})),
        )
        .unwrap();
        assert!(!resp.allowed);
        assert!(resp.status.unwrap().message.unwrap().contains("DELETE"));
    }
}
