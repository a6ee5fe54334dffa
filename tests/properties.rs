//! Properties of the policy over generated admission requests, settings and image
//! spellings: no input panics, no unsigned image of a covered kind is admitted, a
//! mutation touches only images, an UPDATE never pins what already ran, and one image
//! in any spelling meets the same rules.

use std::cell::RefCell;
use std::collections::BTreeSet;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use verify_image_signatures::image::{ImagePattern, ImageRef, Spellings};
use verify_image_signatures::policy::{self, Verdict};
use verify_image_signatures::verifier::{Check, Failure, Verifier};
use wildmatch::WildMatch;

const DIGEST: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY: &str = include_str!("data/key1.pub");
const KEY2: &str = include_str!("data/key2.pub");

/// A registry without signatures; records the images it was asked about.
#[derive(Default)]
struct Unsigned(RefCell<BTreeSet<String>>);

impl Verifier for Unsigned {
    fn verify(&self, check: &Check<'_>) -> Result<String, Failure> {
        self.0.borrow_mut().insert(check.image.to_string());
        Err(Failure::from_host_error(&format!(
            "no signatures found for image: {}",
            check.image
        )))
    }
}

/// A registry where everyone signed everything, at [`DIGEST`].
struct Signed;

impl Verifier for Signed {
    fn verify(&self, _: &Check<'_>) -> Result<String, Failure> {
        Ok(DIGEST.to_owned())
    }
}

/// Every kind the policy covers, with where its pod spec sits; `Rollout` stands for any
/// custom controller with a pod template.
const COVERED: &[(&str, &[&str])] = &[
    ("Pod", &["spec"]),
    ("Deployment", &["spec", "template", "spec"]),
    ("ReplicaSet", &["spec", "template", "spec"]),
    ("StatefulSet", &["spec", "template", "spec"]),
    ("DaemonSet", &["spec", "template", "spec"]),
    ("ReplicationController", &["spec", "template", "spec"]),
    ("Job", &["spec", "template", "spec"]),
    (
        "CronJob",
        &["spec", "jobTemplate", "spec", "template", "spec"],
    ),
    ("Rollout", &["spec", "template", "spec"]),
];

const LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Every built-in kind whose images lie outside pod specs, with the JSON pointers where an
/// image may sit (a number is the element of a list at that index).
const FAMILIES: &[(&str, &str, &[&str])] = &[
    (
        "tekton.dev",
        "Task",
        &[
            "/spec/steps/0/image",
            "/spec/steps/1/image",
            "/spec/sidecars/0/image",
            "/spec/stepTemplate/image",
        ],
    ),
    (
        "tekton.dev",
        "ClusterTask",
        &["/spec/steps/0/image", "/spec/sidecars/0/image"],
    ),
    (
        "tekton.dev",
        "TaskRun",
        &[
            "/spec/taskSpec/steps/0/image",
            "/spec/taskSpec/sidecars/0/image",
            "/spec/taskSpec/stepTemplate/image",
        ],
    ),
    (
        "tekton.dev",
        "Pipeline",
        &[
            "/spec/tasks/0/taskSpec/steps/0/image",
            "/spec/tasks/1/pipelineSpec/tasks/0/taskSpec/sidecars/0/image",
            "/spec/finally/0/taskSpec/stepTemplate/image",
        ],
    ),
    (
        "tekton.dev",
        "PipelineRun",
        &[
            "/spec/pipelineSpec/tasks/0/taskSpec/steps/0/image",
            "/spec/pipelineSpec/finally/0/taskSpec/steps/1/image",
        ],
    ),
    ("tekton.dev", "StepAction", &["/spec/image"]),
    (
        "argoproj.io",
        "Workflow",
        &[
            "/spec/templates/0/container/image",
            "/spec/templates/1/script/image",
            "/spec/templates/2/initContainers/0/image",
            "/spec/templates/2/sidecars/0/image",
            "/spec/templates/3/containerSet/containers/0/image",
            "/spec/templateDefaults/container/image",
        ],
    ),
    (
        "argoproj.io",
        "WorkflowTemplate",
        &[
            "/spec/templates/0/steps/0/0/inline/container/image",
            "/spec/templates/1/dag/tasks/0/inline/script/image",
        ],
    ),
    (
        "argoproj.io",
        "ClusterWorkflowTemplate",
        &[
            "/spec/templates/0/container/image",
            "/spec/templates/0/sidecars/1/image",
        ],
    ),
    (
        "argoproj.io",
        "CronWorkflow",
        &[
            "/spec/workflowSpec/templates/0/container/image",
            "/spec/workflowSpec/templates/1/containerSet/containers/1/image",
        ],
    ),
    (
        "kubevirt.io",
        "VirtualMachineInstance",
        &[
            "/spec/volumes/0/containerDisk/image",
            "/spec/domain/firmware/kernelBoot/container/image",
        ],
    ),
    (
        "kubevirt.io",
        "VirtualMachine",
        &[
            "/spec/template/spec/volumes/0/containerDisk/image",
            "/spec/template/spec/volumes/1/containerDisk/image",
        ],
    ),
    (
        "kubevirt.io",
        "VirtualMachineInstanceReplicaSet",
        &["/spec/template/spec/domain/firmware/kernelBoot/container/image"],
    ),
];

const DOCKER_HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::from),
            btree_map("[a-zA-Z]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Fields no rule looks at: they must survive a mutation untouched.
fn extras() -> impl Strategy<Value = Map<String, Value>> {
    btree_map("x[a-zA-Z]{0,5}", json_value(), 0..3).prop_map(|m| m.into_iter().collect())
}

/// A valid image reference, in canonical parts: (registry or none, repository, tag, digest).
fn image_parts() -> impl Strategy<Value = (Option<String>, String, Option<String>, Option<String>)>
{
    let registry = prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "docker.io",
            "ghcr.io",
            "quay.io",
            "localhost",
            "127.0.0.1:5000",
            "registry.example.com:8443",
        ])
        .prop_map(|r| Some(r.to_owned())),
        "[a-z0-9]{1,6}(\\.[a-z0-9]{1,6}){1,2}".prop_map(Some),
    ];
    let repository = vec("[a-z0-9]{1,5}([._-][a-z0-9]{1,4})?", 1..4).prop_map(|c| c.join("/"));
    let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}");
    let digest = proptest::option::of("[0-9a-f]{64}".prop_map(|hex| format!("sha256:{hex}")));
    (registry, repository, tag, digest)
}

fn write_image(parts: &(Option<String>, String, Option<String>, Option<String>)) -> String {
    let (registry, repository, tag, digest) = parts;
    let mut image = match registry {
        Some(registry) => format!("{registry}/{repository}"),
        None => repository.clone(),
    };
    if let Some(tag) = tag {
        image += &format!(":{tag}");
    }
    if let Some(digest) = digest {
        image += &format!("@{digest}");
    }
    image
}

fn image() -> impl Strategy<Value = String> {
    image_parts().prop_map(|parts| write_image(&parts))
}

/// Other spellings of `image` that a runtime pulls from the same repository.
fn spellings(image: &ImageRef) -> Vec<String> {
    let full = image.to_string();
    let suffix = &full[image.name().len()..];
    let (registry, repository) = image.name().split_once('/').unwrap();
    let mut names = vec![full.clone()];
    if !registry.contains(':') {
        names.push(format!("{registry}:443/{repository}{suffix}"));
    }
    if registry.contains(['.', ':']) {
        names.push(format!("{}/{repository}{suffix}", registry.to_uppercase()));
    }
    if registry == "docker.io" {
        for alias in DOCKER_HUB_ALIASES {
            names.push(format!("{alias}/{repository}{suffix}"));
            names.push(format!("{}/{repository}{suffix}", alias.to_uppercase()));
        }
        // Without a registry, unless the first component would read as one.
        let first = repository.split('/').next().unwrap();
        if !first.contains(['.', ':']) && first != "localhost" {
            names.push(format!("{repository}{suffix}"));
            match repository.strip_prefix("library/") {
                Some(bare) if !bare.contains('/') => names.push(format!("{bare}{suffix}")),
                _ => {}
            }
            if suffix == ":latest" {
                names.push(repository.to_owned());
            }
        }
    }
    names
}

/// An object with its pod spec at `path`, `images` in its container lists (by list
/// index), unrelated fields around them; and the pointer to each image.
fn workload(
    path: &[&str],
    images: &[(usize, String)],
    extras: &Map<String, Value>,
) -> (Value, Vec<String>) {
    let mut lists: [Vec<Value>; 3] = Default::default();
    let mut pointers = Vec::new();
    for (list, image) in images {
        let mut container = extras.clone();
        container.insert("name".into(), json!(format!("c{}", lists[*list].len())));
        container.insert("image".into(), json!(image));
        pointers.push(format!(
            "/{}/{}/{}/image",
            path.join("/"),
            LISTS[*list],
            lists[*list].len()
        ));
        lists[*list].push(Value::Object(container));
    }
    let mut spec = extras.clone();
    for (name, list) in LISTS.iter().zip(lists) {
        spec.insert((*name).into(), Value::Array(list));
    }
    let mut object = Value::Object(spec);
    for (depth, key) in path.iter().enumerate().rev() {
        let mut parent = if depth == 0 {
            extras.clone()
        } else {
            Map::new()
        };
        parent.insert((*key).into(), object);
        object = Value::Object(parent);
    }
    object["metadata"] = json!({"name": "w", "labels": {"app": "w"}});
    (object, pointers)
}

/// An object of a family with `images` at `pointers` (one each, in turn; the rest left
/// out), and `extras` beside every image and at the top: the object and the pointers used.
fn family_object(
    pointers: &[&str],
    images: &[String],
    extras: &Map<String, Value>,
) -> (Value, Vec<String>) {
    let mut object = Value::Object(extras.clone());
    let mut used = Vec::new();
    for (pointer, image) in pointers.iter().zip(images) {
        let (parent, _) = pointer.rsplit_once('/').unwrap();
        set(&mut object, parent, Value::Object(extras.clone()));
        set(&mut object, pointer, json!(image));
        used.push((*pointer).to_owned());
    }
    (object, used)
}

/// Puts `value` at `pointer` unless something is there already, making the objects and
/// lists on the way (a number is a list index, earlier elements `{}`).
fn set(root: &mut Value, pointer: &str, value: Value) {
    let mut at = root;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        let next_is_index = parts.get(n + 1).is_some_and(|p| p.parse::<usize>().is_ok());
        let fresh = || match (last, next_is_index) {
            (true, _) => value.clone(),
            (false, true) => json!([]),
            (false, false) => json!({}),
        };
        at = match part.parse::<usize>() {
            Ok(index) => {
                let list = at.as_array_mut().unwrap();
                while list.len() <= index {
                    list.push(json!({}));
                }
                if last || list[index] == json!({}) && next_is_index {
                    list[index] = fresh();
                }
                &mut list[index]
            }
            Err(_) => {
                let map = at.as_object_mut().unwrap();
                if !map.contains_key(*part) || (last && map[*part].is_object()) {
                    map.insert((*part).to_owned(), fresh());
                }
                map.get_mut(*part).unwrap()
            }
        };
    }
}

/// The paths the host's JSON patch from `object` to `pinned` replaces; any other operation
/// fails the test.
fn replaced(object: &Value, pinned: &Value) -> BTreeSet<String> {
    let patch = serde_json::to_value(json_patch::diff(object, pinned)).unwrap();
    patch
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            assert_eq!(op["op"], "replace", "{op}");
            op["path"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn family() -> impl Strategy<Value = (&'static str, &'static str, &'static [&'static str])> {
    prop::sample::select(FAMILIES)
}

fn grouped_payload(group: &str, kind: &str, object: &Value, settings: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "request": {
            "uid": "p",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "operation": "CREATE",
            "object": object,
        },
        "settings": settings,
    }))
    .unwrap()
}

fn payload(kind: &str, operation: &str, object: &Value, settings: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "request": {
            "uid": "p",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": operation,
            "object": object,
        },
        "settings": settings,
    }))
    .unwrap()
}

fn covered() -> impl Strategy<Value = (&'static str, &'static [&'static str])> {
    prop::sample::select(COVERED)
}

fn containers() -> impl Strategy<Value = Vec<(usize, String)>> {
    vec((0..3usize, image()), 1..6)
}

/// Settings shapes, valid or not: every field and kind, in any combination.
fn settings() -> impl Strategy<Value = Value> {
    let pattern = prop_oneof![
        image(),
        Just("*".to_owned()),
        "[a-z.*?/:@-]{0,12}".prop_map(String::from)
    ];
    let signer = prop_oneof![
        Just(json!({"pubKeys": [KEY]})),
        Just(json!({"pubKeys": [KEY, "not a key"], "minimumMatches": 1})),
        Just(json!({"keyless": [{"issuer": "https://i", "subject": "s"}]})),
        Just(
            json!({"keylessPrefix": [{"issuer": "https://i", "urlPrefix": "https://github.com/a/"}]})
        ),
        Just(json!({"keylessPrefix": [{"issuer": "i", "url_prefix": "not a url"}]})),
        Just(json!({"githubActions": {"owner": "acme"}})),
        Just(json!({"githubActions": {"owner": "a/b", "repo": ""}})),
        Just(json!({"certificates": ["x"], "requireRekorBundle": false})),
        Just(json!({"pubKeys": [], "keyless": []})),
        Just(json!({"anyOf": [{"pubKeys": [KEY]}, {"githubActions": {"owner": "acme"}}]})),
        Just(json!({"anyOf": []})),
        Just(json!({"pubKeys": [KEY], "annotations": {"env": "prod", "": "x"}})),
        Just(json!({"pubKeys": [KEY], "minimumMatches": 0})),
        json_value().prop_map(|v| json!({ "pubKeys": v })),
    ];
    let rule = (pattern.clone(), signer).prop_map(|(image, signer)| {
        let mut rule = signer;
        rule["image"] = json!(image);
        rule
    });
    (
        vec(rule, 0..3),
        vec(pattern, 0..2),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop::sample::select(vec!["all", "pods", "none", "some"])),
        extras(),
    )
        .prop_map(|(rules, skip, modify, pinning, extras)| {
            let mut settings = json!({"signatures": rules, "skipImages": skip});
            if let Some(modify) = modify {
                settings["modifyImagesWithDigest"] = json!(modify);
            }
            if let Some(pinning) = pinning {
                settings["digestPinning"] = json!(pinning);
            }
            settings.as_object_mut().unwrap().extend(extras);
            settings
        })
}

/// An image as [`image`] writes it, but any digest is [`DIGEST`], the one [`Signed`] verifies.
fn image_signed_at_its_digest() -> impl Strategy<Value = String> {
    image_parts().prop_map(|(registry, repository, tag, digest)| {
        write_image(&(registry, repository, tag, digest.map(|_| DIGEST.to_owned())))
    })
}

/// What an UPDATE does to one container of the old object.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    DropDigest,
    Replace(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Keep),
        Just(Edit::DropDigest),
        image_signed_at_its_digest().prop_map(Edit::Replace),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_bytes_make_the_policy_panic(bytes in vec(any::<u8>(), 0..512)) {
        policy::validate(&bytes, &Unsigned::default());
        policy::validate(&bytes, &Signed);
        let _ = policy::validate_settings(&bytes);
    }

    #[test]
    fn no_request_makes_the_policy_panic(
        kind in prop_oneof![covered().prop_map(|(k, _)| k), Just("ConfigMap")],
        operation in prop::sample::select(vec!["CREATE", "UPDATE", "DELETE", "CONNECT"]),
        object in json_value(),
        settings in prop_oneof![settings(), json_value()],
    ) {
        let payload = payload(kind, operation, &object, &settings);
        policy::validate(&payload, &Unsigned::default());
        policy::validate(&payload, &Signed);
    }

    #[test]
    fn valid_settings_are_valid_for_validate_too(settings in settings(), image in image()) {
        let text = serde_json::to_vec(&settings).unwrap();
        if policy::validate_settings(&text).is_ok() {
            let (object, _) = workload(&["spec"], &[(0, image)], &Map::new());
            if let Verdict::Reject(reason) =
                policy::validate(&payload("Pod", "CREATE", &object, &settings), &Signed)
            {
                prop_assert!(!reason.starts_with("invalid settings"), "{reason}");
            }
        }
    }

    #[test]
    fn an_unsigned_matching_image_is_rejected_in_every_covered_kind(
        (kind, path) in covered(),
        operation in prop::sample::select(vec!["CREATE", "UPDATE"]),
        images in containers(),
        pick in any::<prop::sample::Index>(),
        extras in extras(),
        spelling in any::<prop::sample::Index>(),
    ) {
        // The rule names one of the images, in another spelling of its repository.
        let (_, matching) = pick.get(&images);
        let parsed = ImageRef::parse(matching).unwrap();
        let pattern = spelling.get(&spellings(&ImageRef::parse(parsed.name()).unwrap())).clone();
        let pattern = pattern.strip_suffix(":latest").unwrap_or(&pattern).to_owned();
        let settings = json!({"signatures": [{"image": pattern, "pubKeys": [KEY]}]});
        let (object, _) = workload(path, &images, &extras);
        let verifier = Unsigned::default();
        let verdict = policy::validate(&payload(kind, operation, &object, &settings), &verifier);
        let Verdict::Reject(reason) = verdict else {
            return Err(TestCaseError::fail(format!("{matching} admitted: {verdict:?}")));
        };
        prop_assert!(reason.contains("no signatures"), "{reason}");
        prop_assert!(verifier.0.borrow().contains(&parsed.to_string()), "{parsed} never checked");
    }

    #[test]
    fn an_unsigned_matching_image_is_rejected_in_every_family_kind(
        (group, kind, pointers) in family(),
        images in vec(image(), 1..6),
        pick in any::<prop::sample::Index>(),
        extras in extras(),
    ) {
        let (object, used) = family_object(pointers, &images, &extras);
        let matching = &images[pick.index(used.len())];
        let parsed = ImageRef::parse(matching).unwrap();
        let settings = json!({"signatures": [{"image": parsed.name(), "pubKeys": [KEY]}]});
        let verifier = Unsigned::default();
        let verdict = policy::validate(&grouped_payload(group, kind, &object, &settings), &verifier);
        let Verdict::Reject(reason) = verdict else {
            return Err(TestCaseError::fail(format!("{kind}: {matching} admitted: {verdict:?}")));
        };
        prop_assert!(reason.contains("no signatures"), "{reason}");
        prop_assert!(verifier.0.borrow().contains(&parsed.to_string()), "{parsed} never checked");
    }

    #[test]
    fn a_family_mutation_pins_images_and_touches_nothing_else(
        (group, kind, pointers) in family(),
        images in vec(image(), 1..6),
        extras in extras(),
    ) {
        let settings = json!({"signatures": [{"image": "*", "pubKeys": [KEY]}]});
        let (object, used) = family_object(pointers, &images, &extras);
        let verdict = policy::validate(&grouped_payload(group, kind, &object, &settings), &Signed);
        let object: Value = serde_json::from_str(&object.to_string()).unwrap();
        let pinned = match verdict {
            Verdict::Mutate(text) => serde_json::from_str::<Value>(&text).unwrap(),
            Verdict::Accept => {
                prop_assert!(images.iter().take(used.len()).all(|i| i.contains('@')));
                return Ok(());
            }
            Verdict::Reject(reason) => {
                prop_assert!(images.iter().any(|i| i.contains('@')));
                prop_assert!(reason.contains("the spec pins"), "{reason}");
                return Ok(());
            }
        };
        let touched = replaced(&object, &pinned);
        for (pointer, image) in used.iter().zip(&images) {
            if image.contains('@') {
                prop_assert!(!touched.contains(pointer));
            } else {
                let expected = format!("{image}@{DIGEST}");
                prop_assert_eq!(pinned.pointer(pointer).and_then(Value::as_str), Some(expected.as_str()), "{}", pointer);
            }
        }
        prop_assert!(touched.iter().all(|path| used.iter().any(|p| p == path)), "{touched:?}");
    }

    #[test]
    fn a_mutation_pins_images_and_touches_nothing_else(
        (kind, path) in covered(),
        images in containers(),
        extras in extras(),
        pinning in prop::sample::select(vec!["all", "pods"]),
    ) {
        let settings = json!({"signatures": [{"image": "*", "pubKeys": [KEY]}], "digestPinning": pinning});
        let (object, pointers) = workload(path, &images, &extras);
        let verdict = policy::validate(&payload(kind, "CREATE", &object, &settings), &Signed);
        // As the host reads it: the same text and parser as the mutated object (serde_json
        // does not round-trip every float it writes).
        let object: Value = serde_json::from_str(&object.to_string()).unwrap();
        let pinned = match verdict {
            Verdict::Mutate(text) => serde_json::from_str::<Value>(&text).unwrap(),
            Verdict::Accept => {
                prop_assert!(pinning == "pods" && kind != "Pod");
                return Ok(());
            }
            Verdict::Reject(reason) => {
                // Signed at another digest than the one written: never admitted.
                prop_assert!(images.iter().any(|(_, i)| i.contains('@')));
                prop_assert!(reason.contains("the spec pins"), "{reason}");
                return Ok(());
            }
        };
        let touched = replaced(&object, &pinned);
        for (pointer, (_, image)) in pointers.iter().zip(&images) {
            if image.contains('@') {
                prop_assert!(!touched.contains(pointer));
            } else {
                prop_assert!(touched.contains(pointer), "{pointer} not pinned");
                let expected = format!("{image}@{DIGEST}");
                prop_assert_eq!(pinned.pointer(pointer).and_then(Value::as_str), Some(expected.as_str()));
            }
        }
        prop_assert!(touched.iter().all(|path| pointers.iter().any(|p| p == path)));
    }

    /// An UPDATE from an object that held no image is judged as a CREATE: every image is
    /// new, so verified and pinned, with the same verdict, pins and rejection text. Fails
    /// if an old object that proves nothing unchanged narrows what is verified or pinned,
    /// or if pinning on UPDATE (which looks the object's text up again) rewrites other bytes.
    #[test]
    fn an_update_from_no_images_is_judged_as_a_create(
        (kind, path) in covered(),
        images in containers(),
        extras in extras(),
        signed in any::<bool>(),
    ) {
        let settings = json!({"signatures": [{"image": "*", "pubKeys": [KEY]}]});
        let (object, _) = workload(path, &images, &extras);
        let create = payload(kind, "CREATE", &object, &settings);
        let update = payload(kind, "UPDATE", &object, &settings);
        // Spliced in as text: a round trip through `Value` would rewrite floats.
        let prefix = br#"{"request":{"#;
        prop_assert!(update.starts_with(prefix));
        let update = [&prefix[..], br#""oldObject":{},"#, &update[prefix.len()..]].concat();
        let verdicts = if signed {
            (policy::validate(&create, &Signed), policy::validate(&update, &Signed))
        } else {
            let unsigned = Unsigned::default();
            (policy::validate(&create, &unsigned), policy::validate(&update, &unsigned))
        };
        prop_assert_eq!(verdicts.0, verdicts.1);
    }

    #[test]
    fn an_update_never_touches_an_image_the_old_object_carries_at_the_same_place(
        (kind, path) in covered(),
        old_images in vec((0..3usize, image_signed_at_its_digest()), 1..5),
        edits in vec(edit(), 5),
        added in vec((0..3usize, image_signed_at_its_digest()), 0..3),
        subresource in prop::sample::select(vec![None, Some("status"), Some("ephemeralcontainers")]),
        reverify in any::<bool>(),
        extras in extras(),
    ) {
        let new_images: Vec<(usize, String)> = old_images
            .iter()
            .zip(&edits)
            .map(|((list, image), edit)| {
                let image = match edit {
                    Edit::Keep => image.clone(),
                    Edit::DropDigest => image.split('@').next().unwrap().to_owned(),
                    Edit::Replace(other) => other.clone(),
                };
                (*list, image)
            })
            .chain(added)
            .collect();
        let (old, _) = workload(path, &old_images, &extras);
        let (mut new, pointers) = workload(path, &new_images, &extras);
        new["metadata"]["labels"]["changed"] = json!("yes");
        let settings = json!({
            "signatures": [{"image": "*", "pubKeys": [KEY]}],
            "reverifyUnchangedImages": reverify,
        });
        let request = json!({
            "request": {
                "uid": "p",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "operation": "UPDATE",
                "subResource": subresource,
                "object": new,
                "oldObject": old,
            },
            "settings": settings,
        });
        let verdict = policy::validate(&serde_json::to_vec(&request).unwrap(), &Signed);
        let new: Value = serde_json::from_str(&new.to_string()).unwrap();
        let old: Value = serde_json::from_str(&old.to_string()).unwrap();
        let pinned = match verdict {
            Verdict::Mutate(text) => serde_json::from_str::<Value>(&text).unwrap(),
            Verdict::Accept => new.clone(),
            Verdict::Reject(reason) => return Err(TestCaseError::fail(format!("rejected: {reason}"))),
        };
        let patch = serde_json::to_value(json_patch::diff(&new, &pinned)).unwrap();
        let touched: BTreeSet<&str> = patch
            .as_array()
            .unwrap()
            .iter()
            .map(|op| op["path"].as_str().unwrap())
            .collect();
        prop_assert!(touched.iter().all(|path| pointers.iter().any(|p| p == path)), "{patch}");
        let old_refs: BTreeSet<ImageRef> = old_images
            .iter()
            .map(|(_, image)| ImageRef::parse(image).unwrap())
            .collect();
        for (pointer, (_, image)) in pointers.iter().zip(&new_images) {
            if old.pointer(pointer) == new.pointer(pointer) {
                prop_assert!(!touched.contains(pointer.as_str()), "{pointer} ({image}) was pinned");
            } else if subresource.is_none()
                && !image.contains('@')
                && !old_refs.contains(&ImageRef::parse(image).unwrap())
            {
                // Not vacuous: a new image of the resource itself is pinned.
                prop_assert!(touched.contains(pointer.as_str()), "{pointer} ({image}) not pinned");
            }
        }
    }

    #[test]
    fn normalisation_is_idempotent(image in image()) {
        let parsed = ImageRef::parse(&image).unwrap();
        prop_assert_eq!(ImageRef::parse(&parsed.to_string()), Ok(parsed));
    }

    #[test]
    fn every_spelling_is_the_same_image_under_the_same_rules(
        image in image(),
        patterns in vec(prop_oneof![image(), "[a-z0-9.*?/:-]{1,16}".prop_map(String::from)], 1..4),
    ) {
        let parsed = ImageRef::parse(&image).unwrap();
        let patterns: Vec<ImagePattern> =
            patterns.iter().filter_map(|p| ImagePattern::parse(p).ok()).collect();
        let verdict_of = |image: &str| {
            let rules: Vec<Value> = patterns
                .iter()
                .map(|p| json!({"image": p.to_string(), "pubKeys": [KEY]}))
                .chain([json!({"image": "never.example/x", "pubKeys": [KEY]})])
                .collect();
            let settings = json!({"signatures": rules, "rejectUnmatchedImages": true});
            let (object, _) = workload(&["spec"], &[(0, image.to_owned())], &Map::new());
            let verifier = Unsigned::default();
            let admitted = policy::validate(&payload("Pod", "CREATE", &object, &settings), &verifier) == Verdict::Accept;
            (admitted, verifier.0.into_inner())
        };
        let expected = verdict_of(&image);
        for spelling in spellings(&parsed) {
            let respelled = ImageRef::parse(&spelling);
            prop_assert_eq!(respelled.as_ref(), Ok(&parsed), "{}", spelling);
            for pattern in &patterns {
                prop_assert_eq!(
                    pattern.may_match(&Spellings::new(&parsed, [image.as_str()])),
                    pattern.may_match(&Spellings::new(respelled.as_ref().unwrap(), [spelling.as_str()]))
                );
            }
            prop_assert_eq!(&verdict_of(&spelling), &expected, "{}", spelling);
        }
    }

    /// A rule whose pattern, as a plain glob, matches the image as written or any
    /// equivalent spelling of it, applies to the image however it is written. Fails if
    /// `ImagePattern::may_match` loses its glob over the spellings (`*acme*` would no
    /// longer cover `ghcr.io/acme/app`), or `ImageRef::spellings` drops a row of the table.
    #[test]
    fn a_rule_applies_wherever_its_glob_matches_a_spelling(
        parts in image_parts(),
        written_pick in any::<prop::sample::Index>(),
        matched_pick in any::<prop::sample::Index>(),
        glob in (any::<prop::sample::Index>(), 0..12usize, prop::sample::select(vec!["*", "?", ""])),
        zeros in 0..3usize,
    ) {
        let image = ImageRef::parse(&write_image(&parts)).unwrap();
        let mut equivalents = spellings(&image);
        equivalents.push(write_image(&parts));
        let written = written_pick.get(&with_leading_zeros(&equivalents, zeros)).clone();
        // Globbed from a spelling of the table, or from the image as written.
        let mut sources = equivalents.clone();
        sources.push(written.clone());
        let source = matched_pick.get(&sources);
        let (at, len, wildcard) = glob;
        let start = at.index(source.len());
        let end = (start + len).min(source.len());
        let wildcard = if wildcard == "?" && end - start != 1 { "*" } else { wildcard };
        let pattern = format!("{}{wildcard}{}", &source[..start], &source[end..]);
        prop_assume!(WildMatch::new(&pattern).matches(source));
        prop_assume!(ImagePattern::parse(&pattern).is_ok());
        let settings = json!({"signatures": [{"image": pattern, "pubKeys": [KEY]}]});
        let (object, _) = workload(&["spec"], &[(0, written.clone())], &Map::new());
        let verifier = Unsigned::default();
        let verdict = policy::validate(&payload("Pod", "CREATE", &object, &settings), &verifier);
        let Verdict::Reject(reason) = verdict else {
            return Err(TestCaseError::fail(format!("{pattern} did not apply to {written}: {verdict:?}")));
        };
        prop_assert!(reason.contains("no signatures"), "{reason}");
    }

    /// A skip whose registry part is R exempts no image whose registry R does not match,
    /// even when R's text sits in the repository path. Fails if the skip's name is
    /// globbed as one string over `registry/repository` (the `*` of `*.example.com`
    /// then runs on into `ghcr.io/attacker/x.example.com/app`).
    #[test]
    fn a_skip_never_exempts_outside_its_registry(
        host in "[a-z]{1,6}\\.[a-z]{2,8}\\.(com|io)",
        glob in (any::<prop::sample::Index>(), 0..6usize, prop::sample::select(vec!["*", "?"])),
        other in prop_oneof![
            prop::sample::select(vec!["ghcr.io", "docker.io", "quay.io", "127.0.0.1:5000"]).prop_map(String::from),
            "[a-z]{1,6}\\.[a-z]{2,8}\\.(com|io)",
        ],
        path in "[a-z]{1,6}",
    ) {
        let (at, len, wildcard) = glob;
        let start = at.index(host.len());
        let end = (start + len).min(host.len());
        let registry_glob = format!("{}{wildcard}{}", &host[..start], &host[end..]);
        prop_assume!(WildMatch::new(&registry_glob).matches(&host) && registry_glob.contains(['.', '*', '?']));
        let skip = format!("{registry_glob}/*");
        prop_assume!(ImagePattern::parse(&skip).is_ok());
        let settings = json!({
            "signatures": [{"image": "*", "pubKeys": [KEY]}],
            "skipImages": [skip],
            "rejectUnmatchedImages": true,
        });
        let verdict_for = |image: &str| {
            let (object, _) = workload(&["spec"], &[(0, image.to_owned())], &Map::new());
            policy::validate(&payload("Pod", "CREATE", &object, &settings), &Unsigned::default())
        };
        // The skip works where it should...
        prop_assert_eq!(verdict_for(&format!("{host}/{path}:v1")), Verdict::Accept);
        // ...and nowhere else, whatever the repository path holds.
        for image in [
            format!("{other}/{path}/{host}/app:v1"),
            format!("{other}/{host}/app"),
            format!("{other}/{path}-{host}:v1"),
        ] {
            let registry = ImageRef::parse(&image).unwrap().registry().to_owned();
            if !WildMatch::new(&registry_glob).matches(&registry) {
                prop_assert!(matches!(verdict_for(&image), Verdict::Reject(_)), "{skip} exempted {image}");
            }
        }
    }

    /// Every numeric spelling of a port is one registry: the same name, the same rules.
    /// Fails if ports are compared as text (`:0443` kept as written).
    #[test]
    fn every_numeric_spelling_of_a_port_is_the_same_registry(
        host in "[a-z]{1,6}\\.(com|io)",
        port in prop_oneof![Just(443u32), Just(5000u32), 1..65536u32],
        zeros in (0..4usize, 0..4usize),
        repository in "[a-z]{1,6}",
    ) {
        let spell = |zeros: usize| format!("{host}:{}{port}/{repository}:v1", "0".repeat(zeros));
        let (written, in_rule) = (spell(zeros.0), spell(zeros.1));
        let canonical = if port == 443 { host.clone() } else { format!("{host}:{port}") };
        let parsed = ImageRef::parse(&written).unwrap();
        prop_assert_eq!(parsed.registry(), canonical.as_str());
        prop_assert_eq!(ImageRef::parse(&written), ImageRef::parse(&spell(0)));
        let rule_pattern = format!("{}/*", in_rule.split_once('/').unwrap().0);
        let settings = json!({"signatures": [{"image": rule_pattern, "pubKeys": [KEY]}]});
        let (object, _) = workload(&["spec"], &[(0, written.clone())], &Map::new());
        let verdict = policy::validate(&payload("Pod", "CREATE", &object, &settings), &Unsigned::default());
        prop_assert!(matches!(verdict, Verdict::Reject(_)), "{rule_pattern} did not apply to {written}");
    }

    /// Settings listing one signer twice, however respelled, are refused, naming both
    /// places. Fails if signers are compared as written (a re-wrapped PEM, a prefix
    /// without its trailing `/`) or not compared at all.
    #[test]
    fn settings_with_a_signer_listed_twice_are_refused(
        kind in 0..3usize,
        count in 1..4usize,
        duplicate in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        respell in any::<bool>(),
        in_any_of in any::<bool>(),
    ) {
        // `count` distinct signers of one kind, and a respelling of each.
        let distinct: Vec<(Value, Value)> = (0..count)
            .map(|i| match kind {
                0 => {
                    let key = [KEY, KEY2][i % 2];
                    let key = if i < 2 { key.to_owned() } else { rewrap(key, 48) };
                    (json!(key), json!(rewrap(key.as_str(), 32)))
                }
                1 => {
                    let identity = json!({"issuer": "https://accounts.example", "subject": format!("dev{i}@example.com")});
                    (identity.clone(), identity)
                }
                _ => (
                    json!({"issuer": "https://accounts.example", "urlPrefix": format!("https://github.com/team{i}")}),
                    json!({"issuer": "https://accounts.example", "url_prefix": format!("https://GitHub.com/team{i}/")}),
                ),
            })
            .collect();
        // Two distinct pubKeys only exist here; more would repeat.
        prop_assume!(kind != 0 || count <= 2);
        let field = ["pubKeys", "keyless", "keylessPrefix"][kind];
        let requirement = |signers: Vec<Value>| {
            let entry = json!({ field: signers });
            if in_any_of {
                json!({"image": "*", "anyOf": [{"pubKeys": [KEY]}, entry]})
            } else {
                let mut entry = entry;
                entry["image"] = json!("*");
                entry
            }
        };
        let settings_of = |signers: Vec<Value>| serde_json::to_vec(&json!({"signatures": [requirement(signers)]})).unwrap();
        let mut signers: Vec<Value> = distinct.iter().map(|(s, _)| s.clone()).collect();
        prop_assert_eq!(policy::validate_settings(&settings_of(signers.clone())), Ok(()));

        let (original, at) = (duplicate.0.index(count), duplicate.1.index(count + 1));
        let copy = if respell { distinct[original].1.clone() } else { distinct[original].0.clone() };
        signers.insert(at, copy);
        let first = if at <= original { original + 1 } else { original };
        let (first, second) = (first.min(at), first.max(at));
        let error = policy::validate_settings(&settings_of(signers)).unwrap_err();
        prop_assert!(
            error.contains(&format!("{field}[{second}]:")) && error.contains(&format!("as {field}[{first}]")),
            "{error}"
        );
    }
}

/// `spellings` with the registry's port, if any, written with `zeros` leading zeros.
fn with_leading_zeros(spellings: &[String], zeros: usize) -> Vec<String> {
    spellings
        .iter()
        .map(|s| match s.split_once('/') {
            Some((registry, rest)) if registry.contains(':') => {
                let (host, port) = registry.split_once(':').unwrap();
                format!("{host}:{}{port}/{rest}", "0".repeat(zeros))
            }
            _ => s.clone(),
        })
        .collect()
}

/// A PEM public key with its base64 wrapped at `width` characters a line.
fn rewrap(pem: &str, width: usize) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(width)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}
