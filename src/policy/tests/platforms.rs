//! `platformSignatures` over a fake registry of multi-arch images: the order of the
//! checks, what the verdict names, and every host call made.

use std::cell::RefCell;

use serde_json::{json, Value};

use super::{containers, patch, payload, pod, rejection, settings};
use crate::image::ImageRef;
use crate::policy::{validate, validate_settings, Verdict};
use crate::verifier::{
    Check, EntryAnnotations, Failure, IndexEntry, Manifest, Platform, Signer, Verifier,
};

const INDEX: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const AMD64: &str = "sha256:a111111111111111111111111111111111111111111111111111111111111111";
const ARM64: &str = "sha256:a222222222222222222222222222222222222222222222222222222222222222";
const ATTESTATION: &str = "sha256:a333333333333333333333333333333333333333333333333333333333333333";
const IMAGE: &str = "ghcr.io/acme/app:v1";

/// Signatures of one manifest: `(key, annotations)` pairs.
type Signed = Vec<(&'static str, &'static [(&'static str, &'static str)])>;

/// `ghcr.io/acme/app`: an index over linux/amd64, linux/arm64 and an attestation
/// manifest, each signed as told; and every host call, in order.
struct MultiArch {
    index: Signed,
    amd64: Signed,
    arm64: Signed,
    /// The host error every `v2/verify` answers, if any.
    verify_error: Option<&'static str>,
    /// The host error `v1/oci_manifest` answers, if any.
    manifest_error: Option<&'static str>,
    /// `v1/oci_manifest` answers an image manifest, not an index.
    single_platform: bool,
    calls: RefCell<Vec<String>>,
}

fn by(keys: &[&'static str]) -> Signed {
    keys.iter().map(|k| (*k, &[][..])).collect()
}

impl MultiArch {
    fn new(index: Signed, amd64: Signed, arm64: Signed) -> Self {
        Self {
            index,
            amd64,
            arm64,
            verify_error: None,
            manifest_error: None,
            single_platform: false,
            calls: RefCell::default(),
        }
    }

    /// Signed on each platform by `key`, not on the index.
    fn per_platform(key: &'static str) -> Self {
        Self::new(vec![], by(&[key]), by(&[key]))
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn entry(digest: &str, os: &str, architecture: &str) -> IndexEntry {
        IndexEntry {
            digest: digest.into(),
            platform: Some(Platform {
                os: os.into(),
                architecture: architecture.into(),
                variant: None,
            }),
            annotations: None,
        }
    }
}

impl Verifier for MultiArch {
    fn verify(&self, check: &Check<'_>) -> Result<String, Failure> {
        let Signer::PubKey(key) = check.signer else {
            panic!("only keys here");
        };
        let digest = check.image.digest().unwrap_or(INDEX);
        let annotations = check.annotations.map_or(0, |a| a.len());
        self.calls
            .borrow_mut()
            .push(format!("verify {digest} {key} {annotations}"));
        if let Some(error) = self.verify_error {
            return Err(Failure::from_host_error(error));
        }
        let signed = match digest {
            INDEX => &self.index,
            AMD64 => &self.amd64,
            ARM64 => &self.arm64,
            _ => &Vec::new(),
        };
        if signed.is_empty() {
            return Err(Failure::from_host_error("no signatures found for image"));
        }
        let holds = signed.iter().any(|(k, with)| {
            k == key
                && check
                    .annotations
                    .into_iter()
                    .flatten()
                    .all(|(name, value)| with.iter().any(|(n, v)| n == name && v == value))
        });
        if holds {
            Ok(digest.to_owned())
        } else {
            Err(Failure::from_host_error(
                "Image verification failed: missing signatures",
            ))
        }
    }

    fn manifest_digest(&self, image: &ImageRef) -> Result<String, Failure> {
        self.calls.borrow_mut().push(format!("digest {image}"));
        Ok(INDEX.into())
    }

    fn oci_manifest(&self, image: &ImageRef) -> Result<Manifest, Failure> {
        self.calls.borrow_mut().push(format!("manifest {image}"));
        if let Some(error) = self.manifest_error {
            return Err(Failure::from_host_error(error));
        }
        assert_eq!(image.digest(), Some(INDEX), "the index is read by digest");
        if self.single_platform {
            return Ok(Manifest::Image);
        }
        let mut attestation = Self::entry(ATTESTATION, "unknown", "unknown");
        attestation.annotations = Some(EntryAnnotations {
            reference_type: Some("attestation-manifest".into()),
        });
        Ok(Manifest::Index(vec![
            Self::entry(AMD64, "linux", "amd64"),
            Self::entry(ARM64, "linux", "arm64"),
            attestation,
        ]))
    }
}

fn run(settings: Value, kind: &str, object: Value, host: &MultiArch) -> Verdict {
    validate(&payload(settings, kind, object), host)
}

/// `ghcr.io/acme/app:v1` in a Pod, under an entry by key K with `platformSignatures: all`.
fn on_all_platforms(host: &MultiArch) -> Verdict {
    run(
        settings(json!([rule(&["K"], json!("all"))])),
        "Pod",
        pod(containers(&[IMAGE])),
        host,
    )
}

fn rule(keys: &[&str], platforms: Value) -> Value {
    json!({"image": "ghcr.io/acme/*", "pubKeys": keys, "platformSignatures": platforms})
}

fn pinned_to_index(verdict: Verdict, images: &[&str]) {
    let original = pod(containers(images));
    let ops = patch(&original, verdict);
    let values: Vec<Value> = ops.into_iter().map(|(_, _, v)| v).collect();
    let expected: Vec<Value> = images
        .iter()
        .map(|i| json!(format!("{i}@{INDEX}")))
        .collect();
    assert_eq!(values, expected);
}

/// The index checked, its tag resolved, the index read, both platforms checked.
fn fallback_calls() -> Vec<String> {
    strings(&[
        &format!("verify {INDEX} K 0"),
        "digest ghcr.io/acme/app:v1",
        &format!("manifest ghcr.io/acme/app@{INDEX}"),
        &format!("verify {AMD64} K 0"),
        &format!("verify {ARM64} K 0"),
    ])
}

fn strings(calls: &[&str]) -> Vec<String> {
    calls.iter().map(|c| c.to_string()).collect()
}

#[test]
fn a_signed_index_is_enough_and_no_manifest_is_read() {
    let host = MultiArch::new(by(&["K"]), vec![], vec![]);
    let verdict = on_all_platforms(&host);
    pinned_to_index(verdict, &[IMAGE]);
    assert_eq!(host.calls(), strings(&[&format!("verify {INDEX} K 0")]));
}

#[test]
fn an_unsigned_index_with_every_platform_signed_is_pinned_to_the_index() {
    let host = MultiArch::per_platform("K");
    let verdict = on_all_platforms(&host);
    pinned_to_index(verdict, &[IMAGE]);
    // The attestation manifest is not asked about.
    assert_eq!(host.calls(), fallback_calls());

    // Written with the index digest: no tag to resolve, and nothing to pin.
    let host = MultiArch::per_platform("K");
    let by_digest = format!("ghcr.io/acme/app@{INDEX}");
    let verdict = run(
        settings(json!([rule(&["K"], json!("all"))])),
        "Pod",
        pod(containers(&[&by_digest])),
        &host,
    );
    assert_eq!(verdict, Verdict::Accept);
    assert_eq!(host.calls().len(), 4);
    assert!(!host.calls().iter().any(|c| c.starts_with("digest")));
}

#[test]
fn an_index_signed_by_someone_else_falls_back_to_the_platforms() {
    let host = MultiArch::new(by(&["OTHER"]), by(&["K"]), by(&["K"]));
    let verdict = run(
        settings(json!([rule(&["K"], json!(["linux/amd64", "linux/arm64"]))])),
        "Pod",
        pod(containers(&[IMAGE])),
        &host,
    );
    pinned_to_index(verdict, &[IMAGE]);
    assert_eq!(host.calls().len(), 5);
}

#[test]
fn without_the_option_an_unsigned_index_is_rejected() {
    let host = MultiArch::per_platform("K");
    let message = rejection(run(
        settings(json!([{"image": "ghcr.io/acme/*", "pubKeys": ["K"]}])),
        "Pod",
        pod(containers(&[IMAGE])),
        &host,
    ));
    assert_eq!(message, "1 image failed verification: spec.containers[0] (ghcr.io/acme/app:v1): signatures[0] pubKeys: pubKeys[0]: no signatures");
    assert_eq!(host.calls().len(), 1);
}

#[test]
fn host_errors_and_annotation_mismatches_are_not_retried_on_the_platforms() {
    let mut host = MultiArch::per_platform("K");
    host.verify_error =
        Some("Callback evaluation failure: error sending request: connection refused");
    let message = rejection(on_all_platforms(&host));
    assert!(message.ends_with("signatures[0] pubKeys: pubKeys[0]: registry or host error: error sending request: connection refused"), "{message}");
    assert_eq!(host.calls().len(), 1);

    // The index carries the signer's signature, with other annotations: not unsigned.
    let host = MultiArch::new(vec![("K", &[("env", "dev")])], by(&["K"]), by(&["K"]));
    let annotated = json!([{"image": "*", "pubKeys": ["K"], "annotations": {"env": "prod"}, "platformSignatures": "all"}]);
    let message = rejection(run(
        settings(annotated),
        "Pod",
        pod(containers(&[IMAGE])),
        &host,
    ));
    assert!(
        message.ends_with("pubKeys[0]: signed by the required signer, but annotations mismatch"),
        "{message}"
    );
    assert_eq!(host.calls().len(), 2, "the check and its explanation");
}

#[test]
fn an_unreadable_or_single_platform_index_keeps_the_rejection() {
    let mut host = MultiArch::per_platform("K");
    host.manifest_error = Some("Callback evaluation failure: cannot fetch manifest: 404");
    let message = rejection(on_all_platforms(&host));
    assert!(message.ends_with("signatures[0] pubKeys: pubKeys[0]: no signatures; platformSignatures: cannot read the image index: registry or host error: cannot fetch manifest: 404"), "{message}");
    assert_eq!(host.calls().len(), 3);

    let mut host = MultiArch::per_platform("K");
    host.single_platform = true;
    let message = rejection(on_all_platforms(&host));
    assert!(
        message.ends_with(
            "platformSignatures: not a multi-arch image: no platform manifests to check"
        ),
        "{message}"
    );
}

#[test]
fn the_verdict_names_unsigned_and_missing_platforms() {
    let host = MultiArch::new(vec![], by(&["K"]), vec![]);
    let message = rejection(on_all_platforms(&host));
    assert_eq!(message, format!("1 image failed verification: spec.containers[0] (ghcr.io/acme/app:v1): signatures[0] pubKeys: pubKeys[0]: no signatures; platformSignatures: the index {INDEX} has unsigned platforms: linux/arm64: signatures[0] pubKeys: pubKeys[0]: no signatures"));

    // Only the listed platforms count, and each must be there.
    let listed = |platforms: Value| settings(json!([rule(&["K"], platforms)]));
    let host = MultiArch::new(vec![], by(&["K"]), vec![]);
    pinned_to_index(
        run(
            listed(json!(["linux/amd64"])),
            "Pod",
            pod(containers(&[IMAGE])),
            &host,
        ),
        &[IMAGE],
    );
    assert_eq!(host.calls().len(), 4, "arm64 is not asked about");
    let host = MultiArch::per_platform("K");
    let message = rejection(run(
        listed(json!(["linux/amd64", "linux/s390x"])),
        "Pod",
        pod(containers(&[IMAGE])),
        &host,
    ));
    assert!(
        message.ends_with(&format!(
            "the index {INDEX} has unsigned platforms: linux/s390x: not in the index"
        )),
        "{message}"
    );
}

#[test]
fn thresholds_and_alternatives_hold_per_platform() {
    let two_of_three = settings(json!([rule(&["K1", "K2", "K3"], json!("all"))
        .as_object()
        .map(|r| {
            let mut r = r.clone();
            r.insert("minimumMatches".into(), json!(2));
            Value::Object(r)
        })
        .unwrap()]));
    let host = MultiArch::new(by(&["K1"]), by(&["K1", "K2"]), by(&["K1", "K3"]));
    pinned_to_index(
        run(
            two_of_three.clone(),
            "Pod",
            pod(containers(&[IMAGE])),
            &host,
        ),
        &[IMAGE],
    );
    // The index's one signature does not count towards a platform's two.
    let host = MultiArch::new(by(&["K1"]), by(&["K1", "K2"]), by(&["K2"]));
    let message = rejection(run(two_of_three, "Pod", pod(containers(&[IMAGE])), &host));
    assert!(message.ends_with("linux/arm64: signatures[0] pubKeys: 1 of 2 required signers verified: pubKeys[0]: not signed by the required signer, pubKeys[2]: not signed by the required signer"), "{message}");

    let any_of = settings(
        json!([{"image": "*", "platformSignatures": "all", "anyOf": [{"pubKeys": ["KA"]}, {"pubKeys": ["KB"]}]}]),
    );
    let host = MultiArch::new(vec![], by(&["KA"]), by(&["KB"]));
    pinned_to_index(
        run(any_of, "Pod", pod(containers(&[IMAGE])), &host),
        &[IMAGE],
    );
    // Index: KA, KB; amd64: KA; arm64: KA, KB.
    assert_eq!(host.calls().len(), 2 + 2 + 1 + 2);

    let annotated = settings(
        json!([{"image": "*", "pubKeys": ["K"], "annotations": {"env": "prod"}, "platformSignatures": "all"}]),
    );
    let host = MultiArch::new(
        vec![],
        vec![("K", &[("env", "prod")])],
        vec![("K", &[("env", "dev")])],
    );
    let message = rejection(run(annotated, "Pod", pod(containers(&[IMAGE])), &host));
    assert!(message.ends_with("linux/arm64: signatures[0] pubKeys: pubKeys[0]: signed by the required signer, but annotations mismatch"), "{message}");
}

#[test]
fn one_index_read_and_one_check_per_platform_across_containers_and_rules() {
    let images = [IMAGE, "ghcr.io/acme/app:v1", "GHCR.IO/acme/app:v1"];
    let rules = settings(json!([
        rule(&["K"], json!("all")),
        rule(&["K"], json!(["linux/amd64"]))
    ]));
    let host = MultiArch::per_platform("K");
    pinned_to_index(run(rules, "Pod", pod(containers(&images)), &host), &images);
    assert_eq!(host.calls(), fallback_calls());
}

#[test]
fn malformed_values_are_refused_naming_the_field() {
    let with = |value: Value| {
        validate_settings(
            json!({"signatures": [{"image": "*", "pubKeys": ["K"], "platformSignatures": value}]})
                .to_string()
                .as_bytes(),
        )
    };
    // Valid values: validation goes on to the keys.
    for valid in [
        json!("all"),
        json!(["linux/arm/v7"]),
        json!("linux/amd64, linux/arm64"),
    ] {
        let message = with(valid).unwrap_err();
        assert!(message.starts_with("signatures[0].pubKeys[0]"), "{message}");
    }
    for (value, expected) in [
        (json!("every"), "signatures[0].platformSignatures[0]: \"every\" is not a platform: write os/architecture[/variant] in lower case, e.g. linux/amd64, or \"all\""),
        (json!("linux/amd64, arm64"), "signatures[0].platformSignatures[1]: \"arm64\" is not a platform"),
        (json!([]), "signatures[0].platformSignatures: must list at least one platform"),
        (json!(["linux/amd64", "arm64"]), "signatures[0].platformSignatures[1]: \"arm64\" is not a platform"),
        (json!(true), "signatures[0].platformSignatures: invalid type: boolean `true`, expected \"all\" or a list of platforms such as linux/amd64"),
    ] {
        let message = with(value).unwrap_err();
        assert!(message.starts_with(expected), "{message}");
    }
    let in_alternative = validate_settings(json!({"signatures": [{"image": "*", "anyOf": [{"pubKeys": ["K"], "platformSignatures": "all"}]}]}).to_string().as_bytes());
    assert_eq!(in_alternative, Err("signatures[0].anyOf[0].platformSignatures: belongs to the entry, not to an alternative".into()));
}
