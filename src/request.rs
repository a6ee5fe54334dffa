//! Reading the `validate` payload. Only what the policy uses is read; the object is
//! kept as raw JSON text so that it is parsed no more than needed.

use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
pub struct Payload<'a> {
    #[serde(borrow)]
    pub request: AdmissionRequest<'a>,
    #[serde(borrow)]
    pub settings: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest<'a> {
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(borrow)]
    pub old_object: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct GroupVersionKind {
    pub kind: String,
}

impl<'a> Payload<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self, String> {
        serde_json::from_slice(payload)
            .map_err(|e| format!("cannot read the admission request: {e}"))
    }
}

impl AdmissionRequest<'_> {
    /// The object, unless absent or `null` (as on DELETE).
    pub fn object(&self) -> Option<&RawValue> {
        self.object.filter(|o| o.get() != "null")
    }

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
