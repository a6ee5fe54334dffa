//! The host calls kwctl recorded (`--record-host-capabilities-interactions`): counted per
//! operation, or turned back into the waPC calls the policy made.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_yaml::Value as Yaml;

/// The host calls of one or more evaluations, as kwctl recorded them
/// (`--record-host-capabilities-interactions`), keyed `namespace/operation`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostCalls {
    pub per_operation: BTreeMap<String, u64>,
}

impl HostCalls {
    /// Calls of one `namespace/operation` (0 when never called).
    pub fn calls(&self, operation: &str) -> u64 {
        self.per_operation.get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.per_operation.values().sum()
    }

    pub fn add(&mut self, other: &HostCalls) {
        for (operation, count) in &other.per_operation {
            *self.per_operation.entry(operation.clone()).or_default() += count;
        }
    }
}

/// One waPC host call as the policy made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WapcCall {
    pub binding: String,
    pub namespace: String,
    pub operation: String,
    /// The JSON text the policy sent.
    pub payload: String,
}

/// One exchange of a recording: `request` is YAML text starting with its type's tag
/// (`!SigstorePubKeyVerify`, ...), the request kwctl's handler received.
#[derive(Deserialize)]
struct Exchange {
    request: String,
}

fn exchanges(text: &str) -> Result<Vec<Exchange>> {
    let exchanges: Option<Vec<Exchange>> =
        serde_yaml::from_str(text).context("kwctl's host-call recording is unreadable")?;
    Ok(exchanges.unwrap_or_default())
}

/// The host calls in a recording, counted per operation.
pub fn recorded_calls(text: &str) -> Result<HostCalls> {
    let mut calls = HostCalls::default();
    for exchange in exchanges(text)? {
        let tag = exchange
            .request
            .split_whitespace()
            .next()
            .and_then(|first| first.strip_prefix('!'))
            .unwrap_or("untagged");
        *calls.per_operation.entry(operation_of(tag)).or_default() += 1;
    }
    Ok(calls)
}

/// The waPC calls behind a recording, in order, with the payloads the policy sent: a
/// `v2/verify` request is the recorded fields after `"type"` (the SDK's wire form, fields in
/// kwctl's order, which is the SDK's); a manifest request is the image as a JSON string.
/// Other operations are refused: nothing here needs them.
pub fn recorded_wapc_calls(text: &str) -> Result<Vec<WapcCall>> {
    exchanges(text)?
        .iter()
        .map(|exchange| {
            let Yaml::Tagged(tagged) = serde_yaml::from_str(&exchange.request)
                .context("a recorded request is unreadable")?
            else {
                bail!(
                    "a recorded request without a type tag: {}",
                    exchange.request
                );
            };
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let Yaml::Mapping(fields) = &tagged.value else {
                bail!("the recorded {tag} request is not a mapping");
            };
            let payload = match tag {
                t if t.starts_with("Sigstore") => {
                    let mut json = format!("{{\"type\":{}", serde_json::to_string(t)?);
                    for (key, value) in fields {
                        let key = key.as_str().context("a recorded field without a name")?;
                        let value: serde_json::Value = serde_yaml::from_value(value.clone())?;
                        json.push_str(&format!(",{}:{value}", serde_json::to_string(key)?));
                    }
                    json.push('}');
                    json
                }
                "OciManifestDigest" | "OciManifest" => {
                    let image = fields.get("image").and_then(Yaml::as_str);
                    serde_json::to_string(image.context("a manifest request without image")?)?
                }
                other => bail!("cannot turn a recorded {other} request back into its call"),
            };
            let (namespace, operation) = operation_of(tag)
                .split_once('/')
                .map(|(n, o)| (n.to_owned(), o.to_owned()))
                .context("an operation without namespace")?;
            Ok(WapcCall {
                binding: "kubewarden".to_owned(),
                namespace,
                operation,
                payload,
            })
        })
        .collect()
}

/// The `namespace/operation` of a recorded request type, as the policy called it.
fn operation_of(tag: &str) -> String {
    match tag {
        t if t.starts_with("Sigstore") => "oci/v2/verify".to_owned(),
        "OciManifestDigest" => "oci/v1/manifest_digest".to_owned(),
        "OciManifest" => "oci/v1/oci_manifest".to_owned(),
        "OciManifestAndConfig" => "oci/v1/oci_manifest_config".to_owned(),
        "CryptoVerifyCert" | "CryptoVerifyCertificate" => {
            "crypto/v1/is_certificate_trusted".to_owned()
        }
        other => format!("kwctl/{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDING: &str = "- type: Exchange\n  request: |\n    !SigstorePubKeyVerify\n    image: 127.0.0.1:45933/bench/image-00:v1\n    pub_keys:\n    - |\n      -----BEGIN PUBLIC KEY-----\n      MFkw\n      -----END PUBLIC KEY-----\n    annotations: null\n  response:\n    type: Success\n    payload: '{\"is_trusted\":true,\"digest\":\"sha256:f0\"}'\n- type: Exchange\n  request: |\n    !OciManifestDigest\n    image: ghcr.io/acme/app:v1\n  response:\n    type: Success\n    payload: '{\"digest\":\"sha256:f0\"}'\n";

    #[test]
    fn a_recording_gives_back_the_calls_the_policy_made() {
        let calls = recorded_wapc_calls(RECORDING).unwrap();
        assert_eq!(
            calls,
            [
                WapcCall {
                    binding: "kubewarden".into(),
                    namespace: "oci".into(),
                    operation: "v2/verify".into(),
                    payload: r#"{"type":"SigstorePubKeyVerify","image":"127.0.0.1:45933/bench/image-00:v1","pub_keys":["-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"],"annotations":null}"#.into(),
                },
                WapcCall {
                    binding: "kubewarden".into(),
                    namespace: "oci".into(),
                    operation: "v1/manifest_digest".into(),
                    payload: r#""ghcr.io/acme/app:v1""#.into(),
                },
            ]
        );
        let counted = recorded_calls(RECORDING).unwrap();
        assert_eq!(counted.calls("oci/v2/verify"), 1);
        assert_eq!(counted.total(), 2);
    }

    #[test]
    fn a_call_that_cannot_be_made_again_is_refused() {
        let text =
            "- type: Exchange\n  request: |\n    !KubernetesListResourceAll\n    api_version: v1\n";
        assert!(recorded_wapc_calls(text).is_err());
    }
}
