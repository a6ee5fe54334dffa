//! Kubewarden policy metadata: what `metadata.yml` declares, and what `kwctl annotate`
//! embeds as camelCase JSON in the `io.kubewarden.metadata` custom section of the module,
//! where policy-server reads how to run the policy.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasm_encoder::{CustomSection, Section};
use wasmparser::{Parser, Payload};

/// The custom section kwctl writes and policy-evaluator reads.
pub const METADATA_SECTION: &str = "io.kubewarden.metadata";
/// The annotation `kwctl annotate --usage-path` fills with the README.
pub const USAGE_ANNOTATION: &str = "io.kubewarden.policy.usage";
/// The execution mode of a policy that speaks the Kubewarden waPC protocol.
pub const WAPC_EXECUTION_MODE: &str = "kubewarden-wapc";
/// The only waPC protocol version Kubewarden defines.
pub const PROTOCOL_V1: &str = "v1";

/// Policy metadata, field for field as policy-evaluator's `Metadata` serialises it.
/// Unknown fields are ignored when reading a module (a newer kwctl may add some) but
/// refused in `metadata.yml` (see [`PolicyMetadata::from_yaml`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyMetadata {
    /// Set by annotation, from the policy's own `protocol_version` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    pub mutating: bool,
    #[serde(default = "default_true")]
    pub background_audit: bool,
    #[serde(default)]
    pub context_aware: bool,
    #[serde(default)]
    pub context_aware_resources: Vec<ContextAwareResource>,
    #[serde(default = "default_execution_mode")]
    pub execution_mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<String>,
    /// The host capability calls (`namespace/operation`, e.g. `oci/v2/verify`) the policy makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_capabilities: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_kubewarden_version: Option<String>,
}

/// One admission webhook rule, as in a ValidatingWebhookConfiguration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    pub api_groups: Vec<String>,
    pub api_versions: Vec<String>,
    pub resources: Vec<String>,
    pub operations: Vec<String>,
}

/// A Kubernetes resource a context-aware policy may read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContextAwareResource {
    pub api_version: String,
    pub kind: String,
}

fn default_true() -> bool {
    true
}

fn default_execution_mode() -> String {
    WAPC_EXECUTION_MODE.to_owned()
}

impl PolicyMetadata {
    /// Parses a `metadata.yml`. A key this struct does not know is refused: a typo such as
    /// `backgroundAudti` must not silently fall back to a default.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let raw: Value = serde_yaml::from_str(text).context("metadata is not valid YAML")?;
        let metadata: Self =
            serde_json::from_value(raw.clone()).context("metadata does not match the schema")?;
        let known = serde_json::to_value(&metadata)?;
        if let (Value::Object(raw), Value::Object(known)) = (&raw, &known) {
            if let Some(unknown) = raw.keys().find(|key| !known.contains_key(*key)) {
                bail!("metadata: unknown key `{unknown}`");
            }
        }
        for (index, rule) in metadata.rules.iter().enumerate() {
            rule.check()
                .map_err(|e| anyhow!("metadata: rules[{index}]: {e}"))?;
        }
        Ok(metadata)
    }

    /// Reads the metadata embedded in a module: `None` when it has no metadata section
    /// (or is not a binary module, e.g. WAT text). The first section wins, as in
    /// policy-evaluator.
    pub fn from_wasm(wasm: &[u8]) -> Result<Option<Self>> {
        if !Parser::is_core_wasm(wasm) {
            return Ok(None);
        }
        for payload in Parser::new(0).parse_all(wasm) {
            if let Payload::CustomSection(section) = payload.context("invalid wasm module")? {
                if section.name() == METADATA_SECTION {
                    return serde_json::from_slice(section.data())
                        .map(Some)
                        .with_context(|| format!("invalid `{METADATA_SECTION}` section"));
                }
            }
        }
        Ok(None)
    }

    /// Checks what the host needs to run the policy over waPC, as policy-evaluator
    /// validates metadata before it loads a policy.
    pub fn check_runnable(&self) -> Result<()> {
        if self.execution_mode != WAPC_EXECUTION_MODE {
            bail!(
                "the policy's executionMode is `{}`: this host runs only `{WAPC_EXECUTION_MODE}` policies",
                self.execution_mode
            );
        }
        match self.protocol_version.as_deref() {
            Some(PROTOCOL_V1) => Ok(()),
            Some(other) => bail!("unsupported waPC protocol version `{other}`"),
            None => bail!("the metadata has no protocolVersion: annotate the policy"),
        }
    }

    /// `wasm` with this metadata appended as the `io.kubewarden.metadata` custom section
    /// (custom sections may sit anywhere, so the module's own sections stay byte for byte).
    pub fn embed_in(&self, wasm: &[u8]) -> Result<Vec<u8>> {
        if !Parser::is_core_wasm(wasm) {
            bail!("not a binary WebAssembly module");
        }
        let mut annotated = wasm.to_vec();
        CustomSection {
            name: METADATA_SECTION.into(),
            data: serde_json::to_vec(self)?.into(),
        }
        .append_to(&mut annotated);
        Ok(annotated)
    }
}

impl Rule {
    /// The checks policy-evaluator applies to each rule: no empty list, and `*` alone.
    fn check(&self) -> Result<(), String> {
        for (name, values) in [
            ("apiGroups", &self.api_groups),
            ("apiVersions", &self.api_versions),
            ("resources", &self.resources),
            ("operations", &self.operations),
        ] {
            if values.is_empty() {
                return Err(format!("{name} must list at least one value"));
            }
            if values.len() > 1 && values.iter().any(|v| v == "*") {
                return Err(format!("{name}: `*` excludes any other value"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest binary module: magic and version.
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    const METADATA: &str = r#"
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["pods"]
    operations: ["CREATE"]
mutating: true
annotations:
  io.kubewarden.policy.title: test
"#;

    #[test]
    fn metadata_round_trips_through_the_custom_section() {
        let mut metadata = PolicyMetadata::from_yaml(METADATA).unwrap();
        assert!(metadata.background_audit);
        assert_eq!(metadata.execution_mode, WAPC_EXECUTION_MODE);
        assert!(PolicyMetadata::from_wasm(EMPTY_MODULE).unwrap().is_none());
        metadata.protocol_version = Some(PROTOCOL_V1.into());
        let annotated = metadata.embed_in(EMPTY_MODULE).unwrap();
        assert!(annotated.starts_with(EMPTY_MODULE));
        assert_eq!(
            PolicyMetadata::from_wasm(&annotated).unwrap(),
            Some(metadata.clone())
        );
        metadata.check_runnable().unwrap();
        // The JSON is camelCase, as kwctl writes it.
        let json = serde_json::to_value(&metadata).unwrap();
        assert_eq!(json["protocolVersion"], "v1");
        assert_eq!(json["executionMode"], "kubewarden-wapc");
        assert_eq!(json["rules"][0]["apiVersions"][0], "v1");
        assert_eq!(json["backgroundAudit"], true);
    }

    #[test]
    fn metadata_yml_typos_and_bad_rules_are_refused() {
        let typo = format!("{METADATA}backgroundAudti: false\n");
        let err = PolicyMetadata::from_yaml(&typo).unwrap_err();
        assert!(err.to_string().contains("`backgroundAudti`"), "{err:#}");
        let star = METADATA.replace(r#"["CREATE"]"#, r#"["CREATE", "*"]"#);
        let err = PolicyMetadata::from_yaml(&star).unwrap_err();
        assert!(err.to_string().contains("rules[0]: operations"), "{err:#}");
    }

    #[test]
    fn only_annotated_wapc_metadata_is_runnable() {
        let mut metadata = PolicyMetadata::from_yaml(METADATA).unwrap();
        let err = metadata.check_runnable().unwrap_err();
        assert!(err.to_string().contains("no protocolVersion"), "{err}");
        metadata.protocol_version = Some(PROTOCOL_V1.into());
        metadata.execution_mode = "opa".into();
        let err = metadata.check_runnable().unwrap_err();
        assert!(err.to_string().contains("executionMode is `opa`"), "{err}");
    }
}
