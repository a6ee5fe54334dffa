//! An image found in an object, and where it sits: in a pod spec's container lists or
//! image volumes, or at a field path outside pod specs.

use std::ops::Range;

/// The container lists of a pod spec, in the order they are reported.
pub const CONTAINER_LISTS: [ContainerList; 3] = [
    ContainerList::Containers,
    ContainerList::InitContainers,
    ContainerList::EphemeralContainers,
];

/// The lists of a pod spec that name images: the three container lists, and the
/// volumes, whose `image.reference` (Kubernetes' ImageVolume) the runtime pulls too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContainerList {
    Containers,
    InitContainers,
    EphemeralContainers,
    ImageVolumes,
}

impl ContainerList {
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::InitContainers => "initContainers",
            ContainerList::EphemeralContainers => "ephemeralContainers",
            ContainerList::ImageVolumes => "volumes",
        }
    }

    /// Where the image sits in an element of the list, after its index.
    fn image_field(self) -> &'static str {
        match self {
            ContainerList::ImageVolumes => ".image.reference",
            _ => "",
        }
    }

    /// Why an element without an image cannot be verified.
    pub fn missing_image(self) -> &'static str {
        match self {
            ContainerList::ImageVolumes => "the image volume has no reference",
            _ => "the container has no image",
        }
    }
}

/// Where a container sits in a pod spec.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodLocation {
    /// The pod spec's path as JSON-pointer segments, e.g. `["spec", "template", "spec"]`.
    pub(super) pod_spec: &'static [&'static str],
    pub list: ContainerList,
    pub index: usize,
}

impl PodLocation {
    /// Human form, e.g. `spec.template.spec.initContainers[1]` or
    /// `spec.volumes[0].image.reference`.
    pub fn path(&self) -> String {
        format!(
            "{}.{}[{}]{}",
            self.pod_spec.join("."),
            self.list.field(),
            self.index,
            self.list.image_field()
        )
    }

    /// The path of the image string itself, e.g. `spec.containers[0].image`.
    pub fn image_path(&self) -> String {
        match self.list {
            ContainerList::ImageVolumes => self.path(),
            _ => format!("{}.image", self.path()),
        }
    }
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
    pub(super) order: usize,
    pub(super) path: String,
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
