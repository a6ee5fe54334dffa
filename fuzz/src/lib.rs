//! What the fuzz targets share: fake verifiers (a target sees only the policy's public
//! API, never the host) and the invariants every verdict must keep.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use verify_image_signatures::policy::Verdict;
use verify_image_signatures::verifier::{Check, Failure, Verifier};

/// The digest [`Signed`] verifies every image at.
pub const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A real public key, so that settings using it pass `validate_settings`.
pub const KEY: &str = include_str!("../../tests/data/key1.pub");

/// A registry where no image carries a signature.
pub struct Unsigned;

impl Verifier for Unsigned {
    fn verify(&self, check: &Check<'_>) -> Result<String, Failure> {
        Err(Failure::from_host_error(&format!(
            "no signatures found for image: {}",
            check.image
        )))
    }
}

/// A registry where every image is signed by everyone, at [`DIGEST`].
pub struct Signed;

impl Verifier for Signed {
    fn verify(&self, _: &Check<'_>) -> Result<String, Failure> {
        Ok(DIGEST.to_owned())
    }
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    request: Request<'a>,
}

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

/// A mutation may only rewrite container images: the host sends the API server the
/// JSON patch between the object and the mutated object, and it must touch nothing else.
pub fn assert_patch_touches_only_images(payload: &[u8], verdict: &Verdict) {
    let Verdict::Mutate(mutated) = verdict else {
        return;
    };
    let payload: Payload = serde_json::from_slice(payload).expect("a mutated payload was read");
    let original: Value =
        serde_json::from_str(payload.request.object.get()).expect("a mutated object was read");
    let mutated: Value = serde_json::from_str(mutated).expect("the mutated object is JSON");
    let patch = serde_json::to_value(json_patch::diff(&original, &mutated)).unwrap();
    for op in patch.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        assert!(
            op["op"] == "replace" && path.ends_with("/image"),
            "the mutation touches more than images: {op}"
        );
        let old = original.pointer(path).and_then(Value::as_str).unwrap();
        let new = op["value"].as_str().unwrap();
        assert_eq!(new, format!("{old}@{DIGEST}"), "pinned to another digest");
    }
}
