//! UPDATE and subresources: only what the request changes is verified and pinned.

use super::*;

/// An admission request: `old` as `oldObject` (`Value::Null` sends `null`, `None` leaves
/// it out), and `subresource` when given.
fn request(
    settings: &Value,
    operation: &str,
    kind: &str,
    old: Option<&Value>,
    object: &Value,
    subresource: Option<&str>,
) -> Vec<u8> {
    let mut payload: Value =
        serde_json::from_slice(&super::payload(settings.clone(), kind, object.clone())).unwrap();
    payload["request"]["operation"] = json!(operation);
    if let Some(old) = old {
        payload["request"]["oldObject"] = old.clone();
    }
    if let Some(subresource) = subresource {
        payload["request"]["subResource"] = json!(subresource);
    }
    serde_json::to_vec(&payload).unwrap()
}

fn update(settings: &Value, kind: &str, old: &Value, new: &Value, host: &FakeHost) -> Verdict {
    validate(
        &request(settings, "UPDATE", kind, Some(old), new, None),
        host,
    )
}

fn acme() -> Value {
    settings(json!([key_rule("ghcr.io/acme/*", "K1")]))
}

fn strict() -> Value {
    json!({"signatures": [key_rule("ghcr.io/acme/*", "K1")], "reverifyUnchangedImages": true})
}

fn deployment(images: &[&str], replicas: u32) -> Value {
    json!({"spec": {"replicas": replicas, "template": {"spec": {"containers": containers(images)}}}})
}

fn labelled(object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]["labels"]["team"] = json!("payments");
    object
}

/// The paths a verdict's patch replaces.
fn patched(object: &Value, verdict: Verdict) -> Vec<String> {
    patch(object, verdict)
        .into_iter()
        .map(|(_, path, _)| path)
        .collect()
}

#[test]
fn a_label_change_verifies_nothing_and_pins_nothing() {
    // Unsigned, written without a digest, in every spelling: it already runs.
    let old = pod(containers(&["ghcr.io/acme/app:v1", "nginx"]));
    let mut new = labelled(&old);
    new["spec"]["containers"][1]["image"] = json!("docker.io/library/nginx:latest");
    let host = FakeHost::default();
    assert_eq!(update(&acme(), "Pod", &old, &new, &host), Verdict::Accept);
    // A Deployment scaled while its registry is down.
    let host = FakeHost::default().broken("ghcr.io/acme/app", "connection refused");
    let old = deployment(&["ghcr.io/acme/app:v1"], 2);
    let new = deployment(&["ghcr.io/acme/app:v1"], 0);
    assert_eq!(
        update(&acme(), "Deployment", &old, &new, &host),
        Verdict::Accept
    );
    // A container added with an image the workload already runs changes no image.
    let new = deployment(&["ghcr.io/acme/app:v1", "ghcr.io/acme/app:v1"], 2);
    assert_eq!(
        update(&acme(), "Deployment", &old, &new, &host),
        Verdict::Accept
    );
    assert_eq!(host.calls(), 0);
}

#[test]
fn a_changed_image_is_verified_and_only_it_is_pinned() {
    let old = deployment(&["ghcr.io/acme/app:v1", "ghcr.io/acme/sidecar:v1"], 2);
    let new = deployment(&["ghcr.io/acme/app:v2", "ghcr.io/acme/sidecar:v1"], 2);
    let unsigned = FakeHost::default();
    let message = rejection(update(&acme(), "Deployment", &old, &new, &unsigned));
    assert_eq!(message, "1 image failed verification: spec.template.spec.containers[0] (ghcr.io/acme/app:v2): signatures[0] pubKeys: pubKeys[0]: no signatures");
    assert_eq!(unsigned.calls(), 1);
    // Signed: pinned; the unchanged, unsigned sidecar is neither verified nor pinned.
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let verdict = update(&acme(), "Deployment", &old, &new, &host);
    assert_eq!(
        patched(&new, verdict),
        ["/spec/template/spec/containers/0/image"]
    );
    assert_eq!(host.calls(), 1);
}

#[test]
fn removing_a_digest_is_a_change_and_pinning_again_is_idempotent() {
    let running = format!("ghcr.io/acme/app:v1@{DIGEST_A}");
    let old = pod(containers(&[&running]));
    let new = labelled(&pod(containers(&["ghcr.io/acme/app:v1"])));
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let Verdict::Mutate(pinned) = update(&acme(), "Pod", &old, &new, &host) else {
        panic!("not pinned again");
    };
    let pinned: Value = serde_json::from_str(&pinned).unwrap();
    assert_eq!(pinned["spec"]["containers"][0]["image"], json!(running));
    assert_eq!(host.calls(), 1);
    // The pinned object, applied again, changes nothing.
    assert_eq!(
        update(&acme(), "Pod", &old, &pinned, &host),
        Verdict::Accept
    );
    assert_eq!(
        update(&acme(), "Pod", &pinned, &pinned, &host),
        Verdict::Accept
    );
    assert_eq!(host.calls(), 1);
}

#[test]
fn an_update_without_a_readable_old_object_verifies_everything() {
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));
    let rules = acme();
    for old in [
        None,
        Some(json!(null)),
        Some(json!({"spec": {"containers": "unreadable"}})),
        Some(json!("not an object")),
    ] {
        let payload = request(&rules, "UPDATE", "Pod", old.as_ref(), &object, None);
        let unsigned = FakeHost::default();
        let message = rejection(validate(&payload, &unsigned));
        assert!(message.ends_with("no signatures"), "{old:?}: {message}");
        let signed = FakeHost::default().signed("ghcr.io/acme/app", "K1");
        assert_eq!(
            patched(&object, validate(&payload, &signed)),
            ["/spec/containers/0/image"],
            "{old:?}"
        );
    }
    // CREATE never reads an old object, even when one is sent.
    let payload = request(&rules, "CREATE", "Pod", Some(&object), &object, None);
    assert!(rejection(validate(&payload, &FakeHost::default())).ends_with("no signatures"));
}

#[test]
fn only_ephemeral_containers_new_by_name_are_verified_and_pinned() {
    let mut old = pod(containers(&["ghcr.io/acme/app:v1"]));
    old["spec"]["ephemeralContainers"] =
        json!([{"name": "debug", "image": "ghcr.io/acme/debug:v1", "targetContainerName": "c0"}]);
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "debug-2", "image": "ghcr.io/acme/debug:v1"}));
    let payload = request(
        &acme(),
        "UPDATE",
        "Pod",
        Some(&old),
        &new,
        Some("ephemeralcontainers"),
    );
    // The same image as the first debug container: new by name, so verified and pinned;
    // the existing one stays as it is, though it has no digest either.
    let host = FakeHost::default().signed("ghcr.io/acme/debug", "K1");
    assert_eq!(
        patched(&new, validate(&payload, &host)),
        ["/spec/ephemeralContainers/1/image"]
    );
    assert_eq!(host.calls(), 1);
    let unsigned = FakeHost::default();
    assert_eq!(rejection(validate(&payload, &unsigned)), "1 image failed verification: spec.ephemeralContainers[1] (ghcr.io/acme/debug:v1): signatures[0] pubKeys: pubKeys[0]: no signatures");
    assert_eq!(unsigned.calls(), 1);
    // The strict setting does not apply to a subresource.
    let payload = request(
        &strict(),
        "UPDATE",
        "Pod",
        Some(&old),
        &new,
        Some("ephemeralcontainers"),
    );
    assert_eq!(
        patched(&new, validate(&payload, &host)),
        ["/spec/ephemeralContainers/1/image"]
    );
    assert_eq!(host.calls(), 2);
}

#[test]
fn subresources_that_change_no_image_are_accepted_unchanged() {
    let mut old = pod(containers(&["ghcr.io/acme/app:v1"]));
    old["status"] = json!({"phase": "Pending"});
    let mut running = old.clone();
    running["status"] = json!({"phase": "Running"});
    let mut resized = old.clone();
    resized["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "2"}});
    let scale = json!({"kind": "Scale", "spec": {"replicas": 3}, "status": {"replicas": 2}});
    let eviction = json!({"kind": "Eviction", "metadata": {"name": "p"}});
    let host = FakeHost::default();
    for rules in [acme(), strict()] {
        for (subresource, kind, old, new) in [
            ("status", "Pod", &old, &running),
            ("resize", "Pod", &old, &resized),
            ("scale", "Scale", &scale, &scale),
            ("eviction", "Eviction", &eviction, &eviction),
        ] {
            let payload = request(&rules, "UPDATE", kind, Some(old), new, Some(subresource));
            assert_eq!(validate(&payload, &host), Verdict::Accept, "{subresource}");
        }
    }
    assert_eq!(host.calls(), 0);
}

#[test]
fn the_strict_setting_reverifies_unchanged_images_and_never_pins_them() {
    let old = deployment(&["ghcr.io/acme/app:v1", "ghcr.io/acme/sidecar:v1"], 2);
    let scaled = deployment(&["ghcr.io/acme/app:v1", "ghcr.io/acme/sidecar:v1"], 3);
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .signed("ghcr.io/acme/sidecar", "K1");
    assert_eq!(
        update(&strict(), "Deployment", &old, &scaled, &host),
        Verdict::Accept
    );
    assert_eq!(host.calls(), 2);
    let changed = deployment(&["ghcr.io/acme/app:v2", "ghcr.io/acme/sidecar:v1"], 2);
    assert_eq!(
        patched(
            &changed,
            update(&strict(), "Deployment", &old, &changed, &host)
        ),
        ["/spec/template/spec/containers/0/image"]
    );
    assert_eq!(host.calls(), 4);
    // An unchanged image whose registry is down, or that is unsigned, is rejected.
    let down = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .broken("ghcr.io/acme/sidecar", "connection refused");
    let message = rejection(update(&strict(), "Deployment", &old, &scaled, &down));
    assert!(message.starts_with("1 image failed verification: spec.template.spec.containers[1] (ghcr.io/acme/sidecar:v1)"), "{message}");
    assert!(
        message.ends_with("registry or host error: connection refused"),
        "{message}"
    );
}

#[test]
fn image_volumes_count_as_images_on_update() {
    let volume = |reference: &str| json!([{"name": "tools", "image": {"reference": reference}}]);
    let mut old = pod(containers(&["ghcr.io/acme/app:v1@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]));
    old["spec"]["volumes"] = volume("ghcr.io/acme/tools:v1");
    // Unchanged: the volume's image is not verified again, nor pinned.
    let host = FakeHost::default();
    assert_eq!(
        update(&acme(), "Pod", &old, &labelled(&old), &host),
        Verdict::Accept
    );
    assert_eq!(host.calls(), 0);
    // Changed to an unsigned image: rejected, by where it sits.
    let mut new = old.clone();
    new["spec"]["volumes"] = volume("ghcr.io/acme/tools:v2");
    let message = rejection(update(&acme(), "Pod", &old, &new, &host));
    assert!(
        message.starts_with("1 image failed verification: spec.volumes[0].image.reference"),
        "{message}"
    );
    // An image moved from a volume into a container is one the Pod already pulls.
    let mut moved = pod(containers(&["ghcr.io/acme/tools:v1"]));
    moved["spec"]["volumes"] = json!([]);
    let host = FakeHost::default();
    assert_eq!(update(&acme(), "Pod", &old, &moved, &host), Verdict::Accept);
    assert_eq!(host.calls(), 0);
}
