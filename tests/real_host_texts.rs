//! The failure classifier against the texts the REAL Kubewarden host returns for
//! `oci/v2/verify` and `oci/v1/oci_manifest`, not texts written to match it. Each was
//! recorded with kwctl 1.31.0 (`kwctl run --record-host-capabilities-interactions`, kept by
//! `E2E_BACKEND=kwctl E2E_KWCTL_RECORDINGS=DIR cargo test -p e2e-tests --test policy`, or
//! `--test faults` for a misbehaving registry), from the end-to-end suites' cases; registry
//! ports and keys are as recorded.

use verify_image_signatures::verifier::{Failure, FailureClass};

const KEY: &str = "-----BEGIN PUBLIC KEY-----\n  MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEnPkiw055dfEJNau4R6cspICtKzFC\n  KX3xtscVoyrvB6+KBwdWK1jtKG/FwQ0sqhNoRF8sPWoJV6IDr82Po6g9Vw==\n  -----END PUBLIC KEY-----";

#[track_caller]
fn assert_class(text: &str, class: FailureClass) {
    let failure = Failure::from_host_error(text);
    assert_eq!(failure.class, class, "{text:?}");
    assert!(!failure.to_string().contains("BEGIN"), "{failure}");
}

#[test]
fn an_image_without_signatures() {
    // The real text ends with a space.
    for text in [
        "no signatures found for image: 127.0.0.1:46725/unsigned/app:v1 ",
        "no signatures found for image: 127.0.0.1:46725/signed/multi-arch@sha256:9cd1bc579478b6a6b0d160f677113c607eade2a7ae5071d8f7ae5ff439c88497 ",
    ] {
        assert_class(text, FailureClass::NoSignatures);
    }
}

#[test]
fn signatures_by_someone_else() {
    let pub_key = format!("Image verification failed: missing signatures\nThe following constraints were not satisfied:\nkind: pubKey\nowner: null\nkey: |\n  {KEY}\nannotations: null\n");
    let annotated = format!("Image verification failed: missing signatures\nThe following constraints were not satisfied:\nkind: pubKey\nowner: null\nkey: |\n  {KEY}\nannotations:\n  env: dev\n");
    let texts = [
        pub_key.as_str(),
        annotated.as_str(),
        "Image verification failed: missing signatures\nThe following constraints were not satisfied:\nkind: genericIssuer\nissuer: https://accounts.example.com\nsubject: !equal mallory@example.com\nannotations: null\n",
        "Image verification failed: missing signatures\nThe following constraints were not satisfied:\nkind: genericIssuer\nissuer: https://token.actions.githubusercontent.com\nsubject: !urlPrefix https://github.com/ac\nannotations: null\n",
        "Image verification failed: missing signatures\nThe following constraints were not satisfied:\nkind: githubAction\nowner: acme\nrepo: other\nannotations: null\n",
        // A certificate whose key signed no layer (`requireRekorBundle` on an image without
        // a Rekor bundle).
        "verification failed: Several Signature Layers failed verification",
    ];
    for text in texts {
        assert_class(text, FailureClass::NotSigned);
    }
}

#[test]
fn input_errors_keep_the_hosts_first_line() {
    // A certificate checked against a chain it does not belong to: webpki's error name,
    // and nothing else.
    let failure = Failure::from_host_error("UnknownIssuer");
    assert_eq!(failure.class, FailureClass::HostError);
    assert_eq!(failure.detail, "UnknownIssuer");
}

/// The texts of a misbehaving registry, recorded through the fault proxy
/// (`E2E_KWCTL_RECORDINGS=DIR cargo test -p e2e-tests --test faults`, the same texts on
/// kwctl 1.31.0 and 1.35.0), and of a real registry that lacks the image (the suite above).
#[test]
fn registry_faults_are_named_by_kind() {
    let sig = "127.0.0.1:37145/signed/key-a:sha256-ce4d11c6b44f65b111100a29526c4b9e43f2187f6a3d7688b20e938eae64020c.sig";
    let cases = [
        // Nothing listens: connection refused.
        (
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:42643/signed/key-a:v1: error sending request for url (http://127.0.0.1:42643/v2/signed/key-a/manifests/v1)".to_owned(),
            FailureClass::RegistryUnreachable,
            "Cannot fetch manifest of 127.0.0.1:42643/signed/key-a:v1: error sending request for url (http://127.0.0.1:42643/v2/signed/key-a/manifests/v1)".to_owned(),
        ),
        // The connection reset halfway through a signature layer.
        (
            format!("failed to get image trusted layers: Cannot pull {sig}: error decoding response body"),
            FailureClass::RegistryUnreachable,
            format!("Cannot pull {sig}: error decoding response body"),
        ),
        // An error status whose body the host's client does not read as the registry's.
        (
            r#"failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:35711/signed/key-a:v1: Server error: url http://127.0.0.1:35711/v2/signed/key-a/manifests/v1, code: 503, message: {"errors":[{"code":"UNAVAILABLE","message":"service unavailable"}]}"#.to_owned(),
            FailureClass::RegistryRefused(Some(503)),
            r#"Cannot fetch manifest of 127.0.0.1:35711/signed/key-a:v1: Server error: url http://127.0.0.1:35711/v2/signed/key-a/manifests/v1, code: 503, message: {"errors":[{"code":"UNAVAILABLE","message":"service..."#.to_owned(),
        ),
        (
            r#"failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:41893/signed/key-a:v1: Server error: url http://127.0.0.1:41893/v2/signed/key-a/manifests/v1, code: 500, message: {"errors":[{"code":"UNKNOWN","message":"unknown error"}]}"#.to_owned(),
            FailureClass::RegistryRefused(Some(500)),
            r#"Cannot fetch manifest of 127.0.0.1:41893/signed/key-a:v1: Server error: url http://127.0.0.1:41893/v2/signed/key-a/manifests/v1, code: 500, message: {"errors":[{"code":"UNKNOWN","message":"unknown err..."#.to_owned(),
        ),
        (
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:40895/signed/key-a:v1: Not authorized: url http://127.0.0.1:40895/v2/signed/key-a/manifests/v1".to_owned(),
            FailureClass::RegistryRefused(Some(401)),
            "Cannot fetch manifest of 127.0.0.1:40895/signed/key-a:v1: Not authorized: url http://127.0.0.1:40895/v2/signed/key-a/manifests/v1".to_owned(),
        ),
        // The registry's own errors: the status is not in the text (429, 404).
        (
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:45439/signed/key-a:v1: Registry error: url http://127.0.0.1:45439/v2/signed/key-a/manifests/v1, envelope: OCI API errors: [OCI API error: too many requests]".to_owned(),
            FailureClass::RegistryRefused(None),
            "Cannot fetch manifest of 127.0.0.1:45439/signed/key-a:v1: Registry error: url http://127.0.0.1:45439/v2/signed/key-a/manifests/v1, envelope: OCI API errors: [OCI API error: too many requests]".to_owned(),
        ),
        (
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:46725/acme/missing:v1: Registry error: url http://127.0.0.1:46725/v2/acme/missing/manifests/v1, envelope: OCI API errors: [OCI API error: manifest unknown]".to_owned(),
            FailureClass::RegistryRefused(None),
            "Cannot fetch manifest of 127.0.0.1:46725/acme/missing:v1: Registry error: url http://127.0.0.1:46725/v2/acme/missing/manifests/v1, envelope: OCI API errors: [OCI API error: manifest unknown]".to_owned(),
        ),
        // A truncated signature layer, and a corrupt image index read by digest
        // (`oci/v1/oci_manifest`): content that does not match its digest. At most 200
        // characters of the text.
        (
            format!("failed to get image trusted layers: Cannot pull {sig}: Digest error: Invalid digest. Expected sha256:db941eacf6c728036446d1097cdd9d4b2a83e0ac329b27f80c6d903fb57d333d, got sha256:80e89e9697a8a673692896b32af732c0e9020b882aff5a6fc24110a4a13ddad6"),
            FailureClass::InvalidSignatureData,
            format!("Cannot pull {sig}: Digest error: Invalid digest. Expected sha256:db941eacf6c728036446d1097cdd9d4b2a83..."),
        ),
        (
            "Fail to interact with OCI registry: Digest error: Invalid digest. Expected sha256:bc67bc87f3c7332f6705a4ce25d563ddecc477eba770ae19a24493cf6b1d1859, got sha256:22c32646a142da60cdb25c8b30146650d35ea01c130c425f0beea714c1192466".to_owned(),
            FailureClass::InvalidSignatureData,
            "Fail to interact with OCI registry: Digest error: Invalid digest. Expected sha256:bc67bc87f3c7332f6705a4ce25d563ddecc477eba770ae19a24493cf6b1d1859, got sha256:22c32646a142da60cdb25c8b30146650d35ea01c1...".to_owned(),
        ),
    ];
    for (text, class, detail) in cases {
        let failure = Failure::from_host_error(&text);
        assert_eq!(failure.class, class, "{text:?}");
        assert_eq!(failure.detail, detail);
    }
    // A signature manifest reset halfway or garbled reaches the policy as no signatures at
    // all, and a payload that is not what was signed as a missing signature: the host says
    // no more.
    assert_class(
        "no signatures found for image: 127.0.0.1:34489/signed/key-a:v1 ",
        FailureClass::NoSignatures,
    );
}
