//! `imageLocations`: the kinds whose images lie at paths the user names, each path parsed
//! and checked, each kind named once.

use super::error::SettingsError;
use super::wire::WireImageLocation;
use crate::workload::{ImagePath, KindPaths};

pub(super) fn from_wire(wire: Vec<WireImageLocation>) -> Result<Vec<KindPaths>, SettingsError> {
    let mut kinds: Vec<KindPaths> = Vec::with_capacity(wire.len());
    for (index, entry) in wire.into_iter().enumerate() {
        let id = format!("imageLocations[{index}]");
        if entry.kind.is_empty() {
            return Err(SettingsError::at(&id, "kind", "must not be empty"));
        }
        if let Some(first) = kinds
            .iter()
            .position(|k| k.group == entry.group && k.kind == entry.kind)
        {
            return Err(SettingsError::new(
                id,
                format!(
                    "{} is named twice (also imageLocations[{first}]); list all its paths in one entry",
                    qualified(&entry.group, &entry.kind)
                ),
            ));
        }
        if entry.paths.is_empty() {
            return Err(SettingsError::at(
                &id,
                "paths",
                "must list at least one path",
            ));
        }
        let mut paths: Vec<ImagePath> = Vec::with_capacity(entry.paths.len());
        for (n, text) in entry.paths.iter().enumerate() {
            let field = format!("paths[{n}]");
            let path = ImagePath::parse(text)
                .map_err(|reason| SettingsError::at(&id, &field, format!("{text:?} {reason}")))?;
            if let Some(same) = paths.iter().position(|p| p.same_as(&path)) {
                return Err(SettingsError::at(
                    &id,
                    field,
                    format!("the same path as paths[{same}]"),
                ));
            }
            paths.push(path);
        }
        kinds.push(KindPaths {
            group: entry.group,
            kind: entry.kind,
            paths,
        });
    }
    Ok(kinds)
}

/// `group/kind`, or the kind alone for the core group.
fn qualified(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{group}/{kind}")
    }
}
