//! What `make bench` relies on, shown on the real kwctl: replaying a recording is no way to
//! time a policy that calls the host, timing against a live registry is, and the host-call
//! and reading floors make the policy's calls and give its answer.

use e2e_tests::bench::floor::{validation_response, FloorBuild};
use e2e_tests::bench::objects::{admission_request, deployment};
use e2e_tests::fixtures::{push_signed_images, write_sources, Registry};
use e2e_tests::{policy_wasm, repo_file};
use host_driver::{recorded_wapc_calls, HostOptions, Kubewarden, Kwctl, Run, RunOutcome};
use serde_json::json;

#[test]
fn a_replayed_recording_fails_every_call_after_the_first_and_a_live_registry_none() {
    let kubewarden = Kubewarden::from_env().unwrap();
    let kwctl = Kwctl::new(kubewarden).unwrap();
    let registry = Registry::start().unwrap();
    let signed = push_signed_images(&registry, "bench/image", 1, 1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("sources.yml");
    write_sources(&sources, &[registry.host()]).unwrap();
    let host = HostOptions {
        sources_path: Some(sources),
        ..HostOptions::default()
    };
    let settings = json!({"signatures": [{
        "image": format!("{}/bench/*", registry.host()),
        "pubKeys": signed.keys,
    }]});
    let request = admission_request(deployment(
        "storefront",
        &[signed.images[0].reference.clone()],
    ));
    let policy = policy_wasm().display().to_string();
    let recording = dir.path().join("calls.yml");
    let run = Run {
        policy: &policy,
        settings: &settings,
        request: &request,
        host: &host,
        record: Some(&recording),
    };
    let RunOutcome::Answered(response) = kwctl.run(&run).unwrap() else {
        panic!("settings refused");
    };
    assert!(response.allowed && response.patch.is_some(), "{response:?}");
    let timed = Run {
        record: None,
        ..run
    };

    // kwctl answers each recorded exchange once: the second iteration's call already fails,
    // and the policy times its host-error path.
    let replayed = kwctl.bench(&timed, 1, Some(&recording)).unwrap();
    let failed = replayed.failed_callbacks();
    assert!(failed.len() > 100, "{} failed calls", failed.len());
    assert!(
        failed[0].contains("the list of recorded responses is empty"),
        "{}",
        failed[0]
    );
    let live = kwctl.bench(&timed, 1, None).unwrap();
    assert_eq!(live.failed_callbacks(), Vec::<String>::new());

    // The host-call floor makes the policy's calls, payloads and all, and answers as it did;
    // the reading floor too, after reading its payload.
    let text = std::fs::read_to_string(&recording).unwrap();
    let calls = recorded_wapc_calls(&text).unwrap();
    let answer = validation_response(&response, &request["object"]).unwrap();
    let build = FloorBuild {
        crate_dir: repo_file("e2e-tests/floor-policy"),
        target_dir: repo_file("target/floor"),
    };
    for (name, read) in [("call-floor", false), ("read-floor", true)] {
        let floor = build
            .build(&kwctl, dir.path(), name, read, &calls, &answer)
            .unwrap()
            .display()
            .to_string();
        let floor_recording = dir.path().join(format!("{name}-calls.yml"));
        let floor_run = Run {
            policy: &floor,
            record: Some(&floor_recording),
            ..timed
        };
        let RunOutcome::Answered(floor_response) = kwctl.run(&floor_run).unwrap() else {
            panic!("{name} refused its settings");
        };
        assert_eq!(floor_response, response, "{name}");
        let floor_calls = std::fs::read_to_string(&floor_recording).unwrap();
        assert_eq!(recorded_wapc_calls(&floor_calls).unwrap(), calls, "{name}");
    }
}
