//! Where the policy's time goes, natively: runs `validate` of one `make bench` case many
//! times with host calls answered at once, for a profiler to look at (DEVELOPMENT.md,
//! "Where the time goes"). The keys are real PEM keys, the images need no registry.
//!
//!     valgrind --tool=callgrind target/release/profile "1 container, 1 image, no rule matches, 1 key"
//!
//! With `--update` after the case, the request is an UPDATE that changes no image (its old
//! object is its object), as a label or a scale-down is: the cost of comparing with the old
//! object, with nothing left to verify.

use std::process::ExitCode;

use e2e_tests::bench::cases::{cases, CaseImages, IMAGES, KEYS};
use serde_json::json;
use verify_image_signatures::policy::{validate, validate_settings, Verdict};
use verify_image_signatures::verifier::{Check, Failure, Verifier};

/// Answers every check at once with one digest.
struct Instant;

impl Verifier for Instant {
    fn verify(&self, _: &Check<'_>) -> Result<String, Failure> {
        Ok(format!("sha256:{}", "a".repeat(64)))
    }
}

const EVALUATIONS: usize = 1000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, update) = match args.as_slice() {
        [name] => (name, false),
        [name, flag] if flag == "--update" => (name, true),
        _ => {
            eprintln!("usage: profile CASE [--update] (CASE: a `make bench` case name)");
            return ExitCode::FAILURE;
        }
    };
    let keys: Vec<String> = (0..KEYS)
        .map(|_| rcgen::KeyPair::generate().expect("a key").public_key_pem())
        .collect();
    let images: Vec<String> = (0..IMAGES)
        .map(|n| format!("127.0.0.1:5000/bench/image-{n:02}:v1"))
        .collect();
    let all = cases(&CaseImages {
        registry: "127.0.0.1:5000",
        images: &images,
        keys: &keys,
    });
    let Some(case) = all.iter().find(|c| &c.name == name) else {
        eprintln!("no case {name:?}; the cases are:");
        for case in &all {
            eprintln!("  {}", case.name);
        }
        return ExitCode::FAILURE;
    };
    validate_settings(case.settings.to_string().as_bytes()).expect("valid settings");
    let mut request = case.request.clone();
    if update {
        request["operation"] = json!("UPDATE");
        request["oldObject"] = request["object"].clone();
    }
    // The real host runs each evaluation in a fresh instance, so the policy parses its
    // settings every time. Here one process evaluates them all: two payloads whose settings
    // differ only by a space, taken in turn, keep it from reusing the last settings parsed.
    let settings = case.settings.to_string();
    let payloads = [settings.clone(), settings.replacen('{', "{ ", 1)]
        .map(|settings| format!(r#"{{"request":{request},"settings":{settings}}}"#).into_bytes());
    for payload in payloads.iter().cycle().take(EVALUATIONS) {
        if let Verdict::Reject(message) = validate(payload, &Instant) {
            eprintln!("rejected: {message}");
            return ExitCode::FAILURE;
        }
    }
    println!("{EVALUATIONS} evaluations of {name:?}");
    ExitCode::SUCCESS
}
