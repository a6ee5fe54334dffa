//! Reading the `validate` payload. Only what the policy uses is read. The object is
//! read as `O`: raw JSON text, kept so that it is parsed no more than needed, or
//! directly as what the policy looks for in it, in the same pass as the payload.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(bound(deserialize = "O: Deserialize<'de>, 'de: 'a"))]
pub struct Payload<'a, O = &'a RawValue> {
    pub request: AdmissionRequest<'a, O>,
    pub settings: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(bound(deserialize = "O: Deserialize<'de>, 'de: 'a"))]
pub struct AdmissionRequest<'a, O = &'a RawValue> {
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    pub object: Option<O>,
    pub old_object: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct GroupVersionKind {
    pub kind: String,
}

impl<'a, O: Deserialize<'a>> Payload<'a, O> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, String> {
        serde_json::from_slice(payload)
            .map_err(|e| format!("cannot read the admission request: {e}"))
    }
}

impl<'a> AdmissionRequest<'a> {
    /// The object, unless absent or `null` (as on DELETE).
    pub fn object(&self) -> Option<&'a RawValue> {
        self.object.filter(|o| o.get() != "null")
    }
}

impl<O> AdmissionRequest<'_, O> {
    /// The object before an UPDATE, unless absent or `null`.
    pub fn old_object(&self) -> Option<&RawValue> {
        self.old_object.filter(|o| o.get() != "null")
    }

    /// Whether the request is for the `pods/ephemeralcontainers` subresource, on which
    /// only ephemeral containers can change.
    pub fn is_ephemeral_containers(&self) -> bool {
        self.sub_resource.as_deref() == Some("ephemeralcontainers")
    }
}
