//! The policy shipped the way Kubewarden ships policies, by the real `kwctl`: `policy.wasm`
//! annotated with `metadata.yml` and the README, inspected, pushed to a real registry as a
//! Kubewarden OCI artifact, pulled back, scaffolded into a ClusterAdmissionPolicy, and run from
//! `registry://` on signed and unsigned images; and `artifacthub-pkg.yml` is what
//! `kwctl scaffold artifacthub` makes of the metadata. From Kubewarden 1.35, kwctl scans the
//! module for the host capabilities it calls: every one is declared in `metadata.yml`.
//!
//! `make test` builds `policy.wasm` (the module as the compiler leaves it) first;
//! `E2E_KUBEWARDEN_VERSION` picks the kwctl.

use e2e_tests::fixtures::{Fixtures, Registry};
use e2e_tests::repo_file;
use host_driver::Kubewarden;
use serde_json::{json, Value};

/// The media types of a Kubewarden policy artifact.
const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v1+json";
const WASM_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// What kwctl 1.35's annotate says of a capability the module calls but does not declare.
const UNDECLARED: &str = "host capabilities used by the policy but not declared";

fn read_text(name: &str) -> String {
    std::fs::read_to_string(repo_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn yaml(text: &str) -> Value {
    serde_yaml::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}): {text}"))
}

/// Runs the real kwctl with its own HOME; its stdout, or a panic with its stderr.
struct Kwctl(host_driver::Kwctl);

impl Kwctl {
    fn new() -> Self {
        Self(host_driver::Kwctl::new(Kubewarden::from_env().unwrap()).unwrap())
    }

    /// stdout and stderr, or both as the error.
    fn try_run(&self, args: &[&str]) -> Result<(String, String), String> {
        let output = self.0.command().args(args).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            Ok((stdout, stderr))
        } else {
            Err(format!("{stdout}{stderr}"))
        }
    }

    #[track_caller]
    fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .unwrap_or_else(|e| panic!("kwctl {}: {e}", args.join(" ")))
            .0
    }
}

fn pod(image: &str) -> Value {
    json!({
        "uid": "artifact",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "operation": "CREATE",
        "name": "app",
        "namespace": "default",
        "userInfo": {"username": "e2e"},
        "object": {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
    })
}

/// The config and layer media types of the pushed manifest, and its digest.
fn pushed_manifest(reference: &str) -> (String, Vec<String>, String) {
    let (host, rest) = reference.split_once('/').unwrap();
    let (repository, tag) = rest.rsplit_once(':').unwrap();
    let answer = reqwest::blocking::Client::new()
        .get(format!("http://{host}/v2/{repository}/manifests/{tag}"))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    let digest = answer.headers()["Docker-Content-Digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let manifest: Value = serde_json::from_str(&answer.text().unwrap()).unwrap();
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap().to_owned())
        .collect();
    let config = manifest["config"]["mediaType"].as_str().unwrap().to_owned();
    (config, layers, digest)
}

#[test]
fn kwctl_annotates_pushes_pulls_and_scaffolds_the_policy() {
    let policy = repo_file("policy.wasm");
    assert!(policy.is_file(), "no policy.wasm: run `make e2e-tests`");
    let policy = policy.to_str().unwrap();
    let metadata_yml = yaml(&read_text("metadata.yml"));
    let readme = read_text("README.md");
    let kwctl = Kwctl::new();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();

    // annotate: metadata.yml, the README as usage, the protocol version the policy reports.
    let metadata_path = repo_file("metadata.yml");
    let readme_path = repo_file("README.md");
    let (_, annotate_log) = kwctl
        .try_run(&[
            "annotate",
            "-m",
            metadata_path.to_str().unwrap(),
            "-u",
            readme_path.to_str().unwrap(),
            "-o",
            &path("annotated.wasm"),
            policy,
        ])
        .unwrap();
    // 1.35 scans the module: every capability it calls is declared. (1.31 does not scan.)
    assert!(!annotate_log.contains(UNDECLARED), "{annotate_log}");
    let annotated = std::fs::read(path("annotated.wasm")).unwrap();

    // inspect: what a user sees of the annotated module.
    let inspected = kwctl.run(&["inspect", "-o", "yaml", &path("annotated.wasm")]);
    let inspected = yaml(&inspected);
    assert_eq!(inspected["rules"], metadata_yml["rules"], "{inspected}");
    assert_eq!(inspected["protocolVersion"], json!("v1"));
    assert_eq!(inspected["mutating"], json!(true));
    assert_eq!(
        inspected["annotations"]["io.kubewarden.policy.usage"],
        json!(readme)
    );
    if kwctl.0.kubewarden().grants_capabilities() {
        // Embedded as a set (sorted), written in metadata.yml in the order of the docs.
        let set = |list: &Value| {
            let mut names: Vec<String> = serde_json::from_value(list.clone()).unwrap();
            names.sort();
            names
        };
        assert_eq!(
            set(&inspected["hostCapabilities"]),
            set(&metadata_yml["hostCapabilities"])
        );
    }
    let human = kwctl.run(&["inspect", &path("annotated.wasm")]);
    assert!(human.contains("verify-image-signatures"), "{human}");

    // push: only an annotated module, as a Kubewarden OCI artifact.
    let registry = Registry::start().expect("start the local registry");
    let fixtures = Fixtures::create(&registry).expect("create the signed images");
    let sources_path = fixtures.sources.to_str().unwrap();
    let reference = format!(
        "{}/policies/verify-image-signatures:v{}",
        registry.host(),
        env!("CARGO_PKG_VERSION")
    );
    let uri = format!("registry://{reference}");
    let refused = kwctl
        .try_run(&["push", "--sources-path", sources_path, policy, &uri])
        .expect_err("kwctl must refuse to push a module without metadata");
    assert!(refused.contains("annotate"), "{refused}");
    kwctl.run(&[
        "push",
        "--sources-path",
        sources_path,
        &path("annotated.wasm"),
        &uri,
    ]);
    let (config, layers, digest) = pushed_manifest(&reference);
    assert_eq!(config, WASM_CONFIG_MEDIA_TYPE);
    assert_eq!(layers, vec![WASM_LAYER_MEDIA_TYPE.to_owned()]);

    // pull: the same bytes come back.
    kwctl.run(&[
        "pull",
        "--sources-path",
        sources_path,
        "-o",
        &path("pulled.wasm"),
        &uri,
    ]);
    assert!(std::fs::read(path("pulled.wasm")).unwrap() == annotated);

    // scaffold manifest: a ClusterAdmissionPolicy naming the module, with the metadata's rules.
    let manifest = kwctl.run(&[
        "scaffold",
        "manifest",
        "--type",
        "ClusterAdmissionPolicy",
        "--sources-path",
        sources_path,
        &uri,
    ]);
    let manifest = yaml(&manifest);
    assert_eq!(
        manifest["kind"],
        json!("ClusterAdmissionPolicy"),
        "{manifest}"
    );
    assert_eq!(manifest["spec"]["module"], json!(uri));
    assert_eq!(manifest["spec"]["rules"], metadata_yml["rules"]);
    assert_eq!(manifest["spec"]["mutating"], json!(true));

    // run from the registry, pinned by digest as a ClusterAdmissionPolicy may name it.
    let by_digest = format!(
        "registry://{}@{digest}",
        reference.rsplit_once(':').unwrap().0
    );
    let settings = json!({
        "signatures": [{"image": format!("{}/*", registry.host()), "pubKeys": [fixtures.keys.a]}],
    });
    let signed = &fixtures.images.key_a;
    let unsigned = &fixtures.images.unsigned.reference;
    std::fs::write(path("signed.json"), pod(&signed.reference).to_string()).unwrap();
    std::fs::write(path("unsigned.json"), pod(unsigned).to_string()).unwrap();
    let run = |request: &str| -> Value {
        let answer = kwctl.run(&[
            "run",
            "--sources-path",
            sources_path,
            "--sigstore-trust-config",
            fixtures.trust_config.to_str().unwrap(),
            "--settings-json",
            &settings.to_string(),
            "-r",
            &path(request),
            &by_digest,
        ]);
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    let accepted = run("signed.json");
    assert_eq!(accepted["allowed"], json!(true), "{accepted}");
    assert!(accepted["patch"].is_string(), "{accepted}");
    let rejected = run("unsigned.json");
    assert_eq!(rejected["allowed"], json!(false), "{rejected}");
    let message = rejected["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(unsigned) && message.contains("no signatures"),
        "{message}"
    );
}

#[test]
fn artifacthub_pkg_is_what_kwctl_scaffolds() {
    let kwctl = Kwctl::new();
    let metadata = repo_file("metadata.yml");
    let questions = repo_file("questions-ui.yml");
    let scaffolded = yaml(&kwctl.run(&[
        "scaffold",
        "artifacthub",
        "--metadata-path",
        metadata.to_str().unwrap(),
        "--questions-path",
        questions.to_str().unwrap(),
    ]));
    let committed = yaml(&read_text("artifacthub-pkg.yml"));
    let (Value::Object(scaffolded), Value::Object(committed)) = (scaffolded, committed) else {
        panic!("artifacthub-pkg.yml is not a mapping");
    };
    let keys = |map: &serde_json::Map<String, Value>| map.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&committed), keys(&scaffolded));
    for (field, value) in &scaffolded {
        // kwctl stamps the current time; the committed file carries the release date.
        if field == "createdAt" {
            continue;
        }
        assert_eq!(
            &committed[field], value,
            "artifacthub-pkg.yml `{field}` differs from `kwctl scaffold artifacthub`"
        );
    }
}
