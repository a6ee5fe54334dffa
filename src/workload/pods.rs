//! The images of pod specs: the image of every container, and the reference of every
//! image volume, of a Pod and of the pod template of a workload.
//!
//! Only the fields that hold containers are deserialised: the rest of the object
//! (often most of it: env, probes, managedFields) is skipped by serde without being
//! built.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::located::{ContainerImage, ContainerList, Location, PodLocation, CONTAINER_LISTS};

/// The kinds whose pod template location is known by name.
const POD_KINDS: &[&str] = &["Pod"];
const TEMPLATE_KINDS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "ReplicationController",
    "Job",
];
const JOB_TEMPLATE_KINDS: &[&str] = &["CronJob"];

/// What the policy reads of an object: the container lists, wherever a pod spec may
/// sit, whatever the kind. The images stay borrowed from the text the object was read
/// from, so that their byte ranges are known.
#[derive(Deserialize, Default)]
pub struct Object<'a> {
    #[serde(borrow)]
    spec: Option<ObjectSpec<'a>>,
}

/// A Pod's spec and a controller's spec in one: no `flatten`, which would make serde
/// buffer the whole spec.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ObjectSpec<'a> {
    #[serde(borrow)]
    containers: Option<Vec<Container<'a>>>,
    #[serde(borrow)]
    init_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow)]
    ephemeral_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow)]
    volumes: Option<Vec<Volume<'a>>>,
    #[serde(borrow)]
    template: Option<PodTemplate<'a>>,
    #[serde(borrow)]
    job_template: Option<JobTemplate<'a>>,
}

impl<'a> ObjectSpec<'a> {
    fn into_pod(self) -> PodSpec<'a> {
        PodSpec {
            containers: self.containers,
            init_containers: self.init_containers,
            ephemeral_containers: self.ephemeral_containers,
            volumes: self.volumes,
        }
    }
}

#[derive(Deserialize, Default)]
struct PodTemplate<'a> {
    #[serde(borrow)]
    spec: Option<PodSpec<'a>>,
}

#[derive(Deserialize, Default)]
struct JobTemplate<'a> {
    #[serde(borrow)]
    spec: Option<JobSpec<'a>>,
}

#[derive(Deserialize, Default)]
struct JobSpec<'a> {
    #[serde(borrow)]
    template: Option<PodTemplate<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec<'a> {
    #[serde(borrow)]
    containers: Option<Vec<Container<'a>>>,
    #[serde(borrow)]
    init_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow)]
    ephemeral_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow)]
    volumes: Option<Vec<Volume<'a>>>,
}

#[derive(Deserialize)]
struct Container<'a> {
    /// Raw, to know where it sits; decoded by [`containers`].
    #[serde(borrow)]
    image: Option<&'a RawValue>,
}

/// A volume; only an image volume names an image.
#[derive(Deserialize)]
struct Volume<'a> {
    #[serde(borrow)]
    image: Option<ImageVolumeSource<'a>>,
}

#[derive(Deserialize)]
struct ImageVolumeSource<'a> {
    /// Raw, like [`Container::image`].
    #[serde(borrow)]
    reference: Option<&'a RawValue>,
}

const POD_SPEC: &[&str] = &["spec"];
const TEMPLATE_SPEC: &[&str] = &["spec", "template", "spec"];
const JOB_TEMPLATE_SPEC: &[&str] = &["spec", "jobTemplate", "spec", "template", "spec"];

/// The pod-spec images of `object`, an object of kind `kind`; `None` when the kind has no
/// pod spec.
///
/// A known kind that cannot be read is an error (the caller rejects); an unknown
/// kind has pod specs only when it carries a pod template, and is read the same way.
pub(super) fn extract(kind: &str, object: &str) -> Result<Option<Vec<ContainerImage>>, String> {
    match serde_json::from_slice::<Object>(object.as_bytes()) {
        Ok(read) => read.pod_images(kind, object.as_bytes()),
        Err(error) => unreadable(kind, object, &error),
    }
}

/// Why an object that does not read as [`Object`] is refused, or that it has no pod spec.
fn unreadable(
    kind: &str,
    object: &str,
    error: &serde_json::Error,
) -> Result<Option<Vec<ContainerImage>>, String> {
    let error = format!("cannot read the {kind}: {error}");
    if is_known(kind) {
        return Err(error);
    }
    // Any other kind: a custom controller (an Argo Rollout, say) is covered by its pod
    // template. An object that does not even parse this far is covered only if its JSON
    // has a template where a pod template would be. Too deep for a `Value` (128 levels)
    // is no proof there is no template.
    let Ok(value) = serde_json::from_str::<serde_json::Value>(object) else {
        return Err(error);
    };
    let has_template = [TEMPLATE_SPEC, JOB_TEMPLATE_SPEC]
        .iter()
        .any(|path| value.pointer(&format!("/{}", path.join("/"))).is_some());
    if has_template {
        Err(error)
    } else {
        Ok(None)
    }
}

impl Object<'_> {
    /// The pod-spec images of this object, of kind `kind` (`None` when it has no pod spec):
    /// each image's span is its byte range in `text`, any text the object was read from
    /// that holds every image (the payload, or the object's own text within it).
    pub fn pod_images(
        self,
        kind: &str,
        text: &[u8],
    ) -> Result<Option<Vec<ContainerImage>>, String> {
        let known = |kinds: &[&str]| kinds.contains(&kind);
        let spec = self.spec.unwrap_or_default();
        let mut pods = Vec::new();
        if known(POD_KINDS) {
            pods.push((POD_SPEC, spec.into_pod()));
        } else {
            // Any other kind: a custom controller (an Argo Rollout, say) is covered by
            // whichever pod template it carries.
            let other = !is_known(kind);
            if other || known(TEMPLATE_KINDS) {
                let pod = spec.template.and_then(|t| t.spec);
                pods.extend(pod.map(|pod| (TEMPLATE_SPEC, pod)));
            }
            if other || known(JOB_TEMPLATE_KINDS) {
                let pod = job_pod_spec(spec.job_template);
                pods.extend(pod.map(|pod| (JOB_TEMPLATE_SPEC, pod)));
            }
            if other && pods.is_empty() {
                return Ok(None);
            }
        }
        let mut found = Vec::new();
        for (path, pod) in &pods {
            containers(text, path, pod, &mut found)
                .map_err(|e| format!("cannot read the {kind}: {e}"))?;
        }
        Ok(Some(found))
    }
}

/// Whether `kind` is one whose pod spec's place the policy knows.
fn is_known(kind: &str) -> bool {
    [POD_KINDS, TEMPLATE_KINDS, JOB_TEMPLATE_KINDS]
        .iter()
        .any(|kinds| kinds.contains(&kind))
}

fn job_pod_spec(job_template: Option<JobTemplate>) -> Option<PodSpec> {
    job_template?.spec?.template?.spec
}

/// Appends the images of `pod` to `found`, decoding each and locating it in `text`,
/// the text the pod was borrowed from.
fn containers(
    text: &[u8],
    pod_spec: &'static [&'static str],
    pod: &PodSpec,
    found: &mut Vec<ContainerImage>,
) -> Result<(), String> {
    let lists = [
        &pod.containers,
        &pod.init_containers,
        &pod.ephemeral_containers,
    ];
    let containers = CONTAINER_LISTS
        .into_iter()
        .zip(lists)
        .flat_map(|(list, containers)| {
            containers
                .iter()
                .flatten()
                .enumerate()
                .map(move |(index, container)| (list, index, container.image))
        });
    // Only image volumes: other volumes keep their index, so paths match the object.
    let volumes = pod
        .volumes
        .iter()
        .flatten()
        .enumerate()
        .filter_map(|(index, volume)| {
            let source = volume.image.as_ref()?;
            Some((ContainerList::ImageVolumes, index, source.reference))
        });
    for (list, index, image) in containers.chain(volumes) {
        let location = PodLocation {
            pod_spec,
            list,
            index,
        };
        let (image, span) = match image {
            None => (None, None),
            Some(raw) => {
                let image: String = serde_json::from_str(raw.get())
                    .map_err(|_| format!("{} is not a string", location.image_path()))?;
                let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                (Some(image), Some(start..start + raw.get().len()))
            }
        };
        found.push(ContainerImage {
            location: Location::Pod(location),
            image: image.filter(|i| !i.is_empty()),
            span,
        });
    }
    Ok(())
}
