//! Host tests against a tiny waPC guest written in WAT (wasmtime compiles the
//! text format), so the runtime, the deadline, the memory limit and the host
//! call plumbing are exercised without building a Rust guest.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// WAT string literal of arbitrary bytes.
fn wat_bytes(data: &str) -> String {
    data.bytes().map(|b| format!("\\{b:02x}")).collect()
}

/// What the guest's `validate` does.
enum Validate<'a> {
    /// Answers this text.
    Answer(&'a str),
    /// Runs these WAT instructions.
    Run(&'a str),
}

/// A guest whose `validate_settings` answers `settings_answer` and whose
/// `validate` does as told. Other operations, by
/// first letter: `loop` spins forever, `trap` traps, `grow` grows memory by
/// 512 MiB, and anything else is a host call whose payload is
/// `[namespace len][operation len][namespace][operation][payload]`, answered
/// with the host's response or failed with the host's error.
fn guest(settings_answer: &str, validate: Validate<'_>) -> Vec<u8> {
    let (validate_answer, validate_body) = match validate {
        Validate::Answer(answer) => (
            answer,
            format!(
                "(call $guest_response (i32.const 256) (i32.const {})) (return (i32.const 1))",
                answer.len()
            ),
        ),
        Validate::Run(body) => ("", body.to_owned()),
    };
    format!(
        r#"(module
  (import "wapc" "__guest_request" (func $guest_request (param i32 i32)))
  (import "wapc" "__guest_response" (func $guest_response (param i32 i32)))
  (import "wapc" "__guest_error" (func $guest_error (param i32 i32)))
  (import "wapc" "__host_call" (func $host_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wapc" "__host_response_len" (func $host_response_len (result i32)))
  (import "wapc" "__host_response" (func $host_response (param i32)))
  (import "wapc" "__host_error_len" (func $host_error_len (result i32)))
  (import "wapc" "__host_error" (func $host_error (param i32)))
  (memory (export "memory") 4)
  (data (i32.const 0) "kubewarden")
  (data (i32.const 64) "{settings}")
  (data (i32.const 256) "{validate_answer}")
  (func (export "wapc_init"))
  (func (export "__guest_call") (param $op_len i32) (param $msg_len i32) (result i32)
    (local $ns i32) (local $op i32) (local $len i32)
    (call $guest_request (i32.const 1024) (i32.const 4096))
    (if (i32.eq (local.get $op_len) (i32.const 17))
      (then (call $guest_response (i32.const 64) (i32.const {settings_len})) (return (i32.const 1))))
    (if (i32.eq (local.get $op_len) (i32.const 8)) (then {validate_body}))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 108)) (then (loop $spin (br $spin))))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 116)) (then unreachable))
    (if (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 103))
      (then
        (if (i32.eq (memory.grow (i32.const 8192)) (i32.const -1)) (then unreachable))
        (call $guest_response (i32.const 0) (i32.const 0))
        (return (i32.const 1))))
    (local.set $ns (i32.load8_u (i32.const 4096)))
    (local.set $op (i32.load8_u (i32.const 4097)))
    (if (call $host_call
          (i32.const 0) (i32.const 10)
          (i32.const 4098) (local.get $ns)
          (i32.add (i32.const 4098) (local.get $ns)) (local.get $op)
          (i32.add (i32.add (i32.const 4098) (local.get $ns)) (local.get $op))
          (i32.sub (i32.sub (i32.sub (local.get $msg_len) (i32.const 2)) (local.get $ns)) (local.get $op)))
      (then
        (local.set $len (call $host_response_len))
        (call $host_response (i32.const 131072))
        (call $guest_response (i32.const 131072) (local.get $len))
        (return (i32.const 1))))
    (local.set $len (call $host_error_len))
    (call $host_error (i32.const 131072))
    (call $guest_error (i32.const 131072) (local.get $len))
    (i32.const 0)))"#,
        settings = wat_bytes(settings_answer),
        settings_len = settings_answer.len(),
        validate_answer = wat_bytes(validate_answer),
    )
    .into_bytes()
}

const SETTINGS_OK: &str = r#"{"valid":true,"message":null}"#;

/// WAT guests carry no metadata: load them as unannotated modules.
fn host(wasm: Vec<u8>) -> HostBuilder {
    Host::builder().wasm_bytes(wasm).allow_unannotated()
}

/// Runs a host call through the guest, as a policy would.
fn host_call(
    host: &Host,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> Result<String, String> {
    let mut msg = vec![
        u8::try_from(namespace.len()).unwrap(),
        u8::try_from(operation.len()).unwrap(),
    ];
    msg.extend_from_slice(namespace.as_bytes());
    msg.extend_from_slice(operation.as_bytes());
    msg.extend_from_slice(payload);
    host.call("host", &msg)
        .map(|answer| String::from_utf8(answer).unwrap())
}

/// The text a policy sees for a failed host call (wapc prefixes guest errors).
fn guest_error(result: Result<String, String>) -> String {
    let text = result.expect_err("the host call should fail");
    text.strip_prefix("Guest call failure: ")
        .unwrap_or(&text)
        .to_owned()
}

#[test]
fn host_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Host>();
}

#[test]
fn mutation_is_answered_as_a_json_patch() {
    let answer = r#"{"accepted":true,"message":null,"code":null,"mutated_object":{"kind":"Pod","spec":{"image":"busybox@sha256:1"}},"audit_annotations":null,"warnings":["pinned"]}"#;
    let host = host(guest(SETTINGS_OK, Validate::Answer(answer)))
        .build()
        .unwrap();
    assert!(host.validate_settings().valid);
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "abc", "kind": {}, "resource": {}, "operation": "CREATE", "userInfo": {},
                    "object": {"kind": "Pod", "spec": {"image": "busybox", "extra": true}}}
    });
    let response = host.validate(&review).unwrap();
    assert_eq!(response.uid, "abc");
    assert!(response.allowed);
    assert_eq!(response.patch_type.as_deref(), Some("JSONPatch"));
    assert_eq!(response.warnings, Some(vec!["pinned".to_owned()]));
    let ops = response.decoded_patch().unwrap();
    assert_eq!(ops.as_array().unwrap().len(), 2);
    assert!(ops
        .as_array()
        .unwrap()
        .contains(&json!({"op": "remove", "path": "/spec/extra"})));
}

#[test]
fn rejected_settings_are_reported() {
    let host = host(guest(
        r#"{"valid":false,"message":"bad settings"}"#,
        Validate::Run("unreachable"),
    ))
    .settings(json!({"x": 1}))
    .build()
    .unwrap();
    let answer = host.validate_settings();
    assert!(!answer.valid);
    assert_eq!(answer.message.as_deref(), Some("bad settings"));
    assert_eq!(host.settings(), &json!({"x": 1}));
}

#[test]
fn trap_in_validate_is_an_internal_server_error() {
    let host = host(guest(SETTINGS_OK, Validate::Run("unreachable")))
        .build()
        .unwrap();
    let response = host.validate(&request("u1")).unwrap();
    assert!(!response.allowed);
    let status = response.status.unwrap();
    assert_eq!(status.code, Some(500));
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .starts_with("internal server error: Guest call failure: "),
        "{status:?}"
    );
    let garbage = host_with_answer("not json");
    let response = garbage.validate(&request("u2")).unwrap();
    assert!(response
        .status
        .unwrap()
        .message
        .unwrap()
        .starts_with("internal server error: cannot deserialize policy validation response"));
}

fn host_with_answer(answer: &str) -> Host {
    host(guest(SETTINGS_OK, Validate::Answer(answer)))
        .build()
        .unwrap()
}

#[test]
fn runaway_guest_hits_the_deadline_and_the_instance_is_rebuilt() {
    let host = host(guest(SETTINGS_OK, Validate::Run("(loop $spin (br $spin))")))
        .execution_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let started = Instant::now();
    let response = host.validate(&request("slow")).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let status = response.status.unwrap();
    assert_eq!(status.code, Some(500));
    assert_eq!(
        status.message.unwrap(),
        format!("internal server error: Guest call failure: {DEADLINE_EXCEEDED}")
    );
    // The next call runs on a fresh instance and works.
    assert!(host.validate_settings().valid);
    assert_eq!(
        guest_error(host.call("loop", b"").map(|_| String::new())),
        DEADLINE_EXCEEDED
    );
    assert!(host.validate_settings().valid);
}

#[test]
fn memory_beyond_the_limit_traps() {
    let limited = host(guest(SETTINGS_OK, Validate::Run("unreachable")))
        .build()
        .unwrap();
    assert!(limited.call("grow", b"").is_err());
    let roomy = host(guest(SETTINGS_OK, Validate::Run("unreachable")))
        .memory_limit(1024 * 1024 * 1024)
        .build()
        .unwrap();
    assert!(roomy.call("grow", b"").is_ok());
}

#[test]
fn a_module_without_metadata_is_refused_by_default() {
    let wasm = guest(SETTINGS_OK, Validate::Answer("{}"));
    let err = Host::builder().wasm_bytes(wasm).build().err().unwrap();
    assert!(
        err.to_string().contains("not annotated") && err.to_string().contains("annotate"),
        "{err}"
    );
}

#[test]
fn a_module_without_the_wapc_exports_does_not_load() {
    let err = host(b"(module)".to_vec()).build().err().unwrap();
    assert!(
        err.to_string().contains("cannot instantiate the policy"),
        "{err}"
    );
}

#[test]
fn host_calls_answer_like_the_real_host_and_are_counted() {
    let host = host(guest(SETTINGS_OK, Validate::Run("unreachable")))
        .build()
        .unwrap();
    let log = br#"{"level":"info","message":"hello","target":"test"}"#;
    assert_eq!(host_call(&host, "tracing", "log", log), Ok(String::new()));
    assert_eq!(
        guest_error(host_call(&host, "nope", "x", b"")),
        "unknown namespace: nope"
    );
    assert_eq!(
        guest_error(host_call(&host, "oci", "v9/frobnicate", b"")),
        "unknown operation: v9/frobnicate"
    );
    let stats = host.stats();
    assert_eq!(stats.calls("tracing/log"), 1);
    assert_eq!(stats.calls("oci/v9/frobnicate"), 1);
    assert_eq!(stats.total, 3);
}

#[test]
fn bad_verification_requests_fail_before_any_registry_access() {
    let host = host(guest(SETTINGS_OK, Validate::Run("unreachable")))
        .build()
        .unwrap();
    let verify = |payload: Value| {
        guest_error(host_call(
            &host,
            "oci",
            "v2/verify",
            payload.to_string().as_bytes(),
        ))
    };
    assert_eq!(
        verify(
            json!({"type": "SigstorePubKeyVerify", "image": "127.0.0.1:1/a:b", "pub_keys": [], "annotations": null})
        ),
        "Callback evaluation failure: Must provide at least one pub key"
    );
    assert_eq!(
        verify(
            json!({"type": "SigstoreKeylessVerify", "image": "127.0.0.1:1/a:b", "keyless": [], "annotations": null})
        ),
        "Callback evaluation failure: Must provide keyless info"
    );
    assert_eq!(
        verify(
            json!({"type": "SigstoreGithubActionsVerify", "image": "127.0.0.1:1/a:b", "owner": "", "repo": null, "annotations": null})
        ),
        "Callback evaluation failure: Must provide owner info"
    );
    assert_eq!(
        verify(
            json!({"type": "SigstoreKeylessPrefixVerify", "image": "127.0.0.1:1/a:b",
                      "keyless_prefix": [{"issuer": "i", "url_prefix": "not a url"}], "annotations": null})
        ),
        "Error obtaining response over callback channel"
    );
    assert!(verify(json!({"type": "SigstoreMagic", "image": "x"}))
        .contains("unknown variant `SigstoreMagic`"));
    let stats = host.stats();
    assert_eq!(stats.calls("oci/v2/verify"), 5);
    assert_eq!(stats.verifications_performed, 0);
}

#[test]
fn unreachable_registry_fails_the_call_quickly() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let host = host(guest(SETTINGS_OK, Validate::Run("unreachable")))
        .insecure_sources(["127.0.0.1:1"])
        .registry_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let started = Instant::now();
    let verify = json!({"type": "SigstorePubKeyVerify", "image": "127.0.0.1:1/app:v1",
                        "pub_keys": ["-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"], "annotations": null});
    let text = guest_error(host_call(
        &host,
        "oci",
        "v2/verify",
        verify.to_string().as_bytes(),
    ));
    assert!(text.starts_with("Callback evaluation failure: "), "{text}");
    let text = guest_error(host_call(
        &host,
        "oci",
        "v1/manifest_digest",
        br#""127.0.0.1:1/app:v1""#,
    ));
    assert!(
        text.starts_with(
            "Callback evaluation failure: cannot fetch manifest digest of 127.0.0.1:1/app:v1"
        ),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Errors are not cached: a second identical request goes to the registry again.
    guest_error(host_call(
        &host,
        "oci",
        "v2/verify",
        verify.to_string().as_bytes(),
    ));
    assert_eq!(host.stats().verifications_performed, 2);
}

/// A root CA (PEM) able to issue code-signing leaves.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A one-hour code-signing leaf for alice@example.com, issued by `issuer`.
fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::Rfc822Name("alice@example.com".try_into().unwrap())];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::MINUTE;
    params.not_after = params.not_before + time::Duration::HOUR;
    params
        .signed_by(&KeyPair::generate().unwrap(), issuer)
        .unwrap()
        .pem()
}

fn certificate(pem: &str) -> Value {
    json!({"encoding": "Pem", "data": pem.as_bytes()})
}

#[test]
fn certificate_trust_checks() {
    let host = host(guest(SETTINGS_OK, Validate::Run("unreachable")))
        .build()
        .unwrap();
    let acme = ca("Acme");
    let pem = leaf(&acme);
    let chain = vec![certificate(&acme.pem())];
    let other_chain = vec![certificate(&ca("Other").pem())];
    let ask = |req: Value| -> Value {
        let answer = host_call(
            &host,
            "crypto",
            "v1/is_certificate_trusted",
            req.to_string().as_bytes(),
        )
        .unwrap();
        serde_json::from_str(&answer).unwrap()
    };
    assert_eq!(
        ask(json!({"cert": certificate(&pem), "cert_chain": chain, "not_after": null})),
        json!({"trusted": true, "reason": ""})
    );
    assert_eq!(
        ask(json!({"cert": certificate(&pem), "cert_chain": null, "not_after": null})),
        json!({"trusted": true, "reason": ""})
    );
    assert_eq!(
        ask(json!({"cert": certificate(&pem), "cert_chain": other_chain, "not_after": null}))
            ["trusted"],
        json!(false)
    );
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    assert_eq!(
        ask(json!({"cert": certificate(&pem), "cert_chain": chain, "not_after": later})),
        json!({"trusted": false, "reason": "Certificate is being used after its expiration date"})
    );
    let garbage = json!({"cert": certificate("nope"), "cert_chain": null, "not_after": null});
    assert_eq!(
        guest_error(host_call(
            &host,
            "crypto",
            "v1/is_certificate_trusted",
            garbage.to_string().as_bytes()
        )),
        "Callback evaluation failure: Certificate is not a valid DER or PEM encoded certificate"
    );
}

/// Verification against real signed images in a local registry (CNCF
/// Distribution, `docker-registry`), all scenarios on one registry.
mod signed_images {
    use super::*;
    use crate::fixtures::{Fixtures, Registry};
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::manifest::{WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};

    fn verify(host: &Host, request: Value) -> Result<Value, String> {
        host_call(host, "oci", "v2/verify", request.to_string().as_bytes())
            .map(|answer| serde_json::from_str(&answer).unwrap())
            .map_err(|e| guest_error(Err(e)))
    }

    fn pub_keys(image: &str, keys: &[&str], annotations: Value) -> Value {
        json!({"type": "SigstorePubKeyVerify", "image": image, "pub_keys": keys, "annotations": annotations})
    }

    fn trusted(digest: &str) -> Result<Value, String> {
        Ok(json!({"is_trusted": true, "digest": digest}))
    }

    fn missing(constraints_yaml: &str) -> String {
        format!("Callback evaluation failure: Image verification failed: missing signatures\nThe following constraints were not satisfied:\n{constraints_yaml}")
    }

    fn key_yaml(pem: &str, annotations: &str) -> String {
        let indented: String = pem.lines().map(|l| format!("  {l}\n")).collect();
        format!("kind: pubKey\nowner: null\nkey: |\n{indented}annotations:{annotations}\n")
    }

    /// Publishes `wasm` as a Kubewarden policy artifact.
    fn publish_policy(registry: &str, wasm: Vec<u8>) -> String {
        let reference = format!("{registry}/policies/test:v1");
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![registry.to_owned()]),
            ..ClientConfig::default()
        });
        let layer = ImageLayer::new(wasm, WASM_LAYER_MEDIA_TYPE.to_owned(), None);
        let config = Config::new(b"{}".to_vec(), WASM_CONFIG_MEDIA_TYPE.to_owned(), None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(client.push(
                &reference.parse().unwrap(),
                &[layer],
                config,
                &oci_client::secrets::RegistryAuth::Anonymous,
                None,
            ))
            .unwrap();
        format!("registry://{reference}")
    }

    #[test]
    fn verifies_like_the_real_host() {
        let registry = Registry::start().unwrap();
        let fx = Fixtures::create(&registry).unwrap();
        let policy = publish_policy(
            &fx.registry,
            guest(SETTINGS_OK, Validate::Run("unreachable")),
        );
        let host = Host::builder()
            .policy_location(policy)
            .allow_unannotated()
            .sources(Sources::from_file(&fx.sources).unwrap())
            .trust_root(TrustRoot::from_file(&fx.trust_config).unwrap())
            .build()
            .unwrap();
        let img = &fx.images;
        let keys = &fx.keys;

        // Public keys: every key must have signed.
        assert_eq!(
            verify(
                &host,
                pub_keys(&img.key_a.reference, &[&keys.a], Value::Null)
            ),
            trusted(&img.key_a.digest)
        );
        assert_eq!(
            verify(
                &host,
                pub_keys(&img.nested.reference, &[&keys.a], Value::Null)
            ),
            trusted(&img.nested.digest)
        );
        assert_eq!(
            verify(
                &host,
                pub_keys(
                    &img.two_of_three.reference,
                    &[&keys.k1, &keys.k2],
                    Value::Null
                )
            ),
            trusted(&img.two_of_three.digest)
        );
        assert_eq!(
            verify(
                &host,
                pub_keys(
                    &img.two_of_three.reference,
                    &[&keys.k1, &keys.k3],
                    Value::Null
                )
            ),
            Err(missing(&key_yaml(&keys.k3, " null")))
        );
        assert_eq!(
            verify(
                &host,
                pub_keys(&img.key_a.reference, &[&keys.w], Value::Null)
            ),
            Err(missing(&key_yaml(&keys.w, " null")))
        );
        assert_eq!(
            verify(
                &host,
                pub_keys(&img.unsigned.reference, &[&keys.a], Value::Null)
            ),
            Err(format!(
                "Callback evaluation failure: no signatures found for image: {} ",
                img.unsigned.reference
            ))
        );
        // A pinned reference verifies the same digest.
        assert_eq!(
            verify(
                &host,
                pub_keys(&img.key_a.pinned(), &[&keys.a], Value::Null)
            ),
            trusted(&img.key_a.digest)
        );

        // Annotations must be in the signed payload.
        assert_eq!(
            verify(
                &host,
                pub_keys(
                    &img.key_a_annotated.reference,
                    &[&keys.a],
                    json!({"env": "prod"})
                )
            ),
            trusted(&img.key_a_annotated.digest)
        );
        assert_eq!(
            verify(
                &host,
                pub_keys(
                    &img.key_a_annotated.reference,
                    &[&keys.a],
                    json!({"env": "dev"})
                )
            ),
            Err(missing(&key_yaml(&keys.a, "\n  env: dev")))
        );

        // A multi-arch image: the index digest is what is signed and answered.
        assert_eq!(
            verify(
                &host,
                pub_keys(&img.multi_arch.index.reference, &[&keys.a], Value::Null)
            ),
            trusted(&img.multi_arch.index.digest)
        );

        // Keyless, exact identity.
        let email = &fx.email_identity;
        let keyless = |subject: &str| {
            json!({"type": "SigstoreKeylessVerify", "image": img.keyless_email.reference,
            "keyless": [{"issuer": email.issuer, "subject": subject}], "annotations": null})
        };
        assert_eq!(
            verify(&host, keyless(&email.subject)),
            trusted(&img.keyless_email.digest)
        );
        let refused = verify(&host, keyless("mallory@example.com")).unwrap_err();
        assert!(
            refused.starts_with(&missing("kind: genericIssuer\n")),
            "{refused}"
        );
        assert!(refused.contains("mallory@example.com"), "{refused}");

        // Keyless, URL prefix (a `/` is appended to the prefix).
        let github = &fx.github_identity;
        let prefix = |p: &str| {
            json!({"type": "SigstoreKeylessPrefixVerify", "image": img.keyless_github.reference,
            "keyless_prefix": [{"issuer": github.issuer, "url_prefix": p}], "annotations": null})
        };
        assert_eq!(
            verify(&host, prefix("https://github.com/acme")),
            trusted(&img.keyless_github.digest)
        );
        assert!(verify(&host, prefix("https://github.com/acm")).is_err());

        // GitHub Actions: owner, optionally the repository.
        let gha = |owner: &str, repo: Option<&str>| {
            json!({"type": "SigstoreGithubActionsVerify",
            "image": img.keyless_github.reference, "owner": owner, "repo": repo, "annotations": null})
        };
        assert_eq!(
            verify(&host, gha("acme", Some("app"))),
            trusted(&img.keyless_github.digest)
        );
        assert_eq!(
            verify(&host, gha("acme", None)),
            trusted(&img.keyless_github.digest)
        );
        assert_eq!(
            verify(&host, gha("acme", Some("other"))),
            Err(missing(
                "kind: githubAction\nowner: acme\nrepo: other\nannotations: null\n"
            ))
        );
        assert!(verify(&host, gha("evil", None)).is_err());
        // An e-mail identity is no GitHub Actions signature.
        let not_gha = json!({"type": "SigstoreGithubActionsVerify", "image": img.keyless_email.reference,
            "owner": "acme", "repo": null, "annotations": null});
        assert!(verify(&host, not_gha).is_err());

        // Certificate: signed by its key, chained to the given CA, Rekor bundle if required.
        let cert = &fx.signing_certificate;
        let by_cert = |image: &str, rekor: bool| {
            json!({"type": "SigstoreCertificateVerify", "image": image,
            "certificate": cert.certificate.as_bytes(),
            "certificate_chain": cert.chain.iter().map(|c| c.as_bytes()).collect::<Vec<_>>(),
            "require_rekor_bundle": rekor, "annotations": null})
        };
        assert_eq!(
            verify(&host, by_cert(&img.certificate_bundled.reference, true)),
            trusted(&img.certificate_bundled.digest)
        );
        assert_eq!(
            verify(&host, by_cert(&img.certificate_unbundled.reference, false)),
            trusted(&img.certificate_unbundled.digest)
        );
        assert_eq!(
            verify(&host, by_cert(&img.certificate_unbundled.reference, true)),
            Err("Callback evaluation failure: verification failed: Several Signature Layers failed verification".to_owned())
        );
        assert!(verify(&host, by_cert(&img.key_a.reference, false)).is_err());
        // A chain the certificate does not belong to: the real host says only webpki's word.
        let mut wrong_chain = by_cert(&img.certificate_bundled.reference, true);
        wrong_chain["certificate_chain"] = json!(fx
            .fulcio_chain
            .iter()
            .map(|c| c.as_bytes())
            .collect::<Vec<_>>());
        assert_eq!(
            verify(&host, wrong_chain),
            Err("Callback evaluation failure: UnknownIssuer".to_owned())
        );

        // Successes are cached: the same request again does not reach the registry.
        let before = host.stats();
        assert_eq!(
            verify(
                &host,
                pub_keys(&img.key_a.reference, &[&keys.a], Value::Null)
            ),
            trusted(&img.key_a.digest)
        );
        let after = host.stats();
        assert_eq!(
            after.verifications_performed,
            before.verifications_performed
        );
        assert_eq!(
            after.verification_cache_hits,
            before.verification_cache_hits + 1
        );
        assert_eq!(
            after.calls("oci/v2/verify"),
            before.calls("oci/v2/verify") + 1
        );

        // Plain registry reads.
        let digest = host_call(
            &host,
            "oci",
            "v1/manifest_digest",
            json!(img.key_a.reference).to_string().as_bytes(),
        )
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&digest).unwrap(),
            json!({"digest": img.key_a.digest})
        );
        let index = host_call(
            &host,
            "oci",
            "v1/oci_manifest",
            json!(img.multi_arch.index.reference).to_string().as_bytes(),
        )
        .unwrap();
        let index: Value = serde_json::from_str(&index).unwrap();
        assert_eq!(
            index["manifests"].as_array().unwrap().len(),
            img.multi_arch.platforms.len()
        );
        // Byte for byte as kwctl 1.31 answers (recorded with --record-host-capabilities-
        // interactions): the OCI types' field order, attestation entries as listed.
        let per_platform = host_call(
            &host,
            "oci",
            "v1/oci_manifest",
            json!(img.per_platform.index.reference)
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let (_, amd64) = &img.per_platform.platforms[0];
        assert!(per_platform.starts_with(&format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{amd64}","size":397,"platform":{{"architecture":"amd64","os":"linux"}}}},"#
        )), "{per_platform}");
        assert!(per_platform.contains(&format!(
            r#""platform":{{"architecture":"unknown","os":"unknown"}},"annotations":{{"vnd.docker.reference.digest":"{amd64}","vnd.docker.reference.type":"attestation-manifest"}}}}"#
        )), "{per_platform}");
        let with_config = host_call(
            &host,
            "oci",
            "v1/oci_manifest_config",
            json!(img.key_a.reference).to_string().as_bytes(),
        )
        .unwrap();
        let with_config: Value = serde_json::from_str(&with_config).unwrap();
        assert_eq!(with_config["digest"], json!(img.key_a.digest));
        assert!(with_config["manifest"]["layers"].is_array());
        assert!(with_config["config"].is_object());
        let missing_image = format!("{}/nope:v1", fx.registry);
        let err = guest_error(host_call(
            &host,
            "oci",
            "v1/manifest_digest",
            json!(missing_image).to_string().as_bytes(),
        ));
        assert!(
            err.starts_with("Callback evaluation failure: cannot fetch manifest digest"),
            "{err}"
        );
    }

    #[test]
    fn concurrent_identical_checks_run_once() {
        let registry = Registry::start().unwrap();
        let fx = Fixtures::create(&registry).unwrap();
        let host = Host::builder()
            .wasm_bytes(guest(SETTINGS_OK, Validate::Run("unreachable")))
            .allow_unannotated()
            .sources(Sources::from_file(&fx.sources).unwrap())
            .workers(4)
            .build()
            .unwrap();
        let request = pub_keys(&fx.images.key_a.reference, &[&fx.keys.a], Value::Null);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    assert_eq!(
                        verify(&host, request.clone()),
                        trusted(&fx.images.key_a.digest)
                    )
                });
            }
        });
        let stats = host.stats();
        assert_eq!(stats.calls("oci/v2/verify"), 4);
        assert_eq!(stats.verifications_performed, 1);
        assert_eq!(stats.verification_cache_hits, 3);
    }
}

/// An AdmissionRequest with the fields the host requires and an empty object.
fn request(uid: &str) -> Value {
    json!({"uid": uid, "kind": {}, "resource": {}, "operation": "CREATE", "userInfo": {}, "object": {}})
}
