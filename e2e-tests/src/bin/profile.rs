//! Where the policy's time goes, natively: runs one `make bench` case many times through
//! what the waPC entry point runs (payload in, answer's bytes out), with the module's own
//! host verifier, whose host calls are answered at once as trusted: what is counted is the
//! policy alone, host-call payloads built and answers read (README "Performance"). The keys
//! are real PEM keys; the images need no registry.
//!
//!     valgrind --tool=callgrind target/release/profile "1 container, 1 image, rule matches, 1 key"
//!
//! With `--update` after the case, the request is an UPDATE that changes no image (its old
//! object is its object), as a label or a scale-down is: the cost of comparing with the old
//! object, with nothing left to verify.
//!
//! `profile --cut` reads `callgrind_annotate --inclusive=yes` of such a run on standard input
//! and prints where one evaluation's instructions go (`make profile` runs it all).

use std::cell::Cell;
use std::process::ExitCode;

use e2e_tests::bench::cases::{cases, CaseImages, IMAGES, KEYS};
use serde_json::json;
use verify_image_signatures::policy::validate_settings;
use verify_image_signatures::response::respond;
use verify_image_signatures::verifier::{HostCall, HostVerifier};

const EVALUATIONS: usize = 1000;

/// What the host answers every `v2/verify`: trusted, with one digest.
const TRUSTED: &str = concat!(
    r#"{"is_trusted":true,"digest":"sha256:"#,
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    r#""}"#
);

/// The host, answering every call at once as a trusted `v2/verify`: the payloads are the
/// policy's to build, not the host's to read.
#[derive(Default)]
struct Instant {
    calls: Cell<usize>,
}

impl HostCall for Instant {
    fn call(&self, _: &str, _: &[u8]) -> Result<Vec<u8>, String> {
        self.calls.set(self.calls.get() + 1);
        Ok(TRUSTED.as_bytes().to_vec())
    }
}

/// The parts of one evaluation, each the inclusive count of the functions named (as
/// callgrind names them, after `verify_image_signatures::`).
const PARTS: &[(&str, &[&str])] = &[
    ("reading the request", &["request::Payload<O>::parse"]),
    ("reading the settings", &["settings::Settings::from_json"]),
    ("matching images to rules", &["plan::Plan::new"]),
    (
        "host-call payloads built, answers read",
        &["<verify_image_signatures::verifier::host::HostVerifier<H> as verify_image_signatures::verifier::check::Verifier>::verify"],
    ),
    (
        "producing the patch",
        &["mutation::pins", "mutation::apply", "policy::object_text"],
    ),
];

/// `profile --cut`: the parts of one evaluation, from callgrind_annotate's inclusive counts.
fn cut() -> ExitCode {
    let mut counts = std::collections::HashMap::new();
    for line in std::io::stdin().lines().map_while(Result::ok) {
        let Some((count, rest)) = line.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(count) = count.replace(',', "").parse::<u64>() else {
            continue;
        };
        let Some(function) = rest.split_once(":").map(|(_, f)| f) else {
            continue;
        };
        let function = function.split(" [").next().unwrap_or(function);
        let function = function
            .strip_prefix("verify_image_signatures::")
            .unwrap_or(function);
        *counts.entry(function.to_owned()).or_insert(0) += count;
    }
    // `None` when the compiler inlined every function named: their count is in the rest.
    let per_evaluation = |names: &[&str]| -> Option<u64> {
        let found: Vec<u64> = names
            .iter()
            .filter_map(|n| counts.get(*n).copied())
            .collect();
        (!found.is_empty()).then(|| found.iter().sum::<u64>() / EVALUATIONS as u64)
    };
    let (Some(whole), Some(answer)) = (
        per_evaluation(&["response::respond"]),
        per_evaluation(&["policy::answer"]),
    ) else {
        eprintln!("no response::respond or policy::answer in the profile");
        return ExitCode::FAILURE;
    };
    let encoding = whole - answer;
    println!("| part of one evaluation | instructions | share |");
    println!("|---|---|---|");
    let mut accounted = 0;
    let row = |part: &str, count: u64| {
        println!(
            "| {part} | {count} | {:.0} % |",
            count as f64 * 100.0 / whole as f64
        );
    };
    for (part, names) in PARTS {
        match per_evaluation(names) {
            Some(count) => {
                accounted += count;
                row(part, count);
            }
            None => println!("| {part} | inlined: in the rest | |"),
        }
    }
    row("encoding the answer", encoding);
    row(
        "the rest: verdicts, report, rejection text",
        whole.saturating_sub(accounted + encoding),
    );
    row("whole evaluation", whole);
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, update) = match args.as_slice() {
        [flag] if flag == "--cut" => return cut(),
        [name] => (name, false),
        [name, flag] if flag == "--update" => (name, true),
        _ => {
            eprintln!(
                "usage: profile CASE [--update] | profile --cut (CASE: a `make bench` case name)"
            );
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
    let settings = case.settings.to_string();
    if let Err(refused) = validate_settings(settings.as_bytes()) {
        eprintln!("settings refused: {refused}");
        return ExitCode::FAILURE;
    }
    let mut request = case.request.clone();
    if update {
        request["operation"] = json!("UPDATE");
        request["oldObject"] = request["object"].clone();
    }
    // The real host runs each evaluation in a fresh instance, so the policy parses its
    // settings every time. Here one process evaluates them all: two payloads whose settings
    // differ only by a space, taken in turn, keep it from reusing the last settings parsed.
    let payloads = [settings.clone(), settings.replacen('{', "{ ", 1)]
        .map(|settings| format!(r#"{{"request":{request},"settings":{settings}}}"#).into_bytes());
    let verifier = HostVerifier(Instant::default());
    for payload in payloads.iter().cycle().take(EVALUATIONS) {
        let answer = respond(payload, &verifier).expect("an answer");
        if !answer.starts_with(br#"{"accepted":true"#) {
            eprintln!("not accepted: {}", String::from_utf8_lossy(&answer));
            return ExitCode::FAILURE;
        }
    }
    let calls = verifier.0.calls.get() / EVALUATIONS;
    println!("{EVALUATIONS} evaluations of {name:?}, {calls} host calls each");
    ExitCode::SUCCESS
}
