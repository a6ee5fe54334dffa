//! Warn-only checks and the audit record: `onFailure: warn`, `rejectUnmatchedImages: warn`,
//! `requireDigest: warn`, and the `image-<n>` audit annotations.

use serde_json::{json, Value};

use super::*;
use crate::report::{MAX_AUDIT_VALUE, MAX_WARNING};

fn answer_of(settings: Value, object: Value, host: &FakeHost) -> Answer {
    answer(&payload(settings, "Pod", object), host)
}

fn warn_rule(image: &str, key: &str) -> Value {
    json!({"image": image, "pubKeys": [key], "onFailure": "warn"})
}

/// The audit record of `key`, parsed.
fn record(report: &Report, key: &str) -> Value {
    let text = report
        .audit_annotations
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", report.audit_annotations));
    serde_json::from_str(text).expect("an audit record is JSON")
}

#[test]
fn a_failing_warn_only_entry_admits_unpinned_with_one_warning() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "OTHER");
    let object = pod(containers(&["ghcr.io/acme/app:v1", "ghcr.io/acme/app:v1"]));
    let answer = answer_of(
        settings(json!([warn_rule("ghcr.io/acme/*", "K1")])),
        object,
        &host,
    );
    assert_eq!(answer.verdict, Verdict::Accept, "admitted, and not pinned");
    assert_eq!(
        answer.report.warnings,
        ["ghcr.io/acme/app:v1 at spec.containers[0] (+1 more): signatures[0] (warn only): not-signed"]
    );
    assert_eq!(
        record(&answer.report, "image-0"),
        json!({"image": "ghcr.io/acme/app:v1", "at": "spec.containers[0] (+1 more)",
               "warned": [{"entry": "signatures[0]", "reason": "not-signed"}]})
    );
}

#[test]
fn a_holding_warn_only_entry_verifies_and_pins() {
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .signed("ghcr.io/acme/app", "K2");
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));
    let rule = json!({"image": "ghcr.io/acme/*", "pubKeys": ["K1", "K2"], "onFailure": "warn"});
    let answer = answer_of(settings(json!([rule])), object.clone(), &host);
    assert!(answer.report.warnings.is_empty());
    assert_eq!(
        record(&answer.report, "image-0"),
        json!({"image": "ghcr.io/acme/app:v1", "at": "spec.containers[0]", "digest": DIGEST_A,
               "verified": [{"entry": "signatures[0]", "digest": DIGEST_A,
                             "signers": ["signatures[0].pubKeys[0]", "signatures[0].pubKeys[1]"]}]})
    );
    assert_eq!(patch(&object, answer.verdict).len(), 1);
}

#[test]
fn an_enforced_image_is_pinned_even_when_a_warn_only_entry_fails() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));
    let rules = settings(json!([
        warn_rule("ghcr.io/*", "NEW-KEY"),
        key_rule("ghcr.io/acme/*", "K1"),
    ]));
    let answer = answer_of(rules, object.clone(), &host);
    assert_eq!(
        answer.report.warnings,
        ["ghcr.io/acme/app:v1 at spec.containers[0]: signatures[0] (warn only): not-signed"]
    );
    assert_eq!(
        record(&answer.report, "image-0"),
        json!({"image": "ghcr.io/acme/app:v1", "at": "spec.containers[0]", "digest": DIGEST_A,
               "verified": [{"entry": "signatures[1]", "digest": DIGEST_A, "signers": ["signatures[1].pubKeys[0]"]}],
               "warned": [{"entry": "signatures[0]", "reason": "not-signed"}]})
    );
    assert_eq!(
        patch(&object, answer.verdict),
        [(
            "replace".to_owned(),
            "/spec/containers/0/image".to_owned(),
            json!(format!("ghcr.io/acme/app:v1@{DIGEST_A}"))
        )]
    );
    // The warn-only entry was asked too.
    assert_eq!(host.calls(), 2);
}

#[test]
fn a_rejection_carries_the_record_of_what_passed() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let object = pod(containers(&["ghcr.io/acme/app:v1", "ghcr.io/acme/tool:v1"]));
    let rules = settings(json!([
        warn_rule("ghcr.io/acme/app*", "K1"),
        key_rule("ghcr.io/acme/*", "K1"),
        warn_rule("ghcr.io/acme/tool*", "K2"),
    ]));
    let answer = answer_of(rules, object, &host);
    let message = rejection(answer.verdict);
    // Only the enforcing entry rejects; the warn-only failure is a warning.
    assert_eq!(message, "1 image failed verification: spec.containers[1] (ghcr.io/acme/tool:v1): signatures[1] pubKeys: pubKeys[0]: no signatures");
    assert_eq!(
        answer.report.warnings,
        ["ghcr.io/acme/tool:v1 at spec.containers[1]: signatures[2] (warn only): no-signatures"]
    );
    assert_eq!(
        record(&answer.report, "image-0"),
        json!({"image": "ghcr.io/acme/app:v1", "at": "spec.containers[0]", "digest": DIGEST_A,
               "verified": [
                   {"entry": "signatures[0]", "digest": DIGEST_A, "signers": ["signatures[0].pubKeys[0]"]},
                   {"entry": "signatures[1]", "digest": DIGEST_A, "signers": ["signatures[1].pubKeys[0]"]}]})
    );
    assert_eq!(
        record(&answer.report, "image-1"),
        json!({"image": "ghcr.io/acme/tool:v1", "at": "spec.containers[1]",
               "warned": [{"entry": "signatures[2]", "reason": "no-signatures"}],
               "failed": [{"entry": "signatures[1]", "reason": "no-signatures"}]})
    );
}

#[test]
fn a_warn_only_entry_that_verified_another_digest_is_warned_about() {
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .sig(Sig {
            image: "ghcr.io/acme/app",
            signer: "K2",
            annotations: &[],
            digest: DIGEST_B,
        });
    let object = pod(containers(&["ghcr.io/acme/app:v1"]));
    // Enforced at A: pinned to A, the warn-only entry that saw B is a warning.
    let answer = answer_of(
        settings(json!([key_rule("*", "K1"), warn_rule("*", "K2")])),
        object.clone(),
        &host,
    );
    assert_eq!(
        answer.report.warnings,
        ["ghcr.io/acme/app:v1 at spec.containers[0]: signatures[1] (warn only): digest-mismatch"]
    );
    assert!(patch(&object, answer.verdict)[0]
        .2
        .as_str()
        .unwrap()
        .ends_with(DIGEST_A));
    // Warn-only entries only, disagreeing: admitted, not pinned, both warned about.
    let answer = answer_of(
        settings(json!([warn_rule("*", "K1"), warn_rule("*", "K2")])),
        object,
        &host,
    );
    assert_eq!(answer.verdict, Verdict::Accept);
    assert_eq!(answer.report.warnings.len(), 2);
    assert!(answer
        .report
        .warnings
        .iter()
        .all(|w| w.ends_with("(warn only): digest-mismatch")));
    // One warn-only entry fails: the image is not pinned, and the one that held is
    // recorded as verified, not warned about.
    let answer = answer_of(
        settings(json!([warn_rule("*", "K1"), warn_rule("*", "K3")])),
        pod(containers(&["ghcr.io/acme/app:v1"])),
        &host,
    );
    assert_eq!(answer.verdict, Verdict::Accept);
    assert_eq!(
        answer.report.warnings,
        ["ghcr.io/acme/app:v1 at spec.containers[0]: signatures[1] (warn only): not-signed"]
    );
    assert_eq!(
        record(&answer.report, "image-0"),
        json!({"image": "ghcr.io/acme/app:v1", "at": "spec.containers[0]",
               "verified": [{"entry": "signatures[0]", "digest": DIGEST_A, "signers": ["signatures[0].pubKeys[0]"]}],
               "warned": [{"entry": "signatures[1]", "reason": "not-signed"}]})
    );
}

#[test]
fn enforcing_entries_that_disagree_reject_without_blaming_a_warn_only_entry() {
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .sig(Sig {
            image: "ghcr.io/acme/app",
            signer: "K2",
            annotations: &[],
            digest: DIGEST_B,
        });
    let rules = settings(json!([
        key_rule("*", "K1"),
        key_rule("*", "K2"),
        warn_rule("*", "K1")
    ]));
    let answer = answer_of(rules, pod(containers(&["ghcr.io/acme/app:v1"])), &host);
    assert!(rejection(answer.verdict).contains("the tag moved while it was verified"));
    assert!(answer.report.warnings.is_empty());
    assert_eq!(
        record(&answer.report, "image-0")["verified"][2]["entry"],
        "signatures[2]"
    );
}

#[test]
fn reason_classes_of_thresholds_and_alternatives() {
    let host = FakeHost::default()
        .signed("ghcr.io/acme/app", "K1")
        .broken("ghcr.io/acme/down", "connection refused");
    let rules = settings(json!([
        {"image": "ghcr.io/acme/app*", "pubKeys": ["K1", "K2", "K3"], "minimumMatches": 3, "onFailure": "warn"},
        {"image": "ghcr.io/acme/app*", "onFailure": "warn", "anyOf": [
            {"pubKeys": ["K2"]},
            {"keyless": [{"issuer": "https://i", "subject": "s"}]}]},
        {"image": "ghcr.io/acme/down*", "onFailure": "warn", "anyOf": [
            {"pubKeys": ["K2"]}, {"pubKeys": ["K3"]}]},
        {"image": "ghcr.io/acme/none*", "onFailure": "warn", "anyOf": [
            {"pubKeys": ["K2"], "annotations": {"a": "b"}}, {"pubKeys": ["K3"]}]},
    ]));
    let object = pod(containers(&[
        "ghcr.io/acme/app:v1",
        "ghcr.io/acme/down:v1",
        "ghcr.io/acme/none:v1",
    ]));
    let answer = answer_of(rules, object, &host);
    assert_eq!(answer.verdict, Verdict::Accept);
    let classes: Vec<&str> = answer
        .report
        .warnings
        .iter()
        .map(|w| w.rsplit(' ').next().unwrap())
        .collect();
    // 2 of 3 keys did not sign: one class. Alternatives failing alike keep it; failing
    // differently they have their own.
    assert_eq!(
        classes,
        ["not-signed", "not-signed", "host-error", "no-signatures"]
    );
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let mixed = settings(json!([{"image": "*", "onFailure": "warn", "anyOf": [
        {"pubKeys": ["K2"]}, {"pubKeys": ["K1"], "annotations": {"a": "b"}}]}]));
    let answer = answer_of(mixed, pod(containers(&["ghcr.io/acme/app:v1"])), &host);
    assert_eq!(
        answer.report.warnings,
        ["ghcr.io/acme/app:v1 at spec.containers[0]: signatures[0] (warn only): no-alternative-holds"]
    );
}

#[test]
fn registry_faults_warn_and_reject_with_their_kind() {
    let host = FakeHost::default()
        .broken("ghcr.io/acme/down", "failed to get image trusted layers: Cannot fetch manifest of ghcr.io/acme/down:v1: error sending request for url (https://ghcr.io/v2/acme/down/manifests/v1)")
        .broken("ghcr.io/acme/busy", "failed to get image trusted layers: Cannot fetch manifest of ghcr.io/acme/busy:v1: Server error: url https://ghcr.io/v2/acme/busy/manifests/v1, code: 503, message: unavailable")
        .broken("ghcr.io/acme/cut", "failed to get image trusted layers: Cannot pull ghcr.io/acme/cut:sha256-ab.sig: Digest error: Invalid digest. Expected sha256:ab, got sha256:cd");
    let images = [
        "ghcr.io/acme/down:v1",
        "ghcr.io/acme/busy:v1",
        "ghcr.io/acme/cut:v1",
    ];
    let warned = answer_of(
        settings(json!([warn_rule("ghcr.io/acme/*", "K1")])),
        pod(containers(&images)),
        &host,
    );
    assert_eq!(warned.verdict, Verdict::Accept, "admitted, and not pinned");
    assert_eq!(
        warned.report.warnings,
        [
            "ghcr.io/acme/down:v1 at spec.containers[0]: signatures[0] (warn only): registry-unreachable",
            "ghcr.io/acme/busy:v1 at spec.containers[1]: signatures[0] (warn only): registry-refused",
            "ghcr.io/acme/cut:v1 at spec.containers[2]: signatures[0] (warn only): invalid-signature-data",
        ]
    );
    assert_eq!(
        record(&warned.report, "image-1")["warned"],
        json!([{"entry": "signatures[0]", "reason": "registry-refused"}])
    );
    let rejected = answer_of(
        settings(json!([key_rule("ghcr.io/acme/*", "K1")])),
        pod(containers(&images)),
        &host,
    );
    let message = rejection(rejected.verdict);
    for part in [
        "spec.containers[0] (ghcr.io/acme/down:v1): signatures[0] pubKeys: pubKeys[0]: registry unreachable: ",
        "spec.containers[1] (ghcr.io/acme/busy:v1): signatures[0] pubKeys: pubKeys[0]: refused by registry (HTTP 503): ",
        "spec.containers[2] (ghcr.io/acme/cut:v1): signatures[0] pubKeys: pubKeys[0]: invalid signature data: ",
    ] {
        assert!(message.contains(part), "{message}\n  lacks {part}");
    }
    assert_eq!(
        record(&rejected.report, "image-2")["failed"],
        json!([{"entry": "signatures[0]", "reason": "invalid-signature-data"}])
    );
}

#[test]
fn unmatched_images_with_the_warn_option() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let object = pod(containers(&[
        "ghcr.io/acme/app:v1",
        "quay.io/other/tool:v2",
    ]));
    let rules =
        json!({"signatures": [key_rule("ghcr.io/acme/*", "K1")], "rejectUnmatchedImages": "warn"});
    let answer = answer_of(rules, object.clone(), &host);
    assert_eq!(
        answer.report.warnings,
        ["quay.io/other/tool:v2 at spec.containers[1]: rejectUnmatchedImages (warn only): unmatched"]
    );
    // Nothing is recorded for the image no entry matched.
    assert_eq!(
        answer.report.audit_annotations.keys().collect::<Vec<_>>(),
        ["image-0"]
    );
    assert_eq!(
        record(&answer.report, "image-0")["image"],
        "ghcr.io/acme/app:v1"
    );
    assert_eq!(
        patch(&object, answer.verdict).len(),
        1,
        "the verified image is pinned"
    );
    // `reject` is `true`; `false` admits silently.
    for (value, rejected) in [
        (json!("reject"), true),
        (json!(true), true),
        (json!(false), false),
    ] {
        let rules = json!({"signatures": [key_rule("ghcr.io/acme/*", "K1")], "rejectUnmatchedImages": value});
        let answer = answer_of(rules, object.clone(), &host);
        assert_eq!(
            matches!(answer.verdict, Verdict::Reject(_)),
            rejected,
            "{value}"
        );
        assert!(answer.report.warnings.is_empty());
    }
}

#[test]
fn require_digest_with_the_warn_option() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "K1");
    let pinned = format!("ghcr.io/acme/app:v1@{DIGEST_A}");
    let object = pod(containers(&[
        &pinned,
        "ghcr.io/acme/app:v1",
        "registry.k8s.io/pause:3.9",
        "quay.io/other/tool:v2",
    ]));
    let rules = json!({
        "signatures": [key_rule("ghcr.io/acme/*", "K1")],
        "requireDigest": "warn",
        "skipImages": ["registry.k8s.io/pause:*"],
    });
    let answer = answer_of(rules, object.clone(), &host);
    // Verified and pinned all the same; the skipped image is not warned about.
    assert_eq!(
        answer.report.warnings,
        [
            "ghcr.io/acme/app:v1 at spec.containers[1]: requireDigest (warn only): no-digest",
            "quay.io/other/tool:v2 at spec.containers[3]: requireDigest (warn only): no-digest",
        ]
    );
    assert_eq!(
        record(&answer.report, "image-1")["warned"],
        json!([{"entry": "requireDigest", "reason": "no-digest"}])
    );
    assert_eq!(record(&answer.report, "image-0").get("warned"), None);
    assert_eq!(answer.report.audit_annotations.len(), 2);
    assert_eq!(
        patch(&object, answer.verdict),
        [(
            "replace".to_owned(),
            "/spec/containers/1/image".to_owned(),
            json!(format!("ghcr.io/acme/app:v1@{DIGEST_A}"))
        )]
    );
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, at most 63 characters: the name part of a
/// qualified name, as the API server checks `<webhook name>/<key>`.
fn is_qualified_name_part(key: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !key.is_empty()
        && key.len() <= 63
        && key.starts_with(alnum)
        && key.ends_with(alnum)
        && key.chars().all(|c| alnum(c) || "-_.".contains(c))
}

#[test]
fn audit_keys_are_qualified_names_and_values_are_bounded() {
    assert!(is_qualified_name_part("image-0"));
    let too_long = "a".repeat(64);
    for bad in ["", "-a", "a-", "a/b", "x.io/image-0", too_long.as_str()] {
        assert!(!is_qualified_name_part(bad), "{bad}");
    }
    // The longest image the grammar allows, many long signers, many entries.
    let long = format!("ghcr.io/{}:{}", "a".repeat(240), "t".repeat(128));
    let images: Vec<String> = (0..12)
        .map(|i| format!("ghcr.io/acme/app{i}:v1"))
        .chain([long.clone()])
        .collect();
    let refs: Vec<&str> = images.iter().map(String::as_str).collect();
    let subject = "s".repeat(300);
    let host = FakeHost::default().signed(
        "ghcr.io/acme/app0",
        Box::leak(subject.clone().into_boxed_str()),
    );
    let mut rules: Vec<Value> = (0..20)
        .map(|_| json!({"image": "*", "keyless": [{"issuer": "https://i", "subject": subject}], "onFailure": "warn"}))
        .collect();
    rules.push(warn_rule("*", "K9"));
    let answer = answer_of(settings(json!(rules)), pod(containers(&refs)), &host);
    assert_eq!(answer.verdict, Verdict::Accept);
    assert_eq!(answer.report.audit_annotations.len(), 13);
    for (key, value) in &answer.report.audit_annotations {
        assert!(is_qualified_name_part(key), "{key}");
        assert!(
            value.chars().count() <= MAX_AUDIT_VALUE,
            "{key}: {}",
            value.len()
        );
        assert!(!value.contains("BEGIN"));
        let record: Value = serde_json::from_str(value).expect("still JSON when cut");
        assert!(record["omitted"].as_u64().unwrap() > 0, "{key} was cut");
    }
    let signed = record(&answer.report, "image-0");
    assert!(signed["verified"][0]["signers"][0]
        .as_str()
        .unwrap()
        .ends_with("..."));
    // Every warning stays within what Kubernetes keeps; the long image is cut, not the rest.
    assert_eq!(answer.report.warnings.len(), 13 * 21 - 20);
    for warning in &answer.report.warnings {
        assert!(warning.chars().count() <= MAX_WARNING, "{warning}");
        assert!(!warning.contains('\n') && !warning.contains("BEGIN"));
    }
    let last = answer.report.warnings.last().unwrap();
    assert!(
        last.starts_with("ghcr.io/aaaa")
            && last.contains("...")
            && last.ends_with(" at spec.containers[12]: signatures[20] (warn only): no-signatures"),
        "{last}"
    );
    assert_eq!(last.chars().count(), MAX_WARNING);
}

#[test]
fn the_same_request_gives_the_same_warnings_and_annotations() {
    let object = pod(containers(&[
        "ghcr.io/b:v1",
        "ghcr.io/a:v1",
        "nginx",
        "ghcr.io/b:v1",
    ]));
    let rules = settings(json!([
        warn_rule("*", "K1"),
        {"image": "*", "keyless": [{"issuer": "https://i", "subject": "s"}], "onFailure": "warn"},
        warn_rule("ghcr.io/*", "K2"),
    ]));
    let host = FakeHost::default()
        .signed("ghcr.io/a", "K1")
        .signed("ghcr.io/a", "s");
    let first = answer_of(rules.clone(), object.clone(), &host);
    for _ in 0..3 {
        assert_eq!(
            answer_of(rules.clone(), object.clone(), &host).report,
            first.report
        );
    }
    // Object order, then settings order.
    let images: Vec<String> = first
        .report
        .audit_annotations
        .values()
        .map(|v| {
            serde_json::from_str::<Value>(v).unwrap()["image"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(images, ["ghcr.io/b:v1", "ghcr.io/a:v1", "nginx"]);
    assert!(first.report.warnings[0]
        .starts_with("ghcr.io/b:v1 at spec.containers[0] (+1 more): signatures[0]"));
    assert!(first.report.warnings[1]
        .starts_with("ghcr.io/b:v1 at spec.containers[0] (+1 more): signatures[1]"));
}

#[test]
fn nothing_is_reported_without_warn_only_checks_or_verified_images() {
    let host = FakeHost::default();
    let object = pod(containers(&["quay.io/other/tool:v2"]));
    let answer = answer_of(
        settings(json!([key_rule("ghcr.io/*", "K1")])),
        object,
        &host,
    );
    assert_eq!(
        answer,
        Answer {
            verdict: Verdict::Accept,
            report: Report::default()
        }
    );
}

#[test]
fn host_errors_quoting_pem_never_reach_warnings_or_annotations() {
    let pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----";
    let host = FakeHost::default().broken(
        "ghcr.io/acme/app",
        "Image verification failed: -----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
    );
    let answer = answer_of(
        settings(json!([warn_rule("*", pem)])),
        pod(containers(&["ghcr.io/acme/app:v1"])),
        &host,
    );
    let everything = format!("{:?}", answer.report);
    assert!(
        !everything.contains("BEGIN") && !everything.contains("MFkw"),
        "{everything}"
    );
    assert_eq!(answer.report.warnings.len(), 1);
}

/// The example of the README's "Rolling out gradually".
#[test]
fn the_readme_rollout_example() {
    let host = FakeHost::default().signed("ghcr.io/acme/app", "RELEASE_KEY");
    let rules = json!({
        "signatures": [
            key_rule("ghcr.io/acme/*", "RELEASE_KEY"),
            {"image": "registry.acme.example/*", "onFailure": "warn", "keylessPrefix": [
                {"issuer": "https://token.actions.githubusercontent.com", "urlPrefix": "https://github.com/acme/"}]},
        ],
        "rejectUnmatchedImages": "warn",
        "requireDigest": "warn",
    });
    let object = json!({"spec": {"template": {"spec": {"containers": containers(&[
        "ghcr.io/acme/app:v1",
        "registry.acme.example/api:v3",
        "quay.io/tools/debug:v1",
    ])}}}});
    let answer = answer(&payload(rules, "Deployment", object.clone()), &host);
    assert_eq!(
        answer.report.warnings,
        [
            "ghcr.io/acme/app:v1 at spec.template.spec.containers[0]: requireDigest (warn only): no-digest",
            "registry.acme.example/api:v3 at spec.template.spec.containers[1]: requireDigest (warn only): no-digest",
            "registry.acme.example/api:v3 at spec.template.spec.containers[1]: signatures[1] (warn only): no-signatures",
            "quay.io/tools/debug:v1 at spec.template.spec.containers[2]: requireDigest (warn only): no-digest",
            "quay.io/tools/debug:v1 at spec.template.spec.containers[2]: rejectUnmatchedImages (warn only): unmatched",
        ]
    );
    assert_eq!(
        patch(&object, answer.verdict),
        [(
            "replace".to_owned(),
            "/spec/template/spec/containers/0/image".to_owned(),
            json!(format!("ghcr.io/acme/app:v1@{DIGEST_A}"))
        )]
    );
}
