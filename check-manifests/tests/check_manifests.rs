//! `check-manifests` end to end: the real binary, run on manifest files as `make
//! check-manifests` runs it, evaluating them in the real policy-server (or `kwctl run`)
//! against really signed images in a local registry.
//!
//! `E2E_KUBEWARDEN_VERSION` picks the Kubewarden version (`--kubewarden-version`); `make
//! test` points `POLICY_WASM` at the annotated policy, and `make e2e-kubewarden` runs this on
//! 1.31.0 and 1.35.0. Each test is one or two runs of the binary, each starting its host.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use e2e_tests::fixtures::{Fixtures, Registry};
use e2e_tests::repo_file;
use host_driver::{Kubewarden, VERSION_VAR};
use serde_json::{json, Value};

struct Env {
    /// Kept alive for the whole test process.
    _registry: Registry,
    fixtures: Fixtures,
    policy: PathBuf,
    kubewarden: &'static Kubewarden,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let policy = std::env::var_os("POLICY_WASM")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_file("annotated-policy.wasm"));
        assert!(
            policy.is_file(),
            "no {}: run `make e2e-tests`",
            policy.display()
        );
        let registry = Registry::start().expect("start the local registry");
        let fixtures = Fixtures::create(&registry).expect("create the signed images");
        Env {
            _registry: registry,
            fixtures,
            policy,
            kubewarden: Kubewarden::from_env().expect("the Kubewarden binaries"),
        }
    })
}

fn fx() -> &'static Fixtures {
    &env().fixtures
}

/// What one run of the binary came to.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// A scratch directory with the settings the tests share: key A for `signed/` and
/// `unsigned/`, and key W, warn only, for `acme/` (which key A signs).
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new() -> Work {
        let work = Work {
            dir: tempfile::Builder::new()
                .prefix("check-manifests-")
                .tempdir()
                .unwrap(),
        };
        let host = &fx().registry;
        let settings = json!({"signatures": [
            {"image": format!("{host}/signed/*"), "pubKeys": [fx().keys.a]},
            {"image": format!("{host}/unsigned/*"), "pubKeys": [fx().keys.a]},
            {"image": format!("{host}/acme/*"), "pubKeys": [fx().keys.w], "onFailure": "warn"},
        ]});
        work.write(
            "settings.yml",
            serde_json::to_string_pretty(&settings).unwrap(),
        );
        work
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `check-manifests` with these settings, the policy (unless `args` name one),
    /// metadata.yml and the registry's sources, then `args`.
    fn run(&self, args: &[&str]) -> Outcome {
        self.run_with(args, None, None)
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>, path: Option<&Path>) -> Outcome {
        let mut command = Command::new(env!("CARGO_BIN_EXE_check-manifests"));
        command
            .current_dir(self.dir.path())
            .arg("--settings")
            .arg(self.path("settings.yml"));
        if !args.contains(&"--policy") {
            command.arg("--policy").arg(&env().policy);
        }
        command
            .arg("--metadata")
            .arg(repo_file("metadata.yml"))
            .arg("--sources-path")
            .arg(&fx().sources)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(version) = std::env::var_os(VERSION_VAR).filter(|v| !v.is_empty()) {
            command.arg("--kubewarden-version").arg(version);
        }
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let mut child = command.spawn().expect("run check-manifests");
        let mut input = child.stdin.take().unwrap();
        input
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        drop(input);
        let output = child.wait_with_output().unwrap();
        let outcome = Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        let _ = writeln!(
            std::io::stderr(),
            "check-manifests {} -> exit {}\n{}",
            args.join(" "),
            outcome.code,
            outcome.stderr
        );
        outcome
    }
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n          ports: [{{containerPort: 8080}}]\n"
    )
}

fn cronjob(name: &str, image: &str) -> String {
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n            - name: {name}\n              image: {image}\n"
    )
}

const SERVICE: &str =
    "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80\n";
const CONFIG_MAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  level: info\n";

/// The result of `file:document` (`item` of a list) in a JSON report.
fn result<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            let s = &r["source"];
            let mut name = format!(
                "{}:{}",
                Path::new(s["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy(),
                s["document"]
            );
            if let Some(item) = s["item"].as_u64() {
                name.push_str(&format!(" items[{item}]"));
            }
            name == source
        })
        .unwrap_or_else(|| panic!("no result for {source} in {report:#}"))
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

#[test]
fn each_kind_of_verdict_in_json_and_junit() {
    let work = Work::new();
    let images = &fx().images;
    let chart = [
        "# Source: web/templates/deployment.yaml",
        &deployment("web", &images.key_a.reference),
        "---\n# an empty document\n---",
        "# Source: web/templates/service.yaml",
        SERVICE,
        "---",
        CONFIG_MAP,
        "---",
        &cronjob("nightly", &images.unsigned.reference),
    ]
    .join("\n");
    work.write("charts/web.yaml", chart);
    let warn_only = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: debug, namespace: tools}}\nspec:\n  containers: [{{name: d, image: \"{}\"}}]\n",
        images.nested.reference
    );
    let list = format!(
        "---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: StatefulSet\n  metadata: {{name: db}}\n  spec:\n    template:\n      spec:\n        containers: [{{name: db, image: '{}'}}]\n- apiVersion: v1\n  kind: Namespace\n  metadata: {{name: team}}\n",
        images.key_a.reference
    );
    work.write("charts/other.yml", format!("{warn_only}{list}"));
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": images.key_a.reference}]}}}});
    work.write(
        "charts/job.json",
        serde_json::to_string_pretty(&job).unwrap(),
    );

    let outcome = work.run(&["--output", "json", "--junit", "junit.xml", "charts"]);
    assert_eq!(
        outcome.code, 1,
        "a rejection, nothing unreadable:\n{}",
        outcome.stdout
    );
    let report = outcome.json();

    // The schema, field by field.
    assert_eq!(report["schemaVersion"], 1);
    assert_eq!(
        keys(&report),
        [
            "exitCode",
            "host",
            "pinned",
            "policy",
            "results",
            "routed",
            "schemaVersion",
            "summary"
        ]
    );
    assert_eq!(report["exitCode"], 1);
    assert_eq!(
        keys(&report["host"]),
        ["clients", "name", "note", "perObject", "version"]
    );
    assert_eq!(report["host"]["name"], "policy-server");
    assert_eq!(report["host"]["version"], env().kubewarden.version);
    assert_eq!(report["host"]["perObject"], false);
    assert_eq!(
        report["policy"],
        format!(
            "file://{}",
            std::path::absolute(&env().policy).unwrap().display()
        )
    );
    assert!(report["routed"]
        .as_array()
        .unwrap()
        .contains(&json!("apps/v1/deployments")));
    assert_eq!(
        report["summary"],
        json!({"objects": 8, "admitted": 4, "rejected": 1, "notChecked": 3, "unreadable": 0, "errors": 0})
    );
    for result in report["results"].as_array().unwrap() {
        assert_eq!(
            keys(result),
            ["images", "message", "object", "source", "verdict", "warnings"]
        );
        assert_eq!(
            keys(&result["source"]),
            ["document", "file", "item", "line"]
        );
        assert_eq!(
            keys(&result["object"]),
            ["apiVersion", "kind", "name", "namespace"]
        );
        for image in result["images"].as_array().unwrap() {
            assert_eq!(keys(image), ["at", "digest", "image", "pinned", "reason"]);
        }
    }

    // Admitted and pinned, as in the cluster.
    let web = result(&report, "web.yaml:1");
    assert_eq!(web["verdict"], "admitted");
    assert_eq!(web["source"]["line"], 1);
    assert_eq!(
        web["object"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "web"})
    );
    assert_eq!(
        web["images"],
        json!([{"image": images.key_a.reference, "at": "spec.template.spec.containers[0]", "digest": images.key_a.digest,
                "pinned": format!("{}@{}", images.key_a.reference, images.key_a.digest), "reason": null}])
    );
    // Empty documents are counted, never reported.
    assert_eq!(result(&report, "web.yaml:3")["object"]["kind"], "Service");
    for not_sent in ["web.yaml:3", "web.yaml:4", "other.yml:2 items[1]"] {
        let row = result(&report, not_sent);
        assert_eq!(row["verdict"], "not-checked", "{row}");
        assert!(
            row["message"]
                .as_str()
                .unwrap()
                .starts_with("the policy's rules do not send it"),
            "{row}"
        );
    }
    assert_eq!(
        result(&report, "other.yml:2 items[1]")["object"]["namespace"],
        Value::Null,
        "cluster-scoped"
    );
    // Rejected, naming the image and why.
    let nightly = result(&report, "web.yaml:5");
    assert_eq!(nightly["verdict"], "rejected");
    assert_eq!(nightly["object"]["kind"], "CronJob");
    let refused = &nightly["images"][0];
    assert_eq!(refused["image"], images.unsigned.reference);
    assert_eq!(
        refused["at"],
        "spec.jobTemplate.spec.template.spec.containers[0]"
    );
    assert_eq!(
        refused["reason"],
        "signatures[1] pubKeys: pubKeys[0]: no signatures"
    );
    assert!(nightly["message"]
        .as_str()
        .unwrap()
        .starts_with("1 image failed verification: "));
    // Warn only: admitted, not pinned, the warning shown.
    let debug = result(&report, "other.yml:1");
    assert_eq!(debug["verdict"], "admitted");
    assert_eq!(debug["object"]["namespace"], "tools");
    assert_eq!(debug["images"][0]["pinned"], Value::Null);
    assert_eq!(
        debug["warnings"],
        json!([format!(
            "{} at spec.containers[0]: signatures[2] (warn only): not-signed",
            images.nested.reference
        )])
    );
    // A list's item and a JSON file.
    let db = result(&report, "other.yml:2 items[0]");
    assert_eq!(
        (db["verdict"].as_str(), db["object"]["kind"].as_str()),
        (Some("admitted"), Some("StatefulSet"))
    );
    assert_eq!(db["images"][0]["digest"], images.key_a.digest);
    let migrate = result(&report, "job.json:1");
    assert_eq!(migrate["verdict"], "admitted");
    assert_eq!(
        migrate["images"][0]["pinned"],
        format!("{}@{}", images.key_a.reference, images.key_a.digest)
    );

    // JUnit, read by an XML parser.
    let xml = std::fs::read_to_string(work.path("junit.xml")).unwrap();
    let document = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let suites = document.root_element();
    assert_eq!(suites.tag_name().name(), "testsuites");
    let attribute =
        |node: roxmltree::Node, name| node.attribute(name).unwrap_or_default().to_owned();
    assert_eq!(
        ["tests", "failures", "errors", "skipped"].map(|a| attribute(suites, a)),
        ["8", "1", "0", "3"]
    );
    let cases: Vec<roxmltree::Node> = document
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 8);
    let failed: Vec<&roxmltree::Node> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        attribute(*failed[0], "name").contains("CronJob default/nightly"),
        "{xml}"
    );
    let failure = failed[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(
        attribute(failure, "message").contains(&images.unsigned.reference),
        "{xml}"
    );
    let skipped = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("skipped")))
        .count();
    assert_eq!(skipped, 3);
    let suite_names: Vec<String> = document
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|n| {
            Path::new(&attribute(n, "name"))
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(suite_names, ["job.json", "other.yml", "web.yaml"]);
}

#[test]
fn all_admitted_exits_0_with_the_table_naming_host_and_digests() {
    let work = Work::new();
    let images = &fx().images;
    work.write(
        "web.yaml",
        [deployment("web", &images.key_a.reference), SERVICE.into()].join("---\n"),
    );
    let outcome = work.run(&["web.yaml"]);
    assert_eq!(outcome.code, 0, "{}\n{}", outcome.stdout, outcome.stderr);
    let table = &outcome.stdout;
    let version = &env().kubewarden.version;
    assert!(
        table.contains(&format!(
            "host:   policy-server {version}, started once for the run"
        )),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.contains("Deployment default/web"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("web.yaml:1") && row.contains("admitted"),
        "{row}"
    );
    assert!(
        row.contains(&format!(
            "{} verified {}, pinned",
            images.key_a.reference, images.key_a.digest
        )),
        "{row}"
    );
    assert!(table.contains("not checked"), "{table}");
    assert!(
        table.ends_with("2 objects: 1 admitted, 0 rejected, 1 not checked; exit code 0\n"),
        "{table}"
    );
}

#[test]
fn pinned_manifests_differ_from_the_input_only_in_the_pinned_images() {
    let work = Work::new();
    let images = &fx().images;
    let (signed, unsigned) = (&images.key_a.reference, &images.unsigned.reference);
    let pinned = format!("{signed}@{}", images.key_a.digest);
    // Comments, key order, every quoting style, anchors and flow collections.
    let chart = format!(
        "# Source: web/templates/deployment.yaml\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web   # the front end\n  labels: &labels {{app: web, tier: \"front\"}}\nspec:\n  selector: {{matchLabels: *labels}}\n  template:\n    metadata: {{labels: *labels}}\n    spec:\n      initContainers:\n      - name: init\n        image: '{signed}'  # single\n      containers:\n      - image: \"{signed}\"   # double, before its name\n        name: web\n      - {{name: side, image: {signed}}}\n      - name: plain\n        image: {signed}\n---\n{}",
        cronjob("nightly", unsigned)
    );
    let json_text = format!(
        "{{\n    \"apiVersion\": \"v1\",\n    \"kind\": \"Pod\",\n    \"metadata\": {{ \"name\": \"p\" }},\n    \"spec\": {{ \"containers\": [ {{ \"name\": \"p\", \"image\": \"{signed}\" }} ] }}\n}}\n"
    );
    work.write("in/web.yaml", &chart);
    work.write("in/sub/pod.json", &json_text);
    work.write("in/service.yaml", SERVICE);
    let outcome = work.run(&["--write-pinned", "out", "in"]);
    assert_eq!(
        outcome.code, 1,
        "the CronJob is rejected:\n{}",
        outcome.stdout
    );
    let expected_chart = chart
        .replace(&format!("'{signed}'"), &format!("'{pinned}'"))
        .replace(&format!("\"{signed}\""), &format!("\"{pinned}\""))
        .replace(&format!("image: {signed}}}"), &format!("image: {pinned}}}"))
        .replace(&format!("image: {signed}\n"), &format!("image: {pinned}\n"));
    assert_eq!(expected_chart.matches(&pinned).count(), 4);
    let read = |path: &str| std::fs::read_to_string(work.path(path)).unwrap();
    assert_eq!(read("out/web.yaml"), expected_chart, "byte for byte");
    assert_eq!(read("out/sub/pod.json"), json_text.replace(signed, &pinned));
    assert_eq!(read("out/service.yaml"), SERVICE, "copied unchanged");
    assert!(
        outcome
            .stdout
            .contains("written: out/web.yaml (4 images pinned)\n"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("written: out/sub/pod.json (1 image pinned)\n"),
        "{}",
        outcome.stdout
    );

    // In place: the same bytes, and only the files that change are written.
    let service_before = std::fs::metadata(work.path("in/service.yaml"))
        .unwrap()
        .modified()
        .unwrap();
    let outcome = work.run(&["--in-place", "--output", "json", "in"]);
    assert_eq!(outcome.code, 1);
    assert_eq!(read("in/web.yaml"), expected_chart);
    assert_eq!(read("in/sub/pod.json"), read("out/sub/pod.json"));
    assert_eq!(
        std::fs::metadata(work.path("in/service.yaml"))
            .unwrap()
            .modified()
            .unwrap(),
        service_before
    );
    let pinned_files = outcome.json()["pinned"].clone();
    assert_eq!(pinned_files.as_array().unwrap().len(), 2, "{pinned_files}");
    // Pinned already: nothing more to pin.
    let again = work.run(&["--in-place", "--output", "json", "in"]);
    assert_eq!(again.json()["pinned"], json!([]));
    assert_eq!(read("in/web.yaml"), expected_chart);
}

#[test]
fn a_patch_that_maps_onto_no_scalar_leaves_the_file_unwritten() {
    let work = Work::new();
    let signed = &fx().images.key_a.reference;
    // The two containers share one scalar through an anchor: pinning one would pin both.
    let aliased = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: a}}\nspec:\n  containers:\n  - {{name: a, image: &img {signed}}}\n  initContainers:\n  - {{name: b, image: *img}}\n"
    );
    work.write("in/aliased.yaml", &aliased);
    work.write("in/fine.yaml", deployment("web", signed));
    let outcome = work.run(&["--write-pinned", "out", "--output", "json", "in"]);
    assert_eq!(
        outcome.code, 2,
        "a pinned file that could not be written:\n{}",
        outcome.stdout
    );
    let report = outcome.json();
    assert_eq!(result(&report, "aliased.yaml:1")["verdict"], "admitted");
    let pinned = report["pinned"].as_array().unwrap();
    let aliased_outcome = pinned
        .iter()
        .find(|p| p["file"].as_str().unwrap().ends_with("aliased.yaml"))
        .unwrap();
    assert_eq!(aliased_outcome["writtenTo"], Value::Null);
    let error = aliased_outcome["error"].as_str().unwrap();
    assert!(
        error.contains("aliased.yaml:1 (Pod default/a)") && error.contains("YAML"),
        "{error}"
    );
    assert!(
        !work.path("out/aliased.yaml").exists(),
        "never half written"
    );
    assert!(work.path("out/fine.yaml").exists());
}

#[test]
fn bad_input_is_reported_with_its_file_and_document_and_the_rest_still_checked() {
    let work = Work::new();
    let images = &fx().images;
    let signed = &images.key_a.reference;
    let mixed = [
        deployment("first", signed),
        "kind: [unclosed\n".into(),
        "metadata: {name: no-kind}\napiVersion: v1\n".into(),
        "apiVersion: v1\nkind: Pod\n".into(),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: twice}}\nspec:\n  containers:\n  - name: a\n    image: {signed}\n    image: {}\n",
            images.unsigned.reference
        ),
        deployment("last", signed),
    ]
    .join("---\n");
    work.write("in/mixed.yaml", mixed);
    // 50 MB of a valid ConfigMap.
    let mut large =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: large}\ndata:\n");
    let value = "x".repeat(100);
    for n in 0.. {
        if large.len() >= 50_000_000 {
            break;
        }
        large.push_str(&format!("  k{n}: {value}\n"));
    }
    work.write("in/large.yaml", &large);
    work.write("in/binary.yaml", b"apiVersion: v1\n\x00\x01\x02\xff\xfe");
    std::os::unix::fs::symlink(work.path("in"), work.path("in/loop")).unwrap();
    let outcome = work.run(&["--output", "json", "in"]);
    assert_eq!(outcome.code, 2, "{}", outcome.stdout);
    let report = outcome.json();
    let by_source = |source: &str| result(&report, source);
    assert_eq!(by_source("mixed.yaml:1")["verdict"], "admitted");
    assert_eq!(
        by_source("mixed.yaml:6")["verdict"],
        "admitted",
        "checked after every bad document"
    );
    let unreadable = |source: &str, says: &str| {
        let row = by_source(source);
        assert_eq!(row["verdict"], "unreadable", "{row}");
        assert_eq!(row["object"], Value::Null);
        let message = row["message"].as_str().unwrap();
        assert!(message.contains(says), "{source}: {message}");
    };
    unreadable("mixed.yaml:2", "invalid YAML");
    unreadable("mixed.yaml:3", "no `kind`");
    unreadable("mixed.yaml:4", "no `metadata`");
    unreadable("mixed.yaml:5", "duplicate entry with key \"image\"");
    let file_row = |name: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"]["file"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no row for {name}: {report:#}"))
    };
    for (name, says) in [
        ("large.yaml", "more than the limit of 33554432 bytes"),
        ("binary.yaml", "binary data"),
        ("loop", "a loop of symbolic links"),
    ] {
        let row = file_row(name);
        assert_eq!(
            (row["verdict"].as_str(), row["source"]["document"].as_u64()),
            (Some("unreadable"), None),
            "{row}"
        );
        assert!(row["message"].as_str().unwrap().contains(says), "{row}");
    }
    assert_eq!(report["summary"]["unreadable"], 7);
    assert_eq!(report["summary"]["admitted"], 2);
}

#[test]
fn refused_settings_exit_2_with_the_policys_message() {
    let work = Work::new();
    work.write(
        "settings.yml",
        "signatures:\n  - image: \"*\"\n    pubkeys: [\"x\"]\n",
    );
    work.write("web.yaml", deployment("web", &fx().images.key_a.reference));
    for host in ["policy-server", "kwctl"] {
        let outcome = work.run(&["--host", host, "web.yaml"]);
        assert_eq!(outcome.code, 2, "{host}");
        assert_eq!(outcome.stdout, "", "no report");
        let says = ": signatures[0].pubkeys: unknown field `pubkeys`";
        assert!(
            outcome
                .stderr
                .contains("the policy refused the settings in")
                && outcome.stderr.contains(says),
            "{host}: {}",
            outcome.stderr
        );
    }
}

#[test]
fn standard_input_is_read_for_a_dash() {
    let work = Work::new();
    let chart = [
        deployment("web", &fx().images.unsigned.reference),
        CONFIG_MAP.into(),
    ]
    .join("---\n");
    let outcome = work.run_with(&["--output", "json", "-"], Some(&chart), None);
    assert_eq!(outcome.code, 1);
    let report = outcome.json();
    assert_eq!(report["results"][0]["source"]["file"], "-");
    assert_eq!(report["results"][0]["verdict"], "rejected");
    assert_eq!(report["results"][1]["verdict"], "not-checked");
}

#[test]
fn without_policy_server_one_kwctl_run_per_object_says_so() {
    let work = Work::new();
    let images = &fx().images;
    work.write(
        "chart.yaml",
        [
            deployment("web", &images.key_a.reference),
            cronjob("nightly", &images.unsigned.reference),
        ]
        .join("---\n"),
    );
    // A PATH with kwctl alone.
    let bin = work.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let kwctl = &env().kubewarden.kwctl;
    std::os::unix::fs::symlink(kwctl, bin.join(kwctl.file_name().unwrap())).unwrap();
    let outcome = work.run_with(&["--output", "json", "chart.yaml"], None, Some(&bin));
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("policy-server is not installed: falling back to one `kwctl run` per object"),
        "{}",
        outcome.stderr
    );
    let report = outcome.json();
    assert_eq!(report["host"]["name"], "kwctl");
    assert_eq!(report["host"]["version"], env().kubewarden.version);
    assert_eq!(report["host"]["perObject"], true);
    let web = result(&report, "chart.yaml:1");
    assert_eq!(web["verdict"], "admitted");
    assert_eq!(
        web["images"][0]["pinned"],
        format!("{}@{}", images.key_a.reference, images.key_a.digest)
    );
    assert_eq!(
        result(&report, "chart.yaml:2")["images"][0]["reason"],
        "signatures[1] pubKeys: pubKeys[0]: no signatures"
    );
}

#[test]
fn a_private_sigstore_trust_root_is_passed_to_the_host() {
    let work = Work::new();
    let identity = &fx().email_identity;
    let host = &fx().registry;
    work.write(
        "settings.yml",
        json!({"signatures": [{"image": format!("{host}/keyless/*"), "keyless": [{"issuer": identity.issuer, "subject": identity.subject}]}]}).to_string(),
    );
    work.write(
        "web.yaml",
        deployment("web", &fx().images.keyless_email.reference),
    );
    let trust = fx().trust_config.display().to_string();
    let outcome = work.run(&["--sigstore-trust-config", &trust, "web.yaml"]);
    if env().kubewarden.server_takes_trust_config() {
        assert_eq!(outcome.code, 0, "{}\n{}", outcome.stdout, outcome.stderr);
        assert!(outcome.stdout.contains("admitted"), "{}", outcome.stdout);
    } else {
        assert_eq!(outcome.code, 2);
        assert!(
            outcome.stderr.contains(&format!(
                "--sigstore-trust-config: policy-server {} has no such option",
                env().kubewarden.version
            )),
            "{}",
            outcome.stderr
        );
        // kwctl takes it.
        let outcome = work.run(&[
            "--sigstore-trust-config",
            &trust,
            "--host",
            "kwctl",
            "web.yaml",
        ]);
        assert_eq!(outcome.code, 0, "{}\n{}", outcome.stdout, outcome.stderr);
    }
}

#[test]
fn a_policy_in_a_registry_is_read_and_run_from_there() {
    let work = Work::new();
    let uri = format!(
        "registry://{}/policies/verify-image-signatures:check-manifests",
        fx().registry
    );
    host_driver::Kwctl::new(env().kubewarden)
        .unwrap()
        .push(&env().policy, &uri, Some(&fx().sources))
        .unwrap();
    work.write(
        "web.yaml",
        cronjob("nightly", &fx().images.unsigned.reference),
    );
    let outcome = work.run(&["--policy", &uri, "--output", "json", "web.yaml"]);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    let report = outcome.json();
    assert_eq!(report["policy"], uri);
    assert_eq!(result(&report, "web.yaml:1")["verdict"], "rejected");
}

#[test]
fn kinds_outside_pod_specs_and_the_rules_of_a_cluster_admission_policy() {
    let work = Work::new();
    let images = &fx().images;
    let host = &fx().registry;
    let settings = json!({
        "signatures": [
            {"image": format!("{host}/signed/*"), "pubKeys": [fx().keys.a]},
            {"image": format!("{host}/unsigned/*"), "pubKeys": [fx().keys.a]},
        ],
        "imageLocations": [{"group": "example.com", "kind": "Widget", "paths": ["spec.image"]}],
    });
    work.write("settings.yml", settings.to_string());
    let task_run = format!(
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata:\n  name: build\nspec:\n  taskSpec:\n    steps:\n      - name: build\n        image: {}   # the builder\n        script: make\n",
        images.key_a.reference
    );
    let widget = format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  image: {}\n",
        images.unsigned.reference
    );
    work.write("in/ci.yaml", [task_run.clone(), widget].join("---\n"));

    // The rules embedded in the policy send the TaskRun, not the Widget.
    let outcome = work.run(&["--output", "json", "--write-pinned", "out", "in"]);
    assert_eq!(outcome.code, 0, "{}", outcome.stdout);
    let report = outcome.json();
    let build = result(&report, "ci.yaml:1");
    assert_eq!(build["verdict"], "admitted");
    assert_eq!(build["images"][0]["at"], "spec.taskSpec.steps[0].image");
    let pinned = format!("{}@{}", images.key_a.reference, images.key_a.digest);
    assert_eq!(build["images"][0]["pinned"], pinned);
    assert_eq!(result(&report, "ci.yaml:2")["verdict"], "not-checked");
    let written = std::fs::read_to_string(work.path("out/ci.yaml")).unwrap();
    assert!(
        written.starts_with(&task_run.replace(&images.key_a.reference, &pinned)),
        "{written}"
    );

    // A ClusterAdmissionPolicy that also lists widgets sends the Widget too.
    let policy = "apiVersion: policies.kubewarden.io/v1\nkind: ClusterAdmissionPolicy\nmetadata: {name: verify-image-signatures}\nspec:\n  module: registry://registry.example.com/verify-image-signatures:v0.1.0\n  mutating: true\n  rules:\n    - apiGroups: [tekton.dev]\n      apiVersions: [v1]\n      resources: [taskruns]\n      operations: [CREATE, UPDATE]\n    - apiGroups: [example.com]\n      apiVersions: [v1]\n      resources: [widgets]\n      operations: [CREATE, UPDATE]\n";
    work.write("policy.yaml", policy);
    let outcome = work.run(&["--output", "json", "--rules", "policy.yaml", "in"]);
    assert_eq!(outcome.code, 1, "{}", outcome.stdout);
    let report = outcome.json();
    assert_eq!(
        report["routed"],
        json!(["tekton.dev/v1/taskruns", "example.com/v1/widgets"])
    );
    let widget = result(&report, "ci.yaml:2");
    assert_eq!(widget["verdict"], "rejected");
    assert_eq!(
        widget["images"],
        json!([{"image": images.unsigned.reference, "at": "spec.image", "digest": null, "pinned": null,
                "reason": "signatures[1] pubKeys: pubKeys[0]: no signatures"}])
    );
}
