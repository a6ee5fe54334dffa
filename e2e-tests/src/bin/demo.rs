//! `make demo`: the policy's main job, end to end, on a fresh machine.
//!
//! Starts a local registry, pushes and signs images for real, runs the annotated policy in the
//! real `kwctl run`, and shows the verdict, JSON patch, warnings and audit annotations for a
//! signed, an unsigned and a wrongly signed Deployment, and for one that only a warn-only
//! entry covers. Then `check-manifests` checks two rendered charts with the same settings:
//! one of signed images passes, one with an unsigned CronJob fails, naming it and its image.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{ensure, Context, Result};
use e2e_tests::backend::{BackendConfig, Grant, Kwctl};
use e2e_tests::charts::{config_map, cronjob, deployment, service, Chart};
use e2e_tests::fixtures::{Fixtures, Registry};
use e2e_tests::repo_file;
use host_driver::{AdmissionResponse, Kubewarden, VERSION_VAR};
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
    let check_manifests = PathBuf::from(
        std::env::args()
            .nth(2)
            .unwrap_or_else(|| "target/debug/check-manifests".to_owned()),
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
    charts(&fixtures, &settings, &policy, &check_manifests)
}

/// `check-manifests` on two rendered charts, with the same settings: a chart of signed
/// images passes (exit 0), one with an unsigned CronJob fails (exit 1) naming both.
fn charts(
    fixtures: &Fixtures,
    settings: &Value,
    policy: &Path,
    check_manifests: &Path,
) -> Result<()> {
    let dir = tempfile::Builder::new().prefix("demo-charts-").tempdir()?;
    std::fs::write(
        dir.path().join("settings.yml"),
        serde_json::to_string_pretty(settings)?,
    )?;
    let images = &fixtures.images;
    let signed = images.key_a.reference.as_str();
    let shop = Chart::new("shop")
        .with("deployment.yaml", deployment("shop", &[signed]))
        .with("service.yaml", service("shop"))
        .with("configmap.yaml", config_map("shop"))
        .with("cronjob.yaml", cronjob("shop-cleanup", signed));
    let reports = Chart::new("reports")
        .with("deployment.yaml", deployment("reports", &[signed]))
        .with(
            "cronjob.yaml",
            cronjob("reports-nightly", &images.unsigned.reference),
        );
    for (chart, expected) in [(&shop, 0), (&reports, 1)] {
        let file = format!("{}.yaml", chart.name);
        std::fs::write(dir.path().join(&file), chart.render())?;
        let kinds: Vec<&str> = chart
            .templates
            .iter()
            .filter_map(|(_, document)| document.lines().nth(1)?.strip_prefix("kind: "))
            .collect();
        println!(
            "{file}: the chart {} as `helm template` renders it ({})\n$ make check-manifests SETTINGS=settings.yml MANIFESTS={file} ARGS=\"--sources-path sources.yml\"",
            chart.name,
            kinds.join(", ")
        );
        let mut command = Command::new(check_manifests);
        command
            .current_dir(dir.path())
            .args(["--settings", "settings.yml", "--sources-path"])
            .arg(&fixtures.sources)
            .arg("--policy")
            .arg(policy)
            .arg("--metadata")
            .arg(repo_file("metadata.yml"))
            .arg(&file);
        if let Some(version) = std::env::var_os(VERSION_VAR).filter(|v| !v.is_empty()) {
            command.arg("--kubewarden-version").arg(version);
        }
        let output = command
            .output()
            .with_context(|| format!("cannot run {}", check_manifests.display()))?;
        let table = String::from_utf8_lossy(&output.stdout);
        println!("{table}{}", String::from_utf8_lossy(&output.stderr));
        ensure!(
            output.status.code() == Some(expected),
            "check-manifests exited {}, not {expected}",
            output.status
        );
        if expected == 1 {
            let row = table
                .lines()
                .find(|l| l.contains("rejected"))
                .unwrap_or_default();
            ensure!(
                row.contains("CronJob default/reports-nightly")
                    && row.contains(images.unsigned.reference.as_str()),
                "the rejection names neither the CronJob nor its image:\n{table}"
            );
        }
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
