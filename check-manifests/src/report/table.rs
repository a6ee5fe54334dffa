//! The report for people: the policy and the host, one row per object (source, object,
//! verdict, each image with its digest or why it was refused, warnings), then the counts.

use comfy_table::{presets, Table};

use super::{Report, Row, Verdict};

pub fn render(report: &Report) -> String {
    let mut table = Table::new();
    table
        .load_style(presets::ASCII_FULL_CONDENSED)
        .set_header(["SOURCE", "OBJECT", "VERDICT", "IMAGES", "WARNINGS"]);
    for row in &report.rows {
        table.add_row([
            row.origin.to_string(),
            row.object
                .as_ref()
                .map_or_else(|| "-".to_owned(), ToString::to_string),
            row.verdict.as_str().to_owned(),
            images(row),
            row.warnings.join("\n"),
        ]);
    }
    let mut text = format!(
        "policy: {}\nhost:   {}\nsent:   CREATE of {}\n",
        report.policy,
        report.host_line(),
        routed(&report.routed)
    );
    text.push_str(&table.to_string());
    text.push('\n');
    for pinned in &report.pinned {
        match (&pinned.written_to, &pinned.error) {
            (_, Some(error)) => text.push_str(&format!("not written: {}: {error}\n", pinned.file)),
            (Some(to), None) => {
                let noun = if pinned.images == 1 {
                    "image"
                } else {
                    "images"
                };
                text.push_str(&format!(
                    "written: {to} ({} {noun} pinned)\n",
                    pinned.images
                ));
            }
            (None, None) => {}
        }
    }
    text.push_str(&report.summary_line());
    text.push('\n');
    text
}

/// `group/version/resource` entries, shortened: the resources of one group and version
/// together, and the versions of a group that route the same resources together:
/// `core/v1 pods, services; tekton.dev/{v1,v1beta1} tasks`.
fn routed(entries: &[String]) -> String {
    let mut groups: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
    for entry in entries {
        let mut parts = entry.splitn(3, '/');
        let (Some(group), Some(version), Some(resource)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        match groups
            .iter_mut()
            .find(|(g, v, _)| *g == group && v == &[version])
        {
            Some((_, _, resources)) => resources.push(resource),
            None => groups.push((group, vec![version], vec![resource])),
        }
    }
    let mut merged: Vec<(&str, Vec<&str>, Vec<&str>)> = Vec::new();
    for (group, versions, resources) in groups {
        match merged
            .iter_mut()
            .find(|(g, _, r)| *g == group && *r == resources)
        {
            Some((_, known, _)) => known.extend(versions),
            None => merged.push((group, versions, resources)),
        }
    }
    merged
        .iter()
        .map(|(group, versions, resources)| {
            let versions = match versions.as_slice() {
                [one] => (*one).to_owned(),
                many => format!("{{{}}}", many.join(",")),
            };
            format!("{group}/{versions} {}", resources.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Each image the policy named, on its own line: what it was verified at, or why it was
/// refused; or the message, when the policy named no image with a reason.
fn images(row: &Row) -> String {
    let mut lines: Vec<String> = row
        .images
        .iter()
        .map(|image| match (&image.reason, &image.digest) {
            (Some(reason), _) => {
                let written = if image.image.is_empty() {
                    "(no image)"
                } else {
                    &image.image
                };
                format!("{written} at {}: refused: {reason}", image.at)
            }
            (None, Some(digest)) if image.pinned.is_some() => {
                format!("{} verified {digest}, pinned", image.image)
            }
            (None, Some(digest)) => format!("{} verified {digest}", image.image),
            (None, None) => format!("{} at {}", image.image, image.at),
        })
        .collect();
    let explained = row.images.iter().any(|i| i.reason.is_some());
    if let (Some(message), false) = (&row.message, explained) {
        let label = match row.verdict {
            Verdict::Rejected => "rejected: ",
            _ => "",
        };
        lines.push(format!("{label}{message}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::routed;

    #[test]
    fn routed_resources_read_shortly() {
        let entries: Vec<String> = [
            "core/v1/pods",
            "core/v1/services",
            "tekton.dev/v1/tasks",
            "tekton.dev/v1beta1/tasks",
            "tekton.dev/v1alpha1/runs",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            routed(&entries),
            "core/v1 pods, services; tekton.dev/{v1,v1beta1} tasks; tekton.dev/v1alpha1 runs"
        );
    }
}
