//! Paths to image strings in an object, as settings write them: `spec.steps[*].image`,
//! `spec.images[*]`, `metadata.annotations["example.com/image"]`.
//!
//! A path is a list of steps from the object's root: a field of an object, or every element
//! of a list. Built-in kinds write theirs as steps directly ([`super::families`]); a step
//! may hand over to another set of paths there, for kinds that nest (a Tekton pipeline's
//! task may hold a pipeline).

use std::borrow::Cow;
use std::fmt;

/// One step of a path.
#[derive(Clone)]
pub enum Step {
    /// The field of that name of an object.
    Field(Cow<'static, str>),
    /// Every element of a list.
    Each,
    /// Every path of that shape, from here on.
    Shape(&'static Shape),
}

/// A set of paths, from where it is entered.
pub struct Shape(pub &'static [&'static [Step]]);

impl fmt::Debug for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Field(name) => write!(f, "{name:?}"),
            Step::Each => f.write_str("[*]"),
            // Shapes nest into themselves: named by address, never walked.
            Step::Shape(shape) => write!(f, "shape@{:p}", *shape),
        }
    }
}

/// A path the settings name, e.g. `spec.workers[*].image`.
#[derive(Debug, Clone)]
pub struct ImagePath {
    pub steps: Vec<Step>,
}

impl ImagePath {
    /// Parses `text`: field names joined by `.`, each followed by any number of `[*]`; a
    /// name holding `.`, `[`, `]` or `"` is written `["name"]`.
    pub fn parse(text: &str) -> Result<ImagePath, String> {
        let mut steps = Vec::new();
        let mut rest = text;
        let mut expect_field = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("[*]") {
                if steps.is_empty() {
                    return Err("starts with [*], but an object is never a list".into());
                }
                steps.push(Step::Each);
                rest = after;
                expect_field = false;
            } else if let Some(after) = rest.strip_prefix("[\"") {
                let end = after.find("\"]").ok_or("a [\" without its closing \"]")?;
                let name = &after[..end];
                if name.is_empty() {
                    return Err("an empty field name [\"\"]".into());
                }
                steps.push(Step::Field(Cow::Owned(name.to_owned())));
                rest = &after[end + 2..];
                expect_field = false;
            } else if rest.starts_with('[') {
                return Err(format!(
                    "{rest:?}: a [ must open [*] or a quoted name such as [\"a.b\"]"
                ));
            } else if let Some(after) = rest.strip_prefix('.') {
                if expect_field {
                    return Err("an empty field name (a leading or doubled `.`)".into());
                }
                rest = after;
                expect_field = true;
                if rest.is_empty() {
                    return Err("ends with `.`".into());
                }
            } else {
                let end = rest.find(['.', '[', ']', '"']).unwrap_or(rest.len());
                if end == 0 {
                    return Err(format!("{rest:?}: unexpected {:?}", &rest[..1]));
                }
                if !expect_field {
                    return Err(format!("{rest:?}: a field name must follow a `.`"));
                }
                steps.push(Step::Field(Cow::Owned(rest[..end].to_owned())));
                rest = &rest[end..];
                expect_field = false;
            }
        }
        if steps.is_empty() {
            return Err("is empty".into());
        }
        Ok(ImagePath { steps })
    }

    /// Whether `self` and `other` name the same fields.
    pub fn same_as(&self, other: &ImagePath) -> bool {
        self.steps.len() == other.steps.len()
            && self.steps.iter().zip(&other.steps).all(|pair| match pair {
                (Step::Field(a), Step::Field(b)) => a == b,
                (Step::Each, Step::Each) => true,
                _ => false,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(path: &ImagePath) -> String {
        format!("{:?}", path.steps)
    }

    #[test]
    fn reads_fields_lists_and_quoted_names() {
        let path = ImagePath::parse("spec.workers[*].image").unwrap();
        assert_eq!(written(&path), r#"["spec", "workers", [*], "image"]"#);
        let path = ImagePath::parse("spec.images[*][*]").unwrap();
        assert_eq!(written(&path), r#"["spec", "images", [*], [*]]"#);
        let path = ImagePath::parse(r#"metadata.annotations["example.com/image"]"#).unwrap();
        assert_eq!(
            written(&path),
            r#"["metadata", "annotations", "example.com/image"]"#
        );
        assert_eq!(written(&ImagePath::parse("image").unwrap()), r#"["image"]"#);
    }

    #[test]
    fn refuses_what_cannot_match() {
        for (text, reason) in [
            ("", "is empty"),
            (
                "[*].image",
                "starts with [*], but an object is never a list",
            ),
            (".spec", "an empty field name (a leading or doubled `.`)"),
            (
                "spec..image",
                "an empty field name (a leading or doubled `.`)",
            ),
            ("spec.", "ends with `.`"),
            (
                "spec[0]",
                "\"[0]\": a [ must open [*] or a quoted name such as [\"a.b\"]",
            ),
            ("spec[*]image", "\"image\": a field name must follow a `.`"),
            ("spec.a]", "\"]\": unexpected \"]\""),
            (r#"spec["a"#, "a [\" without its closing \"]"),
            (r#"spec[""]"#, "an empty field name [\"\"]"),
        ] {
            assert_eq!(ImagePath::parse(text).unwrap_err(), reason, "{text}");
        }
    }

    #[test]
    fn the_same_fields_are_the_same_path_however_written() {
        let a = ImagePath::parse(r#"spec["image"]"#).unwrap();
        let b = ImagePath::parse("spec.image").unwrap();
        let c = ImagePath::parse("spec.image[*]").unwrap();
        assert!(a.same_as(&b));
        assert!(!a.same_as(&c));
    }
}
