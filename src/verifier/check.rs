//! What the host is asked: one signer's signature on one image, through the
//! [`Verifier`] trait that the host and the tests' fakes implement.

use std::collections::BTreeMap;

use super::failure::Failure;
use super::manifest::Manifest;
use crate::image::ImageRef;

/// One key, identity or certificate: the unit the host verifies in one call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signer {
    PubKey(String),
    Keyless {
        issuer: String,
        subject: String,
    },
    KeylessPrefix {
        issuer: String,
        url_prefix: String,
    },
    GithubActions {
        owner: String,
        repo: Option<String>,
    },
    Certificate {
        certificate: String,
        chain: Option<Vec<String>>,
        require_rekor_bundle: bool,
    },
}

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
