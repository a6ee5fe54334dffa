//! `--junit FILE`: the report as JUnit XML, the format CI dashboards read. One test suite per
//! file, one test case per row: a rejection is a `failure`, what could not be read or
//! evaluated an `error`, an object the policy is not sent `skipped`; images and warnings
//! go to the case's `system-out`.

use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::Writer;

use super::{Report, Row, Verdict};

pub fn render(report: &Report) -> io::Result<String> {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let summary = report.summary();
    let cases = report.rows.len().to_string();
    let failures = summary.rejected.to_string();
    let errors = (summary.unreadable + summary.errors).to_string();
    let skipped = summary.not_checked.to_string();
    writer
        .create_element("testsuites")
        .with_attributes([
            ("name", "check-manifests"),
            ("tests", cases.as_str()),
            ("failures", failures.as_str()),
            ("errors", errors.as_str()),
            ("skipped", skipped.as_str()),
        ])
        .write_inner_content(|writer| {
            for (file, rows) in by_file(&report.rows) {
                suite(writer, file, &rows)?;
            }
            Ok(())
        })?;
    let mut text = String::from_utf8(writer.into_inner()).map_err(io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// The rows grouped by file, in the order the files first appear.
fn by_file(rows: &[Row]) -> Vec<(&str, Vec<&Row>)> {
    let mut files: Vec<(&str, Vec<&Row>)> = Vec::new();
    for row in rows {
        match files.iter_mut().find(|(file, _)| *file == row.origin.file) {
            Some((_, rows)) => rows.push(row),
            None => files.push((&row.origin.file, vec![row])),
        }
    }
    files
}

fn suite(writer: &mut Writer<Vec<u8>>, file: &str, rows: &[&Row]) -> io::Result<()> {
    let count = |verdicts: &[Verdict]| {
        rows.iter()
            .filter(|r| verdicts.contains(&r.verdict))
            .count()
            .to_string()
    };
    let tests = rows.len().to_string();
    let failures = count(&[Verdict::Rejected]);
    let errors = count(&[Verdict::Unreadable, Verdict::Error]);
    let skipped = count(&[Verdict::NotChecked]);
    writer
        .create_element("testsuite")
        .with_attributes([
            ("name", xml_text(file).as_str()),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", errors.as_str()),
            ("skipped", skipped.as_str()),
        ])
        .write_inner_content(|writer| {
            for row in rows {
                case(writer, row)?;
            }
            Ok(())
        })?;
    Ok(())
}

fn case(writer: &mut Writer<Vec<u8>>, row: &Row) -> io::Result<()> {
    let name = match &row.object {
        Some(object) => format!("{}: {object}", row.origin),
        None => row.origin.to_string(),
    };
    let message = xml_text(row.message.as_deref().unwrap_or_default());
    let output = xml_text(&output(row));
    writer
        .create_element("testcase")
        .with_attributes([
            ("classname", xml_text(&row.origin.file).as_str()),
            ("name", xml_text(&name).as_str()),
        ])
        .write_inner_content(|writer| {
            let outcome = match row.verdict {
                Verdict::Admitted => None,
                Verdict::Rejected => Some("failure"),
                Verdict::NotChecked => Some("skipped"),
                Verdict::Unreadable | Verdict::Error => Some("error"),
            };
            if let Some(element) = outcome {
                writer
                    .create_element(element)
                    .with_attribute(("message", message.as_str()))
                    .write_text_content(BytesText::new(&message))?;
            }
            if !output.is_empty() {
                writer
                    .create_element("system-out")
                    .write_text_content(BytesText::new(&output))?;
            }
            Ok(())
        })?;
    Ok(())
}

/// The images and warnings of a row, one per line.
fn output(row: &Row) -> String {
    let images = row.images.iter().map(|image| {
        let mut line = format!("image {} at {}", image.image, image.at);
        if let Some(digest) = &image.digest {
            line.push_str(&format!(": verified {digest}"));
        }
        if let Some(pinned) = &image.pinned {
            line.push_str(&format!(", pinned to {pinned}"));
        }
        if let Some(reason) = &image.reason {
            line.push_str(&format!(": refused: {reason}"));
        }
        line
    });
    let warnings = row.warnings.iter().map(|w| format!("warning: {w}"));
    images.chain(warnings).collect::<Vec<_>>().join("\n")
}

/// `text` with the characters XML 1.0 cannot hold (control characters but tab and line
/// breaks) replaced by U+FFFD; escaping is the writer's.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}
