//! Shipping the policy the way Kubewarden ships policies: annotate the module with its
//! metadata (`kwctl annotate`), and publish it as an OCI artifact (`kwctl push`) that
//! policy-server, `kwctl run` and this crate's host load from `registry://`.

mod metadata;
mod push;

use anyhow::{anyhow, bail, Result};

use crate::host::Host;

pub use metadata::{
    ContextAwareResource, PolicyMetadata, Rule, METADATA_SECTION, PROTOCOL_V1, USAGE_ANNOTATION,
    WAPC_EXECUTION_MODE,
};
pub use push::push;

/// Annotates `wasm` as `kwctl annotate --metadata-path --usage-path` does: the metadata of
/// `metadata_yaml`, with `protocolVersion` asked from the policy itself and the usage text
/// (the README) under `io.kubewarden.policy.usage`.
pub fn annotate(wasm: &[u8], metadata_yaml: &str, usage: Option<&str>) -> Result<Vec<u8>> {
    if PolicyMetadata::from_wasm(wasm)?.is_some() {
        bail!("the policy is already annotated: annotate the module the build produced");
    }
    let mut metadata = PolicyMetadata::from_yaml(metadata_yaml)?;
    if metadata.execution_mode != WAPC_EXECUTION_MODE {
        bail!(
            "executionMode `{}`: only `{WAPC_EXECUTION_MODE}` policies can be asked their protocol version",
            metadata.execution_mode
        );
    }
    metadata.protocol_version = Some(protocol_version(wasm)?);
    if let Some(usage) = usage {
        metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(USAGE_ANNOTATION.to_owned(), usage.to_owned());
    }
    metadata.check_runnable()?;
    metadata.embed_in(wasm)
}

/// Runs the unannotated module and asks it, as kwctl does, rather than trusting a file.
fn protocol_version(wasm: &[u8]) -> Result<String> {
    let host = Host::builder()
        .wasm_bytes(wasm.to_vec())
        .allow_unannotated()
        .build()?;
    let answer = host
        .call("protocol_version", b"")
        .map_err(|e| anyhow!("cannot compute the protocol version of the policy: {e}"))?;
    serde_json::from_slice(&answer)
        .map_err(|e| anyhow!("the policy's protocol_version answer is not a JSON string: {e}"))
}
