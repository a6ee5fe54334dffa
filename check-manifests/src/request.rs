//! The AdmissionRequest the API server sends a validating or mutating webhook when an object
//! is created (`admission.k8s.io/v1`, operation `CREATE`): kind and resource from the
//! object's `apiVersion` and `kind`, its name, and its namespace as the API server fills it
//! in (the object's own, or the one it is applied to, for namespaced kinds).

use serde_json::{json, Value};

use crate::manifest::Manifest;
use crate::resources::Resource;

/// Who the requests come from: a policy may read `userInfo`, this one does not.
const USERNAME: &str = "check-manifests";

/// The CREATE AdmissionRequest of `manifest`, number `uid`; a namespaced object without a
/// namespace is created in `namespace`, which the API server writes into the object too.
pub fn admission_request(
    uid: &str,
    manifest: &Manifest,
    resource: &Resource,
    namespace: &str,
) -> Value {
    let mut object = manifest.object.clone();
    let namespace = resource
        .namespaced
        .then(|| manifest.namespace.as_deref().unwrap_or(namespace));
    if let (Some(namespace), Some(metadata)) = (namespace, object["metadata"].as_object_mut()) {
        metadata
            .entry("namespace")
            .or_insert_with(|| Value::from(namespace));
    }
    let kind = json!({"group": resource.group, "version": resource.version, "kind": manifest.kind});
    let gvr = json!({"group": resource.group, "version": resource.version, "resource": resource.resource});
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": gvr,
        "requestKind": kind,
        "requestResource": gvr,
        "name": manifest.object["metadata"]["name"].as_str().unwrap_or_default(),
        "operation": "CREATE",
        "userInfo": {"username": USERNAME, "groups": ["system:authenticated"]},
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    });
    if let Some(namespace) = namespace {
        request["namespace"] = Value::from(namespace);
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Origin;
    use crate::resources::Resources;

    fn manifest(api_version: &str, kind: &str, metadata: Value) -> Manifest {
        Manifest {
            origin: Origin::file("f"),
            object: json!({"apiVersion": api_version, "kind": kind, "metadata": metadata}),
            api_version: api_version.into(),
            kind: kind.into(),
            name: metadata["name"].as_str().unwrap_or("generated-").into(),
            namespace: metadata["namespace"].as_str().map(Into::into),
        }
    }

    #[test]
    fn a_create_as_the_api_server_sends_it() {
        let resources = Resources::default();
        let web = manifest("apps/v1", "Deployment", json!({"name": "web"}));
        let request = admission_request(
            "7",
            &web,
            &resources.resource("apps/v1", "Deployment"),
            "team",
        );
        assert_eq!(
            request,
            json!({
                "uid": "7",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "requestKind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": "web",
                "namespace": "team",
                "operation": "CREATE",
                "userInfo": {"username": "check-manifests", "groups": ["system:authenticated"]},
                "object": {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team"}},
                "oldObject": null,
                "dryRun": false,
                "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
            })
        );
        let own = manifest("v1", "Pod", json!({"name": "p", "namespace": "own"}));
        let request = admission_request("8", &own, &resources.resource("v1", "Pod"), "team");
        assert_eq!(request["namespace"], "own");
        let cluster = manifest("v1", "Namespace", json!({"name": "n"}));
        let request = admission_request(
            "9",
            &cluster,
            &resources.resource("v1", "Namespace"),
            "team",
        );
        assert!(request.get("namespace").is_none());
        assert!(request["object"]["metadata"].get("namespace").is_none());
        let generated = manifest("batch/v1", "Job", json!({"generateName": "run-"}));
        let request = admission_request(
            "10",
            &generated,
            &resources.resource("batch/v1", "Job"),
            "team",
        );
        assert_eq!(request["name"], "");
    }
}
