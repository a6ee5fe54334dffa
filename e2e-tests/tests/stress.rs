//! The real `policy.wasm` in the host against hostile requests: 10 MB, 5,000
//! containers, 100,000 levels of nesting, invalid UTF-8, an `object` that is no object.
//! Each must end in a clear verdict within the execution deadline, and the host must
//! keep serving afterwards.
//!
//! The settings match no image and reject unmatched ones, so every verdict is the
//! policy's own: no registry is involved.

use std::sync::OnceLock;
use std::time::Instant;

use e2e_tests::host::{Host, DEFAULT_EXECUTION_TIMEOUT};
use kubewarden_policy_sdk::response::ValidationResponse;

const KEY: &str = include_str!("../../tests/data/key1.pub");

fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let path = std::env::var("POLICY_WASM").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../annotated-policy.wasm").to_owned()
        });
        let wasm = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("cannot read {path} ({e}): run `make e2e-tests`"));
        let host = Host::builder()
            .wasm_bytes(wasm)
            .build()
            .expect("load the policy");
        let verdict = host.validate_settings_with(&serde_json::from_str(&settings()).unwrap());
        assert!(verdict.valid, "settings refused: {:?}", verdict.message);
        host
    })
}

fn settings() -> String {
    serde_json::json!({
        "signatures": [{"image": "registry.invalid/never/*", "pubKeys": [KEY]}],
        "rejectUnmatchedImages": true,
    })
    .to_string()
}

/// The payload, written by hand: a deep `object` is more than `serde_json::Value`
/// (or the test's stack) can take.
fn payload(kind: &str, object: &str) -> Vec<u8> {
    format!(
        r#"{{"request":{{"uid":"stress","kind":{{"group":"","version":"v1","kind":"{kind}"}},"operation":"CREATE","object":{object}}},"settings":{}}}"#,
        settings()
    )
    .into_bytes()
}

fn containers(count: usize) -> String {
    let list: Vec<String> = (0..count)
        .map(|i| format!(r#"{{"name":"c{i}","image":"ghcr.io/acme/app-{i}:v1"}}"#))
        .collect();
    format!("[{}]", list.join(","))
}

fn pod(extra: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p"}},"spec":{{"containers":{}}}{extra}}}"#,
        containers(1)
    )
}

/// Calls `validate` with raw bytes: the verdict, within the deadline, and the host
/// still serving an ordinary request afterwards.
fn validate(payload: &[u8]) -> ValidationResponse {
    let host = host();
    let start = Instant::now();
    let answer = host.call("validate", payload);
    let elapsed = start.elapsed();
    let answer = answer.unwrap_or_else(|e| panic!("the call failed after {elapsed:?}: {e}"));
    assert!(
        elapsed < DEFAULT_EXECUTION_TIMEOUT,
        "{elapsed:?} is past the deadline"
    );
    let verdict: ValidationResponse = serde_json::from_slice(&answer).expect("a verdict");
    let ordinary: ValidationResponse = serde_json::from_slice(
        &host
            .call("validate", &payload_for_pod())
            .expect("the host serves on"),
    )
    .unwrap();
    assert!(!ordinary.accepted && ordinary.message.is_some());
    verdict
}

fn payload_for_pod() -> Vec<u8> {
    payload("Pod", &pod(""))
}

fn rejection(payload: &[u8]) -> String {
    let verdict = validate(payload);
    assert!(!verdict.accepted, "accepted: {:?}", verdict.message);
    verdict.message.expect("a rejection says why")
}

const UNMATCHED: &str = "no signature rule matches this image, and unmatched images are rejected";

#[test]
fn a_10_mb_request_is_rejected_in_time() {
    let padding = format!(
        r#","status":{{"message":"{}"}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let payload = payload("Pod", &pod(&padding));
    assert!(payload.len() > 10 * 1024 * 1024);
    let message = rejection(&payload);
    assert_eq!(
        message,
        format!(
            "1 image failed verification: spec.containers[0] (ghcr.io/acme/app-0:v1): {UNMATCHED}"
        )
    );
}

#[test]
fn five_thousand_containers_are_each_rejected_in_time() {
    let object = format!(
        r#"{{"kind":"Deployment","spec":{{"template":{{"spec":{{"containers":{}}}}}}}}}"#,
        containers(5000)
    );
    let message = rejection(&payload("Deployment", &object));
    assert!(
        message.starts_with("5000 images failed verification: spec.template.spec.containers[0] (ghcr.io/acme/app-0:v1)"),
        "{}",
        &message[..200]
    );
    assert!(message.ends_with(&format!(
        "spec.template.spec.containers[4999] (ghcr.io/acme/app-4999:v1): {UNMATCHED}"
    )));
}

#[test]
fn deeply_nested_json_is_rejected_in_time() {
    let depth = 100_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    // In a field the policy skips: read without recursion, so the images still count.
    let message = rejection(&payload("Pod", &pod(&format!(r#","extra":{deep}"#))));
    assert!(
        message.starts_with("1 image failed verification"),
        "{message}"
    );
    // Where the policy reads: refused as unreadable, without recursing 100,000 times.
    for object in [
        deep.clone(),
        format!(r#"{{"spec":{{"containers":{deep}}}}}"#),
        format!(r#"{{"spec":{{"containers":[{{"name":"a","image":{deep}}}]}}}}"#),
    ] {
        let message = rejection(&payload("Pod", &object));
        assert!(message.starts_with("cannot read the Pod"), "{message}");
    }
    // A custom workload whose template cannot be looked for is not taken for a
    // kind without one.
    let rollout = format!(
        r#"{{"spec":{{"containers":"x","template":{{"spec":{{"containers":{}}}}}}},"extra":{deep}}}"#,
        containers(1)
    );
    let message = rejection(&payload("Rollout", &rollout));
    assert!(message.starts_with("cannot read the Rollout"), "{message}");
}

#[test]
fn invalid_utf8_is_rejected() {
    let mut payload = payload("Pod", &pod(""));
    let at = payload
        .windows(4)
        .position(|w| w == b"acme")
        .expect("an image");
    payload[at] = 0xff;
    let message = rejection(&payload);
    assert!(
        message.starts_with("cannot read the admission request: invalid unicode"),
        "{message}"
    );
    let message = rejection(b"\xff\xfe\x00{\"request\":");
    assert!(
        message.starts_with("cannot read the admission request"),
        "{message}"
    );
}

#[test]
fn an_object_that_is_no_object_is_rejected() {
    for object in [r#""a string""#, "42", "[1,2]", "true"] {
        for kind in ["Pod", "Deployment", "CronJob"] {
            let message = rejection(&payload(kind, object));
            assert!(
                message.starts_with(&format!("cannot read the {kind}: invalid type")),
                "{kind} {object}: {message}"
            );
        }
        // A kind the policy does not cover, without a pod template: nothing to verify.
        let verdict = validate(&payload("ConfigMap", object));
        assert!(verdict.accepted, "{object}: {:?}", verdict.message);
    }
}
