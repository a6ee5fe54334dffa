//! The files that ship the policy agree with each other and with the code: one version in
//! Cargo.toml, metadata.yml and artifacthub-pkg.yml, and questions-ui.yml offers every settings
//! key the policy accepts. (That artifacthub-pkg.yml is what `kwctl scaffold artifacthub`
//! makes of metadata.yml is checked with the real kwctl in e2e-tests/tests/artifact.rs.)

use std::collections::BTreeSet;

use serde_yaml::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn yaml(name: &str) -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/").to_owned() + name;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {value:?}"))
}

#[test]
fn one_version_everywhere() {
    let metadata = yaml("metadata.yml");
    let package = yaml("artifacthub-pkg.yml");
    assert_eq!(
        text(&metadata["annotations"], "io.kubewarden.policy.version"),
        VERSION
    );
    assert_eq!(text(&package, "version"), VERSION);
    let tag = format!(":v{VERSION}");
    let image = text(&package["containersImages"][0], "image");
    assert_eq!(
        image,
        format!(
            "{}{tag}",
            text(&metadata["annotations"], "io.kubewarden.policy.ociUrl")
        )
    );
    assert!(text(&package, "install").contains(&tag));
    let links = package["links"].as_sequence().expect("links");
    let policy_link = links
        .iter()
        .find(|l| l["name"] == "policy")
        .expect("policy link");
    assert!(text(policy_link, "url").contains(&format!("/v{VERSION}/")));
}

#[test]
fn metadata_declares_every_workload_kind_and_how_the_policy_runs() {
    let metadata = yaml("metadata.yml");
    let mut covered = BTreeSet::new();
    for rule in metadata["rules"].as_sequence().expect("rules") {
        let operations: Vec<&str> = rule["operations"]
            .as_sequence()
            .expect("operations")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(operations, ["CREATE", "UPDATE"], "{rule:?}");
        for group in rule["apiGroups"].as_sequence().expect("apiGroups") {
            for resource in rule["resources"].as_sequence().expect("resources") {
                covered.insert(format!(
                    "{}/{}",
                    group.as_str().unwrap(),
                    resource.as_str().unwrap()
                ));
            }
        }
    }
    let expected: BTreeSet<String> = [
        "/pods",
        "/pods/ephemeralcontainers",
        "/replicationcontrollers",
        "apps/deployments",
        "apps/replicasets",
        "apps/statefulsets",
        "apps/daemonsets",
        "batch/jobs",
        "batch/cronjobs",
        "tekton.dev/tasks",
        "tekton.dev/clustertasks",
        "tekton.dev/taskruns",
        "tekton.dev/pipelines",
        "tekton.dev/pipelineruns",
        "tekton.dev/stepactions",
        "argoproj.io/workflows",
        "argoproj.io/workflowtemplates",
        "argoproj.io/clusterworkflowtemplates",
        "argoproj.io/cronworkflows",
        "kubevirt.io/virtualmachines",
        "kubevirt.io/virtualmachineinstances",
        "kubevirt.io/virtualmachineinstancereplicasets",
    ]
    .map(String::from)
    .into();
    assert_eq!(covered, expected);
    assert_eq!(metadata["mutating"], Value::Bool(true));
    assert_eq!(metadata["contextAware"], Value::Bool(false));
    assert!(metadata["backgroundAudit"].is_bool());
    assert_eq!(text(&metadata, "executionMode"), "kubewarden-wapc");
    assert_eq!(text(&metadata, "policyType"), "kubernetes");
    // Verification, and the tag digest and image index `platformSignatures` reads; the
    // end-to-end suite checks every call it records, and kwctl 1.35's scan of the module,
    // against this list.
    assert_eq!(
        metadata["hostCapabilities"],
        serde_yaml::from_str::<Value>(
            "[oci/v2/verify, oci/v1/manifest_digest, oci/v1/oci_manifest]"
        )
        .unwrap()
    );
    for key in [
        "io.artifacthub.displayName",
        "io.artifacthub.resources",
        "io.artifacthub.keywords",
        "io.kubewarden.policy.ociUrl",
        "io.kubewarden.policy.title",
        "io.kubewarden.policy.description",
        "io.kubewarden.policy.author",
        "io.kubewarden.policy.url",
        "io.kubewarden.policy.source",
        "io.kubewarden.policy.license",
        "io.kubewarden.policy.usage",
    ] {
        assert!(
            !text(&metadata["annotations"], key).trim().is_empty(),
            "{key}"
        );
    }
}

/// Every `variable` of a questions tree, split into its dotted parts.
fn variables(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                if let (Some("variable"), Some(variable)) = (key.as_str(), child.as_str()) {
                    out.extend(variable.split('.').map(String::from));
                }
                variables(child, out);
            }
        }
        Value::Sequence(items) => items.iter().for_each(|item| variables(item, out)),
        _ => {}
    }
}

/// `url_prefix` and `urlPrefix` are one key: compare without case and underscores.
fn folded(key: &str) -> String {
    key.replace('_', "").to_lowercase()
}

#[test]
fn questions_ui_offers_every_settings_key() {
    let mut offered = BTreeSet::new();
    variables(&yaml("questions-ui.yml"), &mut offered);
    let offered: BTreeSet<String> = offered.iter().map(|v| folded(v)).collect();
    let missing: Vec<&str> = verify_image_signatures::settings::accepted_keys()
        .into_iter()
        .filter(|key| !offered.contains(&folded(key)))
        .collect();
    assert!(missing.is_empty(), "questions-ui.yml lacks {missing:?}");
    // The probe really reads the parser: the keys of every level are there.
    let accepted = verify_image_signatures::settings::accepted_keys();
    for key in [
        "signatures",
        "anyOf",
        "certificateChain",
        "urlPrefix",
        "url_prefix",
        "owner",
    ] {
        assert!(accepted.contains(key), "{key} not in {accepted:?}");
    }
}
