//! The faults a [`FaultProxy`](super::FaultProxy) injects, and what each does to the bytes
//! it forwards. Each fault reaches the host the way a real broken registry (or a broken
//! proxy in front of one) would: on every request, on every manifest, or on every blob.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

/// What the proxy does to the requests it is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Forwards every request as it is.
    #[default]
    None,
    /// Forwards every request, each answer held back this long: a slow registry.
    Delay(Duration),
    /// Stops listening and closes every open connection: a registry that is down
    /// (connections are refused until another fault is set).
    Refuse,
    /// Sends the head and half the body of each answer to a read of `Target`, then resets
    /// the connection (TCP RST): a proxy or load balancer dying mid-transfer.
    ResetMidBody(Target),
    /// Answers every request with this status and the Distribution error body of it
    /// (503 `UNAVAILABLE`, any other `UNKNOWN`), without asking the registry.
    Status(u16),
    /// Answers every request with 429 `TOOMANYREQUESTS` and `Retry-After` (seconds): a
    /// registry's rate limit.
    TooManyRequests { retry_after: u64 },
    /// Each manifest of `Target` is served with its second half garbled (same length,
    /// same `Docker-Content-Digest`): corrupted storage behind a registry.
    CorruptManifest(Target),
    /// Every blob is served cut to its first half, with a `Content-Length` saying so: a
    /// whole, well-framed answer whose content is short (the signature layers are the
    /// blobs the host reads).
    TruncatedLayer,
    /// Every cosign signature manifest (`sha256-<hex>.sig`) is served rewritten so that
    /// each signature layer's payload says something else than what was signed, with the
    /// manifest, its descriptors and the payload blobs all consistent with their digests: a
    /// registry serving a tampered signature.
    MismatchedSignaturePayload,
}

/// Which answers a fault that alters content alters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Cosign signature manifests: the `sha256-<hex>.sig` tags.
    SignatureManifests,
    /// Manifests and indexes of images (every manifest but the signatures').
    ImageManifests,
    /// Blobs: the host reads no blob but the signature layers.
    Blobs,
}

impl Fault {
    /// Whether setting this fault closes the connections already open: a refused registry
    /// serves nothing, and a reset must meet the host on a connection opened for it.
    pub(super) fn closes_connections(&self) -> bool {
        matches!(self, Fault::Refuse | Fault::ResetMidBody(_))
    }

    /// A short name, for the proxy's log of exchanges.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Delay(_) => "delay",
            Fault::Refuse => "refuse",
            Fault::ResetMidBody(_) => "reset-mid-body",
            Fault::Status(_) => "status",
            Fault::TooManyRequests { .. } => "too-many-requests",
            Fault::CorruptManifest(_) => "corrupt-manifest",
            Fault::TruncatedLayer => "truncated-layer",
            Fault::MismatchedSignaturePayload => "mismatched-signature-payload",
        }
    }
}

/// The Distribution API error body of `status`, as the registry writes it.
pub(super) fn error_body(status: u16) -> String {
    let (code, message) = match status {
        429 => ("TOOMANYREQUESTS", "too many requests"),
        503 => ("UNAVAILABLE", "service unavailable"),
        _ => ("UNKNOWN", "unknown error"),
    };
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

/// `body` with its second half garbled: every byte flipped, so it is no longer JSON.
pub(super) fn corrupt(body: &[u8]) -> Vec<u8> {
    let half = body.len() / 2;
    let mut corrupted = body.to_vec();
    for byte in &mut corrupted[half..] {
        *byte = !*byte;
    }
    corrupted
}

/// The first half of `body`.
pub(super) fn truncate(body: &[u8]) -> Vec<u8> {
    body[..body.len() / 2].to_vec()
}

/// A cosign simple-signing payload saying something else than what was signed: the same
/// image digest, an `optional` annotation added. Its signature no longer verifies.
pub(super) fn tamper_payload(payload: &[u8]) -> Result<Vec<u8>> {
    let mut payload: Value =
        serde_json::from_slice(payload).context("a signature payload that is not JSON")?;
    let optional = &mut payload["optional"];
    if !optional.is_object() {
        *optional = Value::Object(Default::default());
    }
    optional["tampered"] = Value::String("by the fault proxy".into());
    Ok(serde_json::to_vec(&payload)?)
}

/// The media type of cosign signature layers, whose blobs are the payloads.
pub(super) const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_faults_change_what_they_say_they_change() {
        let manifest = br#"{"schemaVersion":2,"layers":[]}"#;
        let corrupted = corrupt(manifest);
        assert_eq!(corrupted.len(), manifest.len());
        let half = manifest.len() / 2;
        assert_eq!(corrupted[..half], manifest[..half]);
        assert!(serde_json::from_slice::<Value>(&corrupted).is_err());
        assert_eq!(truncate(b"0123456789"), b"01234");

        let payload =
            br#"{"critical":{"image":{"docker-manifest-digest":"sha256:ab"}},"optional":null}"#;
        let tampered: Value = serde_json::from_slice(&tamper_payload(payload).unwrap()).unwrap();
        assert_eq!(
            tampered["critical"]["image"]["docker-manifest-digest"],
            "sha256:ab"
        );
        assert_eq!(tampered["optional"]["tampered"], "by the fault proxy");
        assert!(tamper_payload(b"not json").is_err());
    }

    #[test]
    fn error_bodies_are_the_registrys() {
        assert!(error_body(429).contains("TOOMANYREQUESTS"));
        assert!(error_body(503).contains("UNAVAILABLE"));
        assert!(error_body(500).contains("UNKNOWN"));
    }
}
