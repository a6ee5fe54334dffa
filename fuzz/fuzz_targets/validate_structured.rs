//! Arbitrary strings as images and objects inside an otherwise valid request, so the
//! fuzzer spends its time past the JSON parser: under catch-all settings and an
//! unsigned registry, every covered workload with a container is rejected unless an
//! old object lets an UPDATE leave images unchanged; when everything is signed, a
//! mutation only pins images, and an UPDATE that changes nothing pins nothing.
//! Requests are CREATE, UPDATE (with or without `oldObject`), DELETE or CONNECT, on
//! the resource or on a subresource such as `pods/ephemeralcontainers`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use verify_image_signatures::policy::{self, Verdict};
use verify_image_signatures_fuzz::{assert_patch_touches_only_images, Signed, Unsigned, KEY};

/// Kinds by where their pod spec sits; `Rollout` stands for any custom controller.
const KINDS: &[(&str, &[&str])] = &[
    ("Pod", &["spec"]),
    ("Deployment", &["spec", "template", "spec"]),
    ("StatefulSet", &["spec", "template", "spec"]),
    ("Job", &["spec", "template", "spec"]),
    ("Rollout", &["spec", "template", "spec"]),
    (
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
];

const OPERATIONS: &[&str] = &["CREATE", "UPDATE", "DELETE", "CONNECT"];

/// The resource itself, then subresources: only `ephemeralcontainers` changes images.
const SUBRESOURCES: &[&str] = &["", "ephemeralcontainers", "status", "scale", "resize"];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    kind: u8,
    operation: u8,
    subresource: u8,
    settings: Settings,
    old_object: OldObject<'a>,
    object: Object<'a>,
}

/// The request's `oldObject`, which the policy reads on UPDATE.
#[derive(Arbitrary, Debug)]
enum OldObject<'a> {
    Absent,
    Null,
    /// The same text as the object: an UPDATE that changes no image.
    Same,
    Other(Object<'a>),
}

/// Fixed settings: the first two reject every image of an unsigned registry.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Settings {
    CatchAll,
    RejectUnmatched,
    SkipAndPods,
}

impl Settings {
    fn json(self) -> Value {
        match self {
            Settings::CatchAll => json!({"signatures": [{"image": "*", "pubKeys": [KEY]}]}),
            Settings::RejectUnmatched => json!({
                "signatures": [{
                    "image": "ghcr.io/acme/*",
                    "anyOf": [
                        {"keyless": [{"issuer": "https://issuer", "subject": "a@b"}], "annotations": {"env": "prod"}},
                        {"pubKeys": [KEY, KEY], "minimumMatches": 1},
                    ],
                }],
                "rejectUnmatchedImages": true,
            }),
            Settings::SkipAndPods => json!({
                "signatures": [{"image": "*:*", "githubActions": {"owner": "acme"}}],
                "skipImages": ["registry.k8s.io/pause:*", "*@sha256:*"],
                "requireDigest": false,
                "digestPinning": "pods",
            }),
        }
    }

    fn rejects_every_unsigned_image(self) -> bool {
        matches!(self, Settings::CatchAll | Settings::RejectUnmatched)
    }
}

#[derive(Arbitrary, Debug)]
enum Object<'a> {
    /// Spliced into the payload as JSON text, as it stands.
    Raw(&'a str),
    /// A workload of the request's kind with these images in its container lists.
    Workload {
        containers: Vec<Option<&'a str>>,
        init_containers: Vec<Option<&'a str>>,
        ephemeral_containers: Vec<Option<&'a str>>,
    },
}

fn list(images: &[Option<&str>]) -> Value {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| match image {
            Some(image) => json!({"name": format!("c{i}"), "image": image}),
            None => json!({"name": format!("c{i}")}),
        })
        .collect()
}

impl Object<'_> {
    /// The object as JSON text in a request of `kind` (whose pod spec sits at `path`),
    /// and how many containers it holds.
    fn json(&self, path: &[&str]) -> (String, usize) {
        match self {
            Object::Raw(text) => (text.to_string(), 0),
            Object::Workload {
                containers,
                init_containers,
                ephemeral_containers,
            } => {
                let mut spec = json!({
                    "containers": list(containers),
                    "initContainers": list(init_containers),
                    "ephemeralContainers": list(ephemeral_containers),
                });
                for key in path.iter().rev() {
                    spec = json!({ *key: spec });
                }
                spec["metadata"] = json!({"name": "w"});
                let count = containers.len() + init_containers.len() + ephemeral_containers.len();
                (spec.to_string(), count)
            }
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let (kind, path) = KINDS[usize::from(input.kind) % KINDS.len()];
    let operation = OPERATIONS[usize::from(input.operation) % OPERATIONS.len()];
    let subresource = SUBRESOURCES[usize::from(input.subresource) % SUBRESOURCES.len()];
    let (object, containers) = input.object.json(path);
    let old_object = match &input.old_object {
        OldObject::Absent => None,
        OldObject::Null => Some("null".to_owned()),
        OldObject::Same => Some(object.clone()),
        OldObject::Other(old) => Some(old.json(path).0),
    };
    let request = json!({
        "uid": "fuzz",
        "kind": {"group": "", "version": "v1", "kind": kind},
        "operation": operation,
        "subResource": subresource,
    });
    let mut payload = request.to_string();
    payload.pop();
    // The objects are spliced in as text, so that a raw one reaches the policy as written.
    let old_object = old_object.map_or_else(String::new, |old| format!(",\"oldObject\":{old}"));
    let payload = format!(
        "{{\"request\":{payload},\"object\":{object}{old_object}}},\"settings\":{}}}",
        input.settings.json()
    );
    // Only an UPDATE compares with its old object; without one, every image is new.
    let compared =
        operation == "UPDATE" && matches!(input.old_object, OldObject::Same | OldObject::Other(_));

    let unsigned = policy::validate(payload.as_bytes(), &Unsigned);
    if containers > 0 && !compared && input.settings.rejects_every_unsigned_image() {
        assert!(
            matches!(unsigned, Verdict::Reject(_)),
            "{containers} unsigned images admitted: {unsigned:?}"
        );
    }
    assert!(
        !matches!(unsigned, Verdict::Mutate(_)),
        "an unsigned image was pinned"
    );
    let signed = policy::validate(payload.as_bytes(), &Signed);
    assert_patch_touches_only_images(payload.as_bytes(), &signed);
    let unchanged = operation == "UPDATE"
        && matches!(input.old_object, OldObject::Same)
        && matches!(input.object, Object::Workload { .. });
    if unchanged {
        assert!(
            !matches!(signed, Verdict::Mutate(_)),
            "an UPDATE that changes no image pinned one: {signed:?}"
        );
    }
});
