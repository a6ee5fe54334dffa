//! Finds the image strings at a set of paths in an object's JSON text, in one pass: only
//! the fields on a path are visited, everything else is skipped by serde unread. Each image
//! is borrowed from the text, so its byte range is known and pinning rewrites exactly it.
//!
//! What a path must read and cannot is an error naming the path: an image that is not a
//! string, a list that is not a list, an object that is not an object. `null` along the
//! way is an absent field; `null` where an image must be is not a string.

use std::fmt::{self, Write as _};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::located::{ContainerImage, FieldPath, Location};
use super::path::Step;

/// The images at `paths` in `text`, in document order; each span is its byte range in
/// `text` plus `base` (where `text` starts within the text the caller keeps).
pub fn find(text: &str, paths: &[&[Step]], base: usize) -> Result<Vec<ContainerImage>, String> {
    let mut walk = State {
        start: text.as_ptr() as usize,
        base,
        path: String::new(),
        found: Vec::new(),
        error: None,
    };
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let read = Walk {
        cursors: paths.to_vec(),
        state: &mut walk,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match (walk.error, read) {
        (Some(error), _) => Err(error),
        (None, Err(error)) => Err(error.to_string()),
        (None, Ok(())) => Ok(walk.found),
    }
}

/// What the walk has found so far, and where it is.
struct State {
    /// Where the text starts in memory, to turn a borrowed image into its byte range.
    start: usize,
    base: usize,
    /// The path of the value being read, e.g. `spec.steps[2]`.
    path: String,
    found: Vec<ContainerImage>,
    /// Why the walk stopped: kept here, as serde would append a position to it.
    error: Option<String>,
}

impl State {
    fn fail<E: de::Error>(&mut self, what: &str) -> E {
        let path = if self.path.is_empty() {
            "the object"
        } else {
            &self.path
        };
        self.error = Some(format!("{path} is not {what}"));
        E::custom("stopped")
    }

    fn image<E: de::Error>(&mut self, raw: &RawValue) -> Result<(), E> {
        let text = raw.get();
        if !text.starts_with('"') {
            return Err(self.fail("a string"));
        }
        let image: String = serde_json::from_str(text).map_err(E::custom)?;
        let start = text.as_ptr() as usize - self.start + self.base;
        let location = Location::Field(FieldPath {
            order: self.found.len(),
            path: self.path.clone(),
        });
        self.found.push(ContainerImage {
            location,
            image: Some(image).filter(|i| !i.is_empty()),
            span: Some(start..start + text.len()),
        });
        Ok(())
    }
}

/// The walk at one value: the rest of every path that leads here.
struct Walk<'w, 'p> {
    cursors: Vec<&'p [Step]>,
    state: &'w mut State,
}

impl<'de, 'w, 'p> DeserializeSeed<'de> for Walk<'w, 'p> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let cursors = enter_shapes(self.cursors);
        if cursors.iter().any(|cursor| cursor.is_empty()) {
            let raw: &RawValue = Deserialize::deserialize(deserializer)?;
            return self.state.image(raw);
        }
        deserializer.deserialize_any(Node {
            cursors,
            state: self.state,
        })
    }
}

/// The cursors, with every one that enters a shape replaced by that shape's paths.
fn enter_shapes(cursors: Vec<&[Step]>) -> Vec<&[Step]> {
    let mut entered = Vec::with_capacity(cursors.len());
    let mut pending = cursors;
    while let Some(cursor) = pending.pop() {
        match cursor.split_first() {
            Some((Step::Shape(shape), _)) => pending.extend(shape.0.iter().copied()),
            _ => entered.push(cursor),
        }
    }
    entered
}

/// The walk at an object or a list.
struct Node<'w, 'p> {
    cursors: Vec<&'p [Step]>,
    state: &'w mut State,
}

impl Node<'_, '_> {
    /// What the paths expect here, for the error when the value is something else.
    fn expected(&self) -> &'static str {
        match self.cursors.first().map(|cursor| &cursor[0]) {
            Some(Step::Each) => "a list",
            _ => "an object",
        }
    }

    /// The rest of every cursor whose next step is `matches`.
    fn advance<'p>(cursors: &[&'p [Step]], matches: impl Fn(&Step) -> bool) -> Vec<&'p [Step]> {
        cursors
            .iter()
            .filter_map(|cursor| match cursor.split_first() {
                Some((step, rest)) if matches(step) => Some(rest),
                _ => None,
            })
            .collect()
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expected())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        if self.cursors.iter().any(|c| matches!(c[0], Step::Each)) {
            return Err(self.state.fail("a list"));
        }
        while let Some(key) = map.next_key::<String>()? {
            let next = Self::advance(&self.cursors, |step| match step {
                Step::Field(name) => *name == key,
                _ => false,
            });
            if next.is_empty() {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let depth = self.state.path.len();
            if depth > 0 {
                self.state.path.push('.');
            }
            self.state.path.push_str(&key);
            map.next_value_seed(Walk {
                cursors: next,
                state: self.state,
            })?;
            self.state.path.truncate(depth);
        }
        Ok(())
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        if self.cursors.iter().any(|c| matches!(c[0], Step::Field(_))) {
            return Err(self.state.fail("an object"));
        }
        let next = Self::advance(&self.cursors, |step| matches!(step, Step::Each));
        let depth = self.state.path.len();
        let mut index = 0;
        loop {
            self.state.path.truncate(depth);
            // Writing to a String cannot fail.
            let _ = write!(self.state.path, "[{index}]");
            let walk = Walk {
                cursors: next.clone(),
                state: self.state,
            };
            if seq.next_element_seed(walk)?.is_none() {
                break;
            }
            index += 1;
        }
        self.state.path.truncate(depth);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.state.fail(self.expected()))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.state.fail(self.expected()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.state.fail(self.expected()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.state.fail(self.expected()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.state.fail(self.expected()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::path::ImagePath;
    use super::*;

    fn images(text: &str, paths: &[&str]) -> Result<Vec<(String, Option<String>)>, String> {
        let paths: Vec<ImagePath> = paths.iter().map(|p| ImagePath::parse(p).unwrap()).collect();
        let steps: Vec<&[Step]> = paths.iter().map(|p| p.steps.as_slice()).collect();
        let found = find(text, &steps, 0)?;
        for image in &found {
            let span = image.span.clone().unwrap();
            let written: String = serde_json::from_str(&text[span]).unwrap();
            assert_eq!(Some(written).filter(|w| !w.is_empty()), image.image);
        }
        Ok(found
            .into_iter()
            .map(|i| (i.location.path(), i.image))
            .collect())
    }

    fn at(path: &str, image: &str) -> (String, Option<String>) {
        (
            path.to_owned(),
            Some(image.to_owned()).filter(|i| !i.is_empty()),
        )
    }

    #[test]
    fn finds_every_image_on_the_paths_in_document_order() {
        let text = r#"{"spec": {"b": {"image": "two"}, "a": [{"image": "one"}, {"x": 1}, {"image": ""}],
            "images": ["three", "fo\"ur"], "other": {"image": 5}}}"#;
        let found = images(
            text,
            &[
                "spec.a[*].image",
                "spec.b.image",
                "spec.images[*]",
                "spec.none[*].image",
            ],
        )
        .unwrap();
        assert_eq!(
            found,
            vec![
                at("spec.b.image", "two"),
                at("spec.a[0].image", "one"),
                at("spec.a[2].image", ""),
                at("spec.images[0]", "three"),
                at("spec.images[1]", "fo\"ur"),
            ]
        );
    }

    #[test]
    fn what_a_path_cannot_read_is_an_error_naming_it() {
        for (text, error) in [
            (r#"{"spec": {"image": 5}}"#, "spec.image is not a string"),
            (r#"{"spec": {"image": null}}"#, "spec.image is not a string"),
            (
                r#"{"spec": {"image": {"ref": "x"}}}"#,
                "spec.image is not a string",
            ),
            (
                r#"{"spec": {"steps": {"image": "x"}}}"#,
                "spec.steps is not a list",
            ),
            (
                r#"{"spec": {"steps": [7]}}"#,
                "spec.steps[0] is not an object",
            ),
            (r#"{"spec": "x"}"#, "spec is not an object"),
            (r#"[]"#, "the object is not an object"),
        ] {
            assert_eq!(
                images(text, &["spec.image", "spec.steps[*].image"]).unwrap_err(),
                error,
                "{text}"
            );
        }
        // Absent, or null along the way: nothing to read.
        assert_eq!(
            images(r#"{"spec": {"steps": null}}"#, &["spec.steps[*].image"]),
            Ok(vec![])
        );
        assert_eq!(images(r#"{}"#, &["spec.image"]), Ok(vec![]));
        // Not JSON: serde's error.
        assert!(images(r#"{"spec": "#, &["spec.image"]).is_err());
    }
}
