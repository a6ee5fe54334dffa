//! Which objects the cluster sends to the policy: the `rules` the API server routes by,
//! those of the policy's metadata as embedded in the module (`kwctl inspect -o yaml`), which
//! `kwctl scaffold manifest` writes into the `ClusterAdmissionPolicy`, or those of a
//! `ClusterAdmissionPolicy` given (`--rules`, where `imageLocations` kinds were added). An
//! object whose CREATE no rule matches is never sent to the policy in a cluster, so it is
//! reported as not checked.

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::resources::Resource;

/// One rule, as in a webhook's `rules` (and a Kubewarden policy's metadata).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default)]
    pub api_groups: Vec<String>,
    #[serde(default)]
    pub api_versions: Vec<String>,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub operations: Vec<String>,
    /// `Cluster`, `Namespaced` or `*` (the default).
    pub scope: Option<String>,
}

/// The policy's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// The `rules` of policy metadata written as YAML (what `kwctl inspect -o yaml` prints,
    /// or a metadata.yml), or the `spec.rules` of a `ClusterAdmissionPolicy` or
    /// `AdmissionPolicy`.
    pub fn from_yaml(yaml: &str) -> Result<Rules> {
        #[derive(Deserialize)]
        struct Spec {
            rules: Vec<Rule>,
        }
        #[derive(Deserialize)]
        struct Document {
            rules: Option<Vec<Rule>>,
            spec: Option<Spec>,
        }
        let document: Document =
            serde_yaml_ng::from_str(yaml).context("no readable `rules` or `spec.rules`")?;
        let rules = document.rules.or(document.spec.map(|spec| spec.rules));
        Ok(Rules(rules.unwrap_or_default()))
    }

    /// Whether a CREATE of `resource` is sent to the policy: some rule matches its group,
    /// version, resource (not a subresource), the operation and the scope, as the API server
    /// matches them (`*` matches any; `*/*` any resource and subresource).
    pub fn route_create(&self, resource: &Resource) -> bool {
        let any = |values: &[String], value: &str| values.iter().any(|v| v == "*" || v == value);
        self.0.iter().any(|rule| {
            any(&rule.api_groups, &resource.group)
                && any(&rule.api_versions, &resource.version)
                && rule
                    .resources
                    .iter()
                    .any(|r| r == "*" || r == "*/*" || *r == resource.resource)
                && any(&rule.operations, "CREATE")
                && match rule.scope.as_deref() {
                    None | Some("*") => true,
                    Some("Namespaced") => resource.namespaced,
                    Some("Cluster") => !resource.namespaced,
                    Some(_) => false,
                }
        })
    }

    /// Every resource the rules name for CREATE, as `group/version/resource` (`core` for
    /// the core group), for the report.
    pub fn describe(&self) -> Vec<String> {
        self.0
            .iter()
            .filter(|rule| rule.operations.iter().any(|o| o == "*" || o == "CREATE"))
            .flat_map(|rule| {
                rule.api_groups.iter().flat_map(move |group| {
                    let group = if group.is_empty() { "core" } else { group };
                    rule.api_versions.iter().flat_map(move |version| {
                        rule.resources
                            .iter()
                            .filter(|r| !r.contains('/') || r.as_str() == "*/*")
                            .map(move |resource| format!("{group}/{version}/{resource}"))
                    })
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Known;

    fn resource(group: &str, version: &str, plural: &str, namespaced: bool) -> Resource {
        Resource {
            group: group.into(),
            version: version.into(),
            resource: plural.into(),
            kind: String::new(),
            namespaced,
            known: Known::BuiltIn,
        }
    }

    #[test]
    fn routes_creates_as_the_api_server_matches_rules() {
        let rules = Rules::from_yaml(
            "rules:\n- apiGroups: ['']\n  apiVersions: [v1]\n  resources: [pods, pods/ephemeralcontainers]\n  operations: [CREATE, UPDATE]\n- apiGroups: [apps]\n  apiVersions: ['*']\n  resources: ['*']\n  operations: [UPDATE]\n- apiGroups: [batch]\n  apiVersions: [v1]\n  resources: ['*/*']\n  operations: ['*']\n  scope: Namespaced\nmutating: true\n",
        )
        .unwrap();
        assert!(rules.route_create(&resource("", "v1", "pods", true)));
        assert!(!rules.route_create(&resource("", "v1", "ephemeralcontainers", true)));
        assert!(!rules.route_create(&resource("", "v2", "pods", true)));
        assert!(!rules.route_create(&resource("", "v1", "services", true)));
        assert!(
            !rules.route_create(&resource("apps", "v1", "deployments", true)),
            "UPDATE only"
        );
        assert!(rules.route_create(&resource("batch", "v1", "cronjobs", true)));
        assert!(
            !rules.route_create(&resource("batch", "v1", "cronjobs", false)),
            "scope"
        );
        assert_eq!(rules.describe(), ["core/v1/pods", "batch/v1/*/*"]);
        assert!(Rules::from_yaml("rules: 3").is_err());
        assert_eq!(Rules::from_yaml("mutating: true").unwrap(), Rules(vec![]));
        let policy = Rules::from_yaml("apiVersion: policies.kubewarden.io/v1\nkind: ClusterAdmissionPolicy\nspec:\n  module: registry://x\n  rules:\n  - apiGroups: [example.com]\n    apiVersions: [v1]\n    resources: [widgets]\n    operations: [CREATE]\n").unwrap();
        assert!(policy.route_create(&resource("example.com", "v1", "widgets", true)));
    }
}
