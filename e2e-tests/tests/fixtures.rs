//! Proof that the fixtures are real Sigstore signatures: each one is checked with the
//! `sigstore` crate (the library Kubewarden's host verifies with) against the written trust
//! config, through the local registry.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use e2e_tests::fixtures::{Fixtures, Registry};
use sha2::{Digest, Sha256};
use sigstore::cosign::verification_constraint::cert_subject_email_verifier::StringVerifier;
use sigstore::cosign::verification_constraint::{
    AnnotationVerifier, CertSubjectEmailVerifier, CertSubjectUrlVerifier, CertificateVerifier,
    PublicKeyVerifier, VerificationConstraintVec,
};
use sigstore::cosign::{verify_constraints, ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::registry::{Auth, Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use sigstore::trust::ManualTrustRoot;
use sigstore_protobuf_specs::dev::sigstore::trustroot::v1::ClientTrustConfig;

/// One registry and fixture set for the whole test binary.
fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<(Registry, Fixtures)> = OnceLock::new();
    &FIXTURES
        .get_or_init(|| {
            let registry = Registry::start().expect("start the local registry");
            let fixtures = Fixtures::create(&registry).expect("create the fixtures");
            (registry, fixtures)
        })
        .1
}

/// Reads the written trust config the way `sigstore`'s `SigstoreTrustRoot` does: every
/// certificate of every CA becomes an anchor, Rekor keys are keyed by hex(logId.keyId).
fn trust_root(fixtures: &Fixtures) -> ManualTrustRoot<'static> {
    let config: ClientTrustConfig =
        serde_json::from_slice(&std::fs::read(&fixtures.trust_config).unwrap()).unwrap();
    let root = config.trusted_root.expect("trustedRoot");
    ManualTrustRoot {
        fulcio_certs: root
            .certificate_authorities
            .iter()
            .flat_map(|ca| ca.cert_chain.as_ref().unwrap().certificates.clone())
            .map(|cert| cert.raw_bytes.into())
            .collect(),
        rekor_keys: root
            .tlogs
            .iter()
            .map(|tlog| {
                (
                    hex::encode(&tlog.log_id.as_ref().unwrap().key_id),
                    tlog.public_key.as_ref().unwrap().raw_bytes.clone().unwrap(),
                )
            })
            .collect(),
        ctfe_keys: BTreeMap::new(),
    }
}

/// The signature layers of `image` that the `sigstore` crate trusts, with or without the
/// fixtures' trust root (without it, bundles and certificates are ignored).
async fn fetch_layers(image: &str, trusted: bool) -> Vec<SignatureLayer> {
    let fixtures = fixtures();
    let root = trust_root(fixtures);
    let mut builder = ClientBuilder::default().with_oci_client_config(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(vec![fixtures.registry.clone()]),
        ..Default::default()
    });
    if trusted {
        builder = builder.with_trust_repository(&root).unwrap();
    }
    let mut client = builder.build().unwrap();
    client
        .trusted_signature_layers(&Auth::Anonymous, &image.parse().unwrap())
        .await
        .unwrap()
}

fn key(pem: &str) -> Box<PublicKeyVerifier> {
    Box::new(PublicKeyVerifier::try_from(pem.as_bytes()).unwrap())
}

/// All constraints hold, each on some layer; like the host, no layer at all is a failure.
fn verifies(layers: &[SignatureLayer], constraints: VerificationConstraintVec) -> bool {
    !layers.is_empty() && verify_constraints(layers, constraints.iter()).is_ok()
}

#[tokio::test]
async fn key_a_verifies_its_images_and_not_the_unsigned_one() {
    let fx = fixtures();
    for image in [&fx.images.key_a, &fx.images.nested] {
        let layers = fetch_layers(&image.reference, true).await;
        assert_eq!(layers.len(), 1, "{}", image.reference);
        assert!(verifies(&layers, vec![key(&fx.keys.a)]));
        assert!(!verifies(&layers, vec![key(&fx.keys.w)]));
        assert_eq!(
            layers[0]
                .simple_signing
                .critical
                .image
                .docker_manifest_digest,
            image.digest
        );
        // The pinned spelling resolves to the same signature.
        assert_eq!(fetch_layers(&image.pinned(), true).await.len(), 1);
    }
    assert!(fx.images.nested.reference.contains("/acme/team/app:v1"));
    assert!(fetch_layers(&fx.images.unsigned.reference, true)
        .await
        .is_empty());
}

#[tokio::test]
async fn annotations_are_in_the_signed_payload() {
    let fx = fixtures();
    let annotations = || {
        Box::new(AnnotationVerifier {
            annotations: fx.annotations.clone(),
        })
    };
    let annotated = fetch_layers(&fx.images.key_a_annotated.reference, true).await;
    assert!(verifies(&annotated, vec![key(&fx.keys.a), annotations()]));
    let plain = fetch_layers(&fx.images.key_a.reference, true).await;
    assert!(!verifies(&plain, vec![key(&fx.keys.a), annotations()]));
}

#[tokio::test]
async fn two_of_three_keys_signed() {
    let fx = fixtures();
    let layers = fetch_layers(&fx.images.two_of_three.reference, true).await;
    assert_eq!(layers.len(), 2);
    assert!(verifies(&layers, vec![key(&fx.keys.k1), key(&fx.keys.k2)]));
    assert!(!verifies(&layers, vec![key(&fx.keys.k3)]));
}

#[tokio::test]
async fn multi_arch_signature_covers_the_index() {
    let fx = fixtures();
    let multi = &fx.images.multi_arch;
    assert_eq!(multi.platforms.len(), 2);

    let root = trust_root(fx);
    let mut client = ClientBuilder::default()
        .with_oci_client_config(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![fx.registry.clone()]),
            ..Default::default()
        })
        .with_trust_repository(&root)
        .unwrap()
        .build()
        .unwrap();
    let (_, resolved) = client
        .triangulate(&multi.index.reference.parse().unwrap(), &Auth::Anonymous)
        .await
        .unwrap();
    assert_eq!(resolved, multi.index.digest);

    let layers = fetch_layers(&multi.index.reference, true).await;
    assert!(verifies(&layers, vec![key(&fx.keys.a)]));
    assert_eq!(
        layers[0]
            .simple_signing
            .critical
            .image
            .docker_manifest_digest,
        multi.index.digest
    );

    let repository = multi.index.reference.rsplit_once(':').unwrap().0;
    for (_, digest) in &multi.platforms {
        let platform = format!("{repository}@{digest}");
        assert!(
            fetch_layers(&platform, true).await.is_empty(),
            "{platform} is signed"
        );
    }
}

#[tokio::test]
async fn per_platform_signatures_cover_the_platform_manifests_and_not_the_index() {
    let fx = fixtures();
    for (multi, signed) in [
        (
            &fx.images.per_platform,
            ["linux/amd64", "linux/arm64"].as_slice(),
        ),
        (&fx.images.one_platform_unsigned, ["linux/amd64"].as_slice()),
    ] {
        assert!(
            fetch_layers(&multi.index.reference, true).await.is_empty(),
            "{} is signed on its index",
            multi.index.reference
        );
        let repository = multi.index.reference.rsplit_once(':').unwrap().0;
        let mut platforms = Vec::new();
        for (platform, digest) in &multi.platforms {
            platforms.push(platform.as_str());
            let layers = fetch_layers(&format!("{repository}@{digest}"), true).await;
            if !signed.contains(&platform.as_str()) {
                assert!(layers.is_empty(), "{repository} {platform} is signed");
                continue;
            }
            assert!(verifies(&layers, vec![key(&fx.keys.a)]), "{platform}");
            assert!(!verifies(&layers, vec![key(&fx.keys.w)]));
            assert_eq!(
                &layers[0]
                    .simple_signing
                    .critical
                    .image
                    .docker_manifest_digest,
                digest
            );
        }
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    }
}

#[tokio::test]
async fn keyless_email_certificate_chains_to_the_private_fulcio() {
    let fx = fixtures();
    let identity = &fx.email_identity;
    let email = |subject: &str| {
        Box::new(CertSubjectEmailVerifier {
            email: StringVerifier::ExactMatch(subject.into()),
            issuer: Some(StringVerifier::ExactMatch(identity.issuer.clone())),
        })
    };
    let trusted = fetch_layers(&fx.images.keyless_email.reference, true).await;
    assert!(trusted[0].bundle.is_some());
    assert!(verifies(&trusted, vec![email(&identity.subject)]));
    assert!(!verifies(&trusted, vec![email("mallory@example.com")]));
    // Without the private Fulcio and Rekor in the trust root the certificate means nothing.
    let untrusted = fetch_layers(&fx.images.keyless_email.reference, false).await;
    assert!(!verifies(&untrusted, vec![email(&identity.subject)]));
}

#[tokio::test]
async fn keyless_github_certificate_carries_the_workflow() {
    let fx = fixtures();
    let identity = &fx.github_identity;
    let layers = fetch_layers(&fx.images.keyless_github.reference, true).await;
    let url = |issuer: &str| {
        Box::new(CertSubjectUrlVerifier {
            url: identity.subject.clone(),
            issuer: issuer.into(),
        })
    };
    assert!(verifies(&layers, vec![url(&identity.issuer)]));
    assert!(!verifies(
        &layers,
        vec![url("https://accounts.example.com")]
    ));
    let certificate = layers[0].certificate_signature.as_ref().unwrap();
    assert_eq!(
        certificate.github_workflow_repository,
        identity.github_repository
    );
    assert_eq!(
        certificate.github_workflow_repository.as_deref(),
        Some("acme/app")
    );
    assert_eq!(
        certificate.github_workflow_ref.as_deref(),
        Some("refs/tags/v1")
    );
    assert_eq!(certificate.github_workflow_trigger.as_deref(), Some("push"));
    assert_eq!(certificate.github_workflow_name.as_deref(), Some("release"));
    assert!(certificate.github_workflow_sha.is_some());
}

#[tokio::test]
async fn certificate_signatures_honour_require_rekor_bundle() {
    let fx = fixtures();
    let signer = &fx.signing_certificate;
    let chain: Vec<Certificate> = signer
        .chain
        .iter()
        .map(|pem| Certificate {
            encoding: CertificateEncoding::Pem,
            data: pem.as_bytes().to_vec(),
        })
        .collect();
    let verifier = |require_rekor_bundle| {
        Box::new(
            CertificateVerifier::from_pem(
                signer.certificate.as_bytes(),
                require_rekor_bundle,
                Some(&chain),
            )
            .unwrap(),
        )
    };
    let bundled = fetch_layers(&fx.images.certificate_bundled.reference, true).await;
    let unbundled = fetch_layers(&fx.images.certificate_unbundled.reference, true).await;
    assert!(verifies(&bundled, vec![verifier(true)]));
    assert!(verifies(&bundled, vec![verifier(false)]));
    assert!(!verifies(&unbundled, vec![verifier(true)]));
    assert!(verifies(&unbundled, vec![verifier(false)]));
    // The certificate does not chain to another CA (here the Fulcio-like one).
    let fulcio: Vec<Certificate> = fx
        .fulcio_chain
        .iter()
        .map(|pem| Certificate {
            encoding: CertificateEncoding::Pem,
            data: pem.as_bytes().to_vec(),
        })
        .collect();
    assert!(
        CertificateVerifier::from_pem(signer.certificate.as_bytes(), false, Some(&fulcio)).is_err()
    );
}

#[test]
fn trust_files_follow_their_schemas() {
    let fx = fixtures();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fx.trust_config).unwrap()).unwrap();
    assert_eq!(
        json["mediaType"],
        "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json"
    );
    let config: ClientTrustConfig = serde_json::from_value(json).unwrap();
    let root = config.trusted_root.unwrap();
    assert_eq!(root.certificate_authorities.len(), 1);
    let chain = &root.certificate_authorities[0]
        .cert_chain
        .as_ref()
        .unwrap()
        .certificates;
    assert_eq!(chain.len(), 2, "intermediate and root");
    let tlog = &root.tlogs[0];
    let key = tlog
        .public_key
        .as_ref()
        .unwrap()
        .raw_bytes
        .as_ref()
        .unwrap();
    assert_eq!(
        tlog.log_id.as_ref().unwrap().key_id,
        Sha256::digest(key).to_vec(),
        "logId.keyId is the SHA-256 of the DER key"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    assert!(fx.rekor_public_key.contains(&b64[..40]));

    let sources = std::fs::read_to_string(&fx.sources).unwrap();
    let sources: serde_yaml::Value = serde_yaml::from_str(&sources).unwrap();
    assert_eq!(
        sources["insecure_sources"][0].as_str(),
        Some(fx.registry.as_str())
    );
}

#[test]
fn summary_lists_everything_with_its_own_copies() {
    let fx = fixtures();
    let dir = tempfile::tempdir().unwrap();
    let path = fx.write_summary(dir.path()).unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(summary["registry"], fx.registry.as_str());
    assert_eq!(
        summary["images"]["key_a"]["digest"],
        fx.images.key_a.digest.as_str()
    );
    for file in ["trust_config", "sources"] {
        let copy = summary[file].as_str().unwrap();
        assert!(copy.starts_with(dir.path().to_str().unwrap()));
        assert!(std::fs::metadata(copy).unwrap().len() > 0);
    }
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
