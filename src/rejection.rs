//! The rejection message: every failing image with where it sits and why, and every
//! container whose image cannot be read, in object order.

use crate::plan::Plan;
use crate::verdict::ImageOutcome;

/// The rejection message, if anything failed: every failing image with its
/// locations and reasons, and every unreadable container, in object order, so the
/// same input always gives the same text. Images at field paths (outside pod specs) are
/// said to be of the object's `kind`, which their paths do not tell.
pub fn message(kind: &str, plan: &Plan<'_>, outcomes: &[ImageOutcome<'_, '_>]) -> Option<String> {
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
    let noun = match (count, failures.iter().any(|(l, ..)| l.is_field())) {
        (1, false) => "image".to_owned(),
        (_, false) => "images".to_owned(),
        (1, true) => format!("image of the {kind}"),
        (_, true) => format!("images of the {kind}"),
    };
    let body: Vec<String> = failures
        .into_iter()
        .map(|(_, place, why)| format!("{place}: {why}"))
        .collect();
    Some(format!(
        "{count} {noun} failed verification: {}",
        body.join("; ")
    ))
}
