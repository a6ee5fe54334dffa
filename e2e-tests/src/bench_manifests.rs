//! `make bench-manifests`: `check-manifests` on a realistic chart mix (per chart: 8
//! Deployments, 2 CronJobs, 6 Services, 4 ConfigMaps; 40 distinct images, really signed in a
//! local registry), end to end, against the loop a script would otherwise run: one `kwctl
//! run` per object, one after the other (`check-manifests --host kwctl --clients 1`). Only
//! the objects the policy's rules route are evaluated in either run.
//!
//! Figures are printed side by side, never asserted: they depend on the machine. The run
//! fails when a run does not come to exit code 0, or when the two hosts disagree on any
//! verdict or pinned image.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use host_driver::VERSION_VAR;
use serde_json::{json, Value};

use crate::bench::machine;
use crate::charts::{config_map, cronjob, deployment, service, Chart};
use crate::fixtures::{push_signed_images, write_sources, Registry};

/// Distinct images across the charts.
const IMAGES: usize = 40;
const REPOSITORY_PREFIX: &str = "charts/image";

/// What `make bench-manifests` runs.
pub struct Options {
    /// The annotated policy.
    pub policy: PathBuf,
    /// The `check-manifests` binary.
    pub check_manifests: PathBuf,
    /// Charts of 20 objects each.
    pub charts: usize,
    /// `--clients` of the policy-server run.
    pub clients: usize,
}

/// One timed run of check-manifests.
struct Measured {
    elapsed: Duration,
    report: Value,
    /// The machine's load when it started.
    machine: String,
}

pub fn run(options: &Options) -> Result<()> {
    eprintln!("Starting a local registry and signing {IMAGES} images...");
    let registry = Registry::start()?;
    let signed = push_signed_images(&registry, REPOSITORY_PREFIX, IMAGES, 1)?;
    let images: Vec<&str> = signed.images.iter().map(|i| i.reference.as_str()).collect();
    let dir = tempfile::Builder::new()
        .prefix("kw-bench-manifests-")
        .tempdir()?;
    let host = registry.host();
    write_sources(&dir.path().join("sources.yml"), &[host])?;
    let settings = json!({"signatures": [{"image": format!("{host}/{REPOSITORY_PREFIX}-*"), "pubKeys": signed.keys}]});
    std::fs::write(dir.path().join("settings.yml"), settings.to_string())?;
    let charts = dir.path().join("charts");
    std::fs::create_dir(&charts)?;
    let mut objects = 0;
    for n in 0..options.charts {
        let chart = chart(n, &images);
        objects += chart.objects();
        std::fs::write(charts.join(format!("{}.yaml", chart.name)), chart.render())?;
    }

    eprintln!("check-manifests on policy-server...");
    let clients = options.clients.to_string();
    let server = measure(options, dir.path(), &["--clients", &clients])?;
    eprintln!(
        "check-manifests with one `kwctl run` per object, one at a time (about a second each)..."
    );
    let kwctl = measure(options, dir.path(), &["--host", "kwctl", "--clients", "1"])?;
    let agreed = compare(&server.report, &kwctl.report)?;

    let summary = &server.report["summary"];
    let sent =
        summary["admitted"].as_u64().unwrap_or(0) + summary["rejected"].as_u64().unwrap_or(0);
    println!(
        "check-manifests on {objects} objects of {} charts ({} Deployments, {} CronJobs, {} Services, {} ConfigMaps; {IMAGES} distinct signed images), {sent} of them sent to the policy\n",
        options.charts,
        options.charts * 8,
        options.charts * 2,
        options.charts * 6,
        options.charts * 4,
    );
    println!("| host | how | end to end | per object sent | machine at the start |");
    println!("|---|---|---|---|---|");
    for (measured, how) in [
        (&server, format!("started once, {clients} clients")),
        (
            &kwctl,
            "one `kwctl run` per object, one at a time".to_owned(),
        ),
    ] {
        let host = &measured.report["host"];
        println!(
            "| {} {} | {how} | {:.1} s | {:.0} ms | {} |",
            host["name"].as_str().unwrap_or_default(),
            host["version"].as_str().unwrap_or_default(),
            measured.elapsed.as_secs_f64(),
            measured.elapsed.as_secs_f64() * 1000.0 / sent.max(1) as f64,
            measured.machine
        );
    }
    let speedup = kwctl.elapsed.as_secs_f64() / server.elapsed.as_secs_f64();
    println!(
        "\npolicy-server is {speedup:.1} times faster than the kwctl loop (target: at least 10), and took {:.1} s end to end (target: under 30 s).\nBoth hosts gave the same verdicts: {agreed}.",
        server.elapsed.as_secs_f64()
    );
    Ok(())
}

/// Chart `n`: 8 Deployments (running one or two of the images), 6 Services, 2 CronJobs
/// (one image each) and 4 ConfigMaps.
fn chart(n: usize, images: &[&str]) -> Chart {
    let image = |k: usize| images[k % images.len()];
    let mut chart = Chart::new(&format!("app-{n:02}"));
    for d in 0..8 {
        let k = n * 8 + d;
        let name = format!("app-{n:02}-web-{d}");
        let containers = if d % 2 == 0 {
            vec![image(k)]
        } else {
            vec![image(k), image(k * 7 + 3)]
        };
        chart = chart.with(
            &format!("deployment-{d}.yaml"),
            deployment(&name, &containers),
        );
        if d < 6 {
            chart = chart.with(&format!("service-{d}.yaml"), service(&name));
        }
    }
    for c in 0..2 {
        let name = format!("app-{n:02}-job-{c}");
        chart = chart.with(
            &format!("cronjob-{c}.yaml"),
            cronjob(&name, image(n * 2 + c + 11)),
        );
    }
    for m in 0..4 {
        chart = chart.with(
            &format!("configmap-{m}.yaml"),
            config_map(&format!("app-{n:02}-config-{m}")),
        );
    }
    chart
}

fn measure(options: &Options, dir: &Path, extra: &[&str]) -> Result<Measured> {
    let mut command = Command::new(&options.check_manifests);
    command
        .current_dir(dir)
        .args([
            "--settings",
            "settings.yml",
            "--sources-path",
            "sources.yml",
            "--output",
            "json",
        ])
        .arg("--policy")
        .arg(&options.policy)
        .arg("--metadata")
        .arg(crate::repo_file("metadata.yml"))
        .args(extra)
        .arg("charts");
    if let Some(version) = std::env::var_os(VERSION_VAR).filter(|v| !v.is_empty()) {
        command.arg("--kubewarden-version").arg(version);
    }
    let machine = machine();
    let started = Instant::now();
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", options.check_manifests.display()))?;
    let elapsed = started.elapsed();
    ensure!(
        output.status.code() == Some(0),
        "check-manifests {}: {}\n{}",
        extra.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report =
        serde_json::from_slice(&output.stdout).context("check-manifests printed no JSON report")?;
    Ok(Measured {
        elapsed,
        report,
        machine,
    })
}

/// Checks that both reports give every object the same verdict and pinned images; what
/// they agree on, counted.
fn compare(a: &Value, b: &Value) -> Result<String> {
    let outcomes = |report: &Value| -> Vec<(Value, Value, Vec<Value>)> {
        report["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let pinned = r["images"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| i["pinned"].clone())
                    .collect();
                (r["source"].clone(), r["verdict"].clone(), pinned)
            })
            .collect()
    };
    let (a, b) = (outcomes(a), outcomes(b));
    ensure!(a == b, "the two hosts disagree");
    let count = |verdict: &str| a.iter().filter(|(_, v, _)| v == verdict).count();
    let pinned = a
        .iter()
        .flat_map(|(_, _, p)| p)
        .filter(|p| p.is_string())
        .count();
    Ok(format!(
        "{} admitted, {} rejected, {} not checked, {pinned} images pinned",
        count("admitted"),
        count("rejected"),
        count("not-checked")
    ))
}
