//! Where each scalar of one YAML or JSON document sits in its text, by the JSON pointer of
//! its value (`/spec/containers/0/image`), read from saphyr-parser's events and spans.
//!
//! saphyr-parser counts positions in characters; they are turned into byte offsets here.
//! The span of a quoted scalar starts at its opening quote but runs on over the spaces and
//! the comment after the closing one (measured with saphyr-parser 0.3.4), so the closing
//! quote is found here. A scalar inside a node that an alias
//! (`*name`) repeats elsewhere is marked shared: rewriting it would change every place the
//! alias stands for. A pointer that only an alias or a merge key (`<<`) leads to has no
//! scalar of its own.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    /// `|` or `>`.
    Block,
}

/// One scalar value of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    /// Its bytes in the document's text, quotes included.
    pub range: Range<usize>,
    pub style: Style,
    /// Its value, as the parser read it.
    pub value: String,
    /// Inside a flow collection (`[...]`, `{...}`), where `,[]{}` end a plain scalar.
    pub in_flow: bool,
    /// Also reached through an alias.
    pub shared: bool,
}

/// What a pointer leads to.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    Scalar(&'a Scalar),
    /// Only through an alias: the text there is another node's.
    ThroughAlias,
    /// No scalar of the text: a merged key, or a collection.
    Missing,
}

/// The scalars of a document.
#[derive(Debug, Default)]
pub struct Scalars {
    by_pointer: HashMap<String, Scalar>,
    /// Pointers where an alias stands.
    aliases: Vec<String>,
}

/// A key that is not a scalar: what follows it is reached by no JSON pointer.
const COMPLEX_KEY: &str = "\u{0}complex key";

enum Frame {
    Mapping {
        pointer: String,
        /// The key read, whose value comes next.
        key: Option<String>,
        anchor: usize,
        flow: bool,
    },
    Sequence {
        pointer: String,
        next: usize,
        anchor: usize,
        flow: bool,
    },
    /// A mapping or sequence used as a key.
    Key,
}

impl Scalars {
    /// The scalars of `text`, which holds one document.
    pub fn parse(text: &str) -> Result<Scalars, String> {
        let offsets = Offsets::new(text);
        let mut scalars = Scalars::default();
        let mut anchored: Vec<(String, Vec<usize>)> = Vec::new();
        let mut aliased: HashSet<usize> = HashSet::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0;
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|e| e.to_string())?;
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err("more than one document".into());
                    }
                }
                Event::Scalar(value, style, anchor, _) => {
                    if let Some(key) = pending_key(&mut stack) {
                        *key = Some(value.into_owned());
                        continue;
                    }
                    let Some(pointer) = child(&mut stack) else {
                        continue;
                    };
                    let mut anchors = anchors(&stack);
                    anchors.push(anchor);
                    let in_flow = stack.iter().any(|f| {
                        matches!(
                            f,
                            Frame::Mapping { flow: true, .. } | Frame::Sequence { flow: true, .. }
                        )
                    });
                    anchored.push((pointer.clone(), anchors));
                    let style = match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::SingleQuoted,
                        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                        ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                    };
                    let mut range = offsets.range(&span);
                    if let Some(end) = closing_quote(text, range.start, style) {
                        range.end = end;
                    }
                    scalars.by_pointer.insert(
                        pointer,
                        Scalar {
                            range,
                            style,
                            value: value.into_owned(),
                            in_flow,
                            shared: false,
                        },
                    );
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    let in_key = matches!(stack.last(), Some(Frame::Key));
                    let frame = if in_key || pending_key(&mut stack).is_some() {
                        Frame::Key
                    } else {
                        let pointer = child(&mut stack).unwrap_or_default();
                        let flow =
                            matches!(text[offsets.range(&span)].chars().next(), Some('{' | '['));
                        if matches!(event, Event::MappingStart(..)) {
                            Frame::Mapping {
                                pointer,
                                key: None,
                                anchor,
                                flow,
                            }
                        } else {
                            Frame::Sequence {
                                pointer,
                                next: 0,
                                anchor,
                                flow,
                            }
                        }
                    };
                    stack.push(frame);
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    if let Some(Frame::Key) = stack.pop() {
                        if let Some(key) = pending_key(&mut stack) {
                            *key = Some(COMPLEX_KEY.to_owned());
                        }
                    }
                }
                Event::Alias(anchor) => {
                    aliased.insert(anchor);
                    if let Some(key) = pending_key(&mut stack) {
                        *key = Some(COMPLEX_KEY.to_owned());
                    } else if let Some(pointer) = child(&mut stack) {
                        scalars.aliases.push(pointer);
                    }
                }
                _ => {}
            }
        }
        for (pointer, anchors) in anchored {
            if anchors.iter().any(|a| aliased.contains(a)) {
                if let Some(scalar) = scalars.by_pointer.get_mut(&pointer) {
                    scalar.shared = true;
                }
            }
        }
        Ok(scalars)
    }

    pub fn lookup(&self, pointer: &str) -> Lookup<'_> {
        if let Some(scalar) = self.by_pointer.get(pointer) {
            return Lookup::Scalar(scalar);
        }
        let through_alias = self.aliases.iter().any(|alias| {
            pointer == alias
                || pointer
                    .strip_prefix(alias.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        if through_alias {
            Lookup::ThroughAlias
        } else {
            Lookup::Missing
        }
    }
}

/// The end (after the closing quote) of the quoted scalar whose opening quote is at
/// `start`; `None` for other styles or when there is no closing quote.
fn closing_quote(text: &str, start: usize, style: Style) -> Option<usize> {
    let body = text.get(start + 1..)?;
    let mut chars = body.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match (style, c) {
            (Style::SingleQuoted, '\'') if chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                chars.next();
            }
            (Style::SingleQuoted, '\'') | (Style::DoubleQuoted, '"') => {
                return Some(start + 1 + at + 1)
            }
            (Style::DoubleQuoted, '\\') => {
                chars.next();
            }
            (Style::Plain | Style::Block, _) => return None,
            _ => {}
        }
    }
    None
}

impl Scalar {
    /// Whether the scalar's text, read here on its own, is its value: a plain scalar on one
    /// line is its value; a single-quoted one, with `''` for `'`; a double-quoted one, read
    /// as a JSON string. A block scalar, or a scalar with YAML-only escapes, never is.
    pub fn text_agrees(&self, text: &str) -> bool {
        let Some(written) = text.get(self.range.clone()) else {
            return false;
        };
        let read = match self.style {
            Style::Plain => Some(written.to_owned()),
            Style::SingleQuoted => written
                .strip_prefix('\'')
                .and_then(|w| w.strip_suffix('\''))
                .map(|w| w.replace("''", "'")),
            Style::DoubleQuoted => serde_json::from_str::<String>(written).ok(),
            Style::Block => None,
        };
        read.as_deref() == Some(self.value.as_str())
    }
}

/// The key slot of the innermost mapping, when it waits for a key.
fn pending_key(stack: &mut [Frame]) -> Option<&mut Option<String>> {
    match stack.last_mut() {
        Some(Frame::Mapping {
            key: key @ None, ..
        }) => Some(key),
        _ => None,
    }
}

/// The pointer of the next value of the innermost collection (`""` for the root), which
/// it then counts as read; `None` inside a key.
fn child(stack: &mut [Frame]) -> Option<String> {
    match stack.last_mut() {
        None => Some(String::new()),
        Some(Frame::Mapping { pointer, key, .. }) => {
            let key = key.take().unwrap_or_default();
            Some(format!(
                "{pointer}/{}",
                key.replace('~', "~0").replace('/', "~1")
            ))
        }
        Some(Frame::Sequence { pointer, next, .. }) => {
            *next += 1;
            Some(format!("{pointer}/{}", *next - 1))
        }
        Some(Frame::Key) => None,
    }
}

/// The anchors of the collections around the next value.
fn anchors(stack: &[Frame]) -> Vec<usize> {
    stack
        .iter()
        .filter_map(|frame| match frame {
            Frame::Mapping { anchor, .. } | Frame::Sequence { anchor, .. } => Some(*anchor),
            Frame::Key => None,
        })
        .filter(|&anchor| anchor != 0)
        .collect()
}

/// Character positions (saphyr-parser's) as byte offsets.
struct Offsets {
    /// The byte offset of each character and of the end; empty for ASCII text, where the
    /// two are the same.
    bytes: Vec<usize>,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let bytes = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices()
                .map(|(offset, _)| offset)
                .chain([text.len()])
                .collect()
        };
        Self { bytes }
    }

    fn byte(&self, index: usize) -> usize {
        if self.bytes.is_empty() {
            index
        } else {
            self.bytes[index.min(self.bytes.len() - 1)]
        }
    }

    fn range(&self, span: &Span) -> Range<usize> {
        self.byte(span.start.index())..self.byte(span.end.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(
        text: &'a str,
        scalars: &Scalars,
        pointer: &str,
    ) -> (&'a str, Style, String, bool, bool) {
        match scalars.lookup(pointer) {
            Lookup::Scalar(s) => (
                &text[s.range.clone()],
                s.style,
                s.value.clone(),
                s.in_flow,
                s.shared,
            ),
            other => panic!("{pointer}: {other:?}"),
        }
    }

    #[test]
    fn finds_scalars_by_pointer_in_bytes() {
        let text = "# é comment\nmetadata: {name: \"caf\u{e9}\", labels: {'a/b': x}}\nspec:\n  containers:\n  - name: é\n    image: 'r/a:v1'   # pinned later\n  - {name: b, image: \"r/b:v1\"}\n  - image: |\n      r/c\n";
        let scalars = Scalars::parse(text).unwrap();
        assert_eq!(
            at(text, &scalars, "/metadata/name"),
            (
                "\"caf\u{e9}\"",
                Style::DoubleQuoted,
                "caf\u{e9}".into(),
                true,
                false
            )
        );
        assert_eq!(at(text, &scalars, "/metadata/labels/a~1b").0, "x");
        assert_eq!(
            at(text, &scalars, "/spec/containers/0/name"),
            ("é", Style::Plain, "é".into(), false, false)
        );
        assert_eq!(
            at(text, &scalars, "/spec/containers/0/image"),
            (
                "'r/a:v1'",
                Style::SingleQuoted,
                "r/a:v1".into(),
                false,
                false
            )
        );
        assert_eq!(
            at(text, &scalars, "/spec/containers/1/image"),
            (
                "\"r/b:v1\"",
                Style::DoubleQuoted,
                "r/b:v1".into(),
                true,
                false
            )
        );
        assert_eq!(
            at(text, &scalars, "/spec/containers/2/image").1,
            Style::Block
        );
        for pointer in [
            "/metadata/name",
            "/spec/containers/0/name",
            "/spec/containers/0/image",
            "/spec/containers/1/image",
        ] {
            let Lookup::Scalar(scalar) = scalars.lookup(pointer) else {
                panic!()
            };
            assert!(scalar.text_agrees(text), "{pointer}");
        }
        let quotes = "a: 'it''s'  # c\nb: \"q\\\"\\u0041\" # c\nc: \"\\x41\"\n";
        let scalars = Scalars::parse(quotes).unwrap();
        let agrees = |p: &str| match scalars.lookup(p) {
            Lookup::Scalar(s) => (&quotes[s.range.clone()], s.text_agrees(quotes)),
            _ => panic!(),
        };
        assert_eq!(agrees("/a"), ("'it''s'", true));
        assert_eq!(agrees("/b"), ("\"q\\\"\\u0041\"", true));
        assert_eq!(agrees("/c"), ("\"\\x41\"", false), "a YAML-only escape");
        assert_eq!(scalars.lookup("/spec/containers"), Lookup::Missing);
    }

    #[test]
    fn marks_what_aliases_share_and_what_merges_lead_to() {
        let text = "base: &base\n  image: r/a:v1\nother: &lone r/o:v1\nfirst:\n  <<: *base\n  name: f\nsecond: *base\n[complex, key]: {image: r/k:v1}\n";
        let scalars = Scalars::parse(text).unwrap();
        assert!(at(text, &scalars, "/base/image").4, "shared through *base");
        assert!(!at(text, &scalars, "/other").4, "anchored, never aliased");
        assert_eq!(scalars.lookup("/second/image"), Lookup::ThroughAlias);
        assert_eq!(scalars.lookup("/first/image"), Lookup::Missing);
        assert_eq!(at(text, &scalars, "/first/name").0, "f");
        assert!(scalars
            .by_pointer
            .contains_key(&format!("/{COMPLEX_KEY}/image")));
        let nested = "{a: {b: c}}: v\nd: e\n";
        let scalars = Scalars::parse(nested).unwrap();
        assert_eq!(
            scalars.by_pointer.len(),
            2,
            "{:?}",
            scalars.by_pointer.keys()
        );
        assert_eq!(at(nested, &scalars, "/d").0, "e");
    }

    #[test]
    fn reads_json_as_flow_yaml() {
        let text = "{\"spec\": {\"containers\": [{\"image\": \"r/a:v1\"}]}}";
        let scalars = Scalars::parse(text).unwrap();
        assert_eq!(
            at(text, &scalars, "/spec/containers/0/image").0,
            "\"r/a:v1\""
        );
        assert!(Scalars::parse("a: 1\n---\nb: 2\n").is_err());
        assert!(Scalars::parse("a: [1\n").is_err());
    }
}
