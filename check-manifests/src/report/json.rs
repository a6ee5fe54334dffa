//! `--output json`: the report in a stable schema, documented in README ("Checking
//! manifests before they reach the cluster"). A field is only ever added under the same
//! `schemaVersion`; a change of meaning or a removal raises it.

use serde::Serialize;

use super::{ObjectId, PinnedFile, Report, Summary, Verdict};
use crate::answer::ImageResult;
use crate::host::HostInfo;

/// The schema version of this output.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Output<'a> {
    schema_version: u32,
    host: &'a HostInfo,
    policy: &'a str,
    routed: &'a [String],
    summary: Summary,
    exit_code: u8,
    results: Vec<Result<'a>>,
    pinned: &'a [PinnedFile],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Result<'a> {
    source: Source<'a>,
    object: Option<&'a ObjectId>,
    verdict: Verdict,
    message: Option<&'a str>,
    images: &'a [ImageResult],
    warnings: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Source<'a> {
    file: &'a str,
    document: Option<usize>,
    line: Option<usize>,
    item: Option<usize>,
}

/// The report as pretty-printed JSON, ending with a newline.
pub fn render(report: &Report) -> String {
    let output = Output {
        schema_version: SCHEMA_VERSION,
        host: &report.host,
        policy: &report.policy,
        routed: &report.routed,
        summary: report.summary(),
        exit_code: report.exit_code(),
        results: report
            .rows
            .iter()
            .map(|row| Result {
                source: Source {
                    file: &row.origin.file,
                    document: row.origin.document,
                    line: row.origin.line,
                    item: row.origin.item,
                },
                object: row.object.as_ref(),
                verdict: row.verdict,
                message: row.message.as_deref(),
                images: &row.images,
                warnings: &row.warnings,
            })
            .collect(),
        pinned: &report.pinned,
    };
    // Plain data: serialising it cannot fail.
    let mut text = serde_json::to_string_pretty(&output).unwrap_or_default();
    text.push('\n');
    text
}
