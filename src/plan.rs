//! Verification planning: which images of a workload need which rules.
//!
//! Containers that name the same image (in any spelling) are planned once, so a
//! Deployment with ten replicas of one sidecar costs one set of host calls.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use crate::image::ImageRef;
use crate::settings::{OnFailure, Rule, Settings};
use crate::verifier::Check;
use crate::workload::ContainerImage;

/// One distinct image of the workload and what to do with it.
#[derive(Debug)]
pub struct PlannedImage<'s> {
    pub image: ImageRef,
    /// Every container that names this image, in object order.
    pub containers: Vec<ContainerImage>,
    pub action: Action<'s>,
}

#[derive(Debug)]
pub enum Action<'s> {
    /// Exempted by `skipImages`.
    Skip,
    /// No rule names the image, and unmatched images are admitted (with a warning
    /// when `rejectUnmatchedImages` is `warn`).
    Admit,
    /// No rule names the image, and unmatched images are rejected.
    RejectUnmatched,
    /// The image is written without a digest, and a digest is required.
    RejectNoDigest,
    /// Every one of these rules must hold.
    Verify(Vec<&'s Rule>),
}

/// A container whose image cannot be verified at all.
#[derive(Debug)]
pub struct Unreadable {
    pub container: ContainerImage,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Plan<'s> {
    pub images: Vec<PlannedImage<'s>>,
    pub unreadable: Vec<Unreadable>,
}

impl<'s> Plan<'s> {
    pub fn new(settings: &'s Settings, containers: Vec<ContainerImage>) -> Self {
        let mut plan = Plan::default();
        let mut seen: HashMap<ImageRef, usize> = HashMap::new();
        for container in containers {
            let parsed = match &container.image {
                None => Err("the container has no image".to_owned()),
                Some(image) => ImageRef::parse(image)
                    .map_err(|e| format!("cannot parse image reference {image:?}: {e}")),
            };
            let image = match parsed {
                Ok(image) => image,
                Err(reason) => {
                    plan.unreadable.push(Unreadable { container, reason });
                    continue;
                }
            };
            // An index by image keeps planning linear in the number of containers.
            match seen.entry(image) {
                Entry::Occupied(at) => plan.images[*at.get()].containers.push(container),
                Entry::Vacant(slot) => {
                    let image = slot.key().clone();
                    slot.insert(plan.images.len());
                    let action = action(settings, &image);
                    plan.images.push(PlannedImage {
                        image,
                        containers: vec![container],
                        action,
                    });
                }
            }
        }
        plan
    }

    /// Every distinct check the plan may need, i.e. one per unique (image, signer,
    /// annotations): the most host calls an evaluation can make, short of the
    /// annotation diagnosis that follows a failed check.
    pub fn checks(&self) -> BTreeSet<Check<'_>> {
        self.images
            .iter()
            .filter_map(|planned| match &planned.action {
                Action::Verify(rules) => Some((planned, rules)),
                _ => None,
            })
            .flat_map(|(planned, rules)| {
                rules
                    .iter()
                    .flat_map(|rule| &rule.alternatives)
                    .flat_map(|req| {
                        req.signers.iter().map(|signer| Check {
                            image: &planned.image,
                            signer,
                            annotations: req.annotations.as_ref(),
                        })
                    })
            })
            .collect()
    }
}

fn action<'s>(settings: &'s Settings, image: &ImageRef) -> Action<'s> {
    if settings.skip_images.iter().any(|p| p.surely_matches(image)) {
        return Action::Skip;
    }
    if settings.require_digest == Some(OnFailure::Reject) && image.digest().is_none() {
        return Action::RejectNoDigest;
    }
    let rules: Vec<&Rule> = settings
        .rules
        .iter()
        .filter(|rule| rule.image.may_match(image))
        .collect();
    match (rules.is_empty(), settings.reject_unmatched_images) {
        (false, _) => Action::Verify(rules),
        (true, Some(OnFailure::Reject)) => Action::RejectUnmatched,
        (true, None | Some(OnFailure::Warn)) => Action::Admit,
    }
}
