//! The host side of the seam: each call in Kubewarden's `kubewarden/oci` capability,
//! made through a [`HostCall`]: waPC in the module, an instant answer in the profile.

use kubewarden_policy_sdk::host_capabilities::oci::ManifestDigestResponse;
use kubewarden_policy_sdk::host_capabilities::verification::{
    KeylessInfo, KeylessPrefixInfo, VerificationResponse,
};
use kubewarden_policy_sdk::host_capabilities::SigstoreVerificationInputV2;

use super::check::{Check, Signer, Verifier};
use super::failure::{Failure, FailureClass};
use super::manifest::Manifest;
use crate::image::ImageRef;

/// One call of the host's `kubewarden/oci` capability: the answer's bytes, or the host's
/// error text.
pub trait HostCall {
    fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String>;
}

/// The host over waPC.
pub struct Wapc;

impl HostCall for Wapc {
    fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        wapc_guest::host_call("kubewarden", "oci", operation, payload).map_err(|e| e.to_string())
    }
}

/// Asks the Kubewarden host (`kubewarden/oci/v2/verify`, `v1/manifest_digest`,
/// `v1/oci_manifest`): builds each call's payload and reads its answer.
pub struct HostVerifier<H = Wapc>(pub H);

impl<H: HostCall> HostVerifier<H> {
    /// Calls `operation` with `image` as a JSON string.
    fn read_oci(&self, operation: &str, image: &ImageRef) -> Result<Vec<u8>, Failure> {
        let request = serde_json::to_vec(&image.to_string())
            .map_err(|e| Failure::host(&format!("cannot encode the request: {e}")))?;
        self.0
            .call(operation, &request)
            .map_err(|e| Failure::from_host_error(&e))
    }
}

impl<H: HostCall> Verifier for HostVerifier<H> {
    fn verify(&self, check: &Check<'_>) -> Result<String, Failure> {
        let request = serde_json::to_vec(&host_request(check)).map_err(|e| Failure {
            class: FailureClass::HostError,
            detail: format!("cannot encode the request: {e}"),
        })?;
        let response = self
            .0
            .call("v2/verify", &request)
            .map_err(|e| Failure::from_host_error(&e))?;
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
        let response = self.read_oci("v1/manifest_digest", image)?;
        serde_json::from_slice::<ManifestDigestResponse>(&response)
            .map(|r| r.digest)
            .map_err(|e| Failure::host(&format!("unreadable host answer: {e}")))
    }

    fn oci_manifest(&self, image: &ImageRef) -> Result<Manifest, Failure> {
        let response = self.read_oci("v1/oci_manifest", image)?;
        Manifest::from_json(&response)
            .map_err(|e| Failure::host(&format!("unreadable host answer: {e}")))
    }
}

/// The `v2/verify` request for one check, in the SDK's wire type.
fn host_request(check: &Check<'_>) -> SigstoreVerificationInputV2 {
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
    use std::collections::BTreeMap;

    use super::*;

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
