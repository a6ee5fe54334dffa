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
mod kind;
mod located;
mod path;
mod pods;

pub use kind::{KindPaths, KindRef};
pub use located::{ContainerImage, Workload};
pub use path::ImagePath;
pub use pods::Object;

use path::Step;

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
    combine(
        pods,
        FieldPaths::of(kind, named).as_ref(),
        kind.kind,
        || Ok((object, 0)),
    )
}

/// The object's images: those of its pod specs (`None`: it has none) and those at
/// `fields`, read from the object's text and where it starts, which `text` gives only when
/// there are fields to read.
pub fn combine<'t>(
    pods: Option<Vec<ContainerImage>>,
    fields: Option<&FieldPaths<'_>>,
    kind: &str,
    text: impl FnOnce() -> Result<(&'t str, usize), String>,
) -> Result<Workload, String> {
    let Some(fields) = fields else {
        return Ok(pods.map_or(Workload::NotCovered, Workload::Containers));
    };
    let mut found = pods.unwrap_or_default();
    let (text, base) = text()?;
    found.extend(fields.find(text, base, kind)?);
    Ok(Workload::Containers(found))
}
