//! The policy end to end over a fake verifier that answers like the host would.

use std::cell::RefCell;
use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::*;
use crate::plan::Action;
use crate::verifier::{Check, Failure, Signer};

mod kinds;
mod warn_mode;

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A signature held by the fake registry.
struct Sig {
    /// Normalised `registry/repository`.
    image: &'static str,
    /// The PEM, subject, `owner/repo` or certificate that signed.
    signer: &'static str,
    annotations: &'static [(&'static str, &'static str)],
    digest: &'static str,
}

/// Answers like the host: no signature at all, a signature by someone else, or a
/// registry error; and records every call.
#[derive(Default)]
struct FakeHost {
    signatures: Vec<Sig>,
    broken: Vec<(&'static str, &'static str)>,
    calls: RefCell<Vec<String>>,
}

impl FakeHost {
    fn signed(mut self, image: &'static str, signer: &'static str) -> Self {
        self.signatures.push(Sig {
            image,
            signer,
            annotations: &[],
            digest: DIGEST_A,
        });
        self
    }

    fn sig(mut self, sig: Sig) -> Self {
        self.signatures.push(sig);
        self
    }

    fn broken(mut self, image: &'static str, error: &'static str) -> Self {
        self.broken.push((image, error));
        self
    }

    fn calls(&self) -> usize {
        self.calls.borrow().len()
    }
}

impl Verifier for FakeHost {
    fn verify(&self, check: &Check<'_>) -> Result<String, Failure> {
        let name = check.image.name();
        self.calls.borrow_mut().push(format!(
            "{} {:?} {:?}",
            check.image, check.signer, check.annotations
        ));
        if let Some((_, error)) = self.broken.iter().find(|(image, _)| *image == name) {
            return Err(Failure::from_host_error(error));
        }
        let on_image: Vec<&Sig> = self.signatures.iter().filter(|s| s.image == name).collect();
        if on_image.is_empty() {
            return Err(Failure::from_host_error(&format!(
                "no signatures found for image: {}",
                check.image
            )));
        }
        on_image
            .into_iter()
            .find(|sig| {
                let by_signer = match check.signer {
                    Signer::PubKey(key) => key == sig.signer,
                    Signer::Keyless { subject, .. } => subject == sig.signer,
                    Signer::KeylessPrefix { url_prefix, .. } => sig.signer.starts_with(url_prefix.as_str()),
                    Signer::GithubActions { owner, repo } => match repo {
                        Some(repo) => sig.signer == format!("{owner}/{repo}"),
                        None => sig.signer.starts_with(&format!("{owner}/")),
                    },
                    Signer::Certificate { certificate, .. } => certificate == sig.signer,
                };
                by_signer
                    && check.annotations.into_iter().flatten().all(|(k, v)| {
                        sig.annotations.iter().any(|(sk, sv)| sk == k && sv == v)
                    })
            })
            .map(|sig| sig.digest.to_owned())
            .ok_or_else(|| {
                Failure::from_host_error(
                    "Callback evaluation failure: Image verification failed: missing signatures\nThe following constraints were not satisfied:\n...",
                )
            })
    }
}

/// Every distinct check `plan` may need, i.e. one per unique (image, signer,
/// annotations): the most host calls an evaluation can make, short of the
/// annotation diagnosis that follows a failed check.
fn checks<'p>(plan: &'p Plan<'_>) -> BTreeSet<Check<'p>> {
    plan.images
        .iter()
        .filter_map(|planned| match &planned.action {
            Action::Verify(rules) => Some((planned, rules)),
            _ => None,
        })
        .flat_map(|(planned, rules)| {
            rules
                .iter()
                .flat_map(|rule| &rule.alternatives)
                .flat_map(|req| {
                    req.signers.iter().map(|signer| Check {
                        image: &planned.image,
                        signer,
                        annotations: req.annotations.as_ref(),
                    })
                })
        })
        .collect()
}

fn payload(settings: Value, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "request": {
            "uid": "1",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": "CREATE",
            "object": object,
        },
        "settings": settings,
    }))
    .unwrap()
}

fn pod(containers: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "p"}},
        "spec": {"containers": containers},
    })
}

fn containers(images: &[&str]) -> Value {
    images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image, "env": [{"name": "A", "value": "1"}]}))
        .collect()
}

fn key_rule(image: &str, key: &str) -> Value {
    json!({"image": image, "pubKeys": [key]})
}

fn settings(rules: Value) -> Value {
    json!({"signatures": rules})
}

fn run(settings: Value, kind: &str, object: Value, host: &FakeHost) -> Verdict {
    validate(&payload(settings, kind, object), host)
}

fn rejection(verdict: Verdict) -> String {
    match verdict {
        Verdict::Reject(message) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The RFC 6902 patch the host computes from the mutation.
fn patch(original: &Value, verdict: Verdict) -> Vec<(String, String, Value)> {
    let Verdict::Mutate(mutated) = verdict else {
        panic!("expected a mutation, got {verdict:?}");
    };
    let mutated: Value = serde_json::from_str(&mutated).expect("the mutated object is JSON");
    let patch = serde_json::to_value(json_patch::diff(original, &mutated)).unwrap();
    patch
        .as_array()
        .unwrap()
        .iter()
        .map(|op| {
            (
                op["op"].as_str().unwrap().to_owned(),
                op["path"].as_str().unwrap().to_owned(),
                op["value"].clone(),
            )
        })
        .collect()
}

#[test]
fn signed_pod_is_pinned_and_nothing_else_changes() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "KEY-A");
    let mut object = pod(containers(&["ghcr.io/acme/app:v1"]));
    // Fields no compiled-in Kubernetes type knows must survive the mutation.
    object["spec"]["futurePodField"] = json!({"nested": [1, 2.5, "x", null, true]});
    object["spec"]["containers"][0]["futureContainerField"] = json!("kept");
    object["status"] = json!({"phase": "Pending"});
    let verdict = run(
        settings(json!([key_rule("ghcr.io/acme/*", "KEY-A")])),
        "Pod",
        object.clone(),
        &host,
    );
    assert_eq!(
        patch(&object, verdict),
        [(
            "replace".to_owned(),
            "/spec/containers/0/image".to_owned(),
            json!(format!("ghcr.io/acme/app:v1@{DIGEST_A}"))
        )]
    );
    assert_eq!(host.calls(), 1);
}

#[test]
fn every_kind_is_checked_where_its_pod_template_is() {
    let template = |images: &[&str]| json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": containers(images), "initContainers": containers(&["ghcr.io/acme/init:v1"])}});
    let objects = [
        (
            "Pod",
            "/spec",
            json!({"spec": {"containers": containers(&["ghcr.io/acme/app:v1"]), "initContainers": containers(&["ghcr.io/acme/init:v1"])}}),
        ),
        (
            "Deployment",
            "/spec/template/spec",
            json!({"spec": {"replicas": 2, "template": template(&["ghcr.io/acme/app:v1"])}}),
        ),
        (
            "ReplicaSet",
            "/spec/template/spec",
            json!({"spec": {"template": template(&["ghcr.io/acme/app:v1"])}}),
        ),
        (
            "StatefulSet",
            "/spec/template/spec",
            json!({"spec": {"serviceName": "s", "template": template(&["ghcr.io/acme/app:v1"])}}),
        ),
        (
            "DaemonSet",
            "/spec/template/spec",
            json!({"spec": {"template": template(&["ghcr.io/acme/app:v1"])}}),
        ),
        (
            "ReplicationController",
            "/spec/template/spec",
            json!({"spec": {"template": template(&["ghcr.io/acme/app:v1"])}}),
        ),
        (
            "Job",
            "/spec/template/spec",
            json!({"spec": {"backoffLimit": 1, "template": template(&["ghcr.io/acme/app:v1"])}}),
        ),
        (
            "CronJob",
            "/spec/jobTemplate/spec/template/spec",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template(&["ghcr.io/acme/app:v1"])}}}}),
        ),
        (
            "Rollout",
            "/spec/template/spec",
            json!({"apiVersion": "argoproj.io/v1alpha1", "spec": {"strategy": {}, "template": template(&["ghcr.io/acme/app:v1"])}}),
        ),
    ];
    let rules = settings(json!([key_rule("ghcr.io/acme/*", "KEY-A")]));
    for (kind, spec, object) in objects {
        // Unsigned: rejected, naming both container lists.
        let message = rejection(run(
            rules.clone(),
            kind,
            object.clone(),
            &FakeHost::default(),
        ));
        let path = spec.trim_start_matches('/').replace('/', ".");
        assert!(message.contains(&format!("{path}.containers[0] (ghcr.io/acme/app:v1): signatures[0] pubKeys: pubKeys[0]: no signatures")), "{kind}: {message}");
        assert!(
            message.contains(&format!("{path}.initContainers[0] (ghcr.io/acme/init:v1)")),
            "{kind}: {message}"
        );
        // Signed: both pinned in place.
        let host = FakeHost::default()
            .signed("ghcr.io/acme/app", "KEY-A")
            .signed("ghcr.io/acme/init", "KEY-A");
        let ops = patch(&object, run(rules.clone(), kind, object.clone(), &host));
        let paths: Vec<&str> = ops.iter().map(|(_, p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                format!("{spec}/containers/0/image"),
                format!("{spec}/initContainers/0/image")
            ],
            "{kind}"
        );
    }
}

#[test]
fn kinds_without_pod_template_are_accepted_untouched() {
    let host = FakeHost::default();
    let rules = settings(json!([key_rule("*", "KEY-A")]));
    for (kind, object) in [
        ("ConfigMap", json!({"data": {"image": "evil"}})),
        ("Service", json!({"spec": {"ports": [{"port": 80}]}})),
        ("Weird", json!({"spec": "not an object"})),
        ("Deployment", json!(null)),
    ] {
        let mut request: Value =
            serde_json::from_slice(&payload(rules.clone(), kind, object)).unwrap();
        request["request"]["operation"] = json!("DELETE");
        assert_eq!(
            validate(&serde_json::to_vec(&request).unwrap(), &host),
            Verdict::Accept,
            "{kind}"
        );
    }
    assert_eq!(host.calls(), 0);
}

/// Found in the hardening review: a custom kind's object that is unreadable and deeper
/// than serde_json's `Value` allows (128 levels) was taken for an object without a
/// pod template, and admitted unverified.
#[test]
fn an_unreadable_custom_workload_too_deep_to_inspect_is_rejected() {
    let mut deep = json!([]);
    for _ in 0..200 {
        deep = json!([deep]);
    }
    let object = json!({
        "spec": {
            "containers": "not a list",
            "template": {"spec": {"containers": containers(&["ghcr.io/acme/app:v1"])}},
        },
        "extra": deep,
    });
    let host = FakeHost::default();
    let message = rejection(run(
        settings(json!([key_rule("*", "KEY-A")])),
        "Rollout",
        object,
        &host,
    ));
    assert!(message.starts_with("cannot read the Rollout"), "{message}");
}

#[test]
fn unreadable_objects_of_covered_kinds_are_rejected() {
    let rules = settings(json!([key_rule("*", "KEY-A")]));
    let host = FakeHost::default();
    let message = rejection(run(
        rules.clone(),
        "Pod",
        json!({"spec": {"containers": "nginx"}}),
        &host,
    ));
    assert!(
        message.starts_with("cannot read the Pod: invalid type: string"),
        "{message}"
    );
    let message = rejection(run(
        rules.clone(),
        "Deployment",
        json!({"spec": {"template": {"spec": {"containers": [{"image": 7}]}}}}),
        &host,
    ));
    assert!(
        message.starts_with("cannot read the Deployment"),
        "{message}"
    );
    let message = rejection(run(
        rules.clone(),
        "Rollout",
        json!({"spec": {"template": {"spec": {"containers": {}}}}}),
        &host,
    ));
    assert!(message.starts_with("cannot read the Rollout"), "{message}");
    let message = rejection(run(rules.clone(), "Pod", json!(null), &host));
    assert_eq!(message, "the Pod request carries no object");
    let message = rejection(validate(b"{\"request\": 1}", &host));
    assert!(
        message.starts_with("cannot read the admission request"),
        "{message}"
    );
    let message = rejection(validate(b"not json", &host));
    assert!(
        message.starts_with("cannot read the admission request"),
        "{message}"
    );
    let message = rejection(run(
        json!({"signatures": "x"}),
        "Pod",
        pod(containers(&["nginx"])),
        &host,
    ));
    assert!(
        message.starts_with("invalid settings: signatures: invalid type"),
        "{message}"
    );
    assert_eq!(host.calls(), 0);
}

#[test]
fn containers_without_a_usable_image_are_rejected_with_their_place() {
    let object = pod(
        json!([{"name": "a"}, {"name": "b", "image": ""}, {"name": "c", "image": "Not/Valid"}]),
    );
    let message = rejection(run(
        settings(json!([key_rule("*", "KEY-A")])),
        "Pod",
        object,
        &FakeHost::default(),
    ));
    assert!(message.starts_with("3 images failed verification: spec.containers[0]: the container has no image; spec.containers[1]: the container has no image; spec.containers[2]: cannot parse image reference \"Not/Valid\""), "{message}");
}

#[test]
fn every_container_list_including_ephemeral_containers() {
    let mut object = pod(containers(&["ghcr.io/acme/app:v1"]));
    object["spec"]["initContainers"] = containers(&["ghcr.io/acme/init:v1"]);
    object["spec"]["ephemeralContainers"] = containers(&["ghcr.io/acme/debug:v1"]);
    let rules = settings(json!([key_rule("ghcr.io/acme/*", "KEY-A")]));
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "KEY-A")
        .signed("ghcr.io/acme/init", "KEY-A");
    let message = rejection(run(rules.clone(), "Pod", object.clone(), &host));
    assert_eq!(message, "1 image failed verification: spec.ephemeralContainers[0] (ghcr.io/acme/debug:v1): signatures[0] pubKeys: pubKeys[0]: no signatures");

    // The pods/ephemeralcontainers subresource: the whole Pod is checked, only ephemeral
    // containers can change, so only they are pinned.
    let host = host.signed("ghcr.io/acme/debug", "KEY-A");
    let mut request: Value =
        serde_json::from_slice(&payload(rules, "Pod", object.clone())).unwrap();
    request["request"]["subResource"] = json!("ephemeralcontainers");
    request["request"]["operation"] = json!("UPDATE");
    let ops = patch(
        &object,
        validate(&serde_json::to_vec(&request).unwrap(), &host),
    );
    let paths: Vec<&str> = ops.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(paths, ["/spec/ephemeralContainers/0/image"]);
}

#[test]
fn spellings_of_one_image_share_one_host_call() {
    let spellings = [
        "nginx",
        "docker.io/library/nginx:latest",
        "index.docker.io/library/nginx",
        "library/nginx:latest",
        "DOCKER.IO/nginx",
    ];
    let object = pod(containers(&spellings));
    let host = FakeHost::default().signed("docker.io/library/nginx", "KEY-A");
    let ops = patch(
        &object,
        run(
            settings(json!([key_rule("docker.io/nginx", "KEY-A")])),
            "Pod",
            object.clone(),
            &host,
        ),
    );
    assert_eq!(host.calls(), 1);
    // Each container keeps its own spelling.
    let images: Vec<String> = ops
        .iter()
        .map(|(_, _, v)| v.as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = spellings
        .iter()
        .map(|s| format!("{s}@{DIGEST_A}"))
        .collect();
    assert_eq!(images, expected);

    // And every spelling of a pattern catches every spelling of the image.
    for pattern in [
        "nginx",
        "library/nginx",
        "docker.io/nginx",
        "index.docker.io/library/nginx:latest",
        "docker.io/library/*",
    ] {
        let message = rejection(run(
            settings(json!([key_rule(pattern, "KEY-A")])),
            "Pod",
            object.clone(),
            &FakeHost::default(),
        ));
        assert!(message.starts_with("1 image failed verification: spec.containers[0], spec.containers[1], spec.containers[2], spec.containers[3], spec.containers[4] (nginx)"), "{pattern}: {message}");
    }
}

#[test]
fn one_call_per_unique_image_and_signer() {
    let images = [
        "ghcr.io/acme/a:v1",
        "ghcr.io/acme/b:v1",
        "ghcr.io/acme/c:v1",
    ];
    let all: Vec<&str> = (0..10).map(|i| images[i % 3]).collect();
    let object = json!({"spec": {"template": {"spec": {"containers": containers(&all)}}}});
    let host = ["ghcr.io/acme/a", "ghcr.io/acme/b", "ghcr.io/acme/c"]
        .into_iter()
        .fold(FakeHost::default(), |h, i| {
            h.signed(i, "KEY-A").signed(i, "KEY-B")
        });
    let rules = settings(json!([
        {"image": "ghcr.io/acme/*", "pubKeys": ["KEY-A", "KEY-B"]},
        key_rule("ghcr.io/*", "KEY-B"),
        key_rule("docker.io/*", "KEY-C"),
    ]));
    let payload = payload(rules.clone(), "Deployment", object.clone());
    let parsed =
        Settings::from_json(&serde_json::from_value::<Box<RawValue>>(rules).unwrap()).unwrap();
    let plan = Plan::new(
        &parsed,
        crate::workload::extract(
            KindRef {
                group: "apps",
                kind: "Deployment",
            },
            &object.to_string(),
            &[],
        )
        .map(|w| match w {
            Workload::Containers(c) => c,
            Workload::NotCovered => unreachable!(),
        })
        .unwrap(),
    );
    // 3 images x {KEY-A, KEY-B}: the second rule's KEY-B check is the same request.
    assert_eq!(checks(&plan).len(), 6);
    let ops = patch(&object, validate(&payload, &host));
    assert_eq!(ops.len(), 10);
    assert_eq!(host.calls(), 6);
}

#[test]
fn minimum_matches() {
    let rules = |n: usize| {
        settings(json!([{"image": "*", "pubKeys": ["K1", "K2", "K3"], "minimumMatches": n}]))
    };
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));
    let two_of_three = || {
        FakeHost::default()
            .signed("ghcr.io/acme/app", "K1")
            .signed("ghcr.io/acme/app", "K3")
    };

    let host = two_of_three();
    assert!(matches!(
        run(rules(2), "Pod", object.clone(), &host),
        Verdict::Mutate(_)
    ));
    assert_eq!(host.calls(), 3);

    // Enough signers found: the rest is not asked.
    let host = two_of_three();
    assert!(matches!(
        run(rules(1), "Pod", object.clone(), &host),
        Verdict::Mutate(_)
    ));
    assert_eq!(host.calls(), 1);

    // Too many failures: the rest is not asked either.
    let host = two_of_three();
    let message = rejection(run(rules(3), "Pod", object.clone(), &host));
    assert_eq!(message, "1 image failed verification: spec.containers[0] (ghcr.io/acme/app:v1): signatures[0] pubKeys: 1 of 3 required signers verified: pubKeys[1]: not signed by the required signer");
    assert_eq!(host.calls(), 2);

    let host = FakeHost::default().signed("ghcr.io/acme/app", "K2");
    let message = rejection(run(rules(2), "Pod", object, &host));
    assert!(message.ends_with("signatures[0] pubKeys: 1 of 2 required signers verified: pubKeys[0]: not signed by the required signer, pubKeys[2]: not signed by the required signer"), "{message}");
}

#[test]
fn alternatives() {
    let rules = settings(json!([{"image": "ghcr.io/acme/*", "anyOf": [
        {"keyless": [{"issuer": "https://ci.example.com", "subject": "ci@example.com"}]},
        {"pubKeys": ["RELEASE-KEY"]},
    ]}]));
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));

    let by_ci = FakeHost::default().signed("ghcr.io/acme/app", "ci@example.com");
    assert!(matches!(
        run(rules.clone(), "Pod", object.clone(), &by_ci),
        Verdict::Mutate(_)
    ));
    assert_eq!(
        by_ci.calls(),
        1,
        "the first alternative that holds ends the rule"
    );

    let by_release_key = FakeHost::default().signed("ghcr.io/acme/app", "RELEASE-KEY");
    assert!(matches!(
        run(rules.clone(), "Pod", object.clone(), &by_release_key),
        Verdict::Mutate(_)
    ));
    assert_eq!(by_release_key.calls(), 2);

    let by_someone = FakeHost::default().signed("ghcr.io/acme/app", "SOMEONE");
    let message = rejection(run(rules, "Pod", object, &by_someone));
    assert_eq!(message, "1 image failed verification: spec.containers[0] (ghcr.io/acme/app:v1): signatures[0]: none of 2 alternatives holds: signatures[0].anyOf[0] keyless: keyless[0] (ci@example.com from https://ci.example.com): not signed by the required signer; signatures[0].anyOf[1] pubKeys: pubKeys[0]: not signed by the required signer");
}

#[test]
fn every_matching_rule_must_hold() {
    let rules = settings(json!([
        key_rule("ghcr.io/acme/*", "K1"),
        key_rule("ghcr.io/*", "K2")
    ]));
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));
    let message = rejection(run(
        rules.clone(),
        "Pod",
        object.clone(),
        &FakeHost::default().signed("ghcr.io/acme/app", "K1"),
    ));
    assert!(
        message.ends_with("signatures[1] pubKeys: pubKeys[0]: not signed by the required signer"),
        "{message}"
    );
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .signed("ghcr.io/acme/app", "K2");
    assert!(matches!(
        run(rules, "Pod", object, &host),
        Verdict::Mutate(_)
    ));
}

#[test]
fn skip_images() {
    let object = pod(containers(&[
        "registry.k8s.io/pause:3.9",
        "ghcr.io/acme/app:v1",
        &format!("registry.k8s.io/pause@{DIGEST_B}"),
    ]));
    let rules = json!({"signatures": [key_rule("*", "K1")], "skipImages": ["registry.k8s.io/pause:*", "ghcr.io/acme/*"]});
    let host = FakeHost::default().sig(Sig {
        image: "registry.k8s.io/pause",
        signer: "K1",
        annotations: &[],
        digest: DIGEST_B,
    });
    // The digest-only reference has no tag to match `pause:*`, so it is not exempt.
    assert_eq!(run(rules, "Pod", object, &host), Verdict::Accept);
    assert_eq!(host.calls.borrow().len(), 1);
    assert!(host.calls.borrow()[0].starts_with(&format!("registry.k8s.io/pause@{DIGEST_B}")));
}

#[test]
fn unmatched_images() {
    let object = pod(containers(&[
        "ghcr.io/acme/app:v1",
        "quay.io/other/tool:v2",
    ]));
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let admitted = patch(
        &object,
        run(
            settings(json!([key_rule("ghcr.io/acme/*", "K1")])),
            "Pod",
            object.clone(),
            &host,
        ),
    );
    assert_eq!(admitted.len(), 1, "only the verified image is pinned");
    let strict =
        json!({"signatures": [key_rule("ghcr.io/acme/*", "K1")], "rejectUnmatchedImages": true});
    let message = rejection(run(strict, "Pod", object, &host));
    assert_eq!(message, "1 image failed verification: spec.containers[1] (quay.io/other/tool:v2): no signature rule matches this image, and unmatched images are rejected");
}

#[test]
fn require_digest() {
    let pinned = format!("ghcr.io/acme/app:v1@{DIGEST_A}");
    let object = pod(containers(&[&pinned, "ghcr.io/acme/app:v1"]));
    let rules = json!({"signatures": [key_rule("ghcr.io/acme/*", "K1")], "requireDigest": true});
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let message = rejection(run(rules.clone(), "Pod", object, &host));
    assert_eq!(message, "1 image failed verification: spec.containers[1] (ghcr.io/acme/app:v1): the image has no digest, and a digest is required");
    assert_eq!(
        run(rules, "Pod", pod(containers(&[&pinned])), &host),
        Verdict::Accept
    );
}

#[test]
fn pinning_scopes() {
    let deployment = json!({"spec": {"template": {"spec": {"containers": containers(&["ghcr.io/acme/app:v1"])}}}});
    let pod = pod(containers(&["ghcr.io/acme/app:v1"]));
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let with = |extra: Value| {
        let mut s = settings(json!([key_rule("*", "K1")]));
        s.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        s
    };
    let pods_only = with(json!({"digestPinning": "pods"}));
    assert_eq!(
        run(pods_only.clone(), "Deployment", deployment.clone(), &host),
        Verdict::Accept
    );
    assert!(matches!(
        run(pods_only, "Pod", pod.clone(), &host),
        Verdict::Mutate(_)
    ));
    for off in [
        json!({"digestPinning": "none"}),
        json!({"modifyImagesWithDigest": false}),
    ] {
        assert_eq!(
            run(with(off.clone()), "Pod", pod.clone(), &host),
            Verdict::Accept
        );
        assert_eq!(
            run(with(off), "Deployment", deployment.clone(), &host),
            Verdict::Accept
        );
    }
    assert!(matches!(
        run(with(json!({})), "Deployment", deployment, &host),
        Verdict::Mutate(_)
    ));
}

#[test]
fn digest_already_present_is_never_doubled() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let rules = settings(json!([key_rule("*", "K1")]));
    for image in [
        format!("ghcr.io/acme/app@{DIGEST_A}"),
        format!("ghcr.io/acme/app:v1@{DIGEST_A}"),
    ] {
        assert_eq!(
            run(rules.clone(), "Pod", pod(containers(&[&image])), &host),
            Verdict::Accept
        );
    }
    // The signatures must be for the digest the spec pins.
    let message = rejection(run(
        rules,
        "Pod",
        pod(containers(&[&format!("ghcr.io/acme/app@{DIGEST_B}")])),
        &host,
    ));
    assert!(
        message.ends_with(&format!(
            "the spec pins {DIGEST_B} but the signatures verified {DIGEST_A}"
        )),
        "{message}"
    );
}

#[test]
fn rules_that_verify_different_digests_mean_the_tag_moved() {
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .sig(Sig {
            image: "ghcr.io/acme/app",
            signer: "K2",
            annotations: &[],
            digest: DIGEST_B,
        });
    let rules = settings(json!([
        key_rule("ghcr.io/*", "K1"),
        key_rule("ghcr.io/acme/*", "K2")
    ]));
    let message = rejection(run(
        rules,
        "Pod",
        pod(containers(&["ghcr.io/acme/app:v1"])),
        &host,
    ));
    assert!(
        message.ends_with(&format!(
            "the tag moved while it was verified: rules verified both {DIGEST_A} and {DIGEST_B}"
        )),
        "{message}"
    );
}

#[test]
fn failure_classes() {
    let host = FakeHost::default()
        .sig(Sig { image: "ghcr.io/acme/app", signer: "K1", annotations: &[("env", "dev")], digest: DIGEST_A })
        .broken("ghcr.io/acme/down", "Host error: Callback evaluation failure: error sending request for url (https://ghcr.io/v2/): connection refused\n-----BEGIN PUBLIC KEY-----");
    let rules = settings(json!([
        {"image": "ghcr.io/acme/*", "pubKeys": ["K1"], "annotations": {"env": "prod"}},
    ]));
    let object = pod(containers(&[
        "ghcr.io/acme/app:v1",
        "ghcr.io/acme/down:v1",
        "ghcr.io/acme/none:v1",
    ]));
    let message = rejection(run(rules, "Pod", object, &host));
    assert_eq!(
        message,
        "3 images failed verification: \
         spec.containers[0] (ghcr.io/acme/app:v1): signatures[0] pubKeys: pubKeys[0]: signed by the required signer, but annotations mismatch; \
         spec.containers[1] (ghcr.io/acme/down:v1): signatures[0] pubKeys: pubKeys[0]: registry or host error: error sending request for url (https://ghcr.io/v2/): connection refused; \
         spec.containers[2] (ghcr.io/acme/none:v1): signatures[0] pubKeys: pubKeys[0]: no signatures"
    );
    // One call per image, plus the one that told the annotations apart.
    assert_eq!(host.calls(), 4);
}

#[test]
fn the_same_input_gives_the_same_message() {
    let object = pod(containers(&["ghcr.io/b:v1", "ghcr.io/a:v1", "nginx"]));
    let rules = settings(
        json!([key_rule("*", "K1"), {"image": "*", "keyless": [{"issuer": "https://i", "subject": "s"}]}]),
    );
    let first = rejection(run(
        rules.clone(),
        "Pod",
        object.clone(),
        &FakeHost::default(),
    ));
    for _ in 0..3 {
        assert_eq!(
            rejection(run(
                rules.clone(),
                "Pod",
                object.clone(),
                &FakeHost::default()
            )),
            first
        );
    }
    assert!(
        first.starts_with("3 images failed verification: spec.containers[0] (ghcr.io/b:v1)"),
        "{first}"
    );
}

#[test]
fn signer_kinds_are_sent_as_their_own_checks() {
    let host = FakeHost::default()
        .signed(
            "ghcr.io/acme/app",
            "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1",
        )
        .signed("ghcr.io/acme/app", "acme/app")
        .signed("ghcr.io/acme/app", "CERT");
    let rules = settings(json!([
        {"image": "*", "keylessPrefix": [{"issuer": "https://token.actions.githubusercontent.com", "urlPrefix": "https://github.com/acme/"}]},
        {"image": "*", "githubActions": {"owner": "acme", "repo": "app"}},
        {"image": "*", "certificates": ["CERT"], "requireRekorBundle": false},
    ]));
    assert!(matches!(
        run(
            rules,
            "Pod",
            pod(containers(&["ghcr.io/acme/app:v1"])),
            &host
        ),
        Verdict::Mutate(_)
    ));
    assert_eq!(host.calls(), 3);
}

#[test]
fn validate_settings_entry_point() {
    assert_eq!(
        validate_settings(
            br#"{"signatures": [{"image": "*", "githubActions": {"owner": "acme"}}]}"#
        ),
        Ok(())
    );
    assert_eq!(
        validate_settings(b"{}"),
        Err("missing field `signatures`".into())
    );
    assert!(validate_settings(b"[")
        .unwrap_err()
        .starts_with("settings are not JSON"));
}

/// Each input of issue 9 that was admitted unverified, now checked.
#[test]
fn no_spelling_or_glob_walks_around_a_rule() {
    let host = FakeHost::default();
    for (rule, image) in [
        ("docker.io/*", "docker.io/bitnami/nginx:1.25"),
        ("docker.io/*", "bitnami/nginx:1.25"),
        ("*acme*", "ghcr.io/acme/app:v1"),
        ("*unsigned*", "127.0.0.1:5000/test/unsigned:v1"),
        ("ghcr.io/acme/*", "ghcr.io:0443/acme/app:v1"),
        ("ghcr.io:443/acme/*", "GHCR.IO:00443/acme/app:v1"),
        ("host.example:5000/*", "host.example:05000/app"),
    ] {
        let rules = settings(json!([key_rule(rule, "KEY-A")]));
        let message = rejection(run(rules, "Pod", pod(containers(&[image])), &host));
        assert!(
            message.ends_with("no signatures"),
            "{rule} ~ {image}: {message}"
        );
    }
    // `docker.io/library/*` is the official images only.
    let rules = settings(json!([key_rule("docker.io/library/*", "KEY-A")]));
    let official = run(rules.clone(), "Pod", pod(containers(&["nginx"])), &host);
    assert!(matches!(official, Verdict::Reject(_)));
    let user = run(rules, "Pod", pod(containers(&["bitnami/nginx"])), &host);
    assert_eq!(user, Verdict::Accept);
}

#[test]
fn a_skip_registry_glob_stops_at_the_registry() {
    let rules = json!({
        "signatures": [key_rule("*", "KEY-A")],
        "skipImages": ["*.example.com/*"],
        "rejectUnmatchedImages": true,
    });
    let host = FakeHost::default();
    let message = rejection(run(
        rules.clone(),
        "Pod",
        pod(containers(&[
            "ghcr.io/attacker/x.example.com/app:v1",
            "reg.example.com/app:v1",
        ])),
        &host,
    ));
    assert_eq!(message, "1 image failed verification: spec.containers[0] (ghcr.io/attacker/x.example.com/app:v1): signatures[0] pubKeys: pubKeys[0]: no signatures");
    assert_eq!(host.calls(), 1);
}

#[test]
fn image_volumes_are_verified_and_pinned_like_containers() {
    let mut object = pod(containers(&["ghcr.io/acme/app:v1"]));
    object["spec"]["volumes"] = json!([
        {"name": "scratch", "emptyDir": {}},
        {"name": "tools", "image": {"reference": "ghcr.io/acme/tools:v1", "pullPolicy": "IfNotPresent"}},
        {"name": "again", "image": {"reference": "ghcr.io/acme/app:v1"}},
    ]);
    let rules = settings(json!([key_rule("ghcr.io/acme/*", "KEY-A")]));
    let host = FakeHost::default().signed("ghcr.io/acme/app", "KEY-A");
    let message = rejection(run(rules.clone(), "Pod", object.clone(), &host));
    assert_eq!(message, "1 image failed verification: spec.volumes[1].image.reference (ghcr.io/acme/tools:v1): signatures[0] pubKeys: pubKeys[0]: no signatures");

    // Signed: pinned in place, and the volume naming the container's image shares its check.
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "KEY-A")
        .signed("ghcr.io/acme/tools", "KEY-A");
    let ops = patch(&object, run(rules.clone(), "Pod", object.clone(), &host));
    let paths: Vec<&str> = ops.iter().map(|(_, p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/spec/containers/0/image",
            "/spec/volumes/1/image/reference",
            "/spec/volumes/2/image/reference"
        ]
    );
    assert_eq!(ops[1].2, json!(format!("ghcr.io/acme/tools:v1@{DIGEST_A}")));
    assert_eq!(host.calls(), 2);

    // In a pod template too; a volume without a reference fails closed.
    let deployment = json!({"spec": {"template": {"spec": {
        "containers": [],
        "volumes": [{"name": "v", "image": {"reference": "ghcr.io/acme/evil:v1"}}, {"name": "w", "image": {}}],
    }}}});
    let message = rejection(run(rules, "Deployment", deployment, &host));
    assert_eq!(message, "2 images failed verification: spec.template.spec.volumes[0].image.reference (ghcr.io/acme/evil:v1): signatures[0] pubKeys: pubKeys[0]: no signatures; spec.template.spec.volumes[1].image.reference: the image volume has no reference");
}

mod updates;

mod platforms;

/// Two entries that require the same key of one image are one host call: checks are
/// told apart by the signer's value, not by where the settings hold it.
#[test]
fn the_same_key_in_two_entries_is_one_check() {
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));
    let host = FakeHost::default().signed("ghcr.io/acme/app", "KEY-A");
    let verdict = run(
        settings(json!([
            key_rule("ghcr.io/acme/*", "KEY-A"),
            key_rule("ghcr.io/*", "KEY-A")
        ])),
        "Pod",
        object.clone(),
        &host,
    );
    assert!(matches!(verdict, Verdict::Mutate(_)));
    assert_eq!(host.calls(), 1);

    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "KEY-A")
        .signed("ghcr.io/acme/app", "KEY-B");
    let verdict = run(
        settings(json!([
            key_rule("ghcr.io/acme/*", "KEY-A"),
            key_rule("ghcr.io/*", "KEY-B")
        ])),
        "Pod",
        object,
        &host,
    );
    assert!(matches!(verdict, Verdict::Mutate(_)));
    assert_eq!(host.calls(), 2);
}
