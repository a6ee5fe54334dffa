//! Publishing an annotated policy as a Kubewarden OCI artifact, as `kwctl push` does:
//! a `application/vnd.wasm.config.v1+json` config and one
//! `application/vnd.wasm.content.layer.v1+wasm` layer holding the module.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use base64::Engine;
use oci_client::annotations::ORG_OPENCONTAINERS_IMAGE_SOURCE;
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{OciImageManifest, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::Value;

use super::PolicyMetadata;
use crate::host::Sources;

/// The annotation kwctl copies to `org.opencontainers.image.source`, so that tools such as
/// Renovate find the policy's repository.
const POLICY_SOURCE_ANNOTATION: &str = "io.kubewarden.policy.source";
const REGISTRY_SCHEME: &str = "registry://";

/// Pushes the annotated module `wasm` to `uri` (`[registry://]HOST[:PORT]/REPO:TAG`) and
/// returns the pushed manifest's digest. Like `kwctl push`, it refuses a module without
/// metadata, and puts the metadata's single-line annotations on the manifest. Registries
/// in `sources.insecure_sources` are reached over plain HTTP; credentials come from
/// `docker_config` (a directory holding a Docker `config.json`), anonymous otherwise.
/// Blocks the calling thread.
pub fn push(
    wasm: &[u8],
    uri: &str,
    sources: &Sources,
    docker_config: Option<&Path>,
) -> Result<String> {
    let metadata = PolicyMetadata::from_wasm(wasm)?.ok_or_else(|| {
        anyhow!("cannot push a policy that is not annotated: annotate it first (`make annotated-policy.wasm`)")
    })?;
    let image = uri.strip_prefix(REGISTRY_SCHEME).unwrap_or(uri);
    let reference: Reference = image
        .parse()
        .with_context(|| format!("invalid policy reference {image}"))?;
    let auth = match docker_config {
        Some(dir) => registry_auth(dir, reference.resolve_registry())?,
        None => RegistryAuth::Anonymous,
    };
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(sources.insecure_list()),
        ..ClientConfig::default()
    });
    let layer = ImageLayer::new(wasm.to_vec(), WASM_LAYER_MEDIA_TYPE.to_owned(), None);
    let config = Config::new(b"{}".to_vec(), WASM_CONFIG_MEDIA_TYPE.to_owned(), None);
    let manifest = OciImageManifest::build(
        std::slice::from_ref(&layer),
        &config,
        Some(oci_annotations(&metadata)),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        client
            .push(&reference, &[layer], config, &auth, Some(manifest))
            .await
            .with_context(|| format!("cannot push the policy to {image}"))?;
        client
            .fetch_manifest_digest(&reference, &auth)
            .await
            .with_context(|| format!("cannot read back the digest of {image}"))
    })
}

/// The manifest annotations kwctl derives from the metadata: the single-line annotations
/// (the OCI spec has no multi-line values), trimmed, plus the image source.
fn oci_annotations(metadata: &PolicyMetadata) -> BTreeMap<String, String> {
    let mut annotations: BTreeMap<String, String> = metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(_, value)| value.lines().count() <= 1)
        .map(|(key, value)| (key.clone(), value.trim().to_owned()))
        .collect();
    if let Some(source) = annotations.get(POLICY_SOURCE_ANNOTATION).cloned() {
        annotations
            .entry(ORG_OPENCONTAINERS_IMAGE_SOURCE.to_owned())
            .or_insert(source);
    }
    annotations
}

/// The `auths` entry for `registry` in `DIR/config.json` (as `docker login` writes it,
/// base64 `user:password`), or anonymous access when there is none. Credential helpers
/// are not consulted.
fn registry_auth(dir: &Path, registry: &str) -> Result<RegistryAuth> {
    let path = dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let config: Value =
        serde_json::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
    let entry = config["auths"].as_object().and_then(|auths| {
        auths.iter().find_map(|(key, entry)| {
            let host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            (host.split('/').next() == Some(registry)).then_some(entry)
        })
    });
    let Some(encoded) = entry.and_then(|entry| entry["auth"].as_str()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            anyhow!(
                "{}: the auth of {registry} is not base64 text",
                path.display()
            )
        })?;
    let (user, password) = decoded.split_once(':').ok_or_else(|| {
        anyhow!(
            "{}: the auth of {registry} is not user:password",
            path.display()
        )
    })?;
    Ok(RegistryAuth::Basic(user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_annotations_are_single_line_with_the_image_source() {
        let metadata = PolicyMetadata::from_yaml(
            "rules: []\nmutating: false\nannotations:\n  io.kubewarden.policy.source: https://example.com/src\n  io.kubewarden.policy.title: ' t '\n  io.kubewarden.policy.usage: |\n    two\n    lines\n",
        )
        .unwrap();
        let annotations = oci_annotations(&metadata);
        assert_eq!(annotations["io.kubewarden.policy.title"], "t");
        assert_eq!(
            annotations[ORG_OPENCONTAINERS_IMAGE_SOURCE],
            "https://example.com/src"
        );
        assert!(!annotations.contains_key("io.kubewarden.policy.usage"));
    }

    #[test]
    fn credentials_come_from_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            registry_auth(dir.path(), "ghcr.io").unwrap(),
            RegistryAuth::Anonymous
        ));
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths": {{"https://ghcr.io/v1/": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        assert!(matches!(
            registry_auth(dir.path(), "ghcr.io").unwrap(),
            RegistryAuth::Basic(user, password) if user == "alice" && password == "s3cret"
        ));
        assert!(matches!(
            registry_auth(dir.path(), "quay.io").unwrap(),
            RegistryAuth::Anonymous
        ));
    }
}
