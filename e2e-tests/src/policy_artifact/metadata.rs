//! Kubewarden policy metadata: what `kwctl annotate` embeds, from `metadata.yml`, as camelCase
//! JSON in the `io.kubewarden.metadata` custom section of the module, where policy-server (and
//! this crate's host) read how to run the policy.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
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
/// Unknown fields are ignored when reading a module (a newer kwctl may add some).
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
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest binary module: magic and version.
    const EMPTY_MODULE: &[u8] = b"\0asm\x01\0\0\0";

    /// `EMPTY_MODULE` with a custom section `name` holding `data` (both shorter than 128
    /// bytes, so each length is one LEB128 byte).
    fn with_custom_section(name: &str, data: &str) -> Vec<u8> {
        let mut module = EMPTY_MODULE.to_vec();
        module.extend([0, (1 + name.len() + data.len()) as u8, name.len() as u8]);
        module.extend(name.bytes().chain(data.bytes()));
        module
    }

    #[test]
    fn metadata_is_read_from_its_custom_section() {
        assert!(PolicyMetadata::from_wasm(EMPTY_MODULE).unwrap().is_none());
        assert!(PolicyMetadata::from_wasm(b"(module)").unwrap().is_none());
        let json = r#"{"protocolVersion":"v1","rules":[],"mutating":true}"#;
        let metadata = PolicyMetadata::from_wasm(&with_custom_section(METADATA_SECTION, json))
            .unwrap()
            .expect("metadata");
        assert!(metadata.mutating && metadata.background_audit);
        assert_eq!(metadata.execution_mode, WAPC_EXECUTION_MODE);
        metadata.check_runnable().unwrap();
        let other = with_custom_section("name", json);
        assert!(PolicyMetadata::from_wasm(&other).unwrap().is_none());
    }

    #[test]
    fn only_annotated_wapc_metadata_is_runnable() {
        let json = r#"{"rules":[],"mutating":false}"#;
        let mut metadata: PolicyMetadata = serde_json::from_str(json).unwrap();
        let err = metadata.check_runnable().unwrap_err();
        assert!(err.to_string().contains("no protocolVersion"), "{err}");
        metadata.protocol_version = Some(PROTOCOL_V1.into());
        metadata.execution_mode = "opa".into();
        let err = metadata.check_runnable().unwrap_err();
        assert!(err.to_string().contains("executionMode is `opa`"), "{err}");
    }
}
