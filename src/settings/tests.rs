use super::rule::Kind;
use super::*;
use crate::verifier::Signer;

const KEY1: &str = include_str!("../../tests/data/key1.pub");
const KEY2: &str = include_str!("../../tests/data/key2.pub");
const CA: &str = include_str!("../../tests/data/ca.crt");

/// Validates settings written as YAML, the way users write them.
fn validate(yaml: &str) -> Result<Settings, String> {
    let value: serde_json::Value = serde_yaml::from_str(yaml).expect("test YAML");
    let json = serde_json::to_string(&value).unwrap();
    let raw: Box<serde_json::value::RawValue> = serde_json::from_str(&json).unwrap();
    Settings::validate(&raw).map_err(|e| e.to_string())
}

fn refused(yaml: &str) -> String {
    let error = validate(yaml).expect_err("settings must be refused");
    assert!(
        !error.contains("BEGIN"),
        "the message repeats a PEM: {error}"
    );
    error
}

fn indent(pem: &str) -> String {
    pem.lines().map(|l| format!("        {l}\n")).collect()
}

/// Settings written for the Kubewarden verify-image-signatures policy, all five kinds.
fn upstream_settings() -> String {
    format!(
        r#"
signatures:
  - image: "ghcr.io/kubewarden/*"
    pubKeys:
      - |
{key1}      - |
{key2}    annotations:
      env: prod
  - image: "ghcr.io/acme/app:*"
    keyless:
      - issuer: "https://token.actions.githubusercontent.com"
        subject: "https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/main"
  - image: "ghcr.io/acme/*"
    keylessPrefix:
      - issuer: "https://token.actions.githubusercontent.com"
        urlPrefix: "https://github.com/acme/"
      - issuer: "https://token.actions.githubusercontent.com"
        url_prefix: "https://github.com/acme-forks/"
  - image: "docker.io/acme/*"
    githubActions:
      owner: acme
      repo: app
  - image: "registry.example.com/*"
    certificates:
      - |
{ca}    certificateChain:
      - |
{ca}    requireRekorBundle: true
modifyImagesWithDigest: false
"#,
        key1 = indent(KEY1),
        key2 = indent(KEY2),
        ca = indent(CA),
    )
}

#[test]
fn upstream_settings_work_unchanged() {
    let settings = validate(&upstream_settings()).unwrap();
    assert_eq!(settings.rules.len(), 5);
    assert_eq!(settings.pinning, Pinning::None);
    let kinds: Vec<Kind> = settings
        .rules
        .iter()
        .map(|r| r.alternatives[0].kind)
        .collect();
    assert_eq!(
        kinds,
        [
            Kind::PubKeys,
            Kind::Keyless,
            Kind::KeylessPrefix,
            Kind::GithubActions,
            Kind::Certificates
        ]
    );
    let keys = &settings.rules[0].alternatives[0];
    assert_eq!(keys.signers.len(), 2);
    assert_eq!(
        keys.minimum_matches, 2,
        "every key must verify unless told otherwise"
    );
    assert_eq!(keys.annotations.as_ref().unwrap()["env"], "prod");
    assert_eq!(
        settings.rules[2].alternatives[0].signers[1],
        Signer::KeylessPrefix {
            issuer: "https://token.actions.githubusercontent.com".into(),
            url_prefix: "https://github.com/acme-forks/".into()
        },
        "url_prefix is accepted as well as urlPrefix"
    );
    match &settings.rules[4].alternatives[0].signers[0] {
        Signer::Certificate {
            chain,
            require_rekor_bundle,
            ..
        } => {
            assert_eq!(chain.as_ref().unwrap().len(), 1);
            assert!(require_rekor_bundle);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn defaults() {
    let settings = validate("signatures: [{image: '*', githubActions: {owner: acme}}]").unwrap();
    assert_eq!(
        settings.pinning,
        Pinning::All,
        "modifyImagesWithDigest defaults to true"
    );
    assert_eq!(settings.reject_unmatched_images, None);
    assert_eq!(settings.require_digest, None);
    assert_eq!(settings.rules[0].on_failure, OnFailure::Reject);
    assert!(settings.skip_images.is_empty());
    let cert = validate(&format!(
        "signatures: [{{image: '*', certificates: [{CA:?}]}}]"
    ))
    .unwrap();
    assert!(matches!(
        cert.rules[0].alternatives[0].signers[0],
        Signer::Certificate {
            require_rekor_bundle: true,
            chain: None,
            ..
        }
    ));
}

#[test]
fn new_options() {
    let settings = validate(&format!(
        r#"
signatures:
  - image: "ghcr.io/acme/*"
    anyOf:
      - keyless: [{{issuer: "https://accounts.example.com", subject: "ci@example.com"}}]
      - pubKeys: [{KEY1:?}, {KEY2:?}]
        minimumMatches: 1
        annotations: {{release: "true"}}
skipImages: ["registry.k8s.io/pause:*", "busybox"]
rejectUnmatchedImages: true
requireDigest: true
digestPinning: pods
"#
    ))
    .unwrap();
    let rule = &settings.rules[0];
    assert_eq!(rule.alternatives.len(), 2);
    assert_eq!(rule.alternatives[1].id, "signatures[0].anyOf[1]");
    assert_eq!(rule.alternatives[1].minimum_matches, 1);
    assert_eq!(settings.skip_images.len(), 2);
    assert_eq!(settings.reject_unmatched_images, Some(OnFailure::Reject));
    assert_eq!(settings.require_digest, Some(OnFailure::Reject));
    assert_eq!(settings.pinning, Pinning::PodsOnly);
    for (scope, pinning) in [("all", Pinning::All), ("none", Pinning::None)] {
        let s = validate(&format!(
            "{{signatures: [{{image: '*', githubActions: {{owner: a}}}}], digestPinning: {scope}}}"
        ))
        .unwrap();
        assert_eq!(s.pinning, pinning);
    }
    let s = validate("{signatures: [{image: '*', githubActions: {owner: a}}], modifyImagesWithDigest: false, digestPinning: none}").unwrap();
    assert_eq!(s.pinning, Pinning::None);
}

/// The whole text of the two messages that list the kinds, which the prefixes checked
/// above leave out.
#[test]
fn kind_messages_list_every_kind() {
    let kinds = "pubKeys, keyless, keylessPrefix, githubActions, certificates, anyOf";
    assert_eq!(
        refused("signatures: [{image: a}]"),
        format!("signatures[0]: names no signature kind; give one of {kinds}")
    );
    let key = format!("{KEY1:?}");
    assert_eq!(
        refused(&format!(
            "signatures: [{{image: a, pubKeys: [{key}], keyless: [{{issuer: i, subject: s}}]}}]"
        )),
        format!("signatures[0]: carries pubKeys and keyless; an entry has exactly one of {kinds}")
    );
}

#[test]
fn refusals_name_the_entry_and_the_field() {
    let key = format!("{KEY1:?}");
    let cases: Vec<(String, &str)> = vec![
        ("{}".into(), "missing field `signatures`"),
        ("signatures: []".into(), "signatures: must list at least one entry"),
        (format!("signatures: [{{image: a, pubkeys: [{key}]}}]"), "signatures[0].pubkeys: unknown field `pubkeys`"),
        ("signatures: [{image: a, githubActions: {owner: a, repository: b}}]".into(), "signatures[0].githubActions.repository: unknown field `repository`"),
        (format!("signatures: [{{image: a, pubKeys: [{key}]}}, {{image: b, pubKeys: [{key}], keyless: [{{issuer: i, subject: s}}]}}]"), "signatures[1]: carries pubKeys and keyless"),
        ("signatures: [{image: a}]".into(), "signatures[0]: names no signature kind"),
        (format!("signatures: [{{pubKeys: [{key}]}}]"), "signatures[0].image: missing field `image`"),
        ("signatures: [{image: a, pubKeys: []}]".into(), "signatures[0].pubKeys: must list at least one entry"),
        ("signatures: [{image: a, keyless: []}]".into(), "signatures[0].keyless: must list at least one entry"),
        ("signatures: [{image: a, certificates: []}]".into(), "signatures[0].certificates: must list at least one entry"),
        ("signatures: [{image: a, keyless: [{issuer: '', subject: s}]}]".into(), "signatures[0].keyless[0].issuer: must not be empty"),
        ("signatures: [{image: a, pubKeys: ['not a key']}]".into(), "signatures[0].pubKeys[0]: not a PEM public key"),
        (format!("signatures: [{{image: a, pubKeys: [{key}, {:?}]}}]", CA), "signatures[0].pubKeys[1]: not a PEM public key"),
        (format!("signatures: [{{image: a, certificates: [{key}]}}]"), "signatures[0].certificates[0]: not a PEM X.509 certificate"),
        (format!("signatures: [{{image: a, certificates: [{CA:?}], certificateChain: [{CA:?}, 'junk']}}]"), "signatures[0].certificateChain[1]: not a PEM X.509 certificate"),
        (format!("signatures: [{{image: a, certificates: [{CA:?}], certificateChain: []}}]"), "signatures[0].certificateChain: must list at least one certificate"),
        (format!("signatures: [{{image: a, pubKeys: [{key}], requireRekorBundle: true}}]"), "signatures[0].requireRekorBundle: only allowed with certificates"),
        ("signatures: [{image: a, keylessPrefix: [{issuer: i, urlPrefix: 'not a url'}]}]".into(), "signatures[0].keylessPrefix[0].urlPrefix: not a valid URL"),
        ("signatures: [{image: a, keylessPrefix: [{issuer: i, urlPrefix: 'https://bücher.example/'}]}]".into(), "signatures[0].keylessPrefix[0].urlPrefix: not a valid URL (invalid international domain name): write an international domain name in its ASCII (xn--) form"),
        ("signatures: [{image: a, keylessPrefix: [{issuer: i, urlPrefix: 'file:///etc'}]}]".into(), "signatures[0].keylessPrefix[0].urlPrefix: must be an http(s) URL"),
        ("signatures: [{image: a, keylessPrefix: [{issuer: i, urlPrefix: 'ftp://github.com/acme/'}]}]".into(), "signatures[0].keylessPrefix[0].urlPrefix: must be an http(s) URL"),
        ("signatures: [{image: a, githubActions: {owner: ''}}]".into(), "signatures[0].githubActions.owner: must not be empty"),
        ("signatures: [{image: a, githubActions: {owner: a/b}}]".into(), "signatures[0].githubActions.owner: a user or organisation name"),
        ("signatures: [{image: a, githubActions: {owner: a}, minimumMatches: 1}]".into(), "signatures[0].minimumMatches: githubActions names one identity"),
        (format!("signatures: [{{image: a, pubKeys: [{key}], minimumMatches: 2}}]"), "signatures[0].minimumMatches: 2 is more than the 1 pubKeys listed"),
        (format!("signatures: [{{image: a, pubKeys: [{key}], minimumMatches: 0}}]"), "signatures[0].minimumMatches: must be at least 1"),
        (format!("signatures: [{{image: a, pubKeys: [{key}], minimumMatches: -1}}]"), "signatures[0].minimumMatches: invalid value"),
        (format!("signatures: [{{image: 'ghcr.io/Acme/*', pubKeys: [{key}]}}]"), "signatures[0].image: repository name must be lowercase"),
        (format!("signatures: [{{image: '', pubKeys: [{key}]}}]"), "signatures[0].image: image pattern is empty"),
        (format!("signatures: [{{image: a, pubKeys: [{key}], annotations: {{'': x}}}}]"), "signatures[0].annotations: keys must not be empty"),
        ("signatures: [{image: a, anyOf: []}]".into(), "signatures[0].anyOf: must list at least one alternative"),
        (format!("signatures: [{{image: a, pubKeys: [{key}], anyOf: [{{pubKeys: [{key}]}}]}}]"), "signatures[0]: an entry with anyOf carries nothing but image, onFailure, platformSignatures and anyOf"),
        (format!("signatures: [{{image: a, annotations: {{env: prod}}, anyOf: [{{pubKeys: [{key}]}}]}}]"), "signatures[0]: an entry with anyOf carries nothing but image, onFailure, platformSignatures and anyOf"),
        (format!("signatures: [{{image: a, minimumMatches: 1, anyOf: [{{pubKeys: [{key}]}}]}}]"), "signatures[0]: an entry with anyOf carries nothing but image, onFailure, platformSignatures and anyOf"),
        (format!("signatures: [{{image: a, anyOf: [{{image: b, pubKeys: [{key}]}}]}}]"), "signatures[0].anyOf[0].image: the pattern belongs to the entry"),
        (format!("signatures: [{{image: a, anyOf: [{{anyOf: [{{pubKeys: [{key}]}}]}}]}}]"), "signatures[0].anyOf[0].anyOf: alternatives do not nest"),
        (format!("signatures: [{{image: a, anyOf: [{{pubKeys: [{key}]}}, {{pubKeys: ['x']}}]}}]"), "signatures[0].anyOf[1].pubKeys[0]: not a PEM public key"),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], skipImages: [ok, 'Bad/']}}"), "skipImages[1]: "),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], digestPinning: sometimes}}"), "digestPinning: unknown variant `sometimes`"),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], modifyImagesWithDigest: false, digestPinning: pods}}"), "digestPinning: contradicts modifyImagesWithDigest: false"),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], rejectUnmatched: true}}"), "rejectUnmatched: unknown field `rejectUnmatched`"),
    ];
    for (yaml, expected) in cases {
        let error = refused(&yaml);
        assert!(
            error.starts_with(expected) || error.contains(expected),
            "{yaml}\n  gave: {error}\n  want: {expected}"
        );
    }
}

#[test]
fn structure_is_checked_on_every_request_but_pem_only_at_validation() {
    let raw: Box<serde_json::value::RawValue> =
        serde_json::from_str(r#"{"signatures":[{"image":"a","pubKeys":["not PEM"]}]}"#).unwrap();
    assert!(Settings::from_json(&raw).is_ok());
    assert!(Settings::validate(&raw).is_err());
}

/// `key` with its base64 wrapped at `width` characters a line.
fn rewrap(pem: &str, width: usize) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let lines: Vec<String> = body
        .as_bytes()
        .chunks(width)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_signer_listed_twice_is_refused_with_both_places() {
    let keys = |keys: &[&str], extra: &str| {
        let list: String = keys
            .iter()
            .map(|k| format!("      - |\n{}", indent(k)))
            .collect();
        format!("signatures:\n  - image: \"*\"\n    pubKeys:\n{list}{extra}")
    };
    assert_eq!(
        refused(&keys(&[KEY1, KEY1, KEY2], "    minimumMatches: 2\n")),
        "signatures[0].pubKeys[1]: the same key as pubKeys[0]; list each signer once"
    );
    // The same key, wrapped differently, is the same signer.
    let narrow = rewrap(KEY1, 32);
    assert_ne!(narrow.trim(), KEY1.trim());
    assert_eq!(
        refused(&keys(&[KEY2, KEY1, &narrow], "")),
        "signatures[0].pubKeys[2]: the same key as pubKeys[1]; list each signer once"
    );
    validate(&keys(&[KEY1, KEY2], "    minimumMatches: 1\n")).unwrap();

    assert_eq!(
        refused(
            r#"
signatures:
  - image: "*"
    keyless:
      - {issuer: "https://accounts.example", subject: "a@example.com"}
      - {issuer: "https://other.example", subject: "a@example.com"}
      - {issuer: "https://accounts.example", subject: "a@example.com"}
"#
        ),
        "signatures[0].keyless[2]: the same issuer and subject as keyless[0]; list each signer once"
    );
    assert_eq!(
        refused(
            r#"
signatures:
  - image: "*"
    anyOf:
      - keylessPrefix:
          - {issuer: "https://accounts.example", urlPrefix: "https://github.com/acme"}
      - keylessPrefix:
          - {issuer: "https://accounts.example", urlPrefix: "https://GitHub.com/acme"}
          - {issuer: "https://accounts.example", url_prefix: "https://github.com/acme/"}
"#
        ),
        "signatures[0].anyOf[1].keylessPrefix[1]: the same issuer and URL prefix as keylessPrefix[0]; list each signer once"
    );
    let certificate = |n: usize| -> String {
        let list: String = (0..n)
            .map(|_| format!("      - |\n{}", indent(CA)))
            .collect();
        format!("signatures:\n  - image: \"*\"\n    certificates:\n{list}")
    };
    assert_eq!(
        refused(&certificate(2)),
        "signatures[0].certificates[1]: the same certificate as certificates[0]; list each signer once"
    );
}

#[test]
fn reverify_unchanged_images() {
    let base = "signatures: [{image: '*', githubActions: {owner: acme}}]";
    assert!(!validate(base).unwrap().reverify_unchanged_images);
    let on = validate(&format!("{{{base}, reverifyUnchangedImages: true}}")).unwrap();
    assert!(on.reverify_unchanged_images);
    for bad in ["'yes'", "1", "[true]"] {
        let error = refused(&format!("{{{base}, reverifyUnchangedImages: {bad}}}"));
        assert!(
            error.starts_with("reverifyUnchangedImages: invalid type"),
            "{bad}: {error}"
        );
    }
}

#[test]
fn warn_only_entries_and_checks() {
    let settings = validate(&format!(
        r#"
signatures:
  - image: "ghcr.io/acme/*"
    pubKeys: [{KEY1:?}]
  - image: "quay.io/acme/*"
    onFailure: warn
    pubKeys: [{KEY1:?}]
  - image: "docker.io/acme/*"
    onFailure: reject
    anyOf:
      - pubKeys: [{KEY2:?}]
  - image: "docker.io/acme/*"
    onFailure: warn
    anyOf:
      - pubKeys: [{KEY2:?}]
rejectUnmatchedImages: warn
requireDigest: warn
"#
    ))
    .unwrap();
    let modes: Vec<OnFailure> = settings.rules.iter().map(|r| r.on_failure).collect();
    assert_eq!(
        modes,
        [
            OnFailure::Reject,
            OnFailure::Warn,
            OnFailure::Reject,
            OnFailure::Warn
        ]
    );
    assert_eq!(settings.reject_unmatched_images, Some(OnFailure::Warn));
    assert_eq!(settings.require_digest, Some(OnFailure::Warn));
    // The boolean forms of Kubewarden's policy, and the words.
    for (value, expected) in [
        ("true", Some(OnFailure::Reject)),
        ("false", None),
        ("reject", Some(OnFailure::Reject)),
        ("warn", Some(OnFailure::Warn)),
    ] {
        let s = validate(&format!(
            "{{signatures: [{{image: '*', githubActions: {{owner: a}}}}], rejectUnmatchedImages: {value}, requireDigest: {value}}}"
        ))
        .unwrap();
        assert_eq!(
            (s.reject_unmatched_images, s.require_digest),
            (expected, expected),
            "{value}"
        );
    }
}

#[test]
fn unknown_warn_values_are_refused_naming_the_field() {
    let key = format!("{KEY1:?}");
    let cases: Vec<(String, &str)> = vec![
        (format!("signatures: [{{image: a, pubKeys: [{key}], onFailure: enforce}}]"), "signatures[0].onFailure: unknown variant `enforce`, expected `reject` or `warn`"),
        (format!("signatures: [{{image: a, pubKeys: [{key}], onFailure: true}}]"), "signatures[0].onFailure: "),
        (format!("signatures: [{{image: a, pubKeys: [{key}], onFailure: Warn}}]"), "signatures[0].onFailure: unknown variant `Warn`"),
        (format!("signatures: [{{image: a, anyOf: [{{pubKeys: [{key}], onFailure: warn}}]}}]"), "signatures[0].anyOf[0].onFailure: belongs to the entry, not to an alternative"),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], rejectUnmatchedImages: warning}}"), "rejectUnmatchedImages: invalid value: string \"warning\", expected true, false, \"reject\" or \"warn\""),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], requireDigest: 1}}"), "requireDigest: invalid type: integer `1`, expected true, false, \"reject\" or \"warn\""),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], requireDigest: 'true'}}"), "requireDigest: invalid value: string \"true\""),
        (format!("{{signatures: [{{image: a, pubKeys: [{key}]}}], requireDigest: null}}"), "requireDigest: invalid type: null"),
    ];
    for (yaml, expected) in cases {
        let error = refused(&yaml);
        assert!(
            error.starts_with(expected),
            "{yaml}\n  gave: {error}\n  want: {expected}"
        );
    }
}

#[test]
fn an_international_domain_name_is_accepted_in_its_ascii_form() {
    let settings = validate(
        "signatures: [{image: a, keylessPrefix: [{issuer: i, urlPrefix: 'https://xn--bcher-kva.example/acme/'}]}]",
    )
    .unwrap();
    assert_eq!(settings.rules.len(), 1);
}
