//! The real policy-server: the annotated policy pushed with the real `kwctl push`, loaded by
//! policy-server from `registry://` as a cluster loads it, and AdmissionReviews POSTed to it.
//!
//! Needs `kwctl` and `policy-server` on PATH (Kubewarden's releases). `make e2e-tests` builds
//! the policy and points `POLICY_WASM` at it.

use std::path::PathBuf;

use e2e_tests::bench::objects::{admission_request, deployment};
use e2e_tests::fixtures::{Fixtures, Registry};
use e2e_tests::policy_server::{kwctl_push, PolicyServer, PolicyServerConfig};
use serde_json::json;

fn policy_path() -> PathBuf {
    std::env::var_os("POLICY_WASM").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../annotated-policy.wasm"
            ))
        },
        PathBuf::from,
    )
}

#[test]
fn policy_server_loads_the_pushed_policy_and_pins_signed_images_only() {
    let registry = Registry::start().expect("start the local registry");
    let fixtures = Fixtures::create(&registry).expect("create the signed images");
    let uri = format!(
        "registry://{}/policies/verify-image-signatures:v1",
        fixtures.registry
    );
    kwctl_push(&policy_path(), &uri, Some(&fixtures.sources)).expect("kwctl push");

    let server = PolicyServer::start(&PolicyServerConfig {
        sources_path: Some(fixtures.sources.clone()),
        ..PolicyServerConfig::new(json!({
            "vis": {
                "module": uri,
                "allowedToMutate": true,
                "settings": {"signatures": [{
                    "image": format!("{}/*", fixtures.registry),
                    "pubKeys": [fixtures.keys.a],
                }]},
            },
        }))
    })
    .expect("start policy-server");

    let images = &fixtures.images;
    let signed = server
        .validate(
            "vis",
            &admission_request(deployment(
                "app",
                std::slice::from_ref(&images.key_a.reference),
            )),
        )
        .expect("POST the signed Deployment");
    assert!(signed.allowed, "{signed:?}");
    assert_eq!(signed.patch_type.as_deref(), Some("JSONPatch"));
    assert_eq!(
        signed.decoded_patch(),
        Some(json!([{
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": format!("{}@{}", images.key_a.reference, images.key_a.digest),
        }]))
    );

    let unsigned = server
        .validate(
            "vis",
            &admission_request(deployment(
                "app",
                std::slice::from_ref(&images.unsigned.reference),
            )),
        )
        .expect("POST the unsigned Deployment");
    assert!(!unsigned.allowed, "{unsigned:?}");
    assert_eq!(unsigned.patch, None);
    let message = unsigned.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.starts_with(&format!(
            "1 image failed verification: spec.template.spec.containers[0] ({})",
            images.unsigned.reference
        )),
        "{message}"
    );

    assert!(server.peak_rss_kib().expect("VmHWM") > 0);
    let unknown = server.validate("no-such-policy", &admission_request(deployment("app", &[])));
    assert!(unknown.is_err(), "{unknown:?}");

    let pid = server.pid();
    drop(server);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "policy-server {pid} outlived its PolicyServer"
    );
}

#[test]
fn a_policy_server_that_cannot_start_says_why() {
    let missing = "file:///nonexistent/policy.wasm";
    let error = PolicyServer::start(&PolicyServerConfig::new(json!({
        "vis": {"module": missing, "settings": {}},
    })))
    .err()
    .expect("policy-server cannot load a missing module");
    let text = format!("{error:#}");
    assert!(
        text.contains("policy-server exited during start-up"),
        "{text}"
    );
    assert!(text.contains("/nonexistent/policy.wasm"), "{text}");
}
