//! The host answers of one evaluation, so that no check is asked twice and no image
//! index is read twice.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use crate::image::ImageRef;
use crate::verifier::{Check, Failure, FailureClass, IndexEntry, Manifest, Signer, Verifier};

/// Host answers of one evaluation, so that no check is asked twice.
pub struct Session<'v> {
    verifier: &'v dyn Verifier,
    /// Keyed by an owned image (platform manifests are images the plan does not hold) and
    /// the signer's number in [`Self::signers`].
    answers: HashMap<(ImageRef, usize, Option<&'v Annotations>), Result<String, Failure>>,
    /// Each signer numbered once, by value, so that the same key in two entries is one
    /// check; by address too, so that a PEM is hashed once per evaluation, not per check.
    signers: HashMap<&'v Signer, usize>,
    signer_addresses: HashMap<*const Signer, usize>,
    /// Image indexes read for `platformSignatures`, at most once per image.
    indexes: HashMap<ImageRef, Result<Rc<Index>, String>>,
}

type Annotations = BTreeMap<String, String>;

/// An image index as read for one image: its digest and its entries.
#[derive(Debug)]
pub struct Index {
    pub digest: String,
    pub entries: Vec<IndexEntry>,
}

impl<'v> Session<'v> {
    pub fn new(verifier: &'v dyn Verifier) -> Self {
        Self {
            verifier,
            answers: HashMap::new(),
            signers: HashMap::new(),
            signer_addresses: HashMap::new(),
            indexes: HashMap::new(),
        }
    }

    fn ask(
        &mut self,
        image: &ImageRef,
        signer: &'v Signer,
        annotations: Option<&'v Annotations>,
    ) -> Result<String, Failure> {
        let verifier = self.verifier;
        let signer_number = self.number(signer);
        self.answers
            .entry((image.clone(), signer_number, annotations))
            .or_insert_with(|| {
                verifier.verify(&Check {
                    image,
                    signer,
                    annotations,
                })
            })
            .clone()
    }

    /// `signer`'s number: the same for every signer equal to it.
    fn number(&mut self, signer: &'v Signer) -> usize {
        let address: *const Signer = signer;
        if let Some(&number) = self.signer_addresses.get(&address) {
            return number;
        }
        let next = self.signers.len();
        let number = *self.signers.entry(signer).or_insert(next);
        self.signer_addresses.insert(address, number);
        number
    }

    /// A failed check that demanded annotations is asked again without them, to tell
    /// "wrong annotations" from "not signed by this signer" in the verdict.
    pub fn ask_explained(
        &mut self,
        image: &ImageRef,
        signer: &'v Signer,
        annotations: Option<&'v Annotations>,
    ) -> Result<String, Failure> {
        match self.ask(image, signer, annotations) {
            Err(failure) if failure.class == FailureClass::NotSigned && annotations.is_some() => {
                match self.ask(image, signer, None) {
                    Ok(_) => Err(Failure::new(FailureClass::AnnotationsMismatch)),
                    Err(_) => Err(failure),
                }
            }
            answer => answer,
        }
    }

    /// The image index `image` names, read once per evaluation.
    pub fn index(&mut self, image: &ImageRef) -> Result<Rc<Index>, String> {
        let verifier = self.verifier;
        self.indexes
            .entry(image.clone())
            .or_insert_with(|| read_index(verifier, image))
            .clone()
    }
}

/// Reads the index `image` names: by the digest written in the spec, or else by the
/// digest its tag resolves to now (`oci/v1/manifest_digest`), so that the entries read
/// and the digest pinned are one and the same index.
fn read_index(verifier: &dyn Verifier, image: &ImageRef) -> Result<Rc<Index>, String> {
    let digest = match image.digest() {
        Some(digest) => digest.to_owned(),
        None => verifier
            .manifest_digest(image)
            .map_err(|e| format!("cannot resolve the image index: {e}"))?,
    };
    let by_digest = ImageRef::parse(&format!("{}@{digest}", image.name()))
        .map_err(|e| format!("the registry answered an unusable digest {digest:?}: {e}"))?;
    match verifier
        .oci_manifest(&by_digest)
        .map_err(|e| format!("cannot read the image index: {e}"))?
    {
        Manifest::Index(entries) => Ok(Rc::new(Index { digest, entries })),
        Manifest::Image => Err("not a multi-arch image: no platform manifests to check".into()),
    }
}
