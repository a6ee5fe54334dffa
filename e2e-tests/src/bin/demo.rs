//! `make demo`: the policy's main job, end to end, on a fresh machine.
//!
//! Starts a local registry, pushes and signs images for real, loads `policy.wasm` in the
//! project's Kubewarden host, and shows the verdict and JSON patch for a signed, an
//! unsigned and a wrongly signed Deployment.

use std::process::ExitCode;

use anyhow::{Context, Result};
use e2e_tests::fixtures::{Fixtures, Registry};
use e2e_tests::host::{AdmissionResponse, Host, Sources, TrustRoot};
use serde_json::{json, Value};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let policy = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "policy.wasm".to_owned());
    let wasm = std::fs::read(&policy).with_context(|| format!("cannot read {policy}"))?;

    println!("Starting a registry on 127.0.0.1 and signing images for real...");
    let registry = Registry::start()?;
    let fixtures = Fixtures::create(&registry)?;
    println!("  registry: {}", fixtures.registry);

    let settings = json!({
        "signatures": [{
            "image": format!("{}/*", fixtures.registry),
            "pubKeys": [fixtures.keys.a],
        }],
        "modifyImagesWithDigest": true,
    });
    let host = Host::builder()
        .wasm_bytes(wasm)
        .settings(settings)
        .trust_root(TrustRoot::from_file(&fixtures.trust_config)?)
        .sources(Sources::insecure([fixtures.registry.clone()]))
        .build()?;
    let verdict = host.validate_settings();
    anyhow::ensure!(verdict.valid, "settings refused: {:?}", verdict.message);
    println!(
        "\nPolicy {policy} loaded; settings: every image of {}/* must be signed by key A.\n",
        fixtures.registry
    );

    let images = &fixtures.images;
    let cases = [
        ("signed by key A", &images.key_a.reference),
        ("unsigned", &images.unsigned.reference),
        ("signed by other keys", &images.two_of_three.reference),
    ];
    for (what, image) in cases {
        println!("Deployment with an image {what}: {image}");
        let response = host.validate(&request(image))?;
        show(&response);
        println!();
    }
    println!(
        "Host calls served: {} (oci/v2/verify: {})",
        host.stats().total,
        host.stats().calls("oci/v2/verify")
    );
    Ok(())
}

fn show(response: &AdmissionResponse) {
    if response.allowed {
        println!("  allowed");
    } else {
        let message = response.status.as_ref().and_then(|s| s.message.as_deref());
        println!("  REJECTED: {}", message.unwrap_or("(no message)"));
    }
    if let Some(patch) = response.decoded_patch() {
        println!("  patch: {patch}");
    }
}

fn request(image: &str) -> Value {
    json!({
        "uid": "demo",
        "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "operation": "CREATE",
        "userInfo": {"username": "demo"},
        "namespace": "default",
        "object": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 8080}]}]},
                },
            },
        },
    })
}
