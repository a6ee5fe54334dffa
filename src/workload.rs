//! Finds every container image of a workload, with where it sits.
//!
//! Only the fields that hold containers are deserialised: the rest of the object
//! (often most of it: env, probes, managedFields) is skipped by serde without being
//! built, and the original JSON is left alone for the mutation to edit in place.

use serde::Deserialize;

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

/// The container lists of a pod spec, in the order they are reported.
pub const CONTAINER_LISTS: [ContainerList; 3] = [
    ContainerList::Containers,
    ContainerList::InitContainers,
    ContainerList::EphemeralContainers,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContainerList {
    Containers,
    InitContainers,
    EphemeralContainers,
}

impl ContainerList {
    pub fn field(self) -> &'static str {
        match self {
            ContainerList::Containers => "containers",
            ContainerList::InitContainers => "initContainers",
            ContainerList::EphemeralContainers => "ephemeralContainers",
        }
    }
}

/// Where a container sits in the object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// The pod spec's path as JSON-pointer segments, e.g. `["spec", "template", "spec"]`.
    pod_spec: &'static [&'static str],
    pub list: ContainerList,
    pub index: usize,
}

impl Location {
    /// Human form, e.g. `spec.template.spec.initContainers[1]`.
    pub fn path(&self) -> String {
        format!(
            "{}.{}[{}]",
            self.pod_spec.join("."),
            self.list.field(),
            self.index
        )
    }

    /// RFC 6901 pointer to the container's `image` field.
    pub fn image_pointer(&self) -> String {
        format!(
            "/{}/{}/{}/image",
            self.pod_spec.join("/"),
            self.list.field(),
            self.index
        )
    }
}

/// A container image as written, with where it sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    pub location: Location,
    /// `None` when the container has no image (or an empty one).
    pub image: Option<String>,
}

/// What the policy finds in an object.
#[derive(Debug, PartialEq, Eq)]
pub enum Workload {
    /// The object is of no kind this policy covers.
    NotCovered,
    Containers(Vec<ContainerImage>),
}

#[derive(Deserialize, Default)]
struct Object {
    spec: Option<ObjectSpec>,
}

/// A Pod's spec and a controller's spec in one: no `flatten`, which would make serde
/// buffer the whole spec.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ObjectSpec {
    containers: Option<Vec<Container>>,
    init_containers: Option<Vec<Container>>,
    ephemeral_containers: Option<Vec<Container>>,
    template: Option<PodTemplate>,
    job_template: Option<JobTemplate>,
}

impl ObjectSpec {
    fn into_pod(self) -> PodSpec {
        PodSpec {
            containers: self.containers,
            init_containers: self.init_containers,
            ephemeral_containers: self.ephemeral_containers,
        }
    }
}

#[derive(Deserialize, Default)]
struct PodTemplate {
    spec: Option<PodSpec>,
}

#[derive(Deserialize, Default)]
struct JobTemplate {
    spec: Option<JobSpec>,
}

#[derive(Deserialize, Default)]
struct JobSpec {
    template: Option<PodTemplate>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    containers: Option<Vec<Container>>,
    init_containers: Option<Vec<Container>>,
    ephemeral_containers: Option<Vec<Container>>,
}

#[derive(Deserialize)]
struct Container {
    image: Option<String>,
}

const POD_SPEC: &[&str] = &["spec"];
const TEMPLATE_SPEC: &[&str] = &["spec", "template", "spec"];
const JOB_TEMPLATE_SPEC: &[&str] = &["spec", "jobTemplate", "spec", "template", "spec"];

/// Reads the containers of `object`, an object of kind `kind`.
///
/// A known kind that cannot be read is an error (the caller rejects); an unknown
/// kind is covered only when it carries a pod template, and is read the same way.
pub fn extract(kind: &str, object: &str) -> Result<Workload, String> {
    let known = |kinds: &[&str]| kinds.contains(&kind);
    let read = || {
        serde_json::from_str::<Object>(object).map_err(|e| format!("cannot read the {kind}: {e}"))
    };
    if known(POD_KINDS) {
        let spec = read()?.spec.unwrap_or_default();
        return Ok(Workload::Containers(containers(POD_SPEC, &spec.into_pod())));
    }
    if known(TEMPLATE_KINDS) || known(JOB_TEMPLATE_KINDS) {
        let spec = read()?.spec.unwrap_or_default();
        let (path, pod) = if known(JOB_TEMPLATE_KINDS) {
            (JOB_TEMPLATE_SPEC, job_pod_spec(spec.job_template))
        } else {
            (TEMPLATE_SPEC, spec.template.and_then(|t| t.spec))
        };
        return Ok(Workload::Containers(
            pod.map(|pod| containers(path, &pod)).unwrap_or_default(),
        ));
    }
    // Any other kind: a custom controller (an Argo Rollout, say) is covered by its
    // pod template. An object that does not even parse this far is covered only if
    // its JSON has a template where a pod template would be.
    let spec = match read() {
        Ok(object) => object.spec.unwrap_or_default(),
        Err(error) => {
            let value: serde_json::Value = serde_json::from_str(object).unwrap_or_default();
            let has_template = [TEMPLATE_SPEC, JOB_TEMPLATE_SPEC]
                .iter()
                .any(|path| value.pointer(&format!("/{}", path.join("/"))).is_some());
            return if has_template {
                Err(error)
            } else {
                Ok(Workload::NotCovered)
            };
        }
    };
    let mut found = None;
    if let Some(pod) = spec.template.and_then(|t| t.spec) {
        found
            .get_or_insert_with(Vec::new)
            .extend(containers(TEMPLATE_SPEC, &pod));
    }
    if let Some(pod) = job_pod_spec(spec.job_template) {
        found
            .get_or_insert_with(Vec::new)
            .extend(containers(JOB_TEMPLATE_SPEC, &pod));
    }
    Ok(found.map_or(Workload::NotCovered, Workload::Containers))
}

fn job_pod_spec(job_template: Option<JobTemplate>) -> Option<PodSpec> {
    job_template?.spec?.template?.spec
}

fn containers(pod_spec: &'static [&'static str], pod: &PodSpec) -> Vec<ContainerImage> {
    let lists = [
        &pod.containers,
        &pod.init_containers,
        &pod.ephemeral_containers,
    ];
    CONTAINER_LISTS
        .into_iter()
        .zip(lists)
        .flat_map(|(list, containers)| {
            containers
                .iter()
                .flatten()
                .enumerate()
                .map(move |(index, c)| ContainerImage {
                    location: Location {
                        pod_spec,
                        list,
                        index,
                    },
                    image: c.image.clone().filter(|i| !i.is_empty()),
                })
        })
        .collect()
}
