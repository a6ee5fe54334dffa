//! Finds every image an object pulls, with where it sits:
//!
//! - in pod specs ([`pods`]): every container of Pods and of the pod templates of
//!   workloads, and image volumes;
//! - at fields outside pod specs ([`fields`]): the built-in families' paths
//!   ([`families`]: Tekton, Argo Workflows, KubeVirt), and the paths the settings name for
//!   any kind (`imageLocations`, parsed by [`path`]).
//!
//! Every image is borrowed from the object's JSON text, so its byte range is known and a
//! mutation can rewrite exactly those bytes.

mod families;
mod fields;
mod path;
mod pods;

use std::ops::Range;

pub use path::ImagePath;
pub use pods::{ContainerList, Object, PodLocation};

use path::Step;

/// An object's kind as the request names it: its API group and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindRef<'a> {
    pub group: &'a str,
    pub kind: &'a str,
}

/// The paths the settings name for a kind (`imageLocations`): its images lie there, on top
/// of wherever the policy looks for that kind anyway.
#[derive(Debug)]
pub struct KindPaths {
    pub group: String,
    pub kind: String,
    pub paths: Vec<ImagePath>,
}

/// Where an image sits in the object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    Pod(PodLocation),
    Field(FieldPath),
}

/// Where an image found at a field path sits, e.g. `spec.steps[0].image`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FieldPath {
    /// The image's place in document order among those found at field paths.
    order: usize,
    path: String,
}

impl Location {
    /// Human form: `spec.template.spec.initContainers[1]`,
    /// `spec.volumes[0].image.reference`, `spec.steps[0].image`.
    pub fn path(&self) -> String {
        match self {
            Location::Pod(pod) => pod.path(),
            Location::Field(field) => field.path.clone(),
        }
    }

    /// Why an element without an image cannot be verified.
    pub fn missing_image(&self) -> &'static str {
        match self {
            Location::Pod(pod) => pod.list.missing_image(),
            Location::Field(_) => "the field holds an empty image",
        }
    }

    /// The index of the ephemeral container this is, if it is one.
    pub fn ephemeral_index(&self) -> Option<usize> {
        match self {
            Location::Pod(pod) if pod.list == ContainerList::EphemeralContainers => Some(pod.index),
            _ => None,
        }
    }

    pub fn is_field(&self) -> bool {
        matches!(self, Location::Field(_))
    }
}

/// An image as written, with where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub location: Location,
    /// `None` when the container has no image, or the volume or field an empty one.
    pub image: Option<String>,
    /// Byte range of the image's JSON string in the text the object was read from.
    pub span: Option<Range<usize>>,
}

/// What the policy finds in an object.
#[derive(Debug, PartialEq, Eq)]
pub enum Workload {
    /// The object is of no kind this policy covers.
    NotCovered,
    Containers(Vec<ContainerImage>),
}

/// Where the images of one kind lie outside pod specs: its family's paths and those the
/// settings name for it.
pub struct FieldPaths<'s> {
    roots: Vec<&'s [Step]>,
}

impl<'s> FieldPaths<'s> {
    /// The field paths of `kind`; `None` when it has none (no family, no settings).
    pub fn of(kind: KindRef<'_>, named: &'s [KindPaths]) -> Option<Self> {
        let family = families::shape(kind)
            .map(|shape| shape.0)
            .unwrap_or_default();
        let mut roots: Vec<&'s [Step]> = family.to_vec();
        roots.extend(
            named
                .iter()
                .filter(|k| k.group == kind.group && k.kind == kind.kind)
                .flat_map(|k| k.paths.iter().map(|p| p.steps.as_slice())),
        );
        (!roots.is_empty()).then_some(FieldPaths { roots })
    }

    /// The images at these paths in `object`, the object's text; each span is its byte
    /// range in `object` plus `base`.
    pub fn find(
        &self,
        object: &str,
        base: usize,
        kind: &str,
    ) -> Result<Vec<ContainerImage>, String> {
        fields::find(object, &self.roots, base).map_err(|e| format!("cannot read the {kind}: {e}"))
    }
}

/// Every image of `object`, an object of kind `kind`, found in pod specs and at the field
/// paths of its kind (those of its family, and those `named` in the settings).
///
/// A known kind that cannot be read is an error (the caller rejects); an unknown kind is
/// covered when it carries a pod template or has field paths.
pub fn extract(kind: KindRef<'_>, object: &str, named: &[KindPaths]) -> Result<Workload, String> {
    let pods = pods::extract(kind.kind, object)?;
    let fields = FieldPaths::of(kind, named);
    match (pods, fields) {
        (None, None) => Ok(Workload::NotCovered),
        (pods, fields) => {
            let mut found = pods.unwrap_or_default();
            if let Some(fields) = fields {
                found.extend(fields.find(object, 0, kind.kind)?);
            }
            Ok(Workload::Containers(found))
        }
    }
}
