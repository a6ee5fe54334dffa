//! The failure classifier against the texts the REAL Kubewarden host returns for
//! `oci/v2/verify`, not texts written to match it. Each was recorded with kwctl 1.31.0
//! (`kwctl run --record-host-capabilities-interactions`, kept by
//! `E2E_BACKEND=kwctl E2E_KWCTL_RECORDINGS=DIR cargo test -p e2e-tests --test policy`), from
//! the end-to-end suite's cases; registry ports and keys are as recorded.

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
fn registry_and_input_errors_keep_the_hosts_first_line() {
    for (text, detail) in [
        (
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:1/acme/app:v1: error sending request for url (https://127.0.0.1:1/v2/acme/app/manifests/v1)",
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:1/acme/app:v1: error sending request for url (https://127.0.0.1:1/v2/acme/app/manifests/v1)",
        ),
        (
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:46725/acme/missing:v1: Registry error: url http://127.0.0.1:46725/v2/acme/missing/manifests/v1, envelope: OCI API errors: [OCI API error: manifest unknown]",
            // At most 200 characters of it.
            "failed to get image trusted layers: Cannot fetch manifest of 127.0.0.1:46725/acme/missing:v1: Registry error: url http://127.0.0.1:46725/v2/acme/missing/manifests/v1, envelope: OCI API errors: [OCI AP...",
        ),
        // A certificate checked against a chain it does not belong to: webpki's error name,
        // and nothing else.
        ("UnknownIssuer", "UnknownIssuer"),
    ] {
        let failure = Failure::from_host_error(text);
        assert_eq!(failure.class, FailureClass::HostError, "{text:?}");
        assert_eq!(failure.detail, detail);
    }
}
