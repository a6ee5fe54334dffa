//! Pinning verified images to their digest by editing the object's JSON in place:
//! every other field, including ones no compiled-in Kubernetes type knows, stays
//! exactly as the user sent it, so the host's JSON patch touches only images.

use serde_json::Value;

/// One container image to rewrite.
#[derive(Debug, PartialEq, Eq)]
pub struct Pin {
    /// RFC 6901 pointer to the container's `image` field.
    pub pointer: String,
    /// The new value: the image as written, then `@digest`.
    pub image: String,
}

/// `image` pinned to `digest`, keeping the user's spelling and tag.
pub fn pinned(image: &str, digest: &str) -> String {
    format!("{image}@{digest}")
}

/// Applies `pins` to `object`; `None` when there is nothing to change.
pub fn apply(object: &str, pins: &[Pin]) -> Result<Option<Value>, String> {
    if pins.is_empty() {
        return Ok(None);
    }
    let mut value: Value =
        serde_json::from_str(object).map_err(|e| format!("cannot read the object: {e}"))?;
    for pin in pins {
        match value.pointer_mut(&pin.pointer) {
            Some(slot @ Value::String(_)) => *slot = Value::String(pin.image.clone()),
            _ => return Err(format!("cannot pin {}: no image there", pin.pointer)),
        }
    }
    Ok(Some(value))
}
