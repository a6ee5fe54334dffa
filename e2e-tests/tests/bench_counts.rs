//! The host calls of `make bench`'s cases are exact: one `oci/v2/verify` per unique
//! (image, rule, key), whatever the number of containers. Times are never asserted.
//!
//! `make e2e-tests` builds the policy and points `POLICY_WASM` at it.

use std::time::Duration;

use e2e_tests::bench::cases::{cases, Case, CaseImages, REPOSITORY_PREFIX};
use e2e_tests::bench::{E2E_DEADLINE, INSTANT_DIGEST};
use e2e_tests::fixtures::{push_signed_images, Registry};
use e2e_tests::host::{Host, HostCallStats, Sources};

fn policy() -> Vec<u8> {
    let path = std::env::var("POLICY_WASM")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../policy.wasm").to_owned());
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read {path} ({e}): run `make e2e-tests`"))
}

/// Evaluates `case` once and returns the host calls it made.
fn calls_of(host: &Host, case: &Case) -> HostCallStats {
    let verdict = host.validate_settings_with(&case.settings);
    assert!(
        verdict.valid,
        "{}: settings refused: {:?}",
        case.name, verdict.message
    );
    let before = host.stats();
    let response = host
        .validate_with(&case.settings, &case.request)
        .expect("evaluate");
    assert!(
        response.allowed,
        "{}: rejected: {:?}",
        case.name, response.status
    );
    assert_eq!(response.patch.is_some(), case.pinned, "{}", case.name);
    let after = host.stats();
    let delta = |f: fn(&HostCallStats) -> u64| f(&after) - f(&before);
    HostCallStats {
        per_operation: Default::default(),
        total: delta(|s| s.total),
        verifications_performed: delta(|s| s.verifications_performed),
        verification_cache_hits: delta(|s| s.verification_cache_hits),
        signature_reads: delta(|s| s.signature_reads),
    }
}

#[test]
fn one_host_call_per_unique_image_rule_and_key() {
    let registry = Registry::start().expect("start the local registry");
    let signed = push_signed_images(&registry, REPOSITORY_PREFIX, 50, 3).expect("sign images");
    let images: Vec<String> = signed.images.iter().map(|i| i.reference.clone()).collect();
    let cases = cases(&CaseImages {
        registry: registry.host(),
        images: &images,
        keys: &signed.keys,
    });
    let builder = || {
        Host::builder()
            .wasm_bytes(policy())
            .sources(Sources::insecure([registry.host()]))
            .allow_unannotated()
    };

    let instant = builder()
        .instant_answers(INSTANT_DIGEST)
        .track_peak_memory()
        .build()
        .unwrap();
    let counts: Vec<(&str, u64)> = cases
        .iter()
        .map(|case| (case.name.as_str(), calls_of(&instant, case).total))
        .collect();
    let expected: Vec<(&str, u64)> = cases
        .iter()
        .map(|case| (case.name.as_str(), case.verify_calls))
        .collect();
    assert_eq!(counts, expected);
    assert_eq!(
        expected.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [1, 3, 50, 150, 0, 0]
    );
    // Every call was a `v2/verify`, answered from memory.
    let stats = instant.stats();
    assert_eq!(stats.calls("oci/v2/verify"), stats.total);
    assert_eq!(stats.verifications_performed, 0);
    let peak = instant.peak_memory_bytes().expect("tracked");
    assert!(peak >= 64 * 1024, "peak linear memory {peak}");

    // With real checks and no verification cache, each of those calls is verified...
    let cold = builder()
        .verification_cache_ttl(Duration::ZERO)
        .execution_timeout(E2E_DEADLINE)
        .build()
        .unwrap();
    let ten_containers = &cases[1];
    let real = calls_of(&cold, ten_containers);
    assert_eq!(
        (real.total, real.verifications_performed),
        (ten_containers.verify_calls, ten_containers.verify_calls)
    );
    // ...but, as on the real host, an image's signatures are read once for all its keys:
    // 150 checks of 50 images read 50 signature sets.
    let three_rules = &cases[3];
    assert_eq!(three_rules.verify_calls, 150);
    let fresh = builder()
        .verification_cache_ttl(Duration::ZERO)
        .execution_timeout(E2E_DEADLINE)
        .build()
        .unwrap();
    let real = calls_of(&fresh, three_rules);
    assert_eq!(
        (real.verifications_performed, real.signature_reads),
        (150, 50)
    );
}
