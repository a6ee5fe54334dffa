//! One rule on one image as written: its alternatives, and the signers each requires.

use crate::image::ImageRef;
use crate::settings::{Requirement, Rule};
use crate::verifier::FailureClass;

use super::session::Session;

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
    pub class: FailureClass,
    /// The reason in words, as the rejection message gives it.
    pub reason: String,
    /// Every failed check found no signature by its signer: the one failure that
    /// signatures on platform manifests may make good.
    pub unsigned: bool,
}

/// A rule holds on the image as written when one of its alternatives does;
/// alternatives after the first that holds are not asked.
pub fn as_written<'p>(
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
        class: FailureClass::common(
            failures.iter().map(|f| f.class),
            FailureClass::NoAlternativeHolds,
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
                signer: format!("{}.{}", requirement.id, requirement.signer_name(index)),
                digest,
            }),
            Err(failure) => failures.push((
                failure.class,
                format!("{}: {failure}", requirement.signer_name(index)),
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
        class: FailureClass::common(
            failures.iter().map(|&(class, _)| class),
            FailureClass::TooFewSigners,
        ),
        reason: format!("{head}: {}", reasons.join(", ")),
        unsigned: failures.iter().all(|&(class, _)| class.is_unsigned()),
    })
}
