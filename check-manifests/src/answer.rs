//! What the policy answered about one object, read from the AdmissionResponse alone: the
//! images it names and what it did with each, from its audit annotations (`image-N`: the
//! image, where it sits, the digest it was verified at; README "Audit annotations"), its
//! JSON patch (the pinned spelling), and its rejection message (why each refused image was
//! refused; README "Verdicts"). No image is looked for in the object itself.

use std::sync::LazyLock;

use host_driver::AdmissionResponse;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One image the policy named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageResult {
    /// The image as written (empty for a container without an image).
    pub image: String,
    /// Where it sits, e.g. `spec.template.spec.containers[0]`; more places follow as
    /// ` (+2 more)` or, for a refused image, as a comma-separated list.
    pub at: String,
    /// The digest it was verified at.
    pub digest: Option<String>,
    /// What the patch writes instead: the image pinned to its digest.
    pub pinned: Option<String>,
    /// Why it was refused.
    pub reason: Option<String>,
}

/// The policy's answer about one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub allowed: bool,
    /// The rejection message, whole.
    pub message: Option<String>,
    pub images: Vec<ImageResult>,
    pub warnings: Vec<String>,
    /// The RFC 6902 operations of the patch.
    pub patch: Option<Value>,
}

/// The fields of an `image-N` audit annotation this report shows.
#[derive(Deserialize)]
struct Record {
    image: String,
    at: String,
    digest: Option<String>,
}

/// A refused image of a rejection message: its places, the image as written (none for a
/// container without one), and the reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    places: String,
    image: Option<String>,
    reason: String,
}

pub fn interpret(response: &AdmissionResponse) -> Answer {
    let message = Some(response.message())
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let patch = response.decoded_patch();
    let mut refused = message
        .as_deref()
        .and_then(refused_images)
        .unwrap_or_default();
    let mut images: Vec<ImageResult> = records(response)
        .into_iter()
        .map(|record| {
            let first = first_place(&record.at).to_owned();
            let reason = refused
                .iter()
                .position(|r| first_place(&r.places) == first)
                .map(|i| refused.remove(i).reason);
            ImageResult {
                pinned: patch.as_ref().and_then(|p| pinned_at(p, &first)),
                image: record.image,
                at: record.at,
                digest: record.digest,
                reason,
            }
        })
        .collect();
    images.extend(refused.into_iter().map(|r| ImageResult {
        image: r.image.unwrap_or_default(),
        at: r.places,
        digest: None,
        pinned: None,
        reason: Some(r.reason),
    }));
    Answer {
        allowed: response.allowed,
        message,
        images,
        warnings: response.warnings.clone().unwrap_or_default(),
        patch,
    }
}

/// The `image-N` audit records, in object order (by `N`).
fn records(response: &AdmissionResponse) -> Vec<Record> {
    let mut numbered: Vec<(usize, Record)> = response
        .audit_annotations
        .iter()
        .flatten()
        .filter_map(|(key, value)| {
            let n = key.strip_prefix("image-")?.parse().ok()?;
            Some((n, serde_json::from_str(value).ok()?))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    numbered.into_iter().map(|(_, record)| record).collect()
}

/// The first of the places an audit record or a rejection names.
fn first_place(places: &str) -> &str {
    places.split([' ', ',']).next().unwrap_or_default()
}

/// The value the patch replaces the image at `place` with: `place` in the JSON pointer of
/// a `replace` operation, as the policy names places (`spec.containers[0]` for the image of
/// that container, `spec.volumes[1].image.reference` for an image volume's).
fn pinned_at(patch: &Value, place: &str) -> Option<String> {
    patch.as_array()?.iter().find_map(|op| {
        let path = op["path"].as_str()?;
        let dotted = dotted(path);
        let at_place = dotted == place || dotted.strip_suffix(".image") == Some(place);
        (op["op"] == "replace" && at_place).then(|| op["value"].as_str().map(str::to_owned))?
    })
}

/// `/spec/containers/0/image` as `spec.containers[0].image`.
fn dotted(pointer: &str) -> String {
    let mut dotted = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty() {
            dotted.push_str(&format!("[{segment}]"));
        } else {
            if !dotted.is_empty() {
                dotted.push('.');
            }
            dotted.push_str(&segment);
        }
    }
    dotted
}

/// The refused images of a rejection message `N image(s) [of the KIND] failed
/// verification: ...`, each
/// `PLACES (IMAGE): REASONS` (`PLACE: REASON` for a container without an image), joined by
/// `; `; `None` for any other message, or one whose parts do not add up to `N`, so that
/// the message is shown whole instead.
fn refused_images(message: &str) -> Option<Vec<Refused>> {
    static HEAD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(\d+) images?(?: of the \S+)? failed verification: ").expect("regex")
    });
    // Candidates: places joined by `, `, then the image as written (no space nor
    // parenthesis) in parentheses, then `: `; kept when each place is a dotted path
    // ([`is_place`]), which no entry named in a reason is (`signatures[0] pubKeys:`).
    static PART: LazyLock<Regex> = LazyLock::new(|| {
        let place = r"[A-Za-z][\w.\[\]/-]*";
        Regex::new(&format!(
            r"(?:^|; )({place}(?:, {place})*)(?: \(([^()\s]*)\))?: "
        ))
        .expect("regex")
    });
    let head = HEAD.captures(message)?;
    let count: usize = head[1].parse().ok()?;
    let body = &message[head[0].len()..];
    let starts: Vec<regex::Captures> = PART
        .captures_iter(body)
        .filter(|c| c[1].split(", ").all(is_place))
        .collect();
    if starts.len() != count || starts.first()?.get(0)?.start() != 0 {
        return None;
    }
    let ends = starts
        .iter()
        .skip(1)
        .map(|c| c.get(0).map_or(body.len(), |m| m.start()));
    let parts = starts
        .iter()
        .zip(ends.chain([body.len()]))
        .map(|(captures, end)| Refused {
            places: captures[1].to_owned(),
            image: captures.get(2).map(|m| m.as_str().to_owned()),
            reason: body[captures.get(0).map_or(0, |m| m.end())..end].to_owned(),
        })
        .collect();
    Some(parts)
}

/// `spec.containers[0]`, `spec.volumes[1].image.reference`, `spec.image`: a path from the
/// object's root, so with a `.`.
fn is_place(text: &str) -> bool {
    text.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn response(
        allowed: bool,
        message: &str,
        patch: Option<Value>,
        annotations: &[(&str, Value)],
    ) -> AdmissionResponse {
        AdmissionResponse {
            allowed,
            patch: patch.map(|p| base64::engine::general_purpose::STANDARD.encode(p.to_string())),
            status: (!message.is_empty()).then(|| host_driver::AdmissionResponseStatus {
                message: Some(message.into()),
                code: Some(400),
            }),
            audit_annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            warnings: Some(vec!["w".into()]),
            ..AdmissionResponse::default()
        }
    }

    #[test]
    fn reads_pinned_images_from_the_patch_and_audit_annotations() {
        let patch = json!([
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "r/a:v1@sha256:aa"},
            {"op": "replace", "path": "/spec/template/spec/volumes/1/image/reference", "value": "r/v:v1@sha256:vv"},
        ]);
        let annotations = [
            (
                "image-1",
                json!({"image": "r/v:v1", "at": "spec.template.spec.volumes[1].image.reference", "digest": "sha256:vv"}),
            ),
            (
                "image-0",
                json!({"image": "r/a:v1", "at": "spec.template.spec.containers[0] (+1 more)", "digest": "sha256:aa"}),
            ),
            (
                "image-2",
                json!({"image": "r/b@sha256:bb", "at": "spec.template.spec.initContainers[0]", "digest": "sha256:bb"}),
            ),
        ];
        let answer = interpret(&response(true, "", Some(patch), &annotations));
        let got: Vec<(&str, Option<&str>, Option<&str>)> = answer
            .images
            .iter()
            .map(|i| (i.image.as_str(), i.digest.as_deref(), i.pinned.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("r/a:v1", Some("sha256:aa"), Some("r/a:v1@sha256:aa")),
                ("r/v:v1", Some("sha256:vv"), Some("r/v:v1@sha256:vv")),
                ("r/b@sha256:bb", Some("sha256:bb"), None),
            ]
        );
        assert_eq!(answer.warnings, ["w"]);
        assert!(answer.allowed && answer.message.is_none());
    }

    #[test]
    fn reads_why_each_image_was_refused_from_the_message() {
        let message = "3 images failed verification: spec.containers[0], spec.initContainers[1] (r/u:v1): signatures[0] pubKeys: pubKeys[0]: no signatures; signatures[1]: none of 2 alternatives holds: anyOf[0] pubKeys: pubKeys[0]: no signatures; anyOf[1] keyless: keyless[0] (a@b from https://c): not signed by the required signer; spec.containers[1]: the container has no image; spec.volumes[0].image.reference (r/x:v1): no signature rule matches this image, and rejectUnmatchedImages is set";
        let annotations = [(
            "image-0",
            json!({"image": "r/u:v1", "at": "spec.containers[0] (+1 more)", "failed": [{"entry": "signatures[0]", "reason": "no-signatures"}]}),
        )];
        let answer = interpret(&response(false, message, None, &annotations));
        let got: Vec<(&str, &str, &str)> = answer
            .images
            .iter()
            .map(|i| {
                (
                    i.image.as_str(),
                    i.at.as_str(),
                    i.reason.as_deref().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("r/u:v1", "spec.containers[0] (+1 more)", "signatures[0] pubKeys: pubKeys[0]: no signatures; signatures[1]: none of 2 alternatives holds: anyOf[0] pubKeys: pubKeys[0]: no signatures; anyOf[1] keyless: keyless[0] (a@b from https://c): not signed by the required signer"),
                ("", "spec.containers[1]", "the container has no image"),
                ("r/x:v1", "spec.volumes[0].image.reference", "no signature rule matches this image, and rejectUnmatchedImages is set"),
            ]
        );
        assert_eq!(answer.message.as_deref(), Some(message));
    }

    #[test]
    fn reads_images_outside_pod_specs() {
        let message = "2 images of the Widget failed verification: spec.image (r/u:v1): signatures[0] pubKeys: pubKeys[0]: no signatures; metadata.annotations.example.com/side-car (r/w:v1): signatures[0] pubKeys: pubKeys[0]: no signatures";
        let refused = refused_images(message).unwrap();
        let places: Vec<&str> = refused.iter().map(|r| r.places.as_str()).collect();
        assert_eq!(
            places,
            ["spec.image", "metadata.annotations.example.com/side-car"]
        );
        let patch =
            json!([{"op": "replace", "path": "/spec/steps/0/image", "value": "r/a@sha256:aa"}]);
        assert_eq!(
            pinned_at(&patch, "spec.steps[0].image").as_deref(),
            Some("r/a@sha256:aa")
        );
    }

    #[test]
    fn any_other_message_is_left_whole() {
        assert_eq!(
            refused_images(
                "Policy execution interrupted because it exceeded the allowed execution time"
            ),
            None
        );
        assert_eq!(
            refused_images("2 images failed verification: spec.containers[0] (a): no signatures"),
            None
        );
        let answer = interpret(&response(false, "internal error", None, &[]));
        assert!(answer.images.is_empty());
        assert_eq!(answer.message.as_deref(), Some("internal error"));
    }

    #[test]
    fn pointers_read_as_places() {
        assert_eq!(
            dotted("/spec/template/spec/containers/10/image"),
            "spec.template.spec.containers[10].image"
        );
        assert_eq!(dotted("/a~1b/c~0d"), "a/b.c~d");
    }
}
