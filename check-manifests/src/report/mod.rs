//! The outcome of a run, one row per object (and per document or file that could not be
//! read), and the exit code it comes to; written as a table, as JSON, or as JUnit XML:
//!
//! - [`table`]: for people: one row per object;
//! - [`json`]: the same content in a stable schema (`schemaVersion` 1);
//! - [`junit`]: one test case per object, for CI dashboards.

pub mod json;
pub mod junit;
pub mod table;

use serde::Serialize;

use crate::answer::ImageResult;
use crate::host::HostInfo;
use crate::manifest::Origin;

/// Exit codes, most severe first: one that applies wins over the ones after it.
pub mod exit {
    /// The settings are refused, an input or a pinned file could not be read or written,
    /// or the host could not evaluate an object: part of the verdict is unknown.
    pub const INCOMPLETE: u8 = 2;
    /// Every object was evaluated and at least one would be rejected.
    pub const REJECTED: u8 = 1;
    /// Every object would be admitted (or is of a kind the policy is not sent).
    pub const ADMITTED: u8 = 0;
}

/// What the cluster would do with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Admitted,
    Rejected,
    /// The policy's rules do not route this kind to it: the cluster never sends it.
    NotChecked,
    /// The file, document or item is not an object that can be checked.
    Unreadable,
    /// The host could not evaluate it.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Admitted => "admitted",
            Verdict::Rejected => "rejected",
            Verdict::NotChecked => "not checked",
            Verdict::Unreadable => "unreadable",
            Verdict::Error => "error",
        }
    }
}

/// Which object a row is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    /// The namespace it is created in; `None` for a cluster-scoped kind.
    pub namespace: Option<String>,
    /// `metadata.name`, or `metadata.generateName`.
    pub name: String,
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One object, or one document or file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub origin: Origin,
    pub object: Option<ObjectId>,
    pub verdict: Verdict,
    /// The rejection message, or why the object was not checked or could not be.
    pub message: Option<String>,
    pub images: Vec<ImageResult>,
    pub warnings: Vec<String>,
}

/// What `--write-pinned` or `--in-place` did with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PinnedFile {
    pub file: String,
    /// Where it was written; `None` when it was not.
    pub written_to: Option<String>,
    /// Images rewritten to their pinned spelling.
    pub images: usize,
    /// Why it was not written.
    pub error: Option<String>,
}

/// Counts of the rows by verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub objects: usize,
    pub admitted: usize,
    pub rejected: usize,
    pub not_checked: usize,
    pub unreadable: usize,
    pub errors: usize,
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct Report {
    pub host: HostInfo,
    pub policy: String,
    /// `group/version/resource` of what the policy's rules route to it on CREATE.
    pub routed: Vec<String>,
    pub rows: Vec<Row>,
    /// Empty unless pinned manifests were asked for.
    pub pinned: Vec<PinnedFile>,
}

impl Report {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for row in &self.rows {
            match row.verdict {
                Verdict::Admitted => summary.admitted += 1,
                Verdict::Rejected => summary.rejected += 1,
                Verdict::NotChecked => summary.not_checked += 1,
                Verdict::Unreadable => summary.unreadable += 1,
                Verdict::Error => summary.errors += 1,
            }
            if row.object.is_some() {
                summary.objects += 1;
            }
        }
        summary
    }

    /// [`exit::INCOMPLETE`] when anything could not be read, evaluated or written, else
    /// [`exit::REJECTED`] when any object would be rejected, else [`exit::ADMITTED`].
    pub fn exit_code(&self) -> u8 {
        let summary = self.summary();
        if summary.unreadable + summary.errors > 0 || self.pinned.iter().any(|p| p.error.is_some())
        {
            exit::INCOMPLETE
        } else if summary.rejected > 0 {
            exit::REJECTED
        } else {
            exit::ADMITTED
        }
    }

    /// The host, as a line: `policy-server 1.35.0, started once for the run, 4 clients`.
    pub fn host_line(&self) -> String {
        let host = &self.host;
        let how = if host.per_object {
            "one `kwctl run` per object".to_owned()
        } else {
            "started once for the run".to_owned()
        };
        let mut line = format!(
            "{} {}, {how}, {} clients",
            host.name, host.version, host.clients
        );
        if let Some(note) = &host.note {
            line.push_str(&format!(" ({note})"));
        }
        line
    }

    /// `7 objects: 3 admitted, 1 rejected, 2 not checked, 1 unreadable; exit code 2`.
    pub fn summary_line(&self) -> String {
        let s = self.summary();
        let mut parts = vec![
            format!("{} admitted", s.admitted),
            format!("{} rejected", s.rejected),
            format!("{} not checked", s.not_checked),
        ];
        if s.unreadable > 0 {
            parts.push(format!("{} unreadable", s.unreadable));
        }
        if s.errors > 0 {
            parts.push(format!("{} not evaluated (host error)", s.errors));
        }
        let failed_pins = self.pinned.iter().filter(|p| p.error.is_some()).count();
        if failed_pins > 0 {
            parts.push(format!("{failed_pins} pinned files not written"));
        }
        format!(
            "{} objects: {}; exit code {}",
            s.objects,
            parts.join(", "),
            self.exit_code()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(verdict: Verdict) -> Row {
        Row {
            origin: Origin::file("f"),
            object: Some(ObjectId {
                api_version: "v1".into(),
                kind: "Pod".into(),
                namespace: Some("n".into()),
                name: "p".into(),
            }),
            verdict,
            message: None,
            images: vec![],
            warnings: vec![],
        }
    }

    fn report(verdicts: &[Verdict], pin_error: bool) -> Report {
        Report {
            host: HostInfo {
                name: "policy-server",
                version: "1.35.0".into(),
                per_object: false,
                clients: 4,
                note: None,
            },
            policy: "file:///p.wasm".into(),
            routed: vec![],
            rows: verdicts.iter().copied().map(row).collect(),
            pinned: pin_error
                .then(|| PinnedFile {
                    file: "f".into(),
                    written_to: None,
                    images: 0,
                    error: Some("no".into()),
                })
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn the_most_severe_outcome_sets_the_exit_code() {
        use Verdict::*;
        assert_eq!(report(&[], false).exit_code(), exit::ADMITTED);
        assert_eq!(
            report(&[Admitted, NotChecked], false).exit_code(),
            exit::ADMITTED
        );
        assert_eq!(
            report(&[Admitted, Rejected], false).exit_code(),
            exit::REJECTED
        );
        assert_eq!(
            report(&[Rejected, Unreadable], false).exit_code(),
            exit::INCOMPLETE
        );
        assert_eq!(
            report(&[Rejected, Error], false).exit_code(),
            exit::INCOMPLETE
        );
        assert_eq!(report(&[Admitted], true).exit_code(), exit::INCOMPLETE);
        assert_eq!(
            report(&[Admitted, Rejected, NotChecked, Error], false).summary_line(),
            "4 objects: 1 admitted, 1 rejected, 1 not checked, 1 not evaluated (host error); exit code 2"
        );
    }
}
