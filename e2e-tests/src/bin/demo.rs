//! `make demo`: the policy's main job, end to end, on a fresh machine.
//!
//! Starts a local registry, pushes and signs images for real, runs the annotated policy in the
//! real `kwctl run`, and shows the verdict, JSON patch, warnings and audit annotations for a
//! signed, an unsigned and a wrongly signed Deployment, and for one that only a warn-only
//! entry covers.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use e2e_tests::backend::{BackendConfig, Grant, Kwctl};
use e2e_tests::fixtures::{Fixtures, Registry};
use host_driver::{AdmissionResponse, Kubewarden};
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
    let policy = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "annotated-policy.wasm".to_owned()),
    );
    println!("Starting a registry on 127.0.0.1 and signing images for real...");
    let registry = Registry::start()?;
    let fixtures = Fixtures::create(&registry)?;
    let host = &fixtures.registry;
    let settings = json!({
        "signatures": [
            {"image": format!("{host}/signed/*"), "pubKeys": [fixtures.keys.a]},
            {"image": format!("{host}/unsigned/*"), "pubKeys": [fixtures.keys.a]},
            {"image": format!("{host}/acme/*"), "pubKeys": [fixtures.keys.w], "onFailure": "warn"},
        ],
        "modifyImagesWithDigest": true,
    });
    let kwctl = Kwctl::new(&BackendConfig {
        wasm: &policy,
        fixtures: &fixtures,
        grant: Grant::declared()?,
    })?;
    let verdict = kwctl.validate_settings(&settings);
    anyhow::ensure!(verdict.valid, "settings refused: {:?}", verdict.message);
    println!(
        "\nkwctl {} runs {}. Settings:\n  {host}/signed/* and {host}/unsigned/*: signed by key A (enforced)\n  {host}/acme/*: signed by key W (onFailure: warn, being rolled out)\n",
        Kubewarden::from_env()?.version,
        policy.display(),
    );
    let images = &fixtures.images;
    let cases = [
        ("signed by key A", &images.key_a.reference),
        ("unsigned", &images.unsigned.reference),
        ("signed by other keys", &images.two_of_three.reference),
        (
            "only a warn-only entry covers, signed by key A not W",
            &images.nested.reference,
        ),
    ];
    for (what, image) in cases {
        println!("Deployment with an image {what}: {image}");
        let (response, calls) = kwctl.validate(&settings, &request(image))?;
        show(&response);
        println!("  host calls: {}\n", calls.total());
    }
    Ok(())
}

fn show(response: &AdmissionResponse) {
    if response.allowed {
        println!("  allowed");
    } else {
        println!("  REJECTED: {}", response.message());
    }
    if let Some(patch) = response.decoded_patch() {
        println!("  patch: {patch}");
    }
    for warning in response.warnings.iter().flatten() {
        println!("  warning: {warning}");
    }
    for (key, value) in response.audit_annotations.iter().flatten() {
        println!("  audit annotation {key}: {value}");
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
