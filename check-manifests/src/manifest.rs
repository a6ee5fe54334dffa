//! Kubernetes objects out of documents: each document parsed to the JSON value the API
//! server would receive (`kubectl` converts YAML to JSON the same way: merge keys applied,
//! keys as strings), `List` and `*List` documents opened into their items, and every object
//! checked for what the API server needs to route it (`apiVersion`, `kind`, `metadata` with
//! a name). What cannot be read is a [`Problem`] naming its file and document.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::input::documents::{line_of, yaml_documents, Document};
use crate::input::{Format, Source};

/// Where an object comes from: `file:document`, and its index when it is an item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// 1-based; `None` when the file itself could not be read.
    pub document: Option<usize>,
    /// The line (1-based) the document starts on.
    pub line: Option<usize>,
    /// The index in the list's `items`.
    pub item: Option<usize>,
}

impl Origin {
    pub fn file(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            document: None,
            line: None,
            item: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(document) = self.document {
            write!(f, ":{document}")?;
        }
        if let Some(item) = self.item {
            write!(f, " items[{item}]")?;
        }
        Ok(())
    }
}

/// An object to check, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub origin: Origin,
    pub object: Value,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `metadata.namespace`, when the object sets it.
    pub namespace: Option<String>,
}

/// Why a document or an item is not an object that can be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("not an object but {0}")]
    NotAnObject(&'static str),
    #[error("no `{0}`: not a Kubernetes object")]
    Missing(&'static str),
    #[error("`{0}` is not a string")]
    NotAString(&'static str),
    #[error("`metadata` is not an object")]
    NoMetadata,
    #[error("neither `metadata.name` nor `metadata.generateName`")]
    NoName,
    #[error("`items` of a {0} is not a list")]
    NoItems(String),
}

/// A document or item that cannot be checked, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    pub error: ManifestError,
}

/// One parsed document of a source: where it lies, and its objects or problems.
#[derive(Debug, Clone)]
pub struct ParsedDocument {
    pub document: Document,
    /// The document's value (`None` when empty or unreadable): what pinning edits.
    pub value: Option<Value>,
    pub objects: Vec<Result<Manifest, Problem>>,
}

/// Every document of `source`, parsed.
pub fn parse(source: &Source) -> Vec<ParsedDocument> {
    let values = match source.format {
        Format::Yaml => yaml_documents(&source.text)
            .into_iter()
            .map(|document| {
                let value = yaml_value(&source.text[document.range.clone()], document.line);
                (document, value)
            })
            .collect(),
        Format::Json => json_values(&source.text),
    };
    values
        .into_iter()
        .map(|(document, value)| {
            let origin = Origin {
                file: source.name.clone(),
                document: Some(document.number),
                line: Some(document.line),
                item: None,
            };
            let (value, objects) = match value {
                Ok(None) => (None, Vec::new()),
                Ok(Some(value)) => {
                    let objects = objects(&origin, &value);
                    (Some(value), objects)
                }
                Err(error) => (None, vec![Err(Problem { origin, error })]),
            };
            ParsedDocument {
                document,
                value,
                objects,
            }
        })
        .collect()
}

/// The value of one document of `format` whose first line is `first_line` of its file
/// (`None` for an empty document).
pub fn value(
    format: Format,
    text: &str,
    first_line: usize,
) -> Result<Option<Value>, ManifestError> {
    match format {
        Format::Yaml => yaml_value(text, first_line),
        Format::Json => serde_json::from_str::<serde_yaml_ng::Value>(text)
            .map_err(|e| ManifestError::Json(e.to_string()))
            .and_then(to_json)
            .map(Some),
    }
}

/// The value of one YAML document whose first line is `first_line` of its file (`None`
/// for an empty document): duplicate keys refused, merge keys (`<<`) applied.
fn yaml_value(text: &str, first_line: usize) -> Result<Option<Value>, ManifestError> {
    let relocated =
        |e: serde_yaml_ng::Error| ManifestError::Yaml(relocate(&e.to_string(), first_line));
    let mut value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(relocated)?;
    value.apply_merge().map_err(relocated)?;
    match value {
        serde_yaml_ng::Value::Null => Ok(None),
        value => to_json(value).map(Some),
    }
}

/// The JSON values of a `*.json` file, each one a document; after a value that cannot be
/// read, the rest of the file cannot be either.
fn json_values(text: &str) -> Vec<(Document, Result<Option<Value>, ManifestError>)> {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_yaml_ng::Value>();
    let mut documents = Vec::new();
    let mut start = 0;
    loop {
        let next = stream.next();
        let end = stream.byte_offset();
        let document = Document {
            number: documents.len() + 1,
            line: line_of(
                text,
                start + (text[start..end].len() - text[start..end].trim_start().len()),
            ),
            range: start..end,
        };
        start = end;
        match next {
            None => break,
            Some(Ok(value)) => documents.push((document, to_json(value).map(Some))),
            Some(Err(error)) => {
                documents.push((document, Err(ManifestError::Json(error.to_string()))));
                break;
            }
        }
    }
    if documents.is_empty() {
        documents.push((
            Document {
                number: 1,
                line: 1,
                range: 0..text.len(),
            },
            Ok(None),
        ));
    }
    documents
}

/// A YAML error's line numbers, counted in the document, counted in the file instead.
fn relocate(message: &str, first_line: usize) -> String {
    static LINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bline (\d+)").expect("regex"));
    LINE.replace_all(message, |captures: &regex::Captures| {
        let line: usize = captures[1].parse().unwrap_or(0);
        format!("line {}", line + first_line - 1)
    })
    .into_owned()
}

/// A YAML value as JSON: keys that are numbers or booleans become strings, as `kubectl`
/// makes them; tags, and keys or numbers JSON cannot hold, are refused.
fn to_json(value: serde_yaml_ng::Value) -> Result<Value, ManifestError> {
    use serde_yaml_ng::Value as Yaml;
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => number(&n)?,
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Number(n) => n.to_string(),
                    _ => {
                        return Err(ManifestError::Unsupported(
                            "a key that is not a string".into(),
                        ))
                    }
                };
                object.insert(key, to_json(value)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => {
            return Err(ManifestError::Unsupported(format!(
                "the tag {} is not supported",
                tagged.tag
            )))
        }
    })
}

fn number(n: &serde_yaml_ng::Number) -> Result<Value, ManifestError> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(Value::from(u));
    }
    n.as_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| ManifestError::Unsupported(format!("{n} is not a JSON number")))
}

/// The objects of one document's value: the value itself, or the items of a list.
pub fn objects(origin: &Origin, value: &Value) -> Vec<Result<Manifest, Problem>> {
    let problem = |origin: &Origin, error| {
        Err(Problem {
            origin: origin.clone(),
            error,
        })
    };
    let Some(fields) = value.as_object() else {
        return vec![problem(
            origin,
            ManifestError::NotAnObject(type_name(value)),
        )];
    };
    let kind = fields
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(items) = kind
        .ends_with("List")
        .then(|| fields.get("items"))
        .flatten()
    else {
        return vec![manifest(origin, value).map_err(|error| Problem {
            origin: origin.clone(),
            error,
        })];
    };
    let Some(items) = items.as_array() else {
        return vec![problem(origin, ManifestError::NoItems(kind.to_owned()))];
    };
    // A typed list (`DeploymentList`) may leave out its items' kind and apiVersion.
    let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let origin = Origin {
                item: Some(index),
                ..origin.clone()
            };
            let mut item = item.clone();
            if let (Some(object), Some(item_kind)) = (item.as_object_mut(), item_kind) {
                object
                    .entry("kind")
                    .or_insert_with(|| Value::from(item_kind));
                if let Some(version) = fields.get("apiVersion") {
                    object
                        .entry("apiVersion")
                        .or_insert_with(|| version.clone());
                }
            }
            manifest(&origin, &item).map_err(|error| Problem { origin, error })
        })
        .collect()
}

fn manifest(origin: &Origin, value: &Value) -> Result<Manifest, ManifestError> {
    let Some(fields) = value.as_object() else {
        return Err(ManifestError::NotAnObject(type_name(value)));
    };
    let text = |field: &'static str| match fields.get(field) {
        None | Some(Value::Null) => Err(ManifestError::Missing(field)),
        Some(Value::String(s)) if s.is_empty() => Err(ManifestError::Missing(field)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ManifestError::NotAString(field)),
    };
    let api_version = text("apiVersion")?;
    let kind = text("kind")?;
    let metadata = match fields.get("metadata") {
        None | Some(Value::Null) => return Err(ManifestError::Missing("metadata")),
        Some(Value::Object(metadata)) => metadata,
        Some(_) => return Err(ManifestError::NoMetadata),
    };
    let string = |field: &str| {
        metadata
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let name = string("name")
        .or_else(|| string("generateName"))
        .ok_or(ManifestError::NoName)?;
    Ok(Manifest {
        origin: origin.clone(),
        object: value.clone(),
        api_version,
        kind,
        name: name.to_owned(),
        namespace: string("namespace").map(str::to_owned),
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(name: &str, format: Format, text: &str) -> Source {
        Source {
            name: name.into(),
            path: None,
            relative: name.into(),
            format,
            text: text.into(),
        }
    }

    /// `(origin, Ok(kind/name) | Err(message))` of every object of `text`.
    fn read(format: Format, text: &str) -> Vec<(String, Result<String, String>)> {
        parse(&source("f", format, text))
            .into_iter()
            .flat_map(|d| d.objects)
            .map(|o| match o {
                Ok(m) => (m.origin.to_string(), Ok(format!("{}/{}", m.kind, m.name))),
                Err(p) => (p.origin.to_string(), Err(p.error.to_string())),
            })
            .collect()
    }

    #[test]
    fn reads_documents_lists_and_skips_empty_ones() {
        let text = "# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: b}\n---\napiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {name: c, namespace: n}\n";
        assert_eq!(
            read(Format::Yaml, text),
            [
                ("f:2".into(), Ok("ConfigMap/a".into())),
                ("f:4 items[0]".into(), Ok("Service/b".into())),
                ("f:5 items[0]".into(), Ok("Deployment/c".into())),
            ]
        );
        let docs = parse(&source("f", Format::Yaml, text));
        let typed = docs[4].objects[0].as_ref().unwrap();
        assert_eq!(typed.object["apiVersion"], "apps/v1");
        assert_eq!(typed.namespace.as_deref(), Some("n"));
    }

    #[test]
    fn bad_documents_are_problems_and_never_hide_the_next_one() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\nkind: [unclosed\n---\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: dup\n  name: dup2\n---\n- a list\n---\napiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\nmetadata: {labels: {}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: last}\n";
        let read = read(Format::Yaml, text);
        let messages: Vec<String> = read
            .iter()
            .map(|(origin, r)| format!("{origin}: {}", r.clone().unwrap_or_else(|e| e)))
            .collect();
        assert_eq!(messages[0], "f:1: ConfigMap/ok");
        assert!(
            messages[1].starts_with("f:2: invalid YAML: ") && messages[1].contains("line 5"),
            "{}",
            messages[1]
        );
        assert_eq!(messages[2], "f:3: no `apiVersion`: not a Kubernetes object");
        assert_eq!(
            messages[3],
            "f:4: invalid YAML: metadata: duplicate entry with key \"name\" at line 12 column 3"
        );
        assert_eq!(messages[4], "f:5: not an object but a list");
        assert_eq!(messages[5], "f:6: no `metadata`: not a Kubernetes object");
        assert_eq!(
            messages[6],
            "f:7: neither `metadata.name` nor `metadata.generateName`"
        );
        assert_eq!(messages[7], "f:8: ConfigMap/last");
    }

    #[test]
    fn yaml_reads_as_kubectl_sends_it() {
        let value = yaml_value(
            "base: &base {image: a:v1, name: c}\nmerged:\n  <<: *base\n  name: d\nports: {80: http, true: yes}\n",
            1,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            value,
            json!({"base": {"image": "a:v1", "name": "c"}, "merged": {"image": "a:v1", "name": "d"}, "ports": {"80": "http", "true": "yes"}})
        );
        assert!(matches!(
            yaml_value("a: !custom x", 1),
            Err(ManifestError::Unsupported(_))
        ));
        assert_eq!(yaml_value("# nothing\n", 1), Ok(None));
    }

    #[test]
    fn json_files_hold_one_or_more_values() {
        let text = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"a\"}}\n\n{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"b\"}}\n{\"kind\": ";
        let read = read(Format::Json, text);
        assert_eq!(read[0], ("f:1".into(), Ok("Pod/a".into())));
        assert_eq!(read[1], ("f:2".into(), Ok("Pod/b".into())));
        assert_eq!(read[2].0, "f:3");
        assert!(
            read[2]
                .1
                .as_ref()
                .unwrap_err()
                .starts_with("invalid JSON: EOF"),
            "{:?}",
            read[2]
        );
        let docs = parse(&source("f", Format::Json, text));
        assert_eq!(docs[1].document.line, 3);
        assert_eq!(
            &text[docs[0].document.range.clone()],
            &text[..text.find('\n').unwrap()]
        );
        let duplicate = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"b\", \"name\": \"c\"}}";
        let read = super::tests::read(Format::Json, duplicate);
        assert!(
            read[0]
                .1
                .as_ref()
                .unwrap_err()
                .contains("duplicate entry with key \"name\""),
            "{read:?}"
        );
    }

    #[test]
    fn relocates_line_numbers_to_the_file() {
        assert_eq!(
            relocate("did not find expected key at line 2 column 3, while parsing a block mapping at line 1 column 1", 10),
            "did not find expected key at line 11 column 3, while parsing a block mapping at line 10 column 1"
        );
    }
}
