//! The verdict on each distinct image of a plan: its entries evaluated, then judged
//! together into the digest the image was verified at, or the reasons it fails.

use std::collections::BTreeSet;

use crate::evaluation::{self, EntryFailure, Session, Signature};
use crate::plan::{Action, Plan, PlannedImage};
use crate::settings::{OnFailure, Rule};
use crate::verifier::{FailureClass, Verifier};

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

/// Every image of `plan`, each check asked of `verifier` at most once.
pub fn evaluate<'p, 's>(plan: &'p Plan<'s>, verifier: &dyn Verifier) -> Vec<ImageOutcome<'p, 's>> {
    let session = &mut Session::new(verifier);
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
            result: evaluation::evaluate_rule(rule, &planned.image, session),
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
                class: FailureClass::DigestMismatch,
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
