//! The real policy-server as a cluster runs it: the annotated policy pushed with the real
//! `kwctl push` and loaded from `registry://`, fed hostile AdmissionReviews over HTTP: 10 MB,
//! 5,000 containers, 100,000 levels of nesting, invalid UTF-8, an `object` that is no object.
//! Each must end in a clear verdict (the policy's rejection, or the server's own refusal of
//! what it cannot read) within policy-server's default deadline, and the server must keep
//! serving afterwards.
//!
//! The settings match no image and reject unmatched ones, so every verdict is the policy's
//! own: no registry read is involved. `make test` builds the policy and points `POLICY_WASM`
//! at it; `E2E_KUBEWARDEN_VERSION` picks the Kubewarden version.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use e2e_tests::backend::Grant;
use e2e_tests::fixtures::{Fixtures, Registry};
use host_driver::AdmissionResponse;
use host_driver::Kubewarden;
use host_driver::{Kwctl, Policy, PolicyServer, PolicyServerConfig};
use serde_json::json;

/// policy-server's default `--policy-timeout`.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
const POLICY: &str = "vis";
const UNMATCHED: &str = "no signature rule matches this image, and unmatched images are rejected";

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

/// One registry, the pushed policy and one server with the default deadline, for every test.
fn server() -> &'static PolicyServer {
    static SERVER: OnceLock<(Registry, PolicyServer)> = OnceLock::new();
    &SERVER
        .get_or_init(|| {
            let registry = Registry::start().expect("start the local registry");
            let fixtures = Fixtures::create(&registry).expect("create the fixtures");
            let uri = format!("registry://{}/policies/vis:stress", registry.host());
            let kubewarden = Kubewarden::from_env().unwrap();
            Kwctl::new(kubewarden)
                .unwrap()
                .push(&policy_path(), &uri, Some(&fixtures.sources))
                .expect("kwctl push");
            let settings = json!({
                "signatures": [{"image": "registry.invalid/never/*", "pubKeys": [fixtures.keys.a]}],
                "rejectUnmatchedImages": true,
            });
            let policy = Policy {
                capabilities: Some(Grant::declared().unwrap().0),
                ..Policy::new(uri, settings)
            };
            let config = PolicyServerConfig {
                sources_path: Some(fixtures.sources.clone()),
                ..PolicyServerConfig::new([(POLICY, policy)])
            };
            let server = PolicyServer::start(kubewarden, &config).expect("start policy-server");
            (registry, server)
        })
        .1
}

/// The AdmissionReview body, written by hand: a deep `object` is more than
/// `serde_json::Value` (or the test's stack) can take.
fn review(kind: &str, object: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"stress","kind":{{"group":"","version":"v1","kind":"{kind}"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","userInfo":{{"username":"e2e"}},"object":{object}}}}}"#
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

/// What came back: the policy's verdict, or the server's refusal (status and text).
#[derive(Debug)]
enum Answer {
    Verdict(AdmissionResponse),
    Refused(u16, String),
}

/// POSTs `body`: the answer, within the deadline, and the server still serving an ordinary
/// request afterwards.
fn post(body: Vec<u8>) -> Answer {
    let server = server();
    let started = Instant::now();
    let (status, text) = server
        .post_reading_early(POLICY, &body)
        .unwrap_or_else(|e| panic!("policy-server does not answer: {e:#}"));
    let elapsed = started.elapsed();
    assert!(
        elapsed < DEFAULT_DEADLINE,
        "{elapsed:?} is past the deadline"
    );
    let ordinary = server
        .validate_review(POLICY, review("Pod", &pod("")))
        .expect("the server serves on");
    assert!(!ordinary.allowed && ordinary.message().contains(UNMATCHED));
    if status != 200 {
        return Answer::Refused(status, text);
    }
    #[derive(serde::Deserialize)]
    struct Review {
        response: AdmissionResponse,
    }
    let review: Review = serde_json::from_str(&text).expect("an AdmissionReview");
    Answer::Verdict(review.response)
}

#[track_caller]
fn rejection(body: Vec<u8>) -> String {
    match post(body) {
        Answer::Verdict(response) if !response.allowed => response.message().to_owned(),
        other => panic!("not a rejection by the policy: {other:?}"),
    }
}

#[track_caller]
fn refusal(body: Vec<u8>) -> (u16, String) {
    match post(body) {
        Answer::Refused(status, text) => (status, text),
        other => panic!("not refused by the server: {other:?}"),
    }
}

#[test]
fn a_10_mb_request_gets_a_clear_answer_in_time() {
    let padded = |megabytes: f64| {
        let padding = "x".repeat((megabytes * 1024.0 * 1024.0) as usize);
        review(
            "Pod",
            &pod(&format!(r#","status":{{"message":"{padding}"}}"#)),
        )
    };
    // policy-server buffers at most 2 MiB of a request body, and refuses more itself.
    let (status, text) = refusal(padded(10.0));
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("length limit exceeded"), "{text}");
    // The largest it passes on reaches the policy, which reads it in time.
    let message = rejection(padded(1.9));
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
    let message = rejection(review("Deployment", &object));
    assert!(
        message.starts_with("5000 images failed verification: spec.template.spec.containers[0] (ghcr.io/acme/app-0:v1)"),
        "{}",
        &message[..200.min(message.len())]
    );
    assert!(message.ends_with(&format!(
        "spec.template.spec.containers[4999] (ghcr.io/acme/app-4999:v1): {UNMATCHED}"
    )));
}

#[test]
fn deeply_nested_json_is_refused_in_time() {
    let depth = 100_000;
    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for object in [deep.clone(), pod(&format!(r#","extra":{deep}"#))] {
        let (status, text) = refusal(review("Pod", &object));
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("recursion limit"), "{text}");
    }
}

#[test]
fn invalid_utf8_is_refused() {
    let mut body = review("Pod", &pod(""));
    let at = body
        .windows(4)
        .position(|w| w == b"acme")
        .expect("an image");
    body[at] = 0xff;
    let (status, text) = refusal(body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid unicode"), "{text}");
}

#[test]
fn an_object_that_is_no_object_is_rejected() {
    for object in [r#""a string""#, "42", "[1,2]", "true"] {
        for kind in ["Pod", "Deployment", "CronJob"] {
            let message = rejection(review(kind, object));
            assert!(
                message.starts_with(&format!("cannot read the {kind}: invalid type")),
                "{kind} {object}: {message}"
            );
        }
        // A kind the policy does not cover, without a pod template: nothing to verify.
        match post(review("ConfigMap", object)) {
            Answer::Verdict(response) => assert!(response.allowed, "{object}: {response:?}"),
            other => panic!("{object}: {other:?}"),
        }
    }
}

#[test]
fn an_unknown_policy_is_an_error_and_the_process_ends_with_its_server() {
    let (status, text) = server()
        .post("no-such-policy", review("Pod", &pod("")))
        .unwrap();
    assert_eq!(status, 404, "{text}");
    assert!(server().peak_rss_kib().expect("VmHWM") > 0);

    let missing = "file:///nonexistent/policy.wasm";
    let policy = Policy {
        capabilities: Some(Vec::new()),
        ..Policy::new(missing, json!({}))
    };
    let config = PolicyServerConfig::new([("vis", policy)]);
    let error = PolicyServer::start(Kubewarden::from_env().unwrap(), &config)
        .err()
        .expect("policy-server cannot load a missing module");
    let text = format!("{error:#}");
    assert!(
        text.contains("policy-server exited during start-up"),
        "{text}"
    );
    assert!(text.contains("/nonexistent/policy.wasm"), "{text}");
}
