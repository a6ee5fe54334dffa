//! Verification planning: which images of a workload need which rules.
//!
//! Containers that name the same image (in any spelling) are planned once, so a
//! Deployment with ten replicas of one sidecar costs one set of host calls.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::image::{ImageRef, Spellings};
use crate::settings::{OnFailure, Rule, Settings};
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

#[derive(Debug)]
pub struct Plan<'s> {
    pub images: Vec<PlannedImage<'s>>,
    pub unreadable: Vec<Unreadable>,
}

impl<'s> Plan<'s> {
    pub fn new(settings: &'s Settings, containers: Vec<ContainerImage>) -> Self {
        let mut unreadable = Vec::new();
        let mut distinct: Vec<(ImageRef, Vec<ContainerImage>)> = Vec::new();
        let mut seen: HashMap<ImageRef, usize> = HashMap::new();
        // Containers that spell their image alike share its parse: N containers of one
        // image cost one parse, not N.
        let mut spelled: HashMap<String, usize> = HashMap::new();
        for container in containers {
            if let Some(&at) = container.image.as_deref().and_then(|i| spelled.get(i)) {
                distinct[at].1.push(container);
                continue;
            }
            let parsed = match &container.image {
                None => Err(container.location.missing_image().to_owned()),
                Some(image) => ImageRef::parse(image)
                    .map_err(|e| format!("cannot parse image reference {image:?}: {e}")),
            };
            let image = match parsed {
                Ok(image) => image,
                Err(reason) => {
                    unreadable.push(Unreadable { container, reason });
                    continue;
                }
            };
            // An index by image keeps planning linear in the number of containers.
            let at = match seen.entry(image) {
                Entry::Occupied(at) => *at.get(),
                Entry::Vacant(slot) => {
                    distinct.push((slot.key().clone(), Vec::new()));
                    *slot.insert(distinct.len() - 1)
                }
            };
            if let Some(spelling) = &container.image {
                spelled.insert(spelling.clone(), at);
            }
            distinct[at].1.push(container);
        }
        // Rules are matched once every spelling the workload wrote for an image is known.
        let images = distinct
            .into_iter()
            .map(|(image, containers)| PlannedImage {
                action: action(settings, &image, &containers),
                image,
                containers,
            })
            .collect();
        Plan { images, unreadable }
    }
}

fn action<'s>(
    settings: &'s Settings,
    image: &ImageRef,
    containers: &[ContainerImage],
) -> Action<'s> {
    if settings.skip_images.iter().any(|p| p.surely_matches(image)) {
        return Action::Skip;
    }
    if settings.require_digest == Some(OnFailure::Reject) && image.digest().is_none() {
        return Action::RejectNoDigest;
    }
    let written = containers.iter().filter_map(|c| c.image.as_deref());
    let spellings = Spellings::new(image, written);
    let rules: Vec<&Rule> = settings
        .rules
        .iter()
        .filter(|rule| rule.image.may_match(&spellings))
        .collect();
    match (rules.is_empty(), settings.reject_unmatched_images) {
        (false, _) => Action::Verify(rules),
        (true, Some(OnFailure::Reject)) => Action::RejectUnmatched,
        (true, None | Some(OnFailure::Warn)) => Action::Admit,
    }
}
