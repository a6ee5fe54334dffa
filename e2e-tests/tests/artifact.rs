//! The policy shipped the way Kubewarden ships policies: `policy.wasm` annotated with
//! `metadata.yml` and the README, pushed to a real registry as a Kubewarden OCI artifact,
//! then pulled from `registry://` by the host, as policy-server loads it, and run on
//! signed and unsigned images.
//!
//! `make e2e-tests` builds `policy.wasm` (the module as the compiler leaves it) first.

use std::path::PathBuf;

use e2e_tests::fixtures::{Fixtures, Registry};
use e2e_tests::host::{Host, Sources, TrustRoot};
use e2e_tests::policy_artifact::{self, PolicyMetadata, PROTOCOL_V1, USAGE_ANNOTATION};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciManifest, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use serde_json::{json, Value};

fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(name)
}

fn read_text(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pod(image: &str) -> Value {
    json!({
        "uid": "artifact",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "name": "app",
        "namespace": "default",
        "userInfo": {"username": "e2e"},
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    })
}

/// The config and layer media types of the pushed manifest, and its digest.
fn pushed_manifest(reference: &str, sources: &Sources) -> (String, Vec<String>, String) {
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(sources.insecure_sources.iter().cloned().collect()),
        ..ClientConfig::default()
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (manifest, digest) = runtime
        .block_on(client.pull_manifest(&reference.parse().unwrap(), &RegistryAuth::Anonymous))
        .unwrap();
    let OciManifest::Image(manifest) = manifest else {
        panic!("{reference} is an image index, not a policy artifact");
    };
    let layers = manifest
        .layers
        .iter()
        .map(|l| l.media_type.clone())
        .collect();
    (manifest.config.media_type, layers, digest)
}

#[test]
fn the_published_policy_loads_from_the_registry_and_verifies() {
    let wasm = std::fs::read(repo_file("policy.wasm"))
        .unwrap_or_else(|e| panic!("policy.wasm ({e}): run `make e2e-tests`"));
    let metadata_yml = read_text("metadata.yml");
    let readme = read_text("README.md");

    // policy-server refuses a module without metadata, and so do the host and push.
    let err = Host::builder()
        .wasm_bytes(wasm.clone())
        .build()
        .err()
        .expect("an unannotated module must not load");
    assert!(err.to_string().contains("not annotated"), "{err}");
    assert!(err.to_string().contains("kwctl annotate"), "{err}");

    let annotated = policy_artifact::annotate(&wasm, &metadata_yml, Some(&readme)).unwrap();
    let mut expected = PolicyMetadata::from_yaml(&metadata_yml).unwrap();
    expected.protocol_version = Some(PROTOCOL_V1.to_owned());
    expected
        .annotations
        .get_or_insert_with(Default::default)
        .insert(USAGE_ANNOTATION.to_owned(), readme.clone());
    assert_eq!(
        PolicyMetadata::from_wasm(&annotated).unwrap().as_ref(),
        Some(&expected)
    );

    let registry = Registry::start().expect("start the local registry");
    let fixtures = Fixtures::create(&registry).expect("create the signed images");
    let sources = Sources::insecure([registry.host()]);
    let reference = format!(
        "{}/policies/verify-image-signatures:v{}",
        registry.host(),
        env!("CARGO_PKG_VERSION")
    );
    let uri = format!("registry://{reference}");
    let err = policy_artifact::push(&wasm, &uri, &sources, None).unwrap_err();
    assert!(err.to_string().contains("not annotated"), "{err}");
    let digest = policy_artifact::push(&annotated, &uri, &sources, None).unwrap();

    let (config, layers, pulled_digest) = pushed_manifest(&reference, &sources);
    assert_eq!(config, WASM_CONFIG_MEDIA_TYPE);
    assert_eq!(layers, vec![WASM_LAYER_MEDIA_TYPE.to_owned()]);
    assert_eq!(pulled_digest, digest);

    // Loaded by digest, as a pinned ClusterAdmissionPolicy `module` would name it.
    let host = Host::builder()
        .policy_location(format!("registry://{}@{digest}", reference.rsplit_once(':').unwrap().0))
        .sources(sources)
        .trust_root(TrustRoot::from_file(&fixtures.trust_config).unwrap())
        .settings(json!({
            "signatures": [{"image": format!("{}/*", registry.host()), "pubKeys": [fixtures.keys.a]}],
        }))
        .build()
        .unwrap();
    let metadata = host
        .metadata()
        .expect("the pulled policy carries its metadata");
    assert_eq!(metadata, &expected);
    let verdict = host.validate_settings();
    assert!(verdict.valid, "{:?}", verdict.message);

    let signed = &fixtures.images.key_a;
    let accepted = host.validate(&pod(&signed.reference)).unwrap();
    assert!(accepted.allowed, "{accepted:?}");
    assert_eq!(
        accepted.decoded_patch(),
        Some(json!([{
            "op": "replace",
            "path": "/spec/containers/0/image",
            "value": format!("{}@{}", signed.reference, signed.digest),
        }]))
    );

    let unsigned = &fixtures.images.unsigned.reference;
    let rejected = host.validate(&pod(unsigned)).unwrap();
    assert!(!rejected.allowed, "{rejected:?}");
    let message = rejected.status.and_then(|s| s.message).unwrap_or_default();
    assert!(
        message.contains(unsigned) && message.contains("no signatures"),
        "{message}"
    );

    // metadata.yml's hostCapabilities are exactly the calls the policy made.
    let made: Vec<String> = host.stats().per_operation.into_keys().collect();
    assert_eq!(Some(made), metadata.host_capabilities);
}
