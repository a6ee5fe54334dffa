//! The fixed cases of `make bench`, and the host calls each must make: one per unique
//! (image, rule, key), so the counts are exact and tests assert them.

use serde_json::{json, Value};

use super::objects::{admission_request, deployment};

/// One benchmark case: settings, a request, and what it must cost in host calls.
pub struct Case {
    pub name: String,
    pub settings: Value,
    pub request: Value,
    /// `oci/v2/verify` calls one evaluation makes: the unique (image, rule, key) triples.
    pub verify_calls: u64,
    /// Whether the request is admitted with its images pinned (else admitted unchanged).
    pub pinned: bool,
}

/// The images and keys the cases use: `images` at least 50 distinct references under
/// `REGISTRY/bench/`, every one signed by each of at least 3 `keys`.
pub struct CaseImages<'a> {
    pub registry: &'a str,
    pub images: &'a [String],
    pub keys: &'a [String],
}

/// Where the bench images live, under the registry.
pub const REPOSITORY_PREFIX: &str = "bench/image";

/// The cases, in table order.
pub fn cases(input: &CaseImages<'_>) -> Vec<Case> {
    let registry = input.registry;
    let rule = |pattern: String, key: &str| json!({"image": pattern, "pubKeys": [key]});
    let one_rule = json!({"signatures": [rule(format!("{registry}/bench/*"), &input.keys[0])]});
    let three_rules = json!({"signatures": [
        rule(format!("{registry}/bench/*"), &input.keys[0]),
        rule(format!("{registry}/{REPOSITORY_PREFIX}-*"), &input.keys[1]),
        rule(format!("{registry}/{REPOSITORY_PREFIX}-*:v1"), &input.keys[2]),
    ]});
    let no_match = json!({"signatures": [rule("ghcr.io/acme/*".into(), &input.keys[0])]});
    // Container `i` runs image `i % distinct`.
    let request = |containers: usize, distinct: usize| {
        let images: Vec<String> = (0..containers)
            .map(|i| input.images[i % distinct].clone())
            .collect();
        admission_request(deployment("storefront", &images))
    };
    let case = |name: &str, settings: &Value, request: Value, verify_calls, pinned| Case {
        name: name.into(),
        settings: settings.clone(),
        request,
        verify_calls,
        pinned,
    };
    vec![
        case("1 container", &one_rule, request(1, 1), 1, true),
        case(
            "10 containers, 3 images",
            &one_rule,
            request(10, 3),
            3,
            true,
        ),
        case(
            "50 containers, 50 images",
            &one_rule,
            request(50, 50),
            50,
            true,
        ),
        case(
            "50 containers, 50 images, 3 rules",
            &three_rules,
            request(50, 50),
            150,
            true,
        ),
        case(
            "1 container, no rule matches",
            &no_match,
            request(1, 1),
            0,
            false,
        ),
        case(
            "50 containers, no rule matches",
            &no_match,
            request(50, 50),
            0,
            false,
        ),
    ]
}
