//! What the policy reports besides its verdict: an admission warning for every check
//! that only warns, and audit annotations that record which entry and signer verified
//! which image at which digest, so the cluster's audit log shows what was verified.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::{Action, PlannedImage};
use crate::settings::{OnFailure, Settings};
use crate::verdict::ImageOutcome;
use crate::verifier::FailureClass;

/// Kubernetes truncates longer warnings.
pub const MAX_WARNING: usize = 255;
/// The most characters an audit annotation value holds.
pub const MAX_AUDIT_VALUE: usize = 1024;
/// Longest image reference and signer name recorded; longer ones are cut.
const MAX_RECORDED_TEXT: usize = 256;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// In object order, then settings order.
    pub warnings: Vec<String>,
    /// `image-<n>`: one per image that at least one entry matched, numbered in object
    /// order. The API server prefixes each key with the webhook's name and a `/`, so a
    /// key is the name part of a qualified name: no `/`, at most 63 characters.
    pub audit_annotations: BTreeMap<String, String>,
}

impl Report {
    pub fn new(settings: &Settings, outcomes: &[ImageOutcome<'_, '_>]) -> Self {
        let mut report = Report::default();
        for outcome in outcomes {
            let planned = outcome.planned;
            let no_digest = settings.require_digest == Some(OnFailure::Warn)
                && planned.image.digest().is_none()
                && !matches!(planned.action, Action::Skip);
            let unmatched = settings.reject_unmatched_images == Some(OnFailure::Warn)
                && matches!(planned.action, Action::Admit);
            let mut warned: Vec<(&str, FailureClass)> = Vec::new();
            if no_digest {
                warned.push(("requireDigest", FailureClass::NoDigest));
            }
            if unmatched {
                warned.push(("rejectUnmatchedImages", FailureClass::Unmatched));
            }
            for entry in &outcome.entries {
                if let (OnFailure::Warn, Err(failure)) = (entry.rule.on_failure, &entry.result) {
                    warned.push((entry.rule.id.as_str(), failure.class));
                }
            }
            report.warnings.extend(
                warned
                    .iter()
                    .map(|&(entry, class)| warning(planned, entry, class)),
            );
            if !outcome.entries.is_empty() {
                let key = format!("image-{}", report.audit_annotations.len());
                report
                    .audit_annotations
                    .insert(key, record(outcome, &warned));
            }
        }
        report
    }
}

/// The image as written in its first container.
fn written<'a>(planned: &'a PlannedImage<'_>) -> &'a str {
    planned
        .containers
        .first()
        .and_then(|c| c.image.as_deref())
        .unwrap_or_default()
}

/// Where the image sits: its first container, and how many more name it.
fn place(planned: &PlannedImage<'_>) -> String {
    let Some(first) = planned.containers.first() else {
        return String::new();
    };
    match planned.containers.len() - 1 {
        0 => first.location.path(),
        more => format!("{} (+{more} more)", first.location.path()),
    }
}

/// `text`, cut to at most `max` characters, the cut marked with `...`.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(3)) {
        Some((end, _)) if text.chars().count() > max => format!("{}...", &text[..end]),
        _ => text.to_owned(),
    }
}

/// One warning: the image, where it sits, the entry and the reason class, cutting the
/// image so that the whole stays within [`MAX_WARNING`]. It never quotes the settings,
/// so never a PEM.
fn warning(planned: &PlannedImage<'_>, entry: &str, class: FailureClass) -> String {
    let tail = format!(
        " at {}: {entry} (warn only): {}",
        place(planned),
        class.as_str()
    );
    let room = MAX_WARNING.saturating_sub(tail.chars().count());
    format!("{}{tail}", cut(written(planned), room))
}

#[derive(Serialize)]
struct Record<'a> {
    image: String,
    at: String,
    /// The digest the image was verified at, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    verified: Vec<Verified<'a>>,
    /// Warn-only checks that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warned: Vec<Failed<'a>>,
    /// Enforcing entries that failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failed: Vec<Failed<'a>>,
    /// How many items were left out to keep the value within [`MAX_AUDIT_VALUE`].
    #[serde(skip_serializing_if = "is_zero")]
    omitted: usize,
}

#[derive(Serialize)]
struct Verified<'a> {
    entry: &'a str,
    digest: String,
    signers: Vec<String>,
}

#[derive(Serialize)]
struct Failed<'a> {
    entry: &'a str,
    reason: &'static str,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The audit record of one image, as compact JSON of at most [`MAX_AUDIT_VALUE`]
/// characters: the last items are left out, and counted, when it would be longer.
fn record(outcome: &ImageOutcome<'_, '_>, warned: &[(&str, FailureClass)]) -> String {
    let mut verified = Vec::new();
    let mut failed = Vec::new();
    for entry in &outcome.entries {
        match (&entry.result, entry.rule.on_failure) {
            (Ok(signatures), _) => {
                let mut digests: Vec<&str> = signatures.iter().map(|s| s.digest.as_str()).collect();
                digests.sort_unstable();
                digests.dedup();
                verified.push(Verified {
                    entry: &entry.rule.id,
                    digest: digests.join(" "),
                    signers: signatures
                        .iter()
                        .map(|s| cut(&s.signer, MAX_RECORDED_TEXT))
                        .collect(),
                });
            }
            (Err(failure), OnFailure::Reject) => failed.push(Failed {
                entry: &entry.rule.id,
                reason: failure.class.as_str(),
            }),
            (Err(_), OnFailure::Warn) => {}
        }
    }
    let mut record = Record {
        image: cut(written(outcome.planned), MAX_RECORDED_TEXT),
        at: place(outcome.planned),
        digest: outcome.result.as_ref().ok().and_then(Option::as_deref),
        verified,
        warned: warned
            .iter()
            .map(|&(entry, class)| Failed {
                entry,
                reason: class.as_str(),
            })
            .collect(),
        failed,
        omitted: 0,
    };
    loop {
        // Serialising strings and numbers cannot fail.
        let text = serde_json::to_string(&record).unwrap_or_default();
        if text.chars().count() <= MAX_AUDIT_VALUE || !record.leave_out_one() {
            return text;
        }
    }
}

impl Record<'_> {
    /// Leaves out the last item of the last non-empty list; `false` when none is left.
    fn leave_out_one(&mut self) -> bool {
        let left_out = self.failed.pop().is_some()
            || self.warned.pop().is_some()
            || self.verified.pop().is_some();
        self.omitted += usize::from(left_out);
        left_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_keeps_what_fits_and_marks_the_cut() {
        assert_eq!(cut("abcde", 5), "abcde");
        assert_eq!(cut("abcdef", 5), "ab...");
        assert_eq!(cut("ééééé", 5), "ééééé");
        assert_eq!(cut("éééééé", 5), "éé...");
        assert_eq!(cut("", 0), "");
    }
}
