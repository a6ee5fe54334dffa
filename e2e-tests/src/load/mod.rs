//! `make load`: the real policy-server under load. A local registry with really signed images,
//! the annotated policy pushed with `kwctl push` and loaded by policy-server from `registry://`,
//! then concurrent clients POST AdmissionReviews as the API server does.
//!
//! Figures are printed, never asserted: they depend on the machine. The run fails only on a
//! transport error or a wrong verdict.

pub mod mix;
mod outage;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use host_driver::{AdmissionResponse, Kubewarden, Kwctl, Policy, PolicyServer, PolicyServerConfig};
use serde_json::json;

use crate::backend::Grant;
use crate::fault_proxy::FaultProxy;
use crate::fixtures::{push_signed_images, write_sources, Fixtures, Image, Registry};
use mix::{kind_of, Kind, MixImages, Request};
use outage::{Phase, PhaseReport, PhaseRequests};

/// The policy's id in policy-server's `policies.yml`.
const POLICY_ID: &str = "verify-image-signatures";
/// Where the 50 images of the large Deployment live, under the registry.
const MANY_PREFIX: &str = "load/image";
const MANY: usize = 50;
/// An image that no rule of the settings matches.
const UNMATCHED: &str = "docker.io/library/nginx:1.27";
/// Times the large Deployment is sent to the server with the probed deadline.
const DEADLINE_PROBES: usize = 3;
/// Requests of each kind, one at a time, after the cold one: the warm figure is their median.
const WARM_REPEATS: usize = 20;
/// Failures quoted when the run fails.
const QUOTED_FAILURES: usize = 5;

/// What `make load` runs.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The annotated policy module.
    pub policy: PathBuf,
    /// Requests under load, after the one-at-a-time cold and warm requests of each kind.
    pub requests: usize,
    /// Concurrent clients, each sending one request at a time.
    pub clients: usize,
    /// policy-server's `--workers`.
    pub workers: usize,
    /// policy-server's `--policy-timeout` under load, in seconds: long enough that no verdict
    /// depends on the machine's speed.
    pub policy_timeout: u64,
    /// `--policy-timeout` of the server that gets the cold large Deployment first, to see
    /// what a deadline does to it; policy-server's default (2 s) when `None`.
    pub probe_policy_timeout: Option<u64>,
    /// The policy's own `timeoutEvalSeconds` on that server (policy-server 1.35), which
    /// overrides `--policy-timeout` for it.
    pub probe_timeout_eval_seconds: Option<u64>,
    /// Requests in each phase of the registry outage.
    pub outage_requests: usize,
    /// How long the slow registry holds back each exchange.
    pub slow_delay: Duration,
}

/// One answered (or failed) request.
struct Sample {
    kind: Kind,
    /// When the request was sent.
    sent: Instant,
    latency: Duration,
    outcome: Outcome,
}

/// What a client got for one request.
struct Answer<'r> {
    request: &'r Request,
    sample: Sample,
    response: Result<AdmissionResponse>,
}

enum Outcome {
    Right,
    /// The verdict is not the request's one right verdict.
    Wrong(String),
    /// No AdmissionReview came back.
    Transport(String),
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Right => "right verdict".into(),
            Outcome::Wrong(why) => format!("WRONG verdict: {why}"),
            Outcome::Transport(why) => format!("TRANSPORT ERROR: {why}"),
        }
    }
}

/// Sets up the registry, images and policy, measures, prints the report, and fails if any
/// request got a transport error or a wrong verdict.
pub fn run(options: &LoadOptions) -> Result<()> {
    eprintln!("Starting a local registry, signing images, pushing the policy with kwctl push...");
    let registry = Registry::start()?;
    let fixtures = Fixtures::create(&registry)?;
    let many = push_signed_images(&registry, MANY_PREFIX, MANY, 1)?;
    let host = registry.host();
    let uri = format!("registry://{host}/policies/verify-image-signatures:load");
    let kubewarden = Kubewarden::from_env()?;
    Kwctl::new(kubewarden)?.push(&options.policy, &uri, Some(&fixtures.sources))?;
    let capabilities = Grant::declared()?.0;

    let requests = Request::all(&MixImages {
        signed: &fixtures.images.key_a,
        unsigned: &fixtures.images.unsigned,
        many: &many.images,
        unmatched: UNMATCHED,
    });
    let settings = json!({"signatures": [
        {"image": format!("{host}/signed/*"), "pubKeys": [fixtures.keys.a]},
        {"image": format!("{host}/unsigned/*"), "pubKeys": [fixtures.keys.a]},
        {"image": format!("{host}/{MANY_PREFIX}-*"), "pubKeys": [many.keys[0]]},
    ]});
    let config = |policy_timeout, timeout_eval_seconds: Option<u64>| {
        let policy = Policy {
            capabilities: Some(capabilities.clone()),
            timeout_eval_seconds,
            ..Policy::new(uri.clone(), settings.clone())
        };
        PolicyServerConfig {
            sources_path: Some(fixtures.sources.clone()),
            workers: options.workers,
            policy_timeout,
            ..PolicyServerConfig::new([(POLICY_ID, policy)])
        }
    };
    let large = requests
        .iter()
        .find(|r| r.kind == Kind::Deployment50)
        .expect("the mix has a large Deployment");

    eprintln!(
        "The large Deployment, {DEADLINE_PROBES} times, on a fresh policy-server with {}...",
        timeout_flag(options)
    );
    let deadline_probe = {
        let server = PolicyServer::start(
            kubewarden,
            &config(
                options.probe_policy_timeout,
                options.probe_timeout_eval_seconds,
            ),
        )?;
        (0..DEADLINE_PROBES)
            .map(|_| send(&server, large).sample)
            .collect::<Vec<_>>()
    };

    eprintln!(
        "A fresh policy-server (--policy-timeout {}): one cold request of each kind, then {} requests from {} clients...",
        options.policy_timeout, options.requests, options.clients
    );
    let server = PolicyServer::start(kubewarden, &config(Some(options.policy_timeout), None))?;
    let startup_rss = server.peak_rss_kib()?;
    let cold: Vec<Sample> = requests.iter().map(|r| send(&server, r).sample).collect();
    let warm: Vec<Vec<Sample>> = requests
        .iter()
        .map(|r| (0..WARM_REPEATS).map(|_| send(&server, r).sample).collect())
        .collect();
    let started = Instant::now();
    let of_kind = |i| {
        let kind = kind_of(i);
        requests
            .iter()
            .find(|r| r.kind == kind)
            .expect("every kind is prepared")
    };
    let loaded: Vec<Sample> = load(&server, options.requests, options.clients, of_kind)
        .into_iter()
        .map(|answer| answer.sample)
        .collect();
    let wall = started.elapsed();
    let peak_rss = server.peak_rss_kib()?;
    drop(server);

    eprintln!(
        "The registry outage: a fresh policy-server with the default deadline, reading the \
         registry through a fault proxy, {} requests from {} clients in each phase...",
        options.outage_requests, options.clients
    );
    let outage = outage(
        &registry,
        &fixtures,
        &many.images,
        &many.keys[0],
        &uri,
        options,
    )?;

    println!(
        "policy-server {}: --workers {}, --policy-timeout {} s; {} clients; {}\n",
        kubewarden.version,
        options.workers,
        options.policy_timeout,
        options.clients,
        crate::bench::machine(),
    );
    println!(
        "One request at a time on a fresh policy-server: the first of each kind (cold: empty \
         caches), then the median of {WARM_REPEATS} more (warm):\n"
    );
    println!("| request | cold | warm | verdicts |\n|---|---|---|---|");
    for (first, again) in cold.iter().zip(&warm) {
        let mut latencies: Vec<Duration> = again.iter().map(|s| s.latency).collect();
        latencies.sort();
        let right = std::iter::once(first)
            .chain(again)
            .filter(|s| matches!(s.outcome, Outcome::Right))
            .count();
        println!(
            "| {} | {} | {} | {right} of {} right |",
            first.kind.name(),
            duration(first.latency),
            duration(percentile(&latencies, 50)),
            again.len() + 1,
        );
    }
    println!(
        "\nUnder load: {} requests from {} clients in {}: {:.0} requests/s\n",
        loaded.len(),
        options.clients,
        duration(wall),
        loaded.len() as f64 / wall.as_secs_f64()
    );
    println!("| request | requests | p50 | p99 | max |\n|---|---|---|---|---|");
    println!("{}", latency_row("all", loaded.iter()));
    for kind in Kind::ALL {
        println!(
            "{}",
            latency_row(kind.name(), loaded.iter().filter(|s| s.kind == kind))
        );
    }
    println!(
        "\npolicy-server peak RSS (VmHWM): {} after start-up, {} after the load.",
        mebibytes(startup_rss),
        mebibytes(peak_rss)
    );
    println!(
        "\nThe 50-container Deployment {DEADLINE_PROBES} times, one at a time, on a fresh \
         policy-server with {} (these verdicts depend on speed and never fail the run):\n",
        timeout_flag(options)
    );
    println!("| request | latency | verdict |\n|---|---|---|");
    for (n, sample) in deadline_probe.iter().enumerate() {
        println!(
            "| {} | {} | {} |",
            if n == 0 {
                "first (cold)".into()
            } else {
                format!("then {}", n + 1)
            },
            duration(sample.latency),
            sample.outcome.describe()
        );
    }

    let transport_errors = deadline_probe
        .iter()
        .chain(&cold)
        .chain(warm.iter().flatten())
        .chain(&loaded)
        .filter(|s| matches!(s.outcome, Outcome::Transport(_)));
    let wrong = cold
        .iter()
        .chain(warm.iter().flatten())
        .chain(&loaded)
        .filter(|s| matches!(s.outcome, Outcome::Wrong(_)));
    let failures: Vec<&Sample> = transport_errors.chain(wrong).collect();
    println!(
        "\nTransport errors and wrong verdicts: {} of {} requests.",
        failures.len(),
        deadline_probe.len() + cold.len() + warm.iter().map(Vec::len).sum::<usize>() + loaded.len()
    );
    outage::print(&outage, options.slow_delay);
    let outage_wrong: usize = outage.iter().map(PhaseReport::wrong).sum();
    println!("\nWrong verdicts and transport errors during the outage: {outage_wrong}.");
    if !failures.is_empty() {
        let quoted: Vec<String> = failures
            .iter()
            .take(QUOTED_FAILURES)
            .map(|s| format!("{}: {}", s.kind.name(), s.outcome.describe()))
            .collect();
        bail!(
            "{} requests failed, the first ones:\n{}",
            failures.len(),
            quoted.join("\n")
        );
    }
    if outage_wrong > 0 {
        bail!("{outage_wrong} requests got a wrong verdict or no answer during the outage");
    }
    Ok(())
}

/// The outage's phases on a fresh policy-server with the default deadline, whose rules
/// cover the images of `registry` as a [`FaultProxy`] in front of it serves them.
fn outage(
    registry: &Registry,
    fixtures: &Fixtures,
    many: &[Image],
    many_key: &str,
    module: &str,
    options: &LoadOptions,
) -> Result<Vec<PhaseReport>> {
    let proxy = FaultProxy::start(registry.host())?;
    let sources = registry.dir().join("sources-with-proxy.yml");
    write_sources(&sources, &[registry.host(), proxy.host()])?;
    let through = proxy.host();
    let settings = json!({"signatures": [
        {"image": format!("{through}/unsigned/*"), "pubKeys": [fixtures.keys.a]},
        {"image": format!("{through}/{MANY_PREFIX}-*"), "pubKeys": [many_key]},
    ]});
    let policy = Policy {
        capabilities: Some(Grant::declared()?.0),
        ..Policy::new(module, settings)
    };
    let server = PolicyServer::start(
        Kubewarden::from_env()?,
        &PolicyServerConfig {
            sources_path: Some(sources),
            workers: options.workers,
            ..PolicyServerConfig::new([(POLICY_ID, policy)])
        },
    )?;
    let unsigned = proxy.image(&fixtures.images.unsigned);
    let mix = Request::all(&MixImages {
        signed: &unsigned,
        unsigned: &unsigned,
        many: &[],
        unmatched: UNMATCHED,
    });
    let of_kind = |kind| {
        mix.iter()
            .find(|r: &&Request| r.kind == kind)
            .expect("in the mix")
    };
    // A third of the images for the slow phase, another third for the outage and after.
    let signed: Vec<Request> = many
        .iter()
        .map(|i| Request::signed(&proxy.image(i)))
        .collect();
    let third = signed.len() / 3;
    let reports = Phase::ALL
        .iter()
        .map(|&phase| {
            let requests = PhaseRequests {
                signed: match phase {
                    Phase::Slow => &signed[..third],
                    Phase::Down | Phase::Back => &signed[third..2 * third],
                },
                unsigned: of_kind(Kind::Unsigned),
                unmatched: of_kind(Kind::NoMatch),
            };
            let load = (options.outage_requests, options.clients);
            outage::run_phase(&server, &proxy, phase, options.slow_delay, &requests, load)
        })
        .collect();
    Ok(reports)
}

/// Sends `pick(i)` for every `i` below `count`, from `clients` threads that each wait for
/// an answer before sending the next.
fn load<'r>(
    server: &PolicyServer,
    count: usize,
    clients: usize,
    pick: impl Fn(usize) -> &'r Request + Sync,
) -> Vec<Answer<'r>> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let mut answers = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return answers;
                        }
                        answers.push(send(server, pick(i)));
                    }
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|client| client.join().expect("a client thread panicked"))
            .collect()
    })
}

/// POSTs `request` and checks the verdict; the latency is the whole HTTP exchange.
fn send<'r>(server: &PolicyServer, request: &'r Request) -> Answer<'r> {
    let sent = Instant::now();
    let response = server.validate_review(POLICY_ID, request.review.clone());
    let latency = sent.elapsed();
    let outcome = match &response {
        Err(e) => Outcome::Transport(format!("{e:#}")),
        Ok(response) => match request.check(response) {
            Ok(()) => Outcome::Right,
            Err(e) => Outcome::Wrong(format!("{e:#}")),
        },
    };
    Answer {
        request,
        sample: Sample {
            kind: request.kind,
            sent,
            latency,
            outcome,
        },
        response,
    }
}

/// `| name | count | p50 | p99 | max |` over `samples`.
fn latency_row<'a>(name: &str, samples: impl Iterator<Item = &'a Sample>) -> String {
    let mut latencies: Vec<Duration> = samples.map(|s| s.latency).collect();
    latencies.sort();
    let Some(&max) = latencies.last() else {
        return format!("| {name} | 0 | - | - | - |");
    };
    format!(
        "| {name} | {} | {} | {} | {} |",
        latencies.len(),
        duration(percentile(&latencies, 50)),
        duration(percentile(&latencies, 99)),
        duration(max)
    )
}

/// The nearest-rank `p`th percentile of `sorted`, which is not empty.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p).div_ceil(100).max(1) - 1]
}

/// The deadline of the probe server, in words.
fn timeout_flag(options: &LoadOptions) -> String {
    let server = options.probe_policy_timeout.map_or_else(
        || "the default --policy-timeout (2 s)".into(),
        |s| format!("--policy-timeout {s}"),
    );
    match options.probe_timeout_eval_seconds {
        Some(s) => format!("{server} and the policy's timeoutEvalSeconds: {s}"),
        None => server,
    }
}

fn duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn mebibytes(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 50), Duration::from_millis(100));
        assert_eq!(percentile(&sorted, 99), Duration::from_millis(198));
        assert_eq!(percentile(&sorted[..1], 99), Duration::from_millis(1));
    }
}
