//! Runs a plan's checks through a [`Verifier`] and turns the outcomes into a verdict:
//! the digest each image was verified at, or a rejection that names every failing
//! image, where it sits, which rule failed and why.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use crate::image::ImageRef;
use crate::plan::{Action, Plan, PlannedImage};
use crate::platforms::{self, Index};
use crate::settings::{Requirement, Rule, Signer};
use crate::verifier::{Check, Failure, FailureClass, Verifier};

/// Host answers of one evaluation, so that no check is asked twice.
pub struct Session<'v> {
    verifier: &'v dyn Verifier,
    /// Keyed by an owned image: platform manifests are images the plan does not hold.
    answers: HashMap<(ImageRef, &'v Signer, Option<&'v Annotations>), Result<String, Failure>>,
    /// Image indexes read for `platformSignatures`, at most once per image.
    indexes: HashMap<ImageRef, Result<Rc<Index>, String>>,
}

type Annotations = BTreeMap<String, String>;

impl<'v> Session<'v> {
    pub fn new(verifier: &'v dyn Verifier) -> Self {
        Self {
            verifier,
            answers: HashMap::new(),
            indexes: HashMap::new(),
        }
    }

    fn ask(
        &mut self,
        image: &ImageRef,
        signer: &'v Signer,
        annotations: Option<&'v Annotations>,
    ) -> Result<String, Failure> {
        let key = (image.clone(), signer, annotations);
        if let Some(answer) = self.answers.get(&key) {
            return answer.clone();
        }
        let check = Check {
            image,
            signer,
            annotations,
        };
        let answer = self.verifier.verify(&check);
        self.answers.insert(key, answer.clone());
        answer
    }

    /// A failed check that demanded annotations is asked again without them, to tell
    /// "wrong annotations" from "not signed by this signer" in the verdict.
    fn ask_explained(
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
            .or_insert_with(|| platforms::read_index(verifier, image))
            .clone()
    }
}

/// What became of one distinct image.
#[derive(Debug)]
pub struct ImageOutcome<'p, 's> {
    pub planned: &'p PlannedImage<'s>,
    /// `Ok(Some(digest))` when verified, `Ok(None)` when admitted unverified.
    pub result: Result<Option<String>, Vec<String>>,
}

pub fn evaluate<'p, 's>(
    plan: &'p Plan<'s>,
    session: &mut Session<'p>,
) -> Vec<ImageOutcome<'p, 's>> {
    plan.images
        .iter()
        .map(|planned| ImageOutcome {
            planned,
            result: evaluate_image(planned, session),
        })
        .collect()
}

fn evaluate_image<'p>(
    planned: &'p PlannedImage<'_>,
    session: &mut Session<'p>,
) -> Result<Option<String>, Vec<String>> {
    let rules = match &planned.action {
        Action::Skip | Action::Admit => return Ok(None),
        Action::RejectUnmatched => {
            return Err(vec![
                "no signature rule matches this image, and unmatched images are rejected".into(),
            ])
        }
        Action::RejectNoDigest => {
            return Err(vec![
                "the image has no digest, and a digest is required".into()
            ])
        }
        Action::Verify(rules) => rules,
    };
    let mut digests = BTreeSet::new();
    let mut reasons = Vec::new();
    for rule in rules {
        match platforms::evaluate_rule(rule, &planned.image, session) {
            Ok(verified) => digests.extend(verified),
            Err(reason) => reasons.push(reason),
        }
    }
    if !reasons.is_empty() {
        return Err(reasons);
    }
    let mut digests = digests.into_iter();
    match (digests.next(), digests.next(), planned.image.digest()) {
        (Some(digest), None, Some(pinned)) if digest != pinned => Err(vec![format!(
            "the spec pins {pinned} but the signatures verified {digest}"
        )]),
        (Some(digest), None, _) => Ok(Some(digest)),
        (Some(first), Some(second), _) => Err(vec![format!(
            "the tag moved while it was verified: rules verified both {first} and {second}"
        )]),
        (None, _, _) => Err(vec!["the host verified no digest".into()]),
    }
}

/// Why a rule does not hold.
#[derive(Debug)]
pub struct Unmet {
    pub reason: String,
    /// Every failed check found no signature by its signer: the one failure that
    /// signatures on platform manifests may make good.
    pub unsigned: bool,
}

/// A rule holds when one of its alternatives does; alternatives after the first
/// that holds are not asked.
pub fn evaluate_rule<'p>(
    rule: &'p Rule,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<String>, Unmet> {
    let mut failures = Vec::new();
    for requirement in &rule.alternatives {
        match evaluate_requirement(requirement, image, session) {
            Ok(digests) => return Ok(digests),
            Err(unmet) => failures.push(unmet),
        }
    }
    let unsigned = failures.iter().all(|unmet| unmet.unsigned);
    let reason = match failures.as_slice() {
        [only] => only.reason.clone(),
        all => format!(
            "{}: none of {} alternatives holds: {}",
            rule.id,
            all.len(),
            all.iter()
                .map(|unmet| unmet.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    };
    Err(Unmet { reason, unsigned })
}

/// At least `minimum_matches` signers must have signed. Asking stops as soon as the
/// answer is known either way: no host call is made that cannot change it.
fn evaluate_requirement<'p>(
    requirement: &'p Requirement,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<String>, Unmet> {
    let needed = requirement.minimum_matches;
    let allowed_failures = requirement.signers.len() - needed;
    let mut digests = Vec::new();
    let mut failures = Vec::new();
    let mut unsigned = true;
    for (index, signer) in requirement.signers.iter().enumerate() {
        match session.ask_explained(image, signer, requirement.annotations.as_ref()) {
            Ok(digest) => digests.push(digest),
            Err(failure) => {
                unsigned &= matches!(
                    failure.class,
                    FailureClass::NoSignatures | FailureClass::NotSigned
                );
                failures.push(format!(
                    "{}: {failure}",
                    signer.describe(requirement.kind, index)
                ));
            }
        }
        if digests.len() == needed {
            return Ok(digests);
        }
        if failures.len() > allowed_failures {
            break;
        }
    }
    let signers = requirement.signers.len();
    let head = if signers == 1 {
        format!("{} {}", requirement.id, requirement.kind)
    } else {
        format!(
            "{} {}: {} of {} required signers verified",
            requirement.id,
            requirement.kind,
            digests.len(),
            needed
        )
    };
    Err(Unmet {
        reason: format!("{head}: {}", failures.join(", ")),
        unsigned,
    })
}

/// The rejection message, if anything failed: every failing image with its
/// locations and reasons, and every unreadable container, in object order, so the
/// same input always gives the same text.
pub fn rejection(plan: &Plan<'_>, outcomes: &[ImageOutcome<'_, '_>]) -> Option<String> {
    let unreadable = plan.unreadable.iter().map(|u| {
        let location = &u.container.location;
        (location, location.path(), u.reason.clone())
    });
    let failed = outcomes.iter().filter_map(|outcome| {
        let reasons = outcome.result.as_ref().err()?;
        let containers = &outcome.planned.containers;
        let first = containers.first()?;
        let places: Vec<String> = containers.iter().map(|c| c.location.path()).collect();
        let written = first.image.as_deref().unwrap_or_default();
        Some((
            &first.location,
            format!("{} ({written})", places.join(", ")),
            reasons.join("; "),
        ))
    });
    let mut failures: Vec<_> = unreadable.chain(failed).collect();
    if failures.is_empty() {
        return None;
    }
    failures.sort();
    let count = failures.len();
    let noun = if count == 1 { "image" } else { "images" };
    let body: Vec<String> = failures
        .into_iter()
        .map(|(_, place, why)| format!("{place}: {why}"))
        .collect();
    Some(format!(
        "{count} {noun} failed verification: {}",
        body.join("; ")
    ))
}
