//! Registry faults end to end: the real `policy.wasm` in the real host, reading the fixtures'
//! registry through a [`FaultProxy`] that refuses, stalls, resets, answers errors or serves
//! corrupt content, while the host runs.
//!
//! For each fault, on the backend and version of `E2E_BACKEND` and `E2E_KUBEWARDEN_VERSION`:
//! a signed image is rejected with a message naming the image and the kind of fault, a
//! warn-only entry admits it with a warning naming the same class, no unsigned or wrongly
//! signed image is admitted, and once the registry is back the next request is admitted
//! and pinned without restarting anything. Each test has a proxy of its own, so that no
//! host cache carries one test's answers into another's.
//!
//! What the real host does under each fault, measured with kwctl and policy-server 1.31.0
//! and 1.35.0, is README's "Registry outages".

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use e2e_tests::backend::{Backend, BackendConfig, BackendKind, Grant};
use e2e_tests::bench::objects::{admission_request, deployment};
use e2e_tests::fault_proxy::{Fault, FaultProxy, Target};
use e2e_tests::fixtures::{write_sources, Fixtures, Image, Registry};
use host_driver::AdmissionResponse;
use serde_json::{json, Value};

/// policy-server's default evaluation deadline (`--policy-timeout`), which the backend
/// runs with; no `timeoutEvalSeconds` is set.
const DEADLINE: Duration = Duration::from_secs(2);
/// What policy-server answers, instead of the policy, when an evaluation outlives its
/// deadline (1.31.0 and 1.35.0).
const INTERRUPTED: &str =
    "Policy execution interrupted because it exceeded the allowed execution time";
/// One registry exchange's delay that keeps a check within the deadline, and one that
/// takes it past: a check is ten exchanges (the `/v2/` pings included).
const SHORT_DELAY: Duration = Duration::from_millis(20);
const LONG_DELAY: Duration = Duration::from_millis(300);
/// The host keeps what it read from a registry this long (policy-server; measured 60 s).
const REGISTRY_CACHE: Duration = Duration::from_secs(90);
/// Where the fixture Deployment's only container sits.
const CONTAINER: &str = "spec.template.spec.containers[0]";
/// An image that no rule of the settings matches.
const UNMATCHED: &str = "docker.io/library/nginx:1.27";
/// The proxies, one per test.
const PROXIES: [&str; 15] = [
    "refuse",
    "status-401",
    "status-500",
    "status-503",
    "too-many-requests",
    "reset-signature-layer",
    "reset-signature-manifest",
    "truncated-layer",
    "corrupt-signature-manifest",
    "corrupt-index",
    "mismatched-payload",
    "short-delay",
    "long-delay",
    "long-delay-other",
    "minute-delay",
];

struct Env {
    /// Kept alive for the whole test process.
    _registry: Registry,
    fixtures: Fixtures,
    proxies: BTreeMap<&'static str, FaultProxy>,
    host: Backend,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let kind = BackendKind::from_env().unwrap();
        let registry = Registry::start().expect("start the local registry");
        let fixtures = Fixtures::create(&registry).expect("create the signed images");
        let proxies: BTreeMap<_, _> = PROXIES
            .iter()
            .map(|&name| (name, FaultProxy::start(registry.host()).expect("a proxy")))
            .collect();
        // The host reaches the registry itself (to load the policy) and every proxy over
        // plain HTTP.
        let sources = registry.dir().join("sources-with-proxies.yml");
        let hosts: Vec<&str> = std::iter::once(registry.host())
            .chain(proxies.values().map(FaultProxy::host))
            .collect();
        write_sources(&sources, &hosts).unwrap();
        let through_proxies = Fixtures {
            sources,
            ..fixtures.clone()
        };
        let wasm = e2e_tests::policy_wasm();
        let host = Backend::start(
            kind,
            &BackendConfig {
                wasm: &wasm,
                fixtures: &through_proxies,
                grant: Grant::declared().unwrap(),
            },
        )
        .unwrap_or_else(|e| panic!("cannot start the {} backend: {e:#}", kind.name()));
        // Every settings the suite uses, before any answer is timed.
        let (a, w) = (&fixtures.keys.a, &fixtures.keys.w);
        host.prepare(&[
            settings(a, false, false),
            settings(a, true, false),
            settings(a, false, true),
            settings(a, true, true),
            settings(w, false, false),
            settings(w, false, true),
        ])
        .expect("the backend takes the suite's settings");
        Env {
            _registry: registry,
            fixtures,
            proxies,
            host,
        }
    })
}

/// While a check waits for a slow registry, policy-server checks nothing else: the tests
/// of slow registries have the host to themselves, the others share it.
static HOST_TIME: RwLock<()> = RwLock::new(());

fn shared_host() -> RwLockReadGuard<'static, ()> {
    HOST_TIME.read().unwrap_or_else(|p| p.into_inner())
}

fn host_alone() -> RwLockWriteGuard<'static, ()> {
    HOST_TIME.write().unwrap_or_else(|p| p.into_inner())
}

fn proxy(name: &str) -> &'static FaultProxy {
    &env().proxies[name]
}

fn on_policy_server() -> bool {
    env().host.kind() == BackendKind::PolicyServer
}

/// `key` must have signed every image of the proxies (`127.0.0.1:*` matches them all,
/// not [`UNMATCHED`]); warn only when `warn`; on the platform manifests when `platforms`.
fn settings(key: &str, warn: bool, platforms: bool) -> Value {
    let mut rule = json!({"image": "127.0.0.1:*", "pubKeys": [key]});
    if warn {
        rule["onFailure"] = json!("warn");
    }
    if platforms {
        rule["platformSignatures"] = json!("all");
    }
    json!({"signatures": [rule]})
}

/// A Deployment of one container running `image`, and how long its answer took.
fn evaluate(settings: &Value, image: &str) -> (AdmissionResponse, Duration) {
    let request = admission_request(deployment("app", &[image.to_owned()]));
    let started = Instant::now();
    let response = env()
        .host
        .validate_with(settings, &request)
        .expect("an answer from the host");
    (response, started.elapsed())
}

#[track_caller]
fn assert_rejected(response: &AdmissionResponse, expected: &str) {
    assert!(!response.allowed, "admitted: {response:?}");
    let message = response.message();
    assert!(
        message.contains(expected),
        "{message:?}\n  lacks {expected:?}"
    );
    assert!(!message.contains("BEGIN"), "a PEM leaked into {message:?}");
}

/// Admitted, the image pinned to the digest that was signed.
#[track_caller]
fn assert_pinned(response: &AdmissionResponse, image: &Image) {
    assert!(response.allowed, "rejected: {:?}", response.message());
    let pin = json!([{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                      "value": format!("{}@{}", image.reference, image.digest)}]);
    assert_eq!(response.decoded_patch(), Some(pin), "{response:?}");
}

/// The policy answered before the deadline: on policy-server, where there is one; kwctl
/// evaluates without a deadline.
#[track_caller]
fn assert_in_time(response: &AdmissionResponse, took: Duration) {
    if on_policy_server() {
        assert!(!response.message().contains(INTERRUPTED), "{response:?}");
        assert!(took < DEADLINE, "answered after {took:?}");
    }
}

/// A fault and what the policy makes of it.
struct Case {
    proxy: &'static str,
    fault: Fault,
    /// What the rejection says after the signer, `pubKeys[0]: `.
    reason: String,
    /// The class of the warn-only warning and audit record.
    class: &'static str,
    /// Checked with `platformSignatures`, on the per-platform index: the fault reaches
    /// the host through the index read.
    platforms: bool,
    /// policy-server keeps what the fault served in its registry cache, so that the
    /// registry's recovery shows only once that expires.
    cached_by_server: bool,
}

impl Case {
    fn new(proxy: &'static str, fault: Fault, reason: &str, class: &'static str) -> Case {
        Case {
            proxy,
            fault,
            reason: reason.to_owned(),
            class,
            platforms: false,
            cached_by_server: false,
        }
    }

    /// The signed image this case checks, through its proxy.
    fn image(&self) -> Image {
        let images = &env().fixtures.images;
        let image = match self.platforms {
            true => &images.per_platform.index,
            false => &images.key_a,
        };
        proxy(self.proxy).image(image)
    }

    /// Every check of the module doc: rejected naming the image and the fault, warned
    /// with its class, nothing wrong admitted, admitted again once the fault is gone.
    fn check(&self) {
        let fx = &env().fixtures;
        let _shared = shared_host();
        let proxy = proxy(self.proxy);
        let signed = self.image();
        let enforcing = settings(&fx.keys.a, false, self.platforms);
        proxy.set(self.fault.clone());

        let (response, took) = evaluate(&enforcing, &signed.reference);
        assert_rejected(
            &response,
            &format!(
                "{CONTAINER} ({}): signatures[0] pubKeys: pubKeys[0]: {}",
                signed.reference, self.reason
            ),
        );
        assert_in_time(&response, took);
        let faulted = proxy.exchanges();
        assert!(
            self.fault == Fault::Refuse || faulted.iter().any(|e| e.fault == self.fault.name()),
            "the fault never met the host: {faulted:?}"
        );

        let (response, took) = evaluate(
            &settings(&fx.keys.a, true, self.platforms),
            &signed.reference,
        );
        assert!(response.allowed, "rejected: {:?}", response.message());
        assert_eq!(response.patch, None, "pinned although unverified");
        assert_eq!(
            response.warnings,
            Some(vec![format!(
                "{} at {CONTAINER}: signatures[0] (warn only): {}",
                signed.reference, self.class
            )])
        );
        let records = response
            .audit_annotations
            .as_ref()
            .expect("audit annotations");
        let record: Value = serde_json::from_str(&records["image-0"]).expect("a JSON record");
        assert_eq!(
            record["warned"],
            json!([{"entry": "signatures[0]", "reason": self.class}])
        );
        assert_in_time(&response, took);

        let unsigned = proxy.image(&fx.images.unsigned);
        let (response, _) = evaluate(&enforcing, &unsigned.reference);
        assert_rejected(&response, &format!("{CONTAINER} ({})", unsigned.reference));
        let wrong_key = settings(&fx.keys.w, false, self.platforms);
        let (response, _) = evaluate(&wrong_key, &signed.reference);
        assert_rejected(&response, &format!("{CONTAINER} ({})", signed.reference));

        proxy.set(Fault::None);
        let (response, _) = evaluate(&enforcing, &signed.reference);
        if self.cached_by_server && on_policy_server() {
            assert_rejected(&response, &self.reason);
            admitted_once_the_cache_expires(&enforcing, &signed, &self.reason);
        } else {
            assert_pinned(&response, &signed);
        }
    }
}

/// Asks again every 5 s until admitted, within [`REGISTRY_CACHE`]: every answer meanwhile
/// is the same rejection, never an admission of what the fault served.
fn admitted_once_the_cache_expires(settings: &Value, signed: &Image, reason: &str) {
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let (response, _) = evaluate(settings, &signed.reference);
        if response.allowed {
            assert_pinned(&response, signed);
            // Past the harness's capture: what README's "Registry outages" quotes.
            let _ = writeln!(
                std::io::stderr(),
                "what the fault served was kept: admitted {:.1?} after the registry came back",
                started.elapsed()
            );
            return;
        }
        assert_rejected(&response, reason);
        assert!(
            started.elapsed() < REGISTRY_CACHE,
            "still rejected after {:?}: {response:?}",
            started.elapsed()
        );
    }
}

/// Refused, then, once admitted, refused again: policy-server keeps a verified check 60 s
/// and admits the image it has just verified; kwctl starts afresh and rejects.
#[test]
fn a_registry_that_refuses_connections_is_unreachable() {
    let fx = &env().fixtures;
    let proxy = proxy("refuse");
    let image = proxy.image(&fx.images.key_a);
    let reason = format!(
        "registry unreachable: Cannot fetch manifest of {}: error sending request for url",
        image.reference
    );
    Case::new("refuse", Fault::Refuse, &reason, "registry-unreachable").check();
    let _shared = shared_host();
    proxy.set(Fault::Refuse);
    let (response, _) = evaluate(&settings(&fx.keys.a, false, false), &image.reference);
    if on_policy_server() {
        assert_pinned(&response, &image);
    } else {
        assert_rejected(&response, &reason);
    }
    proxy.set(Fault::None);
}

#[test]
fn error_statuses_are_refusals_with_their_status() {
    for (proxy, status) in [
        ("status-401", 401),
        ("status-500", 500),
        ("status-503", 503),
    ] {
        Case::new(
            proxy,
            Fault::Status(status),
            &format!("refused by registry (HTTP {status}): "),
            "registry-refused",
        )
        .check();
    }
}

#[test]
fn a_rate_limit_is_a_refusal_and_is_not_retried() {
    let case = Case::new(
        "too-many-requests",
        Fault::TooManyRequests { retry_after: 1 },
        "refused by registry: ",
        "registry-refused",
    );
    case.check();
    let manifest = "/v2/signed/key-a/manifests/v1";
    let refused: Vec<_> = proxy(case.proxy)
        .exchanges()
        .into_iter()
        .filter(|e| e.status == 429 && e.path == manifest)
        .collect();
    // Three evaluations of the signed image under the fault (enforcing, warn-only, the
    // wrong key), each a HEAD and a GET of its tag refused once, never asked again.
    assert_eq!(refused.len(), 6, "{refused:?}");
}

#[test]
fn a_reset_during_a_signature_layer_is_unreachable() {
    Case::new(
        "reset-signature-layer",
        Fault::ResetMidBody(Target::Blobs),
        "registry unreachable: Cannot pull ",
        "registry-unreachable",
    )
    .check();
}

#[test]
fn a_truncated_signature_layer_is_invalid_signature_data() {
    Case::new(
        "truncated-layer",
        Fault::TruncatedLayer,
        "invalid signature data: Cannot pull ",
        "invalid-signature-data",
    )
    .check();
}

#[test]
fn a_corrupt_image_index_is_invalid_signature_data() {
    let case = Case {
        platforms: true,
        ..Case::new(
            "corrupt-index",
            Fault::CorruptManifest(Target::ImageManifests),
            "no signatures; platformSignatures: cannot read the image index: invalid signature data: Fail to interact with OCI registry: Digest error: Invalid digest.",
            // The entry's class is the index's own: no signature on it.
            "no-signatures",
        )
    };
    case.check();
}

/// The host reads a signature manifest it cannot read in full, or cannot parse, as no
/// signatures at all: the policy can say no more than the host, and rejects.
#[test]
fn an_unreadable_signature_manifest_is_no_signatures_to_the_host() {
    for (proxy, fault) in [
        (
            "reset-signature-manifest",
            Fault::ResetMidBody(Target::SignatureManifests),
        ),
        (
            "corrupt-signature-manifest",
            Fault::CorruptManifest(Target::SignatureManifests),
        ),
    ] {
        Case::new(proxy, fault, "no signatures", "no-signatures").check();
    }
}

/// A payload that is not what was signed fails the signature check: not signed. policy-server
/// keeps the tampered signature it read for as long as its registry cache does.
#[test]
fn a_tampered_signature_payload_is_not_signed() {
    Case {
        cached_by_server: true,
        ..Case::new(
            "mismatched-payload",
            Fault::MismatchedSignaturePayload,
            "not signed by the required signer",
            "not-signed",
        )
    }
    .check();
}

/// Key A's image through the proxy `name`, every exchange held back `delay`: the proxy, the
/// image, and the enforcing answer with how long it took.
fn delayed(
    name: &str,
    delay: Duration,
) -> (&'static FaultProxy, Image, AdmissionResponse, Duration) {
    let fx = &env().fixtures;
    let proxy = proxy(name);
    let signed = proxy.image(&fx.images.key_a);
    proxy.set(Fault::Delay(delay));
    let (response, took) = evaluate(&settings(&fx.keys.a, false, false), &signed.reference);
    (proxy, signed, response, took)
}

#[test]
fn a_slow_registry_within_the_deadline_admits() {
    let _alone = host_alone();
    let (proxy, signed, response, took) = delayed("short-delay", SHORT_DELAY);
    assert_pinned(&response, &signed);
    assert_in_time(&response, took);
    assert!(proxy.exchanges().iter().all(|e| e.fault == "delay"));
}

/// The host has no timeout of its own on registry reads, and a deadline does not cut a host
/// call short: a registry slower than the deadline holds the answer until it has answered.
/// policy-server then rejects with its interruption, whatever `onFailure` says; kwctl has
/// no deadline and admits. Meanwhile policy-server answers a request that needs no check
/// (no rule matches) at once, but checks signatures one at a time: another registry's
/// image, even one whose check it has cached, waits for the slow one. The request after
/// is admitted.
#[test]
fn a_registry_slower_than_the_deadline_never_admits_early() {
    let fx = &env().fixtures;
    let _alone = host_alone();
    let enforcing = settings(&fx.keys.a, false, false);
    // Signed by key A in the registry itself: checked without the proxy.
    let elsewhere = &fx.images.key_a;
    for (proxy_name, warn) in [("long-delay", false), ("long-delay-other", true)] {
        let proxy = proxy(proxy_name);
        let signed = proxy.image(&fx.images.key_a);
        let slow_settings = settings(&fx.keys.a, warn, false);
        // The host keeps a verified check 60 s: from now on this one is cached.
        assert_pinned(&evaluate(&enforcing, &elsewhere.reference).0, elsewhere);
        proxy.set(Fault::Delay(LONG_DELAY));
        std::thread::scope(|scope| {
            let slow = scope.spawn(|| evaluate(&slow_settings, &signed.reference));
            while proxy.exchanges().is_empty() {
                std::thread::sleep(SHORT_DELAY);
            }
            let (response, took) = evaluate(&enforcing, UNMATCHED);
            assert!(response.allowed && response.patch.is_none(), "{response:?}");
            assert_in_time(&response, took);
            // kwctl runs each evaluation in a process of its own: nothing to wait for.
            assert!(
                !on_policy_server() || !slow.is_finished(),
                "the slow check ended first"
            );
            let (other, _) = evaluate(&enforcing, &elsewhere.reference);
            let answered = Instant::now();
            let (response, took) = slow.join().expect("the slow request");
            let reads = proxy.exchanges().len();
            // Past the harness's capture: what README's "Registry outages" quotes.
            let _ = writeln!(
                std::io::stderr(),
                "slow registry ({reads} exchanges of {LONG_DELAY:?}): answered after {took:.2?}: {}",
                if response.allowed { "admitted" } else { response.message() }
            );
            if on_policy_server() {
                assert!(took > DEADLINE, "{took:?}");
                assert!(!response.allowed, "{response:?}");
                assert_eq!(response.message(), INTERRUPTED);
                let last_read = proxy.exchanges().last().expect("reads").at;
                assert!(
                    answered > last_read,
                    "answered before the slow check's last read"
                );
                // Signed, so admitted, or rejected for the time it waited: never more.
                if !other.allowed {
                    assert_eq!(other.message(), INTERRUPTED);
                }
            } else {
                assert_pinned(&response, &signed);
            }
            if other.allowed {
                assert_pinned(&other, elsewhere);
            }
        });
        proxy.set(Fault::None);
        let (response, took) = evaluate(&enforcing, &signed.reference);
        assert_pinned(&response, &signed);
        assert_in_time(&response, took);
    }
}

/// The host has no timeout on registry reads: with every exchange over a minute long, kwctl
/// waits for each of a check's ten and admits. Eleven minutes, so only on demand:
/// `cargo test -p e2e-tests --test faults -- --ignored`.
#[test]
#[ignore]
fn the_host_waits_for_a_registry_that_answers_after_a_minute() {
    let _alone = host_alone();
    let minute = Duration::from_secs(65);
    let (proxy, signed, response, took) = delayed("minute-delay", minute);
    let reads = proxy.exchanges().len();
    let _ = writeln!(
        std::io::stderr(),
        "registry answering after {minute:?}: {reads} exchanges, answered after {took:.1?}: {}",
        if response.allowed {
            "admitted"
        } else {
            response.message()
        }
    );
    // A timeout would have been a registry error, and a rejection. policy-server's deadline
    // passed long before: it rejects, once the registry has answered.
    if on_policy_server() {
        assert_eq!(response.message(), INTERRUPTED);
    } else {
        assert_pinned(&response, &signed);
    }
}
