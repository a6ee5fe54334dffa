//! A YAML text split into its documents, before any of them is parsed, so that a document
//! that cannot be parsed never hides the ones after it.
//!
//! The split is textual and exact: YAML forbids a line starting with `---` or `...` followed
//! by a space, a tab or the end of the line inside any scalar (the spec's
//! `c-forbidden`), so such a line is always a document marker. A document runs from its `---`
//! line (or the start of the text) to the next one; directives (`%YAML`, `%TAG`) just before
//! a `---` belong to the document that marker starts. The pieces cover the text exactly,
//! so a document's bytes are a range of the file's.

use std::ops::Range;

/// One document of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// 1 for the first document of the text, counting empty ones.
    pub number: usize,
    /// The line (1-based) the document starts on.
    pub line: usize,
    /// Its bytes in the text.
    pub range: Range<usize>,
}

/// The documents of `text`, in order, covering it exactly (a text without any marker is
/// one document).
pub fn yaml_documents(text: &str) -> Vec<Document> {
    let mut starts = vec![(0, 1)];
    let mut directives: Option<(usize, usize)> = None;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let content = line.strip_prefix('\u{feff}').unwrap_or(line);
        if is_marker(content, "---") {
            let start = directives.take().unwrap_or((offset, index + 1));
            if start.0 > 0 {
                starts.push(start);
            }
        } else if content.starts_with('%') {
            directives.get_or_insert((offset, index + 1));
        } else if !content.trim().is_empty() && !content.starts_with('#') {
            directives = None;
        }
        offset += line.len();
    }
    let ends = starts
        .iter()
        .skip(1)
        .map(|&(start, _)| start)
        .chain([text.len()]);
    starts
        .iter()
        .zip(ends)
        .enumerate()
        .map(|(i, (&(start, line), end))| Document {
            number: i + 1,
            line,
            range: start..end,
        })
        .collect()
}

/// Whether `line` is the marker `---` or `...`: the three characters, then a space, a tab,
/// or the end of the line.
fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<(usize, usize, &str)> {
        yaml_documents(text)
            .into_iter()
            .map(|d| (d.number, d.line, &text[d.range]))
            .collect()
    }

    #[test]
    fn splits_on_document_markers_only() {
        let text = "# a chart\nkind: A\n---\n# Source: b.yaml\nkind: B\ndata:\n  x: |\n    ---not a marker\n    --- neither: indented\n--- # comment\nkind: C\n---\n";
        assert_eq!(
            pieces(text),
            [
                (1, 1, "# a chart\nkind: A\n"),
                (
                    2,
                    3,
                    "---\n# Source: b.yaml\nkind: B\ndata:\n  x: |\n    ---not a marker\n    --- neither: indented\n"
                ),
                (3, 10, "--- # comment\nkind: C\n"),
                (4, 12, "---\n"),
            ]
        );
    }

    #[test]
    fn a_leading_marker_starts_the_first_document() {
        assert_eq!(pieces("---\nkind: A\n"), [(1, 1, "---\nkind: A\n")]);
        assert_eq!(
            pieces("\u{feff}---\r\nkind: A\r\n"),
            [(1, 1, "\u{feff}---\r\nkind: A\r\n")]
        );
        assert_eq!(pieces(""), [(1, 1, "")]);
        assert_eq!(pieces("----\nkind: A"), [(1, 1, "----\nkind: A")]);
    }

    #[test]
    fn directives_belong_to_the_document_they_precede() {
        let text = "kind: A\n...\n%YAML 1.2\n---\nkind: B\n";
        assert_eq!(
            pieces(text),
            [
                (1, 1, "kind: A\n...\n"),
                (2, 3, "%YAML 1.2\n---\nkind: B\n")
            ]
        );
    }

    #[test]
    fn counts_lines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
