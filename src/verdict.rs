//! Runs a plan's checks through a [`Verifier`] and turns the outcomes into a verdict:
//! the digest each image was verified at, or a rejection that names every failing
//! image, where it sits, which rule failed and why.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use crate::image::ImageRef;
use crate::plan::{Action, Plan, PlannedImage};
use crate::platforms::{self, Index};
use crate::settings::{OnFailure, Requirement, Rule, Signer};
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
    /// What each matching `signatures` entry concluded, in settings order.
    pub entries: Vec<EntryOutcome<'s>>,
}

/// What one matching `signatures` entry concluded about an image.
#[derive(Debug)]
pub struct EntryOutcome<'s> {
    pub rule: &'s Rule,
    /// The signers that verified the image, or why the entry does not hold.
    pub result: Result<Vec<Signature>, EntryFailure>,
}

/// A signer that verified an image, and the digest it verified.
#[derive(Debug, Clone)]
pub struct Signature {
    /// Where the signer sits in the settings and who it is, never a PEM, e.g.
    /// `signatures[0].anyOf[1].keyless[0] (ci@acme.example from https://...)`.
    pub signer: String,
    pub digest: String,
}

/// Why an entry does not hold.
#[derive(Debug, Clone)]
pub struct EntryFailure {
    pub class: ReasonClass,
    /// The reason in words, as the rejection message gives it.
    pub reason: String,
    /// Every failed check found no signature by its signer: the one failure that
    /// signatures on platform manifests may make good.
    pub unsigned: bool,
}

/// The kind of a failure, short and stable, for warnings and audit records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonClass {
    NoSignatures,
    NotSigned,
    AnnotationsMismatch,
    HostError,
    /// Fewer signers than required verified, for different reasons.
    TooFewSigners,
    /// No alternative of `anyOf` holds, for different reasons.
    NoAlternativeHolds,
    /// The entry verified another digest than the image's.
    DigestMismatch,
    /// No entry matches the image (`rejectUnmatchedImages`).
    Unmatched,
    /// The image is written without a digest (`requireDigest`).
    NoDigest,
}

impl ReasonClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonClass::NoSignatures => "no-signatures",
            ReasonClass::NotSigned => "not-signed",
            ReasonClass::AnnotationsMismatch => "annotations-mismatch",
            ReasonClass::HostError => "host-error",
            ReasonClass::TooFewSigners => "too-few-signers",
            ReasonClass::NoAlternativeHolds => "no-alternative-holds",
            ReasonClass::DigestMismatch => "digest-mismatch",
            ReasonClass::Unmatched => "unmatched",
            ReasonClass::NoDigest => "no-digest",
        }
    }

    /// The class all of `classes` share, or `otherwise`.
    fn common(classes: impl IntoIterator<Item = ReasonClass>, otherwise: ReasonClass) -> Self {
        let mut classes = classes.into_iter();
        let first = classes.next().unwrap_or(otherwise);
        if classes.all(|class| class == first) {
            first
        } else {
            otherwise
        }
    }
}

impl From<FailureClass> for ReasonClass {
    fn from(class: FailureClass) -> Self {
        match class {
            FailureClass::NoSignatures => ReasonClass::NoSignatures,
            FailureClass::NotSigned => ReasonClass::NotSigned,
            FailureClass::AnnotationsMismatch => ReasonClass::AnnotationsMismatch,
            FailureClass::HostError => ReasonClass::HostError,
        }
    }
}

pub fn evaluate<'p, 's>(
    plan: &'p Plan<'s>,
    session: &mut Session<'p>,
) -> Vec<ImageOutcome<'p, 's>> {
    plan.images
        .iter()
        .map(|planned| {
            let (result, entries) = evaluate_image(planned, session);
            ImageOutcome {
                planned,
                result,
                entries,
            }
        })
        .collect()
}

type ImageResult = Result<Option<String>, Vec<String>>;

fn evaluate_image<'p, 's>(
    planned: &'p PlannedImage<'s>,
    session: &mut Session<'p>,
) -> (ImageResult, Vec<EntryOutcome<'s>>) {
    let rules = match &planned.action {
        Action::Skip | Action::Admit => return (Ok(None), Vec::new()),
        Action::RejectUnmatched => {
            return (
                Err(vec![
                    "no signature rule matches this image, and unmatched images are rejected"
                        .into(),
                ]),
                Vec::new(),
            )
        }
        Action::RejectNoDigest => {
            return (
                Err(vec![
                    "the image has no digest, and a digest is required".into()
                ]),
                Vec::new(),
            )
        }
        Action::Verify(rules) => rules,
    };
    let mut entries: Vec<EntryOutcome<'s>> = rules
        .iter()
        .map(|&rule| EntryOutcome {
            rule,
            result: platforms::evaluate_rule(rule, &planned.image, session),
        })
        .collect();
    let result = judge(&mut entries, planned.image.digest());
    (result, entries)
}

/// The image's result from its entries'. Enforcing entries decide; an image that only
/// warn-only entries match is verified (and pinned) when all of them hold, and otherwise
/// admitted unverified. A warn-only entry that verified another digest than the one the
/// image is verified at is marked failed, so that it is warned about.
fn judge(entries: &mut [EntryOutcome<'_>], pinned: Option<&str>) -> ImageResult {
    let enforced = entries
        .iter()
        .any(|entry| entry.rule.on_failure == OnFailure::Reject);
    let decides =
        |entry: &EntryOutcome<'_>| !enforced || entry.rule.on_failure == OnFailure::Reject;
    let mut reasons = Vec::new();
    let mut digests = BTreeSet::new();
    for entry in entries.iter().filter(|entry| decides(entry)) {
        match &entry.result {
            Ok(signatures) => digests.extend(signatures.iter().map(|s| s.digest.as_str())),
            Err(failure) => reasons.push(failure.reason.clone()),
        }
    }
    // Why the entries that decide, all holding, still disagree on the digest.
    let mut disagreement = None;
    let decided = if reasons.is_empty() {
        agreed_digest(digests, pinned).map_err(|reason| {
            disagreement = Some(reason.clone());
            vec![reason]
        })
    } else {
        Err(reasons)
    };
    for entry in entries
        .iter_mut()
        .filter(|entry| entry.rule.on_failure == OnFailure::Warn)
    {
        let Ok(signatures) = &entry.result else {
            continue;
        };
        let reason = match (&decided, &disagreement) {
            (Ok(digest), _) => signatures
                .iter()
                .find(|s| s.digest != *digest)
                .map(|s| format!("verified {}, not {digest}", s.digest)),
            // Every warn-only entry held, but not for one digest.
            (Err(_), Some(why)) if !enforced => Some(why.clone()),
            (Err(_), _) => None,
        };
        if let Some(reason) = reason {
            entry.result = Err(EntryFailure {
                class: ReasonClass::DigestMismatch,
                reason,
                unsigned: false,
            });
        }
    }
    if enforced {
        decided.map(Some)
    } else {
        Ok(decided.ok())
    }
}

/// The one digest the signatures verified, which must be the one the spec pins, if any.
fn agreed_digest(digests: BTreeSet<&str>, pinned: Option<&str>) -> Result<String, String> {
    let mut digests = digests.into_iter();
    match (digests.next(), digests.next(), pinned) {
        (Some(digest), None, Some(pinned)) if digest != pinned => Err(format!(
            "the spec pins {pinned} but the signatures verified {digest}"
        )),
        (Some(digest), None, _) => Ok(digest.to_owned()),
        (Some(first), Some(second), _) => Err(format!(
            "the tag moved while it was verified: rules verified both {first} and {second}"
        )),
        (None, _, _) => Err("the host verified no digest".into()),
    }
}

/// A rule holds when one of its alternatives does; alternatives after the first
/// that holds are not asked.
pub fn evaluate_rule<'p>(
    rule: &'p Rule,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<Signature>, EntryFailure> {
    let mut failures = Vec::new();
    for requirement in &rule.alternatives {
        match evaluate_requirement(requirement, image, session) {
            Ok(signatures) => return Ok(signatures),
            Err(failure) => failures.push(failure),
        }
    }
    if failures.len() == 1 {
        return Err(failures.remove(0));
    }
    let reasons: Vec<&str> = failures.iter().map(|f| f.reason.as_str()).collect();
    Err(EntryFailure {
        class: ReasonClass::common(
            failures.iter().map(|f| f.class),
            ReasonClass::NoAlternativeHolds,
        ),
        unsigned: failures.iter().all(|f| f.unsigned),
        reason: format!(
            "{}: none of {} alternatives holds: {}",
            rule.id,
            failures.len(),
            reasons.join("; ")
        ),
    })
}

/// At least `minimum_matches` signers must have signed. Asking stops as soon as the
/// answer is known either way: no host call is made that cannot change it.
fn evaluate_requirement<'p>(
    requirement: &'p Requirement,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<Signature>, EntryFailure> {
    let needed = requirement.minimum_matches;
    let allowed_failures = requirement.signers.len() - needed;
    let kind = requirement.kind;
    let mut signatures = Vec::new();
    let mut failures = Vec::new();
    for (index, signer) in requirement.signers.iter().enumerate() {
        match session.ask_explained(image, signer, requirement.annotations.as_ref()) {
            Ok(digest) => signatures.push(Signature {
                signer: format!("{}.{}", requirement.id, signer.describe(kind, index)),
                digest,
            }),
            Err(failure) => failures.push((
                failure.class,
                format!("{}: {failure}", signer.describe(kind, index)),
            )),
        }
        if signatures.len() == needed {
            return Ok(signatures);
        }
        if failures.len() > allowed_failures {
            break;
        }
    }
    let signers = requirement.signers.len();
    let head = if signers == 1 {
        format!("{} {kind}", requirement.id)
    } else {
        format!(
            "{} {kind}: {} of {} required signers verified",
            requirement.id,
            signatures.len(),
            needed
        )
    };
    let reasons: Vec<&str> = failures.iter().map(|(_, reason)| reason.as_str()).collect();
    Err(EntryFailure {
        class: ReasonClass::common(
            failures.iter().map(|&(class, _)| class.into()),
            ReasonClass::TooFewSigners,
        ),
        reason: format!("{head}: {}", reasons.join(", ")),
        unsigned: failures.iter().all(|&(class, _)| {
            matches!(class, FailureClass::NoSignatures | FailureClass::NotSigned)
        }),
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
