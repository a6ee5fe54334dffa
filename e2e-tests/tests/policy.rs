//! verify-image-signatures end to end: the real `policy.wasm` in a real host, verifying real
//! cosign signatures of images in a real registry on 127.0.0.1.
//!
//! The host is chosen by `E2E_BACKEND`: `kwctl` (the default, `kwctl run`) or `policy-server`
//! (HTTP), and its version by `E2E_KUBEWARDEN_VERSION`; the policy is granted exactly the
//! host capabilities `metadata.yml` declares. A test that needs what a backend lacks starts
//! with `if skip_without(Need::...) { return; }`, which prints why it is skipped.
//! `make test` builds the policy and points `POLICY_WASM` at it; `make e2e-kubewarden` runs
//! this suite on kwctl and policy-server of every supported version.

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use e2e_tests::backend::{self, Backend, BackendConfig, BackendKind, Grant, Need};
use e2e_tests::fixtures::{push_signed_images, Fixtures, Image, Registry};
use host_driver::AdmissionResponse;
use host_driver::Kubewarden;
use serde_json::{json, Value};

struct Env {
    /// Kept alive for the whole test process.
    registry: Registry,
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
        let kubewarden = Kubewarden::from_env().unwrap();
        let _ = writeln!(
            std::io::stderr(),
            "e2e suite on backend {} {}",
            kind.name(),
            kubewarden.version
        );
        let registry = Registry::start().expect("start the local registry");
        let fixtures = Fixtures::create(&registry).expect("create the signed images");
        let host = start_backend(kind, &fixtures, &wasm, Grant::declared().unwrap());
        Env {
            registry,
            fixtures,
            wasm,
            host,
        }
    })
}

fn start_backend(
    kind: BackendKind,
    fixtures: &Fixtures,
    wasm: &std::path::Path,
    grant: Grant,
) -> Backend {
    Backend::start(
        kind,
        &BackendConfig {
            wasm,
            fixtures,
            grant,
        },
    )
    .unwrap_or_else(|e| panic!("cannot start the {} backend: {e:#}", kind.name()))
}

fn fx() -> &'static Fixtures {
    &env().fixtures
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

/// What the tested hosts do with an image signed the way cosign v3 signs by default, a Sigstore
/// bundle attached as an OCI referrer (listed at the referrers tag `sha256-<hex>`, the local
/// registry having no referrers API): they look for cosign's legacy `sha256-<hex>.sig` tag
/// only, so the image has no signature and is rejected; the registry's access log shows that
/// neither the referrers API nor the referrers tag was asked for. The same bundle beside a
/// legacy signature by the same key verifies. README "Kubewarden versions" quotes this verdict.
#[test]
fn an_image_signed_only_with_a_cosign_v3_bundle_has_no_signatures_for_the_host() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let bundle_only = &fx.images.cosign_v3_bundle;
    let registry = &env().registry;
    let before = registry
        .requests()
        .expect("the registry's access log")
        .len();
    let response = evaluate(
        &settings,
        &request("Deployment", deployment(&[&bundle_only.reference])),
    );
    assert!(!response.allowed, "accepted: {response:?}");
    assert_eq!(
        message(&response),
        format!(
            "1 image failed verification: spec.template.spec.containers[0] ({}): signatures[0] pubKeys: pubKeys[0]: no signatures",
            bundle_only.reference
        )
    );
    let referrers_tag = format!(
        "/v2/cosign-v3/bundle/manifests/{}",
        bundle_only.digest.replace(':', "-")
    );
    let referrers_api = format!("/v2/cosign-v3/bundle/referrers/{}", bundle_only.digest);
    let requests = &registry.requests().expect("the registry's access log")[before..];
    let asked = |path: &str| requests.iter().any(|r| r.ends_with(&format!(" {path}")));
    assert!(asked(&format!("{referrers_tag}.sig")), "{requests:#?}");
    assert!(!asked(&referrers_tag), "{requests:#?}");
    assert!(!asked(&referrers_api), "{requests:#?}");

    let both = &fx.images.cosign_v3_bundle_and_legacy;
    let response = evaluate(
        &settings,
        &request("Deployment", deployment(&[&both.reference])),
    );
    assert_pinned(&response, &[(CONTAINER_0, both)]);
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

/// A request for an object of `group`/`kind`, the kinds whose images lie outside pod specs.
fn grouped_request(group: &str, kind: &str, object: Value) -> Value {
    let mut request = request(kind, object);
    request["kind"]["group"] = json!(group);
    request["resource"]["group"] = json!(group);
    request
}

/// Objects of each built-in family and of a kind the settings name, with `a` and `b` at
/// their image paths: `(group, kind, object, pointers of a and b)`.
fn outside_pod_specs(
    a: &str,
    b: &str,
) -> Vec<(&'static str, &'static str, Value, [&'static str; 2])> {
    let step = |name: &str, image: &str| json!({"name": name, "image": image, "script": "make"});
    vec![
        (
            "tekton.dev",
            "TaskRun",
            json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "build"},
                   "spec": {"taskSpec": {"steps": [step("build", a)], "sidecars": [step("db", b)]}}}),
            [
                "/spec/taskSpec/steps/0/image",
                "/spec/taskSpec/sidecars/0/image",
            ],
        ),
        (
            "tekton.dev",
            "PipelineRun",
            json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "ci"},
                   "spec": {"pipelineSpec": {
                       "tasks": [{"name": "build", "taskSpec": {"steps": [step("build", a)]}}],
                       "finally": [{"name": "notify", "taskSpec": {"stepTemplate": {"image": b}, "steps": [{"name": "n", "script": "notify"}]}}]}}}),
            [
                "/spec/pipelineSpec/tasks/0/taskSpec/steps/0/image",
                "/spec/pipelineSpec/finally/0/taskSpec/stepTemplate/image",
            ],
        ),
        (
            "argoproj.io",
            "Workflow",
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "metadata": {"generateName": "hello-"},
                   "spec": {"entrypoint": "main", "templates": [
                       {"name": "main", "container": {"image": a, "command": ["echo"]}},
                       {"name": "check", "script": {"image": b, "source": "true"}}]}}),
            [
                "/spec/templates/0/container/image",
                "/spec/templates/1/script/image",
            ],
        ),
        (
            "argoproj.io",
            "CronWorkflow",
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "CronWorkflow", "metadata": {"name": "nightly"},
                   "spec": {"schedules": ["0 3 * * *"], "workflowSpec": {"entrypoint": "main", "templates": [
                       {"name": "main", "initContainers": [{"name": "init", "image": a}],
                        "containerSet": {"containers": [{"name": "run", "image": b}]}}]}}}),
            [
                "/spec/workflowSpec/templates/0/initContainers/0/image",
                "/spec/workflowSpec/templates/0/containerSet/containers/0/image",
            ],
        ),
        (
            "kubevirt.io",
            "VirtualMachine",
            json!({"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "vm"},
                   "spec": {"runStrategy": "Always", "template": {"spec": {
                       "domain": {"devices": {}, "firmware": {"kernelBoot": {"container": {"image": b, "kernelPath": "/vmlinuz"}}}},
                       "volumes": [{"name": "root", "containerDisk": {"image": a}}]}}}}),
            [
                "/spec/template/spec/volumes/0/containerDisk/image",
                "/spec/template/spec/domain/firmware/kernelBoot/container/image",
            ],
        ),
        (
            "example.com",
            "Widget",
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                   "spec": {"image": a, "workers": [{"image": b, "replicas": 2}]}}),
            ["/spec/image", "/spec/workers/0/image"],
        ),
    ]
}

/// `/spec/steps/0/image` as the policy names it: `spec.steps[0].image`.
fn dotted(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .fold(String::new(), |path, part| match part.parse::<usize>() {
            Ok(_) => format!("{path}[{part}]"),
            Err(_) if path.is_empty() => part.to_owned(),
            Err(_) => format!("{path}.{part}"),
        })
}

#[test]
fn images_outside_pod_specs_are_verified_and_pinned() {
    let fx = fx();
    let (a, b, unsigned) = (&fx.images.key_a, &fx.images.nested, &fx.images.unsigned);
    let settings = json!({
        "signatures": [keys_rule(&[&fx.keys.a])],
        "imageLocations": [{"group": "example.com", "kind": "Widget", "paths": ["spec.image", "spec.workers[*].image"]}],
    });
    for (group, kind, object, [at_a, at_b]) in outside_pod_specs(&a.reference, &b.reference) {
        let response = evaluate(&settings, &grouped_request(group, kind, object));
        let mut ops = patch_ops(&response);
        ops.sort_by(|x, y| x.1.cmp(&y.1));
        let mut expected = vec![
            ("replace".to_owned(), at_a.to_owned(), json!(pinned(a))),
            ("replace".to_owned(), at_b.to_owned(), json!(pinned(b))),
        ];
        expected.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(ops, expected, "{kind}");
    }
    for (group, kind, object, [_, at_b]) in outside_pod_specs(&a.reference, &unsigned.reference) {
        let response = evaluate(&settings, &grouped_request(group, kind, object));
        assert_rejected(
            &response,
            &[&format!(
                "1 image of the {kind} failed verification: {} ({}): signatures[0] pubKeys: pubKeys[0]: no signatures",
                dotted(at_b),
                unsigned.reference
            )],
        );
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
    let (response, made) =
        evaluate_counting_on(&settings, &request("Deployment", deployment(&all)));
    assert_eq!(patch_ops(&response).len(), 10);
    // two_of_three: key a fails, k1 verifies (2); key_a: a verifies (1); nested: a verifies,
    // and the second rule's identical check is not asked again (1).
    assert_counted(made, calls(&[(VERIFY, 4)]));
}

/// The host reads an image's signatures once, however many containers and keys check it: the
/// registry's own access log counts the `GET`s of each `.sig` tag, which must be as many as
/// for an image checked once, by one key, in one container (the host's client fetches the
/// signature manifest more than once per read). Images of this test's own, so that no other
/// test's reads are counted.
#[test]
fn signatures_are_read_once_per_image() {
    let prefix = "reads/image";
    let signed = push_signed_images(&env().registry, prefix, 4, 3).expect("sign images");
    let rule = |keys: &[String]| {
        signatures(json!([{"image": format!("{}/{prefix}-*", fx().registry), "pubKeys": keys}]))
    };
    let once = &signed.images[3].reference;
    let (response, _) =
        evaluate_counting_on(&rule(&signed.keys[..1]), &request("Pod", pod(&[once])));
    assert_eq!(patch_ops(&response).len(), 1);
    let images: Vec<&str> = (0..12)
        .map(|i| signed.images[i % 3].reference.as_str())
        .collect();
    let (response, made) = evaluate_counting_on(
        &rule(&signed.keys),
        &request("Deployment", deployment(&images)),
    );
    assert_eq!(patch_ops(&response).len(), 12);
    assert_counted(made, calls(&[(VERIFY, 9)]));
    let reads = env()
        .registry
        .manifest_reads()
        .expect("the registry's access log");
    let gets = |image: &Image| {
        let repository = image
            .reference
            .split_once('/')
            .unwrap()
            .1
            .rsplit_once(':')
            .unwrap()
            .0;
        let signature = format!("{repository}:{}.sig", image.digest.replace(':', "-"));
        reads.iter().filter(|read| **read == signature).count()
    };
    let per_read = gets(&signed.images[3]);
    assert!(per_read > 0, "{reads:#?}");
    for image in &signed.images[..3] {
        assert_eq!(gets(image), per_read, "{}: {reads:#?}", image.reference);
    }
}

/// The five inputs of issue 9 that used to be admitted unverified, through the real wasm.
#[test]
fn no_spelling_glob_or_duplicate_gets_around_a_rule() {
    let fx = fx();
    let registry = &fx.registry;
    let unsigned = &fx.images.unsigned;
    let (host, port) = registry.split_once(':').unwrap();
    let rule = |pattern: &str, key: &str| signatures(json!([{"image": pattern, "pubKeys": [key]}]));

    // 1. A glob-only pattern covers every spelling; `docker.io/*` every Docker Hub
    // repository (no network here: the host's registry error proves the rule applied).
    assert_rejected(
        &evaluate(
            &rule("*unsigned*", &fx.keys.a),
            &request("Pod", pod(&[&unsigned.reference])),
        ),
        &["spec.containers[0]", "no signatures"],
    );
    assert_rejected(
        &evaluate(
            &rule("*acme*", &fx.keys.w),
            &request("Pod", pod(&[&fx.images.nested.reference])),
        ),
        &["not signed by the required signer"],
    );
    let hub = request(
        "Pod",
        pod(&["docker.io/bitnami/nginx:1.25", "bitnami/nginx:1.25"]),
    );
    assert_rejected(
        &evaluate(&rule("docker.io/*", &fx.keys.a), &hub),
        &[
            "spec.containers[0], spec.containers[1] (docker.io/bitnami/nginx:1.25)",
            "registry or host error",
        ],
    );

    // 2. A skip's registry glob stops at the registry.
    let skip = |pattern: &str| {
        json!({
            "signatures": [{"image": "*", "pubKeys": [fx.keys.a]}],
            "skipImages": [pattern],
            "rejectUnmatchedImages": true,
        })
    };
    let smuggled = format!("{registry}/unsigned/x.example.com/app:v1");
    assert_rejected(
        &evaluate(&skip("*.example.com/*"), &request("Pod", pod(&[&smuggled]))),
        &["spec.containers[0]"],
    );
    let object = request("Pod", pod(&[&unsigned.reference]));
    assert_eq!(patch_ops(&evaluate(&skip("127.0.0.*/*"), &object)), []);

    // 3. Ports are numbers: `:0PORT` is the registry a rule for `:PORT` names.
    let zero_port =
        |image: &str| image.replacen(&format!("{host}:{port}"), &format!("{host}:0{port}"), 1);
    let object = request("Pod", pod(&[&zero_port(&unsigned.reference)]));
    assert_rejected(
        &evaluate(
            &rule(&format!("{registry}/unsigned/*"), &fx.keys.a),
            &object,
        ),
        &["no signatures"],
    );
    let nested = zero_port(&fx.images.nested.reference);
    let response = evaluate(
        &rule(&format!("{registry}/acme/*"), &fx.keys.a),
        &request("Pod", pod(&[&nested])),
    );
    assert_eq!(
        patch_ops(&response),
        [(
            "replace".to_owned(),
            "/spec/containers/0/image".to_owned(),
            json!(format!("{nested}@{}", fx.images.nested.digest))
        )]
    );

    // 4. A signer listed twice is refused, naming both places.
    let twice = json!({"signatures": [{"image": "*", "pubKeys": [fx.keys.a, fx.keys.a, fx.keys.w], "minimumMatches": 2}]});
    let verdict = env().host.validate_settings_with(&twice);
    assert!(!verdict.valid);
    let message = verdict.message.unwrap_or_default();
    // Each backend words the refusal its own way around the policy's message.
    assert!(
        message.contains(
            "signatures[0].pubKeys[1]: the same key as pubKeys[0]; list each signer once"
        ),
        "{message}"
    );

    // 5. Image volumes are images: verified, named in rejections, pinned in place.
    let with_volume = |reference: &str| {
        let mut object = pod(&[&fx.images.key_a.reference]);
        object["spec"]["volumes"] = json!([
            {"name": "cache", "emptyDir": {}},
            {"name": "tools", "image": {"reference": reference, "pullPolicy": "IfNotPresent"}},
        ]);
        request("Pod", object)
    };
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    assert_rejected(
        &evaluate(&settings, &with_volume(&unsigned.reference)),
        &[
            "1 image failed verification: spec.volumes[1].image.reference (",
            "no signatures",
        ],
    );
    assert_pinned(
        &evaluate(&settings, &with_volume(&fx.images.nested.reference)),
        &[
            ("/spec/containers/0/image", &fx.images.key_a),
            ("/spec/volumes/1/image/reference", &fx.images.nested),
        ],
    );
}

const VERIFY: &str = "oci/v2/verify";

/// Evaluates `request` and counts the `oci/v2/verify` calls the policy made, where the
/// backend records them.
fn evaluate_counting(settings: &Value, request: &Value) -> (AdmissionResponse, Option<u64>) {
    let (response, made) = evaluate_counting_on(settings, request);
    let verifies = made.map(|made| {
        made.iter()
            .find(|(operation, _)| operation == VERIFY)
            .map_or(0, |(_, count)| *count)
    });
    (response, verifies)
}

/// An UPDATE of `kind` from `old` to `new`.
fn update_request(kind: &str, old: Value, new: Value) -> Value {
    let mut update = request(kind, new);
    update["operation"] = json!("UPDATE");
    update["oldObject"] = old;
    update
}

fn labelled(object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]["labels"] = json!({"team": "payments"});
    object
}

#[test]
fn update_of_a_label_verifies_and_pins_nothing() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    // Signed without a digest, and unsigned (created before the policy): both already run.
    for image in [&fx.images.key_a.reference, &fx.images.unsigned.reference] {
        for (kind, old) in [("Pod", pod(&[image])), ("Deployment", deployment(&[image]))] {
            let update = update_request(kind, old.clone(), labelled(&old));
            let (response, calls) = evaluate_counting(&settings, &update);
            assert_eq!(patch_ops(&response), [], "{kind} {image}");
            if let Some(calls) = calls {
                assert_eq!(calls, 0, "{kind} {image}");
            }
        }
    }
}

#[test]
fn update_to_an_unsigned_image_is_rejected_and_to_a_signed_one_pinned() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let unsigned = &fx.images.unsigned.reference;
    // The unsigned sidecar predates the policy: it is neither verified nor pinned.
    let old = deployment(&[&fx.images.key_a.reference, unsigned]);
    let to_signed = deployment(&[&fx.images.nested.reference, unsigned]);
    let (response, calls) = evaluate_counting(
        &settings,
        &update_request("Deployment", old.clone(), to_signed),
    );
    assert_pinned(&response, &[(CONTAINER_0, &fx.images.nested)]);
    assert_counted(calls, 1);
    let to_unsigned = deployment(&[&fx.images.unsigned.pinned(), unsigned]);
    let (response, calls) =
        evaluate_counting(&settings, &update_request("Deployment", old, to_unsigned));
    assert_rejected(
        &response,
        &[&format!(
            "1 image failed verification: spec.template.spec.containers[0] ({})",
            fx.images.unsigned.pinned()
        )],
    );
    assert_counted(calls, 1);
}

#[test]
fn update_that_drops_a_digest_is_pinned_again_once() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let image = &fx.images.key_a;
    let running = deployment(&[&pinned(image)]);
    // A GitOps tool applies the tag from Git again.
    let reapplied = deployment(&[&image.reference]);
    let update = update_request("Deployment", running.clone(), reapplied);
    let (response, calls) = evaluate_counting(&settings, &update);
    assert_pinned(&response, &[(CONTAINER_0, image)]);
    assert_counted(calls, 1);
    // Applying the pinned result again changes nothing.
    let update = update_request("Deployment", running.clone(), labelled(&running));
    let (response, calls) = evaluate_counting(&settings, &update);
    assert_eq!(patch_ops(&response), []);
    assert_counted(calls, 0);
}

#[test]
fn update_adding_a_second_ephemeral_container_pins_only_it() {
    let fx = fx();
    let settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    let debug = &fx.images.nested;
    // Neither the container nor the first debug container carries a digest.
    let mut old = pod(&[&fx.images.key_a.reference]);
    old["spec"]["ephemeralContainers"] =
        json!([{"name": "debug", "image": debug.reference, "targetContainerName": "c0"}]);
    let mut new = old.clone();
    new["spec"]["ephemeralContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "debug-2", "image": debug.reference, "targetContainerName": "c0"}));
    let mut update = update_request("Pod", old, new);
    update["subResource"] = json!("ephemeralcontainers");
    let (response, calls) = evaluate_counting(&settings, &update);
    assert_pinned(&response, &[("/spec/ephemeralContainers/1/image", debug)]);
    assert_counted(calls, 1);
}

#[test]
fn update_scaling_a_deployment_whose_registry_is_down() {
    let fx = fx();
    let rules = json!([{"image": "*", "pubKeys": [fx.keys.a]}]);
    // Nothing listens on port 1.
    let old = deployment(&["127.0.0.1:1/acme/app:v1"]);
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(0);
    let update = update_request("Deployment", old.clone(), scaled.clone());
    let (response, calls) = evaluate_counting(&signatures(rules.clone()), &update);
    assert_eq!(patch_ops(&response), []);
    assert_counted(calls, 0);
    // Through the scale subresource, the object is a Scale: no image at all.
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 0}});
    let mut update_scale = update_request("Scale", scale.clone(), scale);
    update_scale["subResource"] = json!("scale");
    let (response, calls) = evaluate_counting(&signatures(rules.clone()), &update_scale);
    assert_eq!(patch_ops(&response), []);
    assert_counted(calls, 0);
    // With the strict setting, the unreachable registry rejects the update.
    let strict = json!({"signatures": rules, "reverifyUnchangedImages": true});
    let (response, calls) = evaluate_counting(&strict, &update);
    assert_rejected(
        &response,
        &["(127.0.0.1:1/acme/app:v1): signatures[0] pubKeys: pubKeys[0]: registry or host error"],
    );
    assert_counted(calls, 1);
}

#[test]
fn update_with_reverify_unchanged_images_verifies_but_never_pins_them() {
    let fx = fx();
    let strict = json!({"signatures": [keys_rule(&[&fx.keys.a])], "reverifyUnchangedImages": true});
    let old = deployment(&[&fx.images.key_a.reference]);
    let update = update_request("Deployment", old.clone(), labelled(&old));
    let (response, calls) = evaluate_counting(&strict, &update);
    assert_eq!(patch_ops(&response), []);
    assert_counted(calls, 1);
    // A changed image next to it is pinned, the unchanged one is not.
    let changed = deployment(&[&fx.images.key_a.reference, &fx.images.nested.reference]);
    let update = update_request("Deployment", old, changed);
    let (response, calls) = evaluate_counting(&strict, &update);
    assert_pinned(
        &response,
        &[("/spec/template/spec/containers/1/image", &fx.images.nested)],
    );
    assert_counted(calls, 2);
    // An unsigned image that predates the policy is rejected on every update.
    let old = deployment(&[&fx.images.unsigned.reference]);
    let update = update_request("Deployment", old.clone(), labelled(&old));
    let (response, calls) = evaluate_counting(&strict, &update);
    assert_rejected(
        &response,
        &["spec.template.spec.containers[0]", "no signatures"],
    );
    assert_counted(calls, 1);
}

/// The audit record of `key`, parsed.
#[track_caller]
fn audit_record(response: &AdmissionResponse, key: &str) -> Value {
    let annotations = response
        .audit_annotations
        .as_ref()
        .expect("audit annotations");
    serde_json::from_str(&annotations[key]).expect("an audit record is JSON")
}

#[test]
fn warn_only_entries_come_back_as_warnings_and_audit_annotations() {
    let fx = fx();
    let registry = &fx.registry;
    let (signed, unsigned, unmatched) = (&fx.images.key_a, &fx.images.unsigned, &fx.images.nested);
    let settings = json!({
        "signatures": [
            {"image": format!("{registry}/signed/*"), "pubKeys": [fx.keys.a]},
            {"image": format!("{registry}/signed/*"), "pubKeys": [fx.keys.w], "onFailure": "warn"},
            {"image": format!("{registry}/unsigned/*"), "pubKeys": [fx.keys.a], "onFailure": "warn"},
        ],
        "rejectUnmatchedImages": "warn",
    });
    let response = evaluate(
        &settings,
        &request(
            "Deployment",
            deployment(&[&signed.reference, &unsigned.reference, &unmatched.reference]),
        ),
    );
    // Admitted; only the image an enforcing entry verified is pinned.
    assert_pinned(&response, &[(CONTAINER_0, signed)]);
    assert_eq!(
        response.warnings,
        Some(vec![
            format!("{} at spec.template.spec.containers[0]: signatures[1] (warn only): not-signed", signed.reference),
            format!("{} at spec.template.spec.containers[1]: signatures[2] (warn only): no-signatures", unsigned.reference),
            format!("{} at spec.template.spec.containers[2]: rejectUnmatchedImages (warn only): unmatched", unmatched.reference),
        ])
    );
    let keys: Vec<&String> = response
        .audit_annotations
        .as_ref()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        keys,
        ["image-0", "image-1"],
        "nothing for the unmatched image"
    );
    assert_eq!(
        audit_record(&response, "image-0"),
        json!({"image": signed.reference, "at": "spec.template.spec.containers[0]", "digest": signed.digest,
               "verified": [{"entry": "signatures[0]", "digest": signed.digest, "signers": ["signatures[0].pubKeys[0]"]}],
               "warned": [{"entry": "signatures[1]", "reason": "not-signed"}]})
    );
    assert_eq!(
        audit_record(&response, "image-1"),
        json!({"image": unsigned.reference, "at": "spec.template.spec.containers[1]",
               "warned": [{"entry": "signatures[2]", "reason": "no-signatures"}]})
    );
}

#[test]
fn a_rejection_carries_warnings_and_the_audit_record_of_what_passed() {
    let fx = fx();
    let (signed, unsigned) = (&fx.images.key_a, &fx.images.unsigned);
    let settings = json!({"signatures": [keys_rule(&[&fx.keys.a])], "requireDigest": "warn"});
    let response = evaluate(
        &settings,
        &request("Pod", pod(&[&signed.pinned(), &unsigned.reference])),
    );
    assert_rejected(
        &response,
        &[
            "1 image failed verification: spec.containers[1]",
            "no signatures",
        ],
    );
    assert_eq!(
        response.warnings,
        Some(vec![format!(
            "{} at spec.containers[1]: requireDigest (warn only): no-digest",
            unsigned.reference
        )])
    );
    assert_eq!(
        audit_record(&response, "image-0"),
        json!({"image": signed.pinned(), "at": "spec.containers[0]", "digest": signed.digest,
               "verified": [{"entry": "signatures[0]", "digest": signed.digest, "signers": ["signatures[0].pubKeys[0]"]}]})
    );
    assert_eq!(
        audit_record(&response, "image-1"),
        json!({"image": unsigned.reference, "at": "spec.containers[1]",
               "warned": [{"entry": "requireDigest", "reason": "no-digest"}],
               "failed": [{"entry": "signatures[0]", "reason": "no-signatures"}]})
    );
    // Without warn-only checks nor matched images, both fields stay null, as before.
    let quiet = evaluate(
        &json!({"signatures": [{"image": "ghcr.io/nothing/*", "pubKeys": [fx.keys.a]}]}),
        &request("Pod", pod(&[&unsigned.reference])),
    );
    assert!(quiet.allowed);
    assert_eq!((quiet.warnings, quiet.audit_annotations), (None, None));
}

/// Evaluates and returns the response with the host calls the evaluation made, by
/// `namespace/operation`: the one place that reads a backend's call counts. `None` on a
/// backend that cannot record them (policy-server), which then checks the verdicts only, and
/// says so once per test.
fn evaluate_counting_on(
    settings: &Value,
    request: &Value,
) -> (AdmissionResponse, Option<Vec<(String, u64)>>) {
    let host = &env().host;
    let verdict = host.validate_settings_with(settings);
    assert!(verdict.valid, "settings refused: {:?}", verdict.message);
    let (response, made) = host.validate_counting(settings, request).expect("evaluate");
    let Some(made) = made else {
        thread_local!(static SAID: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
        if !SAID.replace(true) {
            let test = std::thread::current().name().unwrap_or("a test").to_owned();
            let _ = writeln!(
                std::io::stderr().lock(),
                "COUNTS SKIPPED on {}: {test}: verdicts checked, host-call counts not: it records no host calls",
                host.kind().name()
            );
        }
        return (response, None);
    };
    (response, Some(made.per_operation.into_iter().collect()))
}

/// Asserts host-call counts where the backend recorded them.
#[track_caller]
fn assert_counted<T: PartialEq + std::fmt::Debug>(made: Option<T>, expected: T) {
    if let Some(made) = made {
        assert_eq!(made, expected);
    }
}

fn calls(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected.iter().map(|(o, n)| (o.to_string(), *n)).collect()
}

/// The calls of one image checked on its platforms: its tag resolved, its index read, and
/// `verifies` checks (the index's and the platforms').
fn fallback_calls(verifies: u64) -> Vec<(String, u64)> {
    calls(&[
        ("oci/v1/manifest_digest", 1),
        ("oci/v1/oci_manifest", 1),
        ("oci/v2/verify", verifies),
    ])
}

/// A pubKeys rule by key A for the local registry, with `platformSignatures`.
fn platform_rule(platforms: Value) -> Value {
    let fx = fx();
    json!({"image": format!("{}/*", fx.registry), "pubKeys": [fx.keys.a], "platformSignatures": platforms})
}

#[test]
fn platform_signatures_accept_an_index_signed_on_each_platform() {
    let fx = fx();
    let index = &fx.images.per_platform.index;
    let workload = request("Deployment", deployment(&[&index.reference]));
    let (response, made) =
        evaluate_counting_on(&signatures(json!([platform_rule(json!("all"))])), &workload);
    assert_pinned(&response, &[(CONTAINER_0, index)]);
    // The index, then its digest and its manifest, then the two platforms: the
    // attestation manifests the index also lists are not asked about.
    assert_counted(made, fallback_calls(3));

    // Off by default: the unsigned index is rejected, and nothing else is asked.
    let (response, made) =
        evaluate_counting_on(&signatures(json!([keys_rule(&[&fx.keys.a])])), &workload);
    assert_rejected(
        &response,
        &["signatures[0] pubKeys: pubKeys[0]: no signatures"],
    );
    assert!(!message(&response).contains("platformSignatures"));
    assert_counted(made, calls(&[("oci/v2/verify", 1)]));

    // An index signed itself is enough: no manifest is read.
    let signed = &fx.images.multi_arch.index;
    let (response, made) = evaluate_counting_on(
        &signatures(json!([platform_rule(json!("all"))])),
        &request("Deployment", deployment(&[&signed.reference])),
    );
    assert_pinned(&response, &[(CONTAINER_0, signed)]);
    assert_counted(made, calls(&[("oci/v2/verify", 1)]));
}

#[test]
fn platform_signatures_name_the_unsigned_and_missing_platforms() {
    let fx = fx();
    let image = &fx.images.one_platform_unsigned;
    let workload = request("Deployment", deployment(&[&image.index.reference]));
    let (response, made) =
        evaluate_counting_on(&signatures(json!([platform_rule(json!("all"))])), &workload);
    assert_rejected(
        &response,
        &[&format!(
            "signatures[0] pubKeys: pubKeys[0]: no signatures; platformSignatures: the index {} has unsigned platforms: linux/arm64: signatures[0] pubKeys: pubKeys[0]: no signatures",
            image.index.digest
        )],
    );
    assert!(!message(&response).contains("linux/amd64"));
    assert_counted(made, fallback_calls(3));

    // Only the listed platforms must be signed, and each must be in the index.
    let (response, made) = evaluate_counting_on(
        &signatures(json!([platform_rule(json!(["linux/amd64"]))])),
        &workload,
    );
    assert_pinned(&response, &[(CONTAINER_0, &image.index)]);
    assert_counted(made, fallback_calls(2));
    let both = signatures(json!([platform_rule(json!([
        "linux/amd64",
        "linux/s390x"
    ]))]));
    assert_rejected(
        &evaluate(&both, &workload),
        &["has unsigned platforms: linux/s390x: not in the index"],
    );
}

#[test]
fn platform_signatures_read_each_index_once_and_check_each_platform_once() {
    let fx = fx();
    let index = &fx.images.per_platform.index;
    let pinned_index = pinned(index);
    let images = [
        index.reference.as_str(),
        index.reference.as_str(),
        pinned_index.as_str(),
        index.reference.as_str(),
    ];
    let settings = signatures(json!([
        platform_rule(json!("all")),
        platform_rule(json!(["linux/arm64"]))
    ]));
    let (response, made) =
        evaluate_counting_on(&settings, &request("Deployment", deployment(&images)));
    let ops = patch_ops(&response);
    assert_eq!(ops.len(), 3, "the pinned spelling stays as it is: {ops:?}");
    assert!(ops
        .iter()
        .all(|(_, _, value)| *value == json!(pinned_index)));
    // Two distinct images (by tag and by digest): each checked and its index read once, the
    // tag resolved once; each platform manifest checked once, whatever the rules and images.
    assert_counted(
        made,
        calls(&[
            ("oci/v1/manifest_digest", 1),
            ("oci/v1/oci_manifest", 2),
            ("oci/v2/verify", 4),
        ]),
    );
}

/// Least privilege (Kubewarden 1.35): granted exactly what `metadata.yml` declares, the whole
/// suite passes (every backend of this suite is granted that). With one capability taken
/// away, an evaluation that needs it fails closed, and the rejection names the capability.
#[test]
fn a_capability_taken_away_fails_closed_naming_it() {
    if skip_without(Need::CapabilityGrants) {
        return;
    }
    let fx = fx();
    let kind = env().host.kind();
    let per_platform = request(
        "Deployment",
        deployment(&[&fx.images.per_platform.index.reference]),
    );
    let signed = request("Pod", pod(&[&fx.images.key_a.reference]));
    let platform_settings = signatures(json!([platform_rule(json!("all"))]));
    let key_settings = signatures(json!([keys_rule(&[&fx.keys.a])]));
    for (capability, settings, workload) in [
        ("oci/v2/verify", &key_settings, &signed),
        ("oci/v1/manifest_digest", &platform_settings, &per_platform),
        ("oci/v1/oci_manifest", &platform_settings, &per_platform),
    ] {
        let grant = Grant::declared_without(capability).unwrap();
        let host = start_backend(kind, fx, &env().wasm, grant);
        let response = host.validate_with(settings, workload).expect("evaluate");
        assert!(
            !response.allowed,
            "accepted without {capability}: {response:?}"
        );
        assert!(
            message(&response).contains(capability),
            "{capability} is not named in {:?}",
            message(&response)
        );
    }
}
