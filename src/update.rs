//! What a request changes, and so what the policy verifies and may pin.
//!
//! On UPDATE only what the user changed is verified and pinned: re-pinning an image
//! that already runs restarts a Pod's container or rolls out a Deployment, and
//! re-verifying it locks every update (a label, a finalizer, a scale-down) of an old
//! workload as soon as its registry is down or its key rotated.
//!
//! An image is *unchanged* when the old object carries the same normalised reference,
//! digest included, anywhere [`workload::extract`] finds an image. On the
//! `pods/ephemeralcontainers` subresource, where the API server lets nothing but new
//! ephemeral containers change, only ephemeral containers new by name are changed.
//! Whatever cannot be compared (no old object, an unreadable one, an unparsable
//! image) is changed, so it is verified as on CREATE.

use std::collections::HashSet;

use serde::Deserialize;

use crate::image::ImageRef;
use crate::request::AdmissionRequest;
use crate::workload::{self, ContainerImage, KindPaths, KindRef, Workload};

/// Which images of one request are verified, and which may be pinned.
pub struct Scope {
    baseline: Baseline,
    /// Unchanged images are verified too (`reverifyUnchangedImages`), though never pinned.
    reverify_unchanged: bool,
    /// Only ephemeral containers may be pinned: the API server ignores the rest of the
    /// Pod on `pods/ephemeralcontainers`.
    ephemeral_only: bool,
}

/// What the request's object is compared with.
enum Baseline {
    /// CREATE, or an UPDATE whose old object is absent or unreadable: every image is new.
    Nothing,
    /// Every image the old object carries.
    Images(HashSet<ImageRef>),
    /// `pods/ephemeralcontainers`: for each ephemeral container of the new Pod, by
    /// index, whether the old Pod has one of the same name.
    ExistingEphemeral(Vec<bool>),
}

impl Scope {
    /// The scope of `request`, whose object is of kind `kind`, whose images the settings
    /// may locate (`named`). `object` gives the object's text (`None` if it cannot), asked
    /// for only on `pods/ephemeralcontainers`.
    /// `reverify_unchanged` applies to UPDATEs of the resource itself: a subresource
    /// (`status`, `scale`, `resize`, `ephemeralcontainers`...) cannot change the images
    /// that already run, so it never re-verifies them.
    pub fn new<'t, O>(
        request: &AdmissionRequest<'_, O>,
        kind: KindRef<'_>,
        named: &[KindPaths],
        object: impl FnOnce() -> Option<&'t str>,
        reverify_unchanged: bool,
    ) -> Self {
        let subresource = request
            .sub_resource
            .as_deref()
            .is_some_and(|s| !s.is_empty());
        let ephemeral_only = request.is_ephemeral_containers();
        let old = request
            .old_object()
            .filter(|_| request.operation.as_deref() == Some("UPDATE"));
        let baseline = match old {
            None => Baseline::Nothing,
            Some(old) if ephemeral_only && kind.kind == "Pod" => object()
                .map_or(Baseline::Nothing, |object| {
                    existing_ephemeral(object, old.get())
                }),
            Some(old) => old_images(kind, named, old.get()),
        };
        Self {
            baseline,
            reverify_unchanged: reverify_unchanged && !subresource,
            ephemeral_only,
        }
    }

    /// Whether the request adds or changes `container`'s image.
    fn changed(&self, container: &ContainerImage) -> bool {
        match &self.baseline {
            Baseline::Nothing => true,
            Baseline::Images(old) => !container
                .image
                .as_deref()
                .and_then(|image| ImageRef::parse(image).ok())
                .is_some_and(|image| old.contains(&image)),
            Baseline::ExistingEphemeral(existing) => container
                .location
                .ephemeral_index()
                .is_some_and(|index| !existing.get(index).copied().unwrap_or(false)),
        }
    }

    /// The containers to verify, of all those found in the object.
    pub fn to_verify(&self, containers: Vec<ContainerImage>) -> Vec<ContainerImage> {
        if self.reverify_unchanged {
            return containers;
        }
        containers.into_iter().filter(|c| self.changed(c)).collect()
    }

    /// Whether `container`, once verified, may be pinned: never when it is unchanged.
    pub fn may_pin(&self, container: &ContainerImage) -> bool {
        self.changed(container)
            && (!self.ephemeral_only || container.location.ephemeral_index().is_some())
    }
}

fn old_images(kind: KindRef<'_>, named: &[KindPaths], old: &str) -> Baseline {
    match workload::extract(kind, old, named) {
        Ok(Workload::Containers(found)) => Baseline::Images(
            found
                .iter()
                .filter_map(|c| ImageRef::parse(c.image.as_deref()?).ok())
                .collect(),
        ),
        // An old object that cannot be read proves nothing unchanged.
        Ok(Workload::NotCovered) | Err(_) => Baseline::Nothing,
    }
}

fn existing_ephemeral(object: &str, old: &str) -> Baseline {
    let (Some(new), Some(old)) = (ephemeral_names(object), ephemeral_names(old)) else {
        return Baseline::Nothing;
    };
    let old: HashSet<String> = old.into_iter().flatten().collect();
    Baseline::ExistingEphemeral(
        new.iter()
            .map(|name| name.as_ref().is_some_and(|name| old.contains(name)))
            .collect(),
    )
}

/// The names of a Pod's ephemeral containers, in order; `None` when unreadable.
fn ephemeral_names(pod: &str) -> Option<Vec<Option<String>>> {
    #[derive(Deserialize)]
    struct Pod {
        spec: Option<Spec>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        ephemeral_containers: Option<Vec<Named>>,
    }
    #[derive(Deserialize)]
    struct Named {
        name: Option<String>,
    }
    let pod: Pod = serde_json::from_str(pod).ok()?;
    let containers = pod.spec.and_then(|s| s.ephemeral_containers);
    Some(containers.into_iter().flatten().map(|c| c.name).collect())
}
