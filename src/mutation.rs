//! Pinning verified images to their digest by rewriting exactly the bytes of their
//! JSON strings in the object's text: every other byte, including fields no
//! compiled-in Kubernetes type knows, stays as the user sent it, so the host's JSON
//! patch touches only images. It also spares parsing and printing the whole object.

use std::ops::Range;

use crate::verdict::ImageOutcome;
use crate::workload::ContainerImage;

/// One container image to rewrite.
#[derive(Debug, PartialEq, Eq)]
pub struct Pin {
    /// Byte range of the image's JSON string in the object's text.
    pub span: Range<usize>,
    /// The new value: the image as written, then `@digest`.
    pub image: String,
}

/// `image` pinned to `digest`, keeping the user's spelling and tag.
fn pinned(image: &str, digest: &str) -> String {
    [image, "@", digest].concat()
}

/// A pin for every container of a verified image written without a digest, of those
/// the request may change (see [`crate::update::Scope::may_pin`]).
pub fn pins(
    outcomes: &[ImageOutcome<'_, '_>],
    may_pin: impl Fn(&ContainerImage) -> bool,
) -> Vec<Pin> {
    let may_pin = &may_pin;
    outcomes
        .iter()
        .filter(|outcome| outcome.planned.image.digest().is_none())
        .filter_map(|outcome| Some((outcome, outcome.result.as_ref().ok()?.as_ref()?)))
        .flat_map(|(outcome, digest)| {
            outcome
                .planned
                .containers
                .iter()
                .filter(move |c| may_pin(c))
                .filter_map(move |c| {
                    Some(Pin {
                        span: c.span.clone()?,
                        image: pinned(c.image.as_deref()?, digest),
                    })
                })
        })
        .collect()
}

/// The object's text with `pins` applied; `None` when there is nothing to change.
pub fn apply(object: &str, mut pins: Vec<Pin>) -> Result<Option<String>, String> {
    if pins.is_empty() {
        return Ok(None);
    }
    pins.sort_by_key(|pin| pin.span.start);
    let mut mutated = String::with_capacity(object.len() + pins.len() * 72);
    let mut copied = 0;
    for pin in pins {
        mutated.push_str(&object[copied..pin.span.start]);
        let quoted = serde_json::to_string(&pin.image)
            .map_err(|e| format!("cannot write the pinned image {:?}: {e}", pin.image))?;
        mutated.push_str(&quoted);
        copied = pin.span.end;
    }
    mutated.push_str(&object[copied..]);
    Ok(Some(mutated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_pinned_strings() {
        let object =
            r#"{"a":1.50,"spec":{"containers":[{"image":"x:1"},{"image" : "y"}]},"z":"\u00e9"}"#;
        let x = object.find("\"x:1\"").unwrap();
        let y = object.find("\"y\"").unwrap();
        let pins = vec![
            Pin {
                span: y..y + 3,
                image: pinned("y", "sha256:2"),
            },
            Pin {
                span: x..x + 5,
                image: pinned("x:1", "sha256:1"),
            },
        ];
        assert_eq!(
            apply(object, pins).unwrap().unwrap(),
            r#"{"a":1.50,"spec":{"containers":[{"image":"x:1@sha256:1"},{"image" : "y@sha256:2"}]},"z":"\u00e9"}"#
        );
        assert_eq!(apply(object, Vec::new()), Ok(None));
    }
}
