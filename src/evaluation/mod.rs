//! Rule evaluation: whether one `signatures` entry holds on one image, asking the
//! host through a [`Session`] so that no check is asked twice.
//!
//! A rule is checked on the image as written ([`rule`]); an entry that opts into
//! `platformSignatures` and finds the image merely unsigned is checked again on the
//! platform manifests of its index ([`platforms`]).

mod platforms;
mod rule;
mod session;

pub use rule::{EntryFailure, Signature};
pub use session::Session;

use crate::image::ImageRef;
use crate::settings::Rule;

/// A rule on an image: on the image as written, then, if it opts in and the image
/// is merely unsigned, on the platform manifests its index requires.
pub fn evaluate_rule<'p>(
    rule: &'p Rule,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<Signature>, EntryFailure> {
    let unmet = match rule::as_written(rule, image, session) {
        Ok(signatures) => return Ok(signatures),
        Err(unmet) => unmet,
    };
    match &rule.platform_signatures {
        Some(wanted) if unmet.unsigned => platforms::on_platforms(rule, wanted, image, session)
            .map_err(|why| EntryFailure {
                reason: format!("{}; platformSignatures: {why}", unmet.reason),
                ..unmet
            }),
        _ => Err(unmet),
    }
}
