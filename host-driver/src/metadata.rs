//! What a policy's `metadata.yml` declares that the host is told.

use std::path::Path;

use anyhow::{Context, Result};

/// The host capabilities `metadata` (a policy's metadata.yml) declares: what an operator who
/// grants exactly the declared capabilities gives the policy.
pub fn declared_capabilities(metadata: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Metadata {
        host_capabilities: Vec<String>,
    }
    let path = metadata.display();
    let text = std::fs::read_to_string(metadata).with_context(|| format!("cannot read {path}"))?;
    let metadata: Metadata =
        serde_yaml::from_str(&text).with_context(|| format!("{path}: no hostCapabilities"))?;
    Ok(metadata.host_capabilities)
}
