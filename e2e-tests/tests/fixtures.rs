//! Proof that the fixtures are real Sigstore signatures: the real host (`kwctl run`, or
//! policy-server with `E2E_BACKEND=policy-server`) accepts each kind with its signer and
//! rejects it with another; and the local registry lives exactly as long as its owner.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e_tests::backend::{self, Backend, BackendConfig, BackendKind, Grant, Need};
use e2e_tests::fixtures::{Fixtures, Image, Registry};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One registry, fixture set and backend for the whole test binary.
fn env() -> &'static (Registry, Fixtures, Backend) {
    static ENV: OnceLock<(Registry, Fixtures, Backend)> = OnceLock::new();
    ENV.get_or_init(|| {
        let registry = Registry::start().expect("start the local registry");
        let fixtures = Fixtures::create(&registry).expect("create the fixtures");
        let wasm = PathBuf::from(std::env::var("POLICY_WASM").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../annotated-policy.wasm").to_owned()
        }));
        let config = BackendConfig {
            wasm: &wasm,
            fixtures: &fixtures,
            grant: Grant::declared().unwrap(),
        };
        let backend = Backend::start(BackendKind::from_env().unwrap(), &config).unwrap();
        (registry, fixtures, backend)
    })
}

fn fixtures() -> &'static Fixtures {
    &env().1
}

/// Whether the real host admits a Pod running `image` when every image must satisfy `rule`.
fn admits(rule: Value, image: &str) -> bool {
    let mut rule = rule;
    rule["image"] = json!("*");
    let request = json!({
        "uid": "fixtures",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "userInfo": {"username": "e2e"},
        "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"containers": [{"name": "c", "image": image}]}},
    });
    env()
        .2
        .validate_with(&json!({"signatures": [rule]}), &request)
        .expect("evaluate")
        .allowed
}

/// `image` is admitted with `right` and refused with `wrong`.
#[track_caller]
fn signed(image: &str, right: Value, wrong: Value) {
    assert!(admits(right.clone(), image), "{image} refused with {right}");
    assert!(
        !admits(wrong.clone(), image),
        "{image} admitted with {wrong}"
    );
}

fn by_digest(image: &Image, digest: &str) -> String {
    format!("{}@{digest}", image.reference.rsplit_once(':').unwrap().0)
}

#[test]
fn key_signatures_are_real() {
    let fx = fixtures();
    let keys = |keys: &[&String]| json!({"pubKeys": keys});
    let images = &fx.images;
    signed(
        &images.key_a.reference,
        keys(&[&fx.keys.a]),
        keys(&[&fx.keys.w]),
    );
    signed(
        &images.nested.reference,
        keys(&[&fx.keys.a]),
        keys(&[&fx.keys.k1]),
    );
    signed(
        &images.two_of_three.reference,
        keys(&[&fx.keys.k1, &fx.keys.k2]),
        keys(&[&fx.keys.k3]),
    );
    assert!(!admits(keys(&[&fx.keys.a]), &images.unsigned.reference));
    signed(
        &images.key_a_annotated.reference,
        json!({"pubKeys": [fx.keys.a], "annotations": fx.annotations}),
        json!({"pubKeys": [fx.keys.a], "annotations": {"env": "dev"}}),
    );
    // An index signed on its own digest; per-platform images signed on their manifests only.
    signed(
        &images.multi_arch.index.reference,
        keys(&[&fx.keys.a]),
        keys(&[&fx.keys.w]),
    );
    for (_, digest) in &images.per_platform.platforms {
        let platform = by_digest(&images.per_platform.index, digest);
        signed(&platform, keys(&[&fx.keys.a]), keys(&[&fx.keys.w]));
    }
    assert!(!admits(
        keys(&[&fx.keys.a]),
        &images.per_platform.index.reference
    ));
    let (arch, digest) = &images.one_platform_unsigned.platforms[1];
    assert_eq!(arch, "linux/arm64");
    let unsigned = by_digest(&images.one_platform_unsigned.index, digest);
    assert!(!admits(keys(&[&fx.keys.a]), &unsigned));
}

#[test]
fn certificate_and_keyless_signatures_are_real() {
    if backend::skip(env().2.kind(), Need::CustomTrustRoot) {
        return;
    }
    let fx = fixtures();
    let images = &fx.images;
    let cert = &fx.signing_certificate;
    let certificate = |rekor: bool| json!({"certificates": [cert.certificate], "certificateChain": cert.chain, "requireRekorBundle": rekor});
    signed(
        &images.certificate_bundled.reference,
        certificate(true),
        json!({"pubKeys": [fx.keys.a]}),
    );
    signed(
        &images.certificate_unbundled.reference,
        certificate(false),
        certificate(true),
    );
    let keyless =
        |issuer: &str, subject: &str| json!({"keyless": [{"issuer": issuer, "subject": subject}]});
    let email = &fx.email_identity;
    signed(
        &images.keyless_email.reference,
        keyless(&email.issuer, &email.subject),
        keyless(&email.issuer, "mallory@example.com"),
    );
    let github = &fx.github_identity;
    signed(
        &images.keyless_github.reference,
        json!({"githubActions": {"owner": "acme", "repo": "app"}}),
        json!({"githubActions": {"owner": "acme", "repo": "other"}}),
    );
    signed(
        &images.keyless_github.reference,
        keyless(&github.issuer, &github.subject),
        keyless(&email.issuer, &github.subject),
    );
}

const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// The body of `GET http://REGISTRY/v2/REPOSITORY/PATH`, or its status when it is not 200.
fn registry_get(repository: &str, path: &str) -> Result<Vec<u8>, u16> {
    let answer = reqwest::blocking::Client::new()
        .get(format!(
            "http://{}/v2/{repository}/{path}",
            fixtures().registry
        ))
        .header(
            reqwest::header::ACCEPT,
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .expect("the registry answers");
    match answer.status().as_u16() {
        200 => Ok(answer.bytes().unwrap().to_vec()),
        status => Err(status),
    }
}

/// The DER SubjectPublicKeyInfo of a PEM `PUBLIC KEY`.
fn spki(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// Whether the DER ECDSA `signature` over `data` verifies with the P-256 key `pem`.
fn verifies(pem: &str, data: &[u8], signature: &[u8]) -> bool {
    let spki = spki(pem);
    // The last 65 bytes of a P-256 SubjectPublicKeyInfo are the uncompressed point.
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        &spki[spki.len() - 65..],
    )
    .verify(data, signature)
    .is_ok()
}

/// The cosign v3 fixtures are found the way the OCI distribution spec and cosign's bundle spec
/// tell a client to find them on a registry without the referrers API (which answers 404
/// here): the image index at the referrers tag lists one bundle referrer whose subject is the
/// image, and that bundle is key A's DSSE signature over an in-toto statement of the image
/// digest, with key A's hint as verification material.
#[test]
fn cosign_v3_bundles_are_real_referrers() {
    let fx = fixtures();
    let b64 = base64::engine::general_purpose::STANDARD;
    for image in [
        &fx.images.cosign_v3_bundle,
        &fx.images.cosign_v3_bundle_and_legacy,
    ] {
        let repository = image.reference.split_once('/').unwrap().1;
        let repository = repository.rsplit_once(':').unwrap().0;
        let json = |path: &str| -> Value {
            serde_json::from_slice(&registry_get(repository, path).unwrap()).unwrap()
        };
        assert_eq!(
            registry_get(repository, &format!("referrers/{}", image.digest)),
            Err(404)
        );
        let list = json(&format!("manifests/{}", image.digest.replace(':', "-")));
        assert_eq!(list["mediaType"], "application/vnd.oci.image.index.v1+json");
        let [entry] = list["manifests"].as_array().unwrap().as_slice() else {
            panic!("one referrer expected: {list}");
        };
        assert_eq!(entry["artifactType"], BUNDLE_V03);
        let digest = entry["digest"].as_str().unwrap();
        let raw = registry_get(repository, &format!("manifests/{digest}")).unwrap();
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(&raw))),
            digest
        );
        let referrer: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(referrer["artifactType"], BUNDLE_V03);
        assert_eq!(referrer["subject"]["digest"], image.digest.as_str());
        assert_eq!(
            referrer["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        let layer = &referrer["layers"][0];
        assert_eq!(layer["mediaType"], BUNDLE_V03);
        let bundle = json(&format!("blobs/{}", layer["digest"].as_str().unwrap()));
        assert_eq!(bundle["mediaType"], BUNDLE_V03);
        assert_eq!(
            b64.decode(
                bundle["verificationMaterial"]["publicKey"]["hint"]
                    .as_str()
                    .unwrap()
            )
            .unwrap(),
            Sha256::digest(spki(&fx.keys.a)).to_vec()
        );
        let envelope = &bundle["dsseEnvelope"];
        assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
        let payload = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        let (_, hex) = image.digest.split_once(':').unwrap();
        assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
        assert_eq!(
            statement["predicateType"],
            "https://sigstore.dev/cosign/sign/v1"
        );
        let signature = b64
            .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let mut pae =
            format!("DSSEv1 28 application/vnd.in-toto+json {} ", payload.len()).into_bytes();
        pae.extend_from_slice(&payload);
        assert!(
            verifies(&fx.keys.a, &pae, &signature),
            "{}",
            image.reference
        );
        assert!(!verifies(&fx.keys.w, &pae, &signature));
    }
    let legacy = |image: &Image| {
        let repository = image.reference.split_once('/').unwrap().1;
        let repository = repository.rsplit_once(':').unwrap().0;
        registry_get(
            repository,
            &format!("manifests/{}.sig", image.digest.replace(':', "-")),
        )
        .is_ok()
    };
    assert!(!legacy(&fx.images.cosign_v3_bundle));
    assert!(legacy(&fx.images.cosign_v3_bundle_and_legacy));
}

#[test]
fn trust_files_follow_their_schemas() {
    let fx = fixtures();
    let config: Value = serde_json::from_slice(&std::fs::read(&fx.trust_config).unwrap()).unwrap();
    assert_eq!(
        config["mediaType"],
        "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
    );
    let root = &config["trustedRoot"];
    assert_eq!(root["certificateAuthorities"].as_array().unwrap().len(), 1);
    let chain = &root["certificateAuthorities"][0]["certChain"]["certificates"];
    assert_eq!(chain.as_array().unwrap().len(), 2, "intermediate and root");
    let b64 = base64::engine::general_purpose::STANDARD;
    let tlog = &root["tlogs"][0];
    let key = b64
        .decode(tlog["publicKey"]["rawBytes"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        b64.decode(tlog["logId"]["keyId"].as_str().unwrap())
            .unwrap(),
        Sha256::digest(&key).to_vec(),
        "logId.keyId is the SHA-256 of the DER key"
    );
    assert!(fx.rekor_public_key.contains(&b64.encode(&key)[..40]));

    let sources = std::fs::read_to_string(&fx.sources).unwrap();
    let sources: serde_yaml::Value = serde_yaml::from_str(&sources).unwrap();
    assert_eq!(
        sources["insecure_sources"][0].as_str(),
        Some(fx.registry.as_str())
    );
}

/// True when something accepts connections on `host`.
fn listening(host: &str) -> bool {
    TcpStream::connect(host).is_ok()
}

#[test]
fn dropping_the_registry_stops_it() {
    let registry = Registry::start().unwrap();
    let host = registry.host().to_string();
    let dir = registry.dir().to_path_buf();
    let mut stream = TcpStream::connect(&host).unwrap();
    write!(stream, "GET /v2/ HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200") || response.starts_with("HTTP/1.0 200"));
    drop(registry);
    assert!(!listening(&host));
    assert!(!dir.exists());
}

const HOLDER_ENV: &str = "FIXTURES_REGISTRY_HOLDER";

/// Run by `registry_dies_with_the_test_process` in a child process: starts a registry from a
/// thread that ends at once, leaks it, and panics. Only `PR_SET_PDEATHSIG` can stop it then.
#[test]
#[ignore = "helper process of registry_dies_with_the_test_process"]
fn registry_holder() {
    if std::env::var_os(HOLDER_ENV).is_none() {
        return;
    }
    let registry = std::thread::spawn(|| Registry::start().unwrap())
        .join()
        .unwrap();
    assert!(
        listening(registry.host()),
        "outlived the thread that started it"
    );
    println!("REGISTRY {} {}", registry.host(), registry.dir().display());
    std::mem::forget(registry);
    panic!("the holder process ends here, leaking its registry");
}

#[test]
fn registry_dies_with_the_test_process() {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "registry_holder", "--nocapture"])
        .env(HOLDER_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("REGISTRY "))
        .unwrap_or_else(|| panic!("holder printed no registry: {stdout}"));
    let (host, dir) = line.split_once(' ').unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while listening(host) {
        assert!(
            Instant::now() < deadline,
            "the registry on {host} outlived its process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::remove_dir_all(dir).unwrap();
}
