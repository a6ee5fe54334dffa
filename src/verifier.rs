//! Host calls: the seam between the policy's logic and the Kubewarden host.
//!
//! The logic talks to a [`Verifier`]; in the wasm module that is [`HostVerifier`],
//! which asks the host over waPC; in unit tests it is a fake.

use std::collections::BTreeMap;
use std::fmt;

use kubewarden_policy_sdk::host_capabilities::oci::ManifestDigestResponse;
use kubewarden_policy_sdk::host_capabilities::verification::{
    KeylessInfo, KeylessPrefixInfo, VerificationResponse,
};
use kubewarden_policy_sdk::host_capabilities::SigstoreVerificationInputV2;

use crate::image::ImageRef;
use crate::platforms::Manifest;
use crate::settings::Signer;

/// One signature check: one image, one signer, the annotations the signature must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Check<'a> {
    pub image: &'a ImageRef,
    pub signer: &'a Signer,
    pub annotations: Option<&'a BTreeMap<String, String>>,
}

/// Verifies signatures and reads manifests; implemented by the host, and by fakes in tests.
pub trait Verifier {
    /// The digest that was verified, or why not.
    fn verify(&self, check: &Check<'_>) -> Result<String, Failure>;

    /// The digest `image`'s tag resolves to (`oci/v1/manifest_digest`). Only the
    /// `platformSignatures` fallback asks, so fakes that never meet it need not answer.
    fn manifest_digest(&self, image: &ImageRef) -> Result<String, Failure> {
        Err(Failure::host(&format!("cannot resolve {image}")))
    }

    /// The manifest or index `image` names (`oci/v1/oci_manifest`); asked, like
    /// [`Verifier::manifest_digest`], only by the `platformSignatures` fallback.
    fn oci_manifest(&self, image: &ImageRef) -> Result<Manifest, Failure> {
        Err(Failure::host(&format!("cannot read {image}")))
    }
}

/// Why a check failed, in a short class and the host's words, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    /// The host's text, first line only, for host errors; empty otherwise.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureClass {
    NoSignatures,
    NotSigned,
    AnnotationsMismatch,
    HostError,
}

impl Failure {
    pub fn new(class: FailureClass) -> Self {
        Self {
            class,
            detail: String::new(),
        }
    }

    /// A registry or host error, in the host's words, trimmed.
    pub fn host(text: &str) -> Self {
        Self {
            class: FailureClass::HostError,
            detail: trim_host_text(text),
        }
    }

    /// Sorts a host's error text into a class. The real host says
    /// `no signatures found for image: ...` when the image has no trusted signature at
    /// all; `Image verification failed: missing signatures` followed by a YAML dump of
    /// the constraints (PEM keys included) when none satisfies the check, or, for
    /// certificates, `Several Signature Layers failed verification`; other texts are
    /// registry and input errors.
    pub fn from_host_error(text: &str) -> Self {
        if text.contains("no signatures found") {
            Self::new(FailureClass::NoSignatures)
        } else if text.contains("missing signatures")
            || text.contains("Signature Layers failed verification")
        {
            Self::new(FailureClass::NotSigned)
        } else {
            Self::host(text)
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            FailureClass::NoSignatures => f.write_str("no signatures"),
            FailureClass::NotSigned => f.write_str("not signed by the required signer"),
            FailureClass::AnnotationsMismatch => {
                f.write_str("signed by the required signer, but annotations mismatch")
            }
            FailureClass::HostError => write!(f, "registry or host error: {}", self.detail),
        }
    }
}

const MAX_DETAIL: usize = 200;

/// Keeps the first line of a host's text, without the transport's prefixes and
/// never a PEM block, at most [`MAX_DETAIL`] characters.
fn trim_host_text(text: &str) -> String {
    let mut line = text.lines().next().unwrap_or_default().trim();
    for prefix in ["Host error:", "Callback evaluation failure:"] {
        line = line.strip_prefix(prefix).unwrap_or(line).trim();
    }
    let line = line.split("-----BEGIN").next().unwrap_or_default().trim();
    match line.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None if line.is_empty() => "no reason given".into(),
        None => line.to_owned(),
    }
}

/// Asks the Kubewarden host (`kubewarden/oci/v2/verify`, `v1/manifest_digest`,
/// `v1/oci_manifest`).
pub struct HostVerifier;

/// Calls the `kubewarden/oci` capability `operation` with `image` as a JSON string.
fn read_oci(operation: &str, image: &ImageRef) -> Result<Vec<u8>, Failure> {
    let request = serde_json::to_vec(&image.to_string())
        .map_err(|e| Failure::host(&format!("cannot encode the request: {e}")))?;
    wapc_guest::host_call("kubewarden", "oci", operation, &request)
        .map_err(|e| Failure::host(&e.to_string()))
}

impl Verifier for HostVerifier {
    fn verify(&self, check: &Check<'_>) -> Result<String, Failure> {
        let request = serde_json::to_vec(&host_request(check)).map_err(|e| Failure {
            class: FailureClass::HostError,
            detail: format!("cannot encode the request: {e}"),
        })?;
        let response = wapc_guest::host_call("kubewarden", "oci", "v2/verify", &request)
            .map_err(|e| Failure::from_host_error(&e.to_string()))?;
        let response: VerificationResponse =
            serde_json::from_slice(&response).map_err(|e| Failure {
                class: FailureClass::HostError,
                detail: format!("unreadable host answer: {e}"),
            })?;
        if response.is_trusted {
            Ok(response.digest)
        } else {
            Err(Failure::new(FailureClass::NotSigned))
        }
    }

    fn manifest_digest(&self, image: &ImageRef) -> Result<String, Failure> {
        let response = read_oci("v1/manifest_digest", image)?;
        serde_json::from_slice::<ManifestDigestResponse>(&response)
            .map(|r| r.digest)
            .map_err(|e| Failure::host(&format!("unreadable host answer: {e}")))
    }

    fn oci_manifest(&self, image: &ImageRef) -> Result<Manifest, Failure> {
        let response = read_oci("v1/oci_manifest", image)?;
        Manifest::from_json(&response)
            .map_err(|e| Failure::host(&format!("unreadable host answer: {e}")))
    }
}

/// The `v2/verify` request for one check, in the SDK's wire type.
pub fn host_request(check: &Check<'_>) -> SigstoreVerificationInputV2 {
    let image = check.image.to_string();
    let annotations = check.annotations.cloned();
    match check.signer.clone() {
        Signer::PubKey(key) => SigstoreVerificationInputV2::SigstorePubKeyVerify {
            image,
            pub_keys: vec![key],
            annotations,
        },
        Signer::Keyless { issuer, subject } => SigstoreVerificationInputV2::SigstoreKeylessVerify {
            image,
            keyless: vec![KeylessInfo { issuer, subject }],
            annotations,
        },
        Signer::KeylessPrefix { issuer, url_prefix } => {
            SigstoreVerificationInputV2::SigstoreKeylessPrefixVerify {
                image,
                keyless_prefix: vec![KeylessPrefixInfo { issuer, url_prefix }],
                annotations,
            }
        }
        Signer::GithubActions { owner, repo } => {
            SigstoreVerificationInputV2::SigstoreGithubActionsVerify {
                image,
                owner,
                repo,
                annotations,
            }
        }
        Signer::Certificate {
            certificate,
            chain,
            require_rekor_bundle,
        } => SigstoreVerificationInputV2::SigstoreCertificateVerify {
            image,
            certificate: certificate.into_bytes(),
            certificate_chain: chain.map(|c| c.into_iter().map(String::into_bytes).collect()),
            require_rekor_bundle,
            annotations,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_texts_are_classified() {
        let not_signed = "Host error: Callback evaluation failure: Image verification failed: missing signatures\nThe following constraints were not satisfied:\nkind: pubKey\nkey: |\n  -----BEGIN PUBLIC KEY-----\n  MFkw\n  -----END PUBLIC KEY-----\n";
        assert_eq!(
            Failure::from_host_error(not_signed),
            Failure::new(FailureClass::NotSigned)
        );
        assert_eq!(
            Failure::from_host_error("Host error: Callback evaluation failure: verification failed: Several Signature Layers failed verification"),
            Failure::new(FailureClass::NotSigned)
        );
        assert_eq!(
            Failure::from_host_error("no signatures found for image: 127.0.0.1:5000/app:v1"),
            Failure::new(FailureClass::NoSignatures)
        );
        let registry = Failure::from_host_error(
            "Host error: Callback evaluation failure: error sending request for url (http://127.0.0.1:1/v2/): connection refused\ncaused by: ...",
        );
        assert_eq!(registry.class, FailureClass::HostError);
        assert_eq!(
            registry.detail,
            "error sending request for url (http://127.0.0.1:1/v2/): connection refused"
        );
    }

    #[test]
    fn host_text_never_carries_pem_or_runs_long() {
        let pem = Failure::from_host_error(
            "bad key -----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
        );
        assert_eq!(pem.detail, "bad key");
        let long = Failure::from_host_error(&"x".repeat(1000));
        assert_eq!(long.detail.len(), MAX_DETAIL + 3);
        assert_eq!(Failure::from_host_error("").detail, "no reason given");
    }

    #[test]
    fn each_signer_becomes_its_own_request() {
        let image = ImageRef::parse("ghcr.io/acme/app:v1").unwrap();
        let annotations = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
        let signer = Signer::Certificate {
            certificate: "PEM".into(),
            chain: Some(vec!["CHAIN".into()]),
            require_rekor_bundle: true,
        };
        let check = Check {
            image: &image,
            signer: &signer,
            annotations: Some(&annotations),
        };
        let json = serde_json::to_value(host_request(&check)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "SigstoreCertificateVerify",
                "image": "ghcr.io/acme/app:v1",
                "certificate": b"PEM".to_vec(),
                "certificate_chain": [b"CHAIN".to_vec()],
                "require_rekor_bundle": true,
                "annotations": {"env": "prod"},
            })
        );
        let github = Signer::GithubActions {
            owner: "acme".into(),
            repo: None,
        };
        let json = serde_json::to_value(host_request(&Check {
            image: &image,
            signer: &github,
            annotations: None,
        }))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "SigstoreGithubActionsVerify", "image": "ghcr.io/acme/app:v1", "owner": "acme", "repo": null, "annotations": null})
        );
    }
}
