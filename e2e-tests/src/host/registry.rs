//! Plain OCI registry reads: the `oci/v1/*` host capabilities and pulling a policy
//! published as a Wasm artifact (`registry://HOST/REPO:TAG`).

use std::str::FromStr;
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciManifest, WASM_LAYER_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{json, Value};

use super::sources::Sources;

/// Renders an error with all its causes: reqwest's own message ("error sending
/// request") hides the useful part ("Connection refused") in its sources.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// An anonymous OCI client with bounded connect and read times, so an unreachable
/// registry turns into an error instead of a stalled policy.
pub(crate) struct Registry {
    client: Client,
}

impl Registry {
    pub(crate) fn new(sources: &Sources, timeout: Duration) -> Self {
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(sources.insecure_list()),
            connect_timeout: Some(timeout),
            read_timeout: Some(timeout),
            ..ClientConfig::default()
        };
        Self {
            client: Client::new(config),
        }
    }

    fn reference(image: &str) -> Result<Reference, String> {
        Reference::from_str(image).map_err(|e| format!("invalid image reference {image}: {e}"))
    }

    /// The digest of the manifest `image` points to (an index digest for a
    /// multi-arch image), as `oci/v1/manifest_digest` answers it.
    pub(crate) async fn manifest_digest(&self, image: &str) -> Result<Value, String> {
        let reference = Self::reference(image)?;
        let digest = self
            .client
            .fetch_manifest_digest(&reference, &RegistryAuth::Anonymous)
            .await
            .map_err(|e| {
                format!(
                    "cannot fetch manifest digest of {image}: {}",
                    error_chain(&e)
                )
            })?;
        Ok(json!({ "digest": digest }))
    }

    /// The image manifest or image index of `image`, as `oci/v1/oci_manifest` answers it:
    /// serialised as is, in the field order of the real host's answer.
    pub(crate) async fn manifest(&self, image: &str) -> Result<OciManifest, String> {
        let reference = Self::reference(image)?;
        let (manifest, _digest) = self
            .client
            .pull_manifest(&reference, &RegistryAuth::Anonymous)
            .await
            .map_err(|e| format!("cannot fetch manifest of {image}: {}", error_chain(&e)))?;
        Ok(manifest)
    }

    /// Manifest, digest and config of `image` (the platform's image of an index),
    /// as `oci/v1/oci_manifest_config` answers it.
    pub(crate) async fn manifest_and_config(&self, image: &str) -> Result<Value, String> {
        let reference = Self::reference(image)?;
        let (manifest, digest, config) = self
            .client
            .pull_manifest_and_config(&reference, &RegistryAuth::Anonymous)
            .await
            .map_err(|e| {
                format!(
                    "cannot fetch manifest and config of {image}: {}",
                    error_chain(&e)
                )
            })?;
        let config: Value = serde_json::from_str(&config)
            .map_err(|e| format!("the config of {image} is not JSON: {e}"))?;
        Ok(json!({ "manifest": manifest, "digest": digest, "config": config }))
    }

    /// Downloads the single Wasm layer of a policy artifact.
    pub(crate) async fn pull_policy(&self, image: &str) -> Result<Vec<u8>, String> {
        let reference = Self::reference(image)?;
        let (manifest, _) = self
            .client
            .pull_manifest(&reference, &RegistryAuth::Anonymous)
            .await
            .map_err(|e| format!("cannot fetch policy {image}: {}", error_chain(&e)))?;
        if let OciManifest::ImageIndex(_) = manifest {
            return Err(format!(
                "policy {image} is an image index, not a Wasm artifact"
            ));
        }
        let data = self
            .client
            .pull(
                &reference,
                &RegistryAuth::Anonymous,
                vec![WASM_LAYER_MEDIA_TYPE],
            )
            .await
            .map_err(|e| format!("cannot pull policy {image}: {}", error_chain(&e)))?;
        match <[_; 1]>::try_from(data.layers) {
            Ok([layer]) => Ok(layer.data.to_vec()),
            Err(layers) => Err(format!(
                "policy {image} must have exactly one {WASM_LAYER_MEDIA_TYPE} layer, found {}",
                layers.len()
            )),
        }
    }
}
