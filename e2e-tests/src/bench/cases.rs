//! The fixed cases of `make bench`: 1, 10 and 50 realistic containers, with rules that match
//! and with none, with settings holding 1 key and 20 keys (a matching rule of 20 keys on 50
//! images is left out: see [`cases`]).

use serde_json::{json, Value};

use super::objects::{admission_request, deployment};

/// One benchmark case: settings, a request, and the host calls it must make.
pub struct Case {
    pub name: String,
    pub settings: Value,
    pub request: Value,
    /// `oci/v2/verify` calls one evaluation makes: one per unique (image, key).
    pub verify_calls: u64,
}

/// The images and keys the cases use: at least 50 distinct references under
/// `REGISTRY/bench/`, every one signed by each of at least [`KEYS`] `keys`.
pub struct CaseImages<'a> {
    pub registry: &'a str,
    pub images: &'a [String],
    pub keys: &'a [String],
}

/// Where the bench images live, under the registry.
pub const REPOSITORY_PREFIX: &str = "bench/image";
/// The distinct images of the largest case.
pub const IMAGES: usize = 50;
/// The keys of the largest settings.
pub const KEYS: usize = 20;

/// The cases, in table order: `(containers, distinct images)` × rules × keys, but for 50
/// images matched with 20 keys.
pub fn cases(input: &CaseImages<'_>) -> Vec<Case> {
    let mut cases = Vec::new();
    for (containers, distinct) in [(1, 1), (10, 3), (IMAGES, IMAGES)] {
        let images: Vec<String> = (0..containers)
            .map(|i| input.images[i % distinct].clone())
            .collect();
        let request = admission_request(deployment("storefront", &images));
        for matching in [true, false] {
            for keys in [1, KEYS] {
                // 50 images checked against 20 keys is 1,000 checks: the first, uncached
                // evaluation against the registry takes about as long as the host keeps an
                // answer (60 s), so no bench of it runs on a warm cache throughout.
                if matching && distinct == IMAGES && keys == KEYS {
                    continue;
                }
                let pattern = match matching {
                    true => format!("{}/bench/*", input.registry),
                    false => "ghcr.io/acme/*".to_owned(),
                };
                cases.push(Case {
                    name: format!(
                        "{containers} container{}, {distinct} image{}, {}, {keys} key{}",
                        plural(containers),
                        plural(distinct),
                        if matching { "rule matches" } else { "no rule matches" },
                        plural(keys),
                    ),
                    settings: json!({"signatures": [{"image": pattern, "pubKeys": input.keys[..keys]}]}),
                    request: request.clone(),
                    verify_calls: if matching { (distinct * keys) as u64 } else { 0 },
                });
            }
        }
    }
    cases
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
