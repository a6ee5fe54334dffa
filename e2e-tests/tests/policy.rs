//! verify-image-signatures end to end: the real `policy.wasm` in a real host, verifying real
//! cosign signatures of images in a real registry on 127.0.0.1.
//!
//! The host is chosen by `E2E_BACKEND`: `kwhost` (the default, in process), `kwctl`
//! (`kwctl run`) or `policy-server` (HTTP). A test that needs what a backend lacks starts with
//! `if skip_without(Need::...) { return; }`, which prints why it is skipped.
//! `make e2e-tests` builds the policy and points `POLICY_WASM` at it; `make e2e-kubewarden`
//! runs this suite on kwctl and policy-server.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use e2e_tests::backend::{self, Backend, BackendConfig, BackendKind, Need};
use e2e_tests::fixtures::{Fixtures, Image, Registry};
use e2e_tests::host::{AdmissionResponse, HostCallStats};
use serde_json::{json, Value};

struct Env {
    /// Kept alive for the whole test process.
    _registry: Registry,
    fixtures: Fixtures,
    wasm: PathBuf,
    /// The backend every evaluation of [`evaluate`] goes through.
    host: Backend,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let wasm = PathBuf::from(std::env::var("POLICY_WASM").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../annotated-policy.wasm").to_owned()
        }));
        assert!(
            wasm.is_file(),
            "no {}: run `make e2e-tests`",
            wasm.display()
        );
        let kind = BackendKind::from_env().unwrap();
        let _ = writeln!(std::io::stderr(), "e2e suite on backend {}", kind.name());
        let registry = Registry::start().expect("start the local registry");
        let fixtures = Fixtures::create(&registry).expect("create the signed images");
        let host = start_backend(kind, &fixtures, &wasm);
        Env {
            _registry: registry,
            fixtures,
            wasm,
            host,
        }
    })
}

fn start_backend(kind: BackendKind, fixtures: &Fixtures, wasm: &std::path::Path) -> Backend {
    Backend::start(kind, &BackendConfig { wasm, fixtures })
        .unwrap_or_else(|e| panic!("cannot start the {} backend: {e:#}", kind.name()))
}

fn fx() -> &'static Fixtures {
    &env().fixtures
}

/// A backend of its own, for tests that count host calls (start them with
/// `if skip_without(Need::HostCallCounts) { return; }`).
fn private_host() -> Backend {
    start_backend(env().host.kind(), fx(), &env().wasm)
}

/// Whether this backend cannot run the calling test for want of `need` (the reason is printed).
fn skip_without(need: Need) -> bool {
    backend::skip(env().host.kind(), need)
}

fn evaluate(settings: &Value, request: &Value) -> AdmissionResponse {
    let host = &env().host;
    let verdict = host.validate_settings_with(settings);
    assert!(verdict.valid, "settings refused: {:?}", verdict.message);
    host.validate_with(settings, request).expect("evaluate")
}

fn request(kind: &str, object: Value) -> Value {
    json!({
        "uid": "e2e",
        "kind": {"group": group_of(kind), "version": "v1", "kind": kind},
        "resource": {"group": group_of(kind), "version": "v1", "resource": format!("{}s", kind.to_lowercase())},
        "operation": "CREATE",
        "name": "workload",
        "namespace": "default",
        "userInfo": {"username": "e2e"},
        "object": object,
    })
}

fn group_of(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => "apps",
        "Job" | "CronJob" => "batch",
        "Rollout" => "argoproj.io",
        _ => "",
    }
}

fn container(name: &str, image: &str) -> Value {
    json!({
        "name": name,
        "image": image,
        "args": ["--port", "8080"],
        "env": [{"name": "MODE", "value": "prod"}],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
    })
}

fn pod_spec(images: &[&str]) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| container(&format!("c{i}"), image))
        .collect();
    json!({"containers": containers, "restartPolicy": "Always"})
}

fn deployment(images: &[&str]) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "default", "labels": {"app": "app"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}}, "spec": pod_spec(images)},
        },
    })
}

fn pod(images: &[&str]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": pod_spec(images),
    })
}

fn signatures(rules: Value) -> Value {
    json!({"signatures": rules})
}

/// A pubKeys rule for every image of the local registry.
fn keys_rule(keys: &[&str]) -> Value {
    json!({"image": format!("{}/*", fx().registry), "pubKeys": keys})
}

fn message(response: &AdmissionResponse) -> String {
    response
        .status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

#[track_caller]
fn assert_rejected(response: &AdmissionResponse, expected: &[&str]) {
    assert!(!response.allowed, "accepted: {response:?}");
    let message = message(response);
    for part in expected {
        assert!(message.contains(part), "{message:?}\n  lacks {part:?}");
    }
    assert!(!message.contains("BEGIN"), "a PEM leaked into {message:?}");
}

/// The patch as `(op, path, value)` triples.
#[track_caller]
fn patch_ops(response: &AdmissionResponse) -> Vec<(String, String, Value)> {
    assert!(response.allowed, "rejected: {:?}", message(response));
    let Some(patch) = response.decoded_patch() else {
        return Vec::new();
    };
    assert_eq!(response.patch_type.as_deref(), Some("JSONPatch"));
    patch
        .as_array()
        .expect("a JSON patch is an array")
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

fn pinned(image: &Image) -> String {
    format!("{}@{}", image.reference, image.digest)
}

#[track_caller]
fn assert_pinned(response: &AdmissionResponse, expected: &[(&str, &Image)]) {
    let expected: Vec<(String, String, Value)> = expected
        .iter()
        .map(|(path, image)| ("replace".to_owned(), path.to_string(), json!(pinned(image))))
        .collect();
    assert_eq!(patch_ops(response), expected);
}

const CONTAINER_0: &str = "/spec/template/spec/containers/0/image";

#[test]
fn pub_keys() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let signed = evaluate(
        &settings,
        &request("Deployment", deployment(&[&fx.images.key_a.reference])),
    );
    assert_pinned(&signed, &[(CONTAINER_0, &fx.images.key_a)]);

    let unsigned = evaluate(
        &settings,
        &request("Deployment", deployment(&[&fx.images.unsigned.reference])),
    );
    assert_rejected(
        &unsigned,
        &[
            &format!(
                "1 image failed verification: spec.template.spec.containers[0] ({})",
                fx.images.unsigned.reference
            ),
            "signatures[0] pubKeys: pubKeys[0]: no signatures",
        ],
    );

    let wrong_key = signatures(json!([keys_rule(&[&fx.keys.w])]));
    let response = evaluate(
        &wrong_key,
        &request("Deployment", deployment(&[&fx.images.key_a.reference])),
    );
    assert_rejected(
        &response,
        &["pubKeys[0]: not signed by the required signer"],
    );
}

#[test]
fn annotations() {
    let fx = fx();
    let rule = |annotations: Value| {
        signatures(
            json!([{"image": format!("{}/*", fx.registry), "pubKeys": [fx.keys.a], "annotations": annotations}]),
        )
    };
    let annotated = request("Pod", pod(&[&fx.images.key_a_annotated.reference]));
    let response = evaluate(&rule(json!({"env": "prod"})), &annotated);
    assert_pinned(
        &response,
        &[("/spec/containers/0/image", &fx.images.key_a_annotated)],
    );
    let response = evaluate(&rule(json!(fx.annotations)), &annotated);
    assert!(response.allowed);

    let response = evaluate(&rule(json!({"env": "dev"})), &annotated);
    assert_rejected(
        &response,
        &["pubKeys[0]: signed by the required signer, but annotations mismatch"],
    );
    // Signed by the right key without annotations at all.
    let response = evaluate(
        &rule(json!({"env": "prod"})),
        &request("Pod", pod(&[&fx.images.key_a.reference])),
    );
    assert_rejected(&response, &["annotations mismatch"]);
    // Annotations do not rescue a wrong key.
    let wrong =
        signatures(json!([{"image": "*", "pubKeys": [fx.keys.w], "annotations": {"env": "prod"}}]));
    assert_rejected(
        &evaluate(&wrong, &annotated),
        &["not signed by the required signer"],
    );
}

#[test]
fn keyless_exact_identity() {
    if skip_without(Need::CustomTrustRoot) {
        return;
    }
    let fx = fx();
    let id = &fx.email_identity;
    let rule = |issuer: &str, subject: &str| {
        signatures(
            json!([{"image": format!("{}/*", fx.registry), "keyless": [{"issuer": issuer, "subject": subject}]}]),
        )
    };
    let object = request("Pod", pod(&[&fx.images.keyless_email.reference]));
    assert_pinned(
        &evaluate(&rule(&id.issuer, &id.subject), &object),
        &[("/spec/containers/0/image", &fx.images.keyless_email)],
    );
    assert_rejected(
        &evaluate(&rule(&id.issuer, "mallory@example.com"), &object),
        &[
            "keyless[0] (mallory@example.com from",
            "not signed by the required signer",
        ],
    );
    assert_rejected(
        &evaluate(&rule("https://evil.example.com", &id.subject), &object),
        &["not signed by the required signer"],
    );
    // A key-signed image has no keyless signature.
    let key_signed = request("Pod", pod(&[&fx.images.key_a.reference]));
    assert_rejected(
        &evaluate(&rule(&id.issuer, &id.subject), &key_signed),
        &["not signed by the required signer"],
    );
}

#[test]
fn keyless_url_prefix() {
    if skip_without(Need::CustomTrustRoot) {
        return;
    }
    let fx = fx();
    let issuer = &fx.github_identity.issuer;
    let rule = |prefix: &str| {
        signatures(
            json!([{"image": format!("{}/*", fx.registry), "keylessPrefix": [{"issuer": issuer, "urlPrefix": prefix}]}]),
        )
    };
    let object = request("Pod", pod(&[&fx.images.keyless_github.reference]));
    assert!(evaluate(&rule("https://github.com/acme/"), &object).allowed);
    assert!(evaluate(&rule("https://github.com/acme/app"), &object).allowed);
    // The host appends `/`: a prefix that is not a path boundary does not match.
    assert_rejected(
        &evaluate(&rule("https://github.com/ac"), &object),
        &[
            "keylessPrefix[0] (https://github.com/ac* from",
            "not signed by the required signer",
        ],
    );
    assert_rejected(
        &evaluate(&rule("https://github.com/other/"), &object),
        &["not signed by the required signer"],
    );
    // The snake_case spelling works the same.
    let snake = signatures(
        json!([{"image": "*", "keylessPrefix": [{"issuer": issuer, "url_prefix": "https://github.com/acme/"}]}]),
    );
    assert!(evaluate(&snake, &object).allowed);
}

#[test]
fn github_actions() {
    if skip_without(Need::CustomTrustRoot) {
        return;
    }
    let fx = fx();
    let rule = |github: Value| {
        signatures(json!([{"image": format!("{}/*", fx.registry), "githubActions": github}]))
    };
    let object = request("Pod", pod(&[&fx.images.keyless_github.reference]));
    assert_pinned(
        &evaluate(&rule(json!({"owner": "acme", "repo": "app"})), &object),
        &[("/spec/containers/0/image", &fx.images.keyless_github)],
    );
    assert!(evaluate(&rule(json!({"owner": "acme"})), &object).allowed);
    assert_rejected(
        &evaluate(&rule(json!({"owner": "acme", "repo": "other"})), &object),
        &["githubActions (acme/other): not signed by the required signer"],
    );
    assert_rejected(
        &evaluate(&rule(json!({"owner": "evil"})), &object),
        &["githubActions (evil)"],
    );
    // An e-mail identity is no GitHub workflow.
    let email = request("Pod", pod(&[&fx.images.keyless_email.reference]));
    assert_rejected(
        &evaluate(&rule(json!({"owner": "acme"})), &email),
        &["not signed by the required signer"],
    );
}

#[test]
fn certificates() {
    if skip_without(Need::CustomTrustRoot) {
        return;
    }
    let fx = fx();
    let cert = &fx.signing_certificate;
    let rule = |rekor: bool, chain: Option<&Vec<String>>| {
        let mut rule = json!({"image": format!("{}/*", fx.registry), "certificates": [cert.certificate], "requireRekorBundle": rekor});
        if let Some(chain) = chain {
            rule["certificateChain"] = json!(chain);
        }
        signatures(json!([rule]))
    };
    let bundled = request("Pod", pod(&[&fx.images.certificate_bundled.reference]));
    let unbundled = request("Pod", pod(&[&fx.images.certificate_unbundled.reference]));
    assert_pinned(
        &evaluate(&rule(true, Some(&cert.chain)), &bundled),
        &[("/spec/containers/0/image", &fx.images.certificate_bundled)],
    );
    assert!(evaluate(&rule(true, None), &bundled).allowed);
    assert!(evaluate(&rule(false, Some(&cert.chain)), &unbundled).allowed);
    assert_rejected(
        &evaluate(&rule(true, Some(&cert.chain)), &unbundled),
        &["certificates[0]: not signed by the required signer"],
    );
    // The wrong chain: the certificate does not verify against the Fulcio CA.
    assert_rejected(
        &evaluate(&rule(true, Some(&fx.fulcio_chain)), &bundled),
        &["certificates[0]"],
    );
    // A certificate-signed image is not signed by a key.
    let keys = signatures(json!([keys_rule(&[&fx.keys.a])]));
    assert_rejected(
        &evaluate(&keys, &bundled),
        &["not signed by the required signer"],
    );
}

#[test]
fn every_workload_kind_and_container_list() {
    let fx = fx();
    let signed = &fx.images.key_a;
    let nested = &fx.images.nested;
    let unsigned = &fx.images.unsigned.reference;
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let spec = |image: &str| {
        let mut spec = pod_spec(&[&signed.reference]);
        spec["initContainers"] = json!([container("init", image)]);
        spec
    };
    let template = |image: &str| json!({"metadata": {"labels": {"app": "a"}}, "spec": spec(image)});
    let cases = [
        (
            "Pod",
            "/spec",
            json!({"spec": spec(&nested.reference)}),
            json!({"spec": spec(unsigned)}),
        ),
        (
            "Deployment",
            "/spec/template/spec",
            json!({"spec": {"template": template(&nested.reference)}}),
            json!({"spec": {"template": template(unsigned)}}),
        ),
        (
            "ReplicaSet",
            "/spec/template/spec",
            json!({"spec": {"template": template(&nested.reference)}}),
            json!({"spec": {"template": template(unsigned)}}),
        ),
        (
            "StatefulSet",
            "/spec/template/spec",
            json!({"spec": {"template": template(&nested.reference)}}),
            json!({"spec": {"template": template(unsigned)}}),
        ),
        (
            "DaemonSet",
            "/spec/template/spec",
            json!({"spec": {"template": template(&nested.reference)}}),
            json!({"spec": {"template": template(unsigned)}}),
        ),
        (
            "ReplicationController",
            "/spec/template/spec",
            json!({"spec": {"template": template(&nested.reference)}}),
            json!({"spec": {"template": template(unsigned)}}),
        ),
        (
            "Job",
            "/spec/template/spec",
            json!({"spec": {"template": template(&nested.reference)}}),
            json!({"spec": {"template": template(unsigned)}}),
        ),
        (
            "CronJob",
            "/spec/jobTemplate/spec/template/spec",
            json!({"spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template(&nested.reference)}}}}),
            json!({"spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": template(unsigned)}}}}),
        ),
        (
            "Rollout",
            "/spec/template/spec",
            json!({"spec": {"template": template(&nested.reference)}}),
            json!({"spec": {"template": template(unsigned)}}),
        ),
    ];
    for (kind, path, good, bad) in cases {
        let response = evaluate(&settings, &request(kind, good));
        assert_pinned(
            &response,
            &[
                (&format!("{path}/containers/0/image"), signed),
                (&format!("{path}/initContainers/0/image"), nested),
            ],
        );
        let response = evaluate(&settings, &request(kind, bad));
        let dotted = path.trim_start_matches('/').replace('/', ".");
        assert_rejected(&response, &[&format!("1 image failed verification: {dotted}.initContainers[0] ({unsigned}): signatures[0] pubKeys: pubKeys[0]: no signatures")]);
    }
}

#[test]
fn ephemeral_container_update_of_a_pod() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let running = pinned(&fx.images.key_a);
    let mut object = pod(&[&running]);
    object["spec"]["ephemeralContainers"] = json!([{"name": "debug", "image": fx.images.nested.reference, "targetContainerName": "c0"}]);
    let mut update = request("Pod", object.clone());
    update["subResource"] = json!("ephemeralcontainers");
    update["operation"] = json!("UPDATE");
    update["oldObject"] = pod(&[&running]);
    assert_pinned(
        &evaluate(&settings, &update),
        &[("/spec/ephemeralContainers/0/image", &fx.images.nested)],
    );

    object["spec"]["ephemeralContainers"][0]["image"] = json!(fx.images.unsigned.reference);
    update["object"] = object;
    assert_rejected(
        &evaluate(&settings, &update),
        &["spec.ephemeralContainers[0]", "no signatures"],
    );
}

#[test]
fn pinning_keeps_every_other_field() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let mut object = deployment(&[&fx.images.key_a.reference, &fx.images.nested.reference]);
    // A field no compiled-in Kubernetes type knows, at pod, container and top level.
    object["spec"]["template"]["spec"]["podFieldFromTheFuture"] =
        json!({"enabled": true, "weights": [1, 2.5]});
    object["spec"]["template"]["spec"]["containers"][0]["containerFieldFromTheFuture"] =
        json!("kept");
    object["status"] = json!({"observedGeneration": 3});
    object["metadata"]["managedFields"] =
        json!([{"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:spec": {}}}]);
    let response = evaluate(&settings, &request("Deployment", object));
    assert_pinned(
        &response,
        &[
            (CONTAINER_0, &fx.images.key_a),
            ("/spec/template/spec/containers/1/image", &fx.images.nested),
        ],
    );
}

#[test]
fn pinning_scope_and_already_pinned_images() {
    let fx = fx();
    let scoped =
        |scope: &str| json!({"signatures": [keys_rule(&[&fx.keys.a])], "digestPinning": scope});
    let image = &fx.images.key_a;
    let deploy = request("Deployment", deployment(&[&image.reference]));
    let pod = request("Pod", pod(&[&image.reference]));
    // GitOps: controllers stay as written in Git; their Pods are pinned.
    assert_eq!(patch_ops(&evaluate(&scoped("pods"), &deploy)), []);
    assert_pinned(
        &evaluate(&scoped("pods"), &pod),
        &[("/spec/containers/0/image", image)],
    );
    assert_eq!(patch_ops(&evaluate(&scoped("none"), &pod)), []);
    let off = json!({"signatures": [keys_rule(&[&fx.keys.a])], "modifyImagesWithDigest": false});
    assert_eq!(patch_ops(&evaluate(&off, &deploy)), []);
    // Already pinned: verified at that digest, never pinned twice.
    for written in [pinned(image), image.pinned()] {
        let response = evaluate(
            &scoped("all"),
            &request("Deployment", deployment(&[&written])),
        );
        assert_eq!(patch_ops(&response), [], "{written}");
    }
    // Pinned to a digest that is not the signed one: rejected.
    let wrong = format!("{}@{}", image.reference, fx.images.nested.digest);
    assert_rejected(
        &evaluate(
            &scoped("all"),
            &request("Deployment", deployment(&[&wrong])),
        ),
        &["spec.template.spec.containers[0]"],
    );
}

#[test]
fn multi_arch_index_is_pinned_to_the_index_digest() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let index = &fx.images.multi_arch.index;
    assert_pinned(
        &evaluate(
            &settings,
            &request("Deployment", deployment(&[&index.reference])),
        ),
        &[(CONTAINER_0, index)],
    );
    // A platform manifest by digest is not what was signed.
    let (_, platform_digest) = &fx.images.multi_arch.platforms[0];
    let repository = index.reference.rsplit_once(':').unwrap().0;
    let platform = format!("{repository}@{platform_digest}");
    assert_rejected(
        &evaluate(&settings, &request("Deployment", deployment(&[&platform]))),
        &["no signatures"],
    );
}

#[test]
fn minimum_matches() {
    let fx = fx();
    let rule = |n: usize| {
        signatures(
            json!([{"image": "*", "pubKeys": [fx.keys.k1, fx.keys.k2, fx.keys.k3], "minimumMatches": n}]),
        )
    };
    let object = request("Pod", pod(&[&fx.images.two_of_three.reference]));
    assert_pinned(
        &evaluate(&rule(2), &object),
        &[("/spec/containers/0/image", &fx.images.two_of_three)],
    );
    assert!(evaluate(&rule(1), &object).allowed);
    assert_rejected(&evaluate(&rule(3), &object), &["signatures[0] pubKeys: 2 of 3 required signers verified: pubKeys[2]: not signed by the required signer"]);
    // Without minimumMatches, every key must have signed (Kubewarden's meaning).
    let all = signatures(json!([{"image": "*", "pubKeys": [fx.keys.k1, fx.keys.k2, fx.keys.k3]}]));
    assert_rejected(
        &evaluate(&all, &object),
        &["2 of 3 required signers verified"],
    );
}

#[test]
fn alternatives() {
    if skip_without(Need::CustomTrustRoot) {
        return;
    }
    let fx = fx();
    let id = &fx.email_identity;
    let settings = signatures(json!([{"image": "*", "anyOf": [
        {"keyless": [{"issuer": id.issuer, "subject": id.subject}]},
        {"pubKeys": [fx.keys.a]},
    ]}]));
    let object = request(
        "Pod",
        pod(&[
            &fx.images.keyless_email.reference,
            &fx.images.key_a.reference,
        ]),
    );
    assert_pinned(
        &evaluate(&settings, &object),
        &[
            ("/spec/containers/0/image", &fx.images.keyless_email),
            ("/spec/containers/1/image", &fx.images.key_a),
        ],
    );
    let object = request("Pod", pod(&[&fx.images.unsigned.reference]));
    assert_rejected(
        &evaluate(&settings, &object),
        &[
            "signatures[0]: none of 2 alternatives holds",
            "signatures[0].anyOf[0] keyless",
            "signatures[0].anyOf[1] pubKeys",
        ],
    );
}

#[test]
fn skip_reject_unmatched_and_require_digest() {
    let fx = fx();
    let registry = &fx.registry;
    let unsigned = &fx.images.unsigned;
    let base = |extra: Value| {
        let mut settings = json!({"signatures": [{"image": format!("{registry}/acme/*"), "pubKeys": [fx.keys.a]}]});
        settings
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        settings
    };
    let object = request(
        "Pod",
        pod(&[&fx.images.nested.reference, &unsigned.reference]),
    );
    // The unsigned image matches no rule: admitted, and not pinned.
    assert_pinned(
        &evaluate(&base(json!({})), &object),
        &[("/spec/containers/0/image", &fx.images.nested)],
    );
    assert_rejected(
        &evaluate(&base(json!({"rejectUnmatchedImages": true})), &object),
        &["spec.containers[1]", "no signature rule matches this image"],
    );
    // Skipped images are never verified, even when a rule would match them.
    let skip = json!({"signatures": [{"image": "*", "pubKeys": [fx.keys.a]}], "skipImages": [unsigned.reference]});
    assert_pinned(
        &evaluate(&skip, &object),
        &[("/spec/containers/0/image", &fx.images.nested)],
    );
    // ... but a skip by tag never exempts the same repository by digest.
    let by_digest = request("Pod", pod(&[&unsigned.pinned()]));
    assert_rejected(&evaluate(&skip, &by_digest), &["no signatures"]);
    let strict = base(json!({"requireDigest": true}));
    assert_rejected(&evaluate(&strict, &object), &["the image has no digest"]);
    let pinned_nested = request("Pod", pod(&[&pinned(&fx.images.nested)]));
    assert_eq!(patch_ops(&evaluate(&strict, &pinned_nested)), []);
}

#[test]
fn every_spelling_of_a_repository_is_verified() {
    let fx = fx();
    let image = &fx.images.nested;
    let repository = image.reference.rsplit_once(':').unwrap().0;
    let spellings = [image.reference.clone(), image.pinned(), pinned(image)];
    let patterns = [
        format!("{}/*", fx.registry),
        format!("{}/acme/*", fx.registry),
        repository.to_owned(),
        format!("{repository}:*"),
        format!("{repository}:v1"),
        "*/acme/team/app".to_owned(),
        "*".to_owned(),
    ];
    for pattern in &patterns {
        let signed_by_a = signatures(json!([{"image": pattern, "pubKeys": [fx.keys.a]}]));
        let signed_by_w = signatures(json!([{"image": pattern, "pubKeys": [fx.keys.w]}]));
        for spelling in &spellings {
            let object = request("Pod", pod(&[spelling]));
            assert!(
                evaluate(&signed_by_a, &object).allowed,
                "{pattern} / {spelling}"
            );
            assert_rejected(
                &evaluate(&signed_by_w, &object),
                &["not signed by the required signer"],
            );
        }
    }
    // Docker Hub spellings are one image: a rule for `nginx` catches all of them (there is
    // no network here, so the host's registry error proves the rule was applied).
    let hub = signatures(json!([{"image": "nginx", "pubKeys": [fx.keys.a]}]));
    let spellings = [
        "nginx",
        "library/nginx:latest",
        "docker.io/nginx",
        "index.docker.io/library/nginx",
        "DOCKER.IO/library/nginx",
    ];
    let response = evaluate(&hub, &request("Pod", pod(&spellings)));
    assert_rejected(&response, &["1 image failed verification: spec.containers[0], spec.containers[1], spec.containers[2], spec.containers[3], spec.containers[4] (nginx): signatures[0] pubKeys: pubKeys[0]: registry or host error"]);
}

#[test]
fn faults_are_rejections_with_a_reason() {
    let fx = fx();
    let settings = signatures(json!([{"image": "*", "pubKeys": [fx.keys.a]}]));
    // Nothing listens on port 1.
    let down = request("Pod", pod(&["127.0.0.1:1/acme/app:v1"]));
    assert_rejected(
        &evaluate(&settings, &down),
        &["(127.0.0.1:1/acme/app:v1): signatures[0] pubKeys: pubKeys[0]: registry or host error"],
    );
    let missing = request("Pod", pod(&[&format!("{}/acme/missing:v1", fx.registry)]));
    assert_rejected(
        &evaluate(&settings, &missing),
        &["acme/missing:v1", "registry or host error"],
    );
    let malformed = request(
        "Pod",
        json!({"spec": {"containers": [{"name": "a", "image": 42}]}}),
    );
    assert_rejected(&evaluate(&settings, &malformed), &["cannot read the Pod"]);
    let no_image = request("Pod", json!({"spec": {"containers": [{"name": "a"}]}}));
    assert_rejected(
        &evaluate(&settings, &no_image),
        &["spec.containers[0]: the container has no image"],
    );
    let bad_reference = request("Pod", pod(&["Bad/Name:v1"]));
    assert_rejected(
        &evaluate(&settings, &bad_reference),
        &["cannot parse image reference \"Bad/Name:v1\""],
    );

    let host = &env().host;
    for (settings, expected) in [
        (json!({}), "missing field `signatures`"),
        (
            json!({"signatures": [{"image": "*", "pubkeys": ["x"]}]}),
            "signatures[0].pubkeys: unknown field `pubkeys`",
        ),
        (
            json!({"signatures": [{"image": "*", "pubKeys": ["not a key"]}]}),
            "signatures[0].pubKeys[0]: not a PEM public key",
        ),
    ] {
        let verdict = host.validate_settings_with(&settings);
        assert!(!verdict.valid);
        assert!(
            verdict
                .message
                .as_deref()
                .unwrap_or_default()
                .contains(expected),
            "{verdict:?}"
        );
    }
}

#[test]
fn one_host_call_per_unique_image_and_key() {
    if skip_without(Need::HostCallCounts) {
        return;
    }
    let fx = fx();
    let host = private_host();
    let images = [
        &fx.images.two_of_three.reference,
        &fx.images.key_a.reference,
        &fx.images.nested.reference,
    ];
    let all: Vec<&str> = (0..10).map(|i| images[i % 3].as_str()).collect();
    let settings = signatures(json!([
        {"image": format!("{}/*", fx.registry), "pubKeys": [fx.keys.a, fx.keys.k1], "minimumMatches": 1},
        {"image": format!("{}/acme/*", fx.registry), "pubKeys": [fx.keys.a]},
    ]));
    let before = host.stats();
    let response = host
        .validate_with(&settings, &request("Deployment", deployment(&all)))
        .unwrap();
    assert_eq!(patch_ops(&response).len(), 10);
    let after: HostCallStats = host.stats();
    // two_of_three: key a fails, k1 verifies (2); key_a: a verifies (1); nested: a verifies,
    // and the second rule's identical check is not asked again (1).
    assert_eq!(
        after.calls("oci/v2/verify") - before.calls("oci/v2/verify"),
        4
    );
    assert_eq!(after.total - before.total, 4);
}
