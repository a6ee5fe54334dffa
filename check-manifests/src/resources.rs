//! Which API resource an object is created as: the `{group, version, resource}` the API
//! server names in an AdmissionRequest, and whether the kind is namespaced.
//!
//! Built-in kinds come from the API server's own names (below). A kind defined by a
//! CustomResourceDefinition in the same input takes that definition's plural and scope.
//! Any other kind is guessed as `kubectl` guesses without a cluster
//! (`meta.UnsafeGuessKindToResource`: lower case, then `s`, `es` after an `s`, `ies` for a
//! final `y`), and taken as namespaced.

use std::collections::HashMap;

use serde_json::Value;

use crate::manifest::Manifest;

/// `(group, kind, resource, namespaced)` of the kinds a Kubernetes API server serves itself.
const BUILT_IN: &[(&str, &str, &str, bool)] = &[
    ("", "Binding", "bindings", true),
    ("", "ComponentStatus", "componentstatuses", false),
    ("", "ConfigMap", "configmaps", true),
    ("", "Endpoints", "endpoints", true),
    ("", "Event", "events", true),
    ("", "LimitRange", "limitranges", true),
    ("", "Namespace", "namespaces", false),
    ("", "Node", "nodes", false),
    ("", "PersistentVolume", "persistentvolumes", false),
    ("", "PersistentVolumeClaim", "persistentvolumeclaims", true),
    ("", "Pod", "pods", true),
    ("", "PodTemplate", "podtemplates", true),
    ("", "ReplicationController", "replicationcontrollers", true),
    ("", "ResourceQuota", "resourcequotas", true),
    ("", "Secret", "secrets", true),
    ("", "Service", "services", true),
    ("", "ServiceAccount", "serviceaccounts", true),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        false,
    ),
    (
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
    ),
    ("apiregistration.k8s.io", "APIService", "apiservices", false),
    ("apps", "ControllerRevision", "controllerrevisions", true),
    ("apps", "DaemonSet", "daemonsets", true),
    ("apps", "Deployment", "deployments", true),
    ("apps", "ReplicaSet", "replicasets", true),
    ("apps", "StatefulSet", "statefulsets", true),
    (
        "autoscaling",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
    ),
    ("batch", "CronJob", "cronjobs", true),
    ("batch", "Job", "jobs", true),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        false,
    ),
    ("coordination.k8s.io", "Lease", "leases", true),
    ("discovery.k8s.io", "EndpointSlice", "endpointslices", true),
    (
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        "flowschemas",
        false,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        false,
    ),
    ("networking.k8s.io", "Ingress", "ingresses", true),
    ("networking.k8s.io", "IngressClass", "ingressclasses", false),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        "networkpolicies",
        true,
    ),
    ("node.k8s.io", "RuntimeClass", "runtimeclasses", false),
    (
        "policy",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRole",
        "clusterroles",
        false,
    ),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
    ),
    ("rbac.authorization.k8s.io", "Role", "roles", true),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "rolebindings",
        true,
    ),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        "priorityclasses",
        false,
    ),
    ("storage.k8s.io", "CSIDriver", "csidrivers", false),
    ("storage.k8s.io", "CSINode", "csinodes", false),
    (
        "storage.k8s.io",
        "CSIStorageCapacity",
        "csistoragecapacities",
        true,
    ),
    ("storage.k8s.io", "StorageClass", "storageclasses", false),
    (
        "storage.k8s.io",
        "VolumeAttachment",
        "volumeattachments",
        false,
    ),
];

/// Where a resource name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    BuiltIn,
    /// A CustomResourceDefinition in the input.
    Defined,
    /// Neither: guessed from the kind.
    Guessed,
}

/// The resource an object is created as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub group: String,
    pub version: String,
    /// The plural, e.g. `deployments`.
    pub resource: String,
    pub kind: String,
    pub namespaced: bool,
    pub known: Known,
}

/// The kinds the input's CustomResourceDefinitions define, beside the built-in ones.
#[derive(Debug, Default)]
pub struct Resources {
    /// `(group, kind)` -> `(plural, namespaced)`.
    defined: HashMap<(String, String), (String, bool)>,
}

impl Resources {
    /// The built-in kinds and those of every `CustomResourceDefinition` among `manifests`.
    pub fn new<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> Self {
        let defined = manifests
            .into_iter()
            .filter(|m| {
                m.kind == "CustomResourceDefinition"
                    && m.api_version.starts_with("apiextensions.k8s.io/")
            })
            .filter_map(|m| {
                let spec = &m.object["spec"];
                let text = |value: &Value| value.as_str().map(str::to_owned);
                let group = text(&spec["group"])?;
                let kind = text(&spec["names"]["kind"])?;
                let plural = text(&spec["names"]["plural"])?;
                let namespaced = spec["scope"].as_str() != Some("Cluster");
                Some(((group, kind), (plural, namespaced)))
            })
            .collect();
        Self { defined }
    }

    /// The resource of an object of `kind` and `api_version` (`group/version`, or `version`
    /// for the core group).
    pub fn resource(&self, api_version: &str, kind: &str) -> Resource {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let (resource, namespaced, known) = if let Some(&(_, _, plural, namespaced)) = BUILT_IN
            .iter()
            .find(|(g, k, _, _)| *g == group && *k == kind)
        {
            (plural.to_owned(), namespaced, Known::BuiltIn)
        } else if let Some((plural, namespaced)) =
            self.defined.get(&(group.to_owned(), kind.to_owned()))
        {
            (plural.clone(), *namespaced, Known::Defined)
        } else {
            (guess_plural(kind), true, Known::Guessed)
        };
        Resource {
            group: group.to_owned(),
            version: version.to_owned(),
            resource,
            kind: kind.to_owned(),
            namespaced,
            known,
        }
    }
}

/// `kubectl`'s guess of a kind's plural without a cluster to ask.
fn guess_plural(kind: &str) -> String {
    let singular = kind.to_lowercase();
    if singular.ends_with('s') {
        format!("{singular}es")
    } else if let Some(stem) = singular.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{singular}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Origin;
    use serde_json::json;

    #[test]
    fn names_built_in_defined_and_other_kinds() {
        let crd = Manifest {
            origin: Origin::file("crd.yaml"),
            object: json!({"spec": {"group": "example.com", "scope": "Cluster", "names": {"kind": "Widget", "plural": "widgetz"}}}),
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            name: "widgetz.example.com".into(),
            namespace: None,
        };
        let resources = Resources::new([&crd]);
        let name = |api_version: &str, kind: &str| {
            let r = resources.resource(api_version, kind);
            (r.group, r.version, r.resource, r.namespaced, r.known)
        };
        assert_eq!(
            name("apps/v1", "Deployment"),
            (
                "apps".into(),
                "v1".into(),
                "deployments".into(),
                true,
                Known::BuiltIn
            )
        );
        assert_eq!(
            name("v1", "Endpoints"),
            (
                "".into(),
                "v1".into(),
                "endpoints".into(),
                true,
                Known::BuiltIn
            )
        );
        assert!(!name("v1", "Namespace").3);
        assert_eq!(
            name("example.com/v1", "Widget"),
            (
                "example.com".into(),
                "v1".into(),
                "widgetz".into(),
                false,
                Known::Defined
            )
        );
        assert_eq!(name("tekton.dev/v1", "PipelineRun").2, "pipelineruns");
        assert_eq!(name("example.com/v1", "Gateway").4, Known::Guessed);
        assert_eq!(guess_plural("Ingress"), "ingresses");
        assert_eq!(guess_plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(guess_plural("VirtualMachine"), "virtualmachines");
    }
}
