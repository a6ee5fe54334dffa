//! `--write-pinned DIR` and `--in-place`: the manifests written back with each admitted
//! object's patch applied to their text, so that a GitOps repository holds what the
//! mutating webhook would make of it.
//!
//! Only the bytes of the image scalars a patch replaces change, each written in its own
//! quoting style (plain, single or double quotes, JSON strings); comments, key order,
//! anchors and every other byte stay as they are. Before a file is written, each changed
//! document is read again and must give exactly the object with its patch applied. A patch
//! operation that maps onto no scalar of the text (a value reached through an alias or a
//! merge key, a block scalar, anything but a `replace` of a string) means the file is not
//! written, and the reason is reported; a file is written whole or not at all (a temporary
//! file renamed over it).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::input::Source;
use crate::manifest::{self, Origin, ParsedDocument};
use crate::report::PinnedFile;
use crate::scalars::{Lookup, Scalar, Scalars, Style};

/// Where pinned manifests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A copy of every file read, at its path under the argument it was found in.
    Dir(PathBuf),
    /// Over the files themselves (through symbolic links), where anything changes.
    InPlace,
}

/// The patch of one admitted object of a source: its document (index into the source's
/// documents), its list item, what names it in messages, and the RFC 6902 operations.
#[derive(Debug, Clone)]
pub struct Patch<'a> {
    pub document: usize,
    pub item: Option<usize>,
    pub name: String,
    pub operations: &'a Value,
}

/// One replacement of bytes of the file.
struct Edit {
    range: Range<usize>,
    text: String,
}

/// Writes `source` pinned with `patches` to `target`; `None` when nothing is to be written
/// (in place, a file that does not change). `taken` holds the paths written so far, so
/// that two inputs never overwrite each other's copy.
pub fn pin(
    source: &Source,
    documents: &[ParsedDocument],
    patches: &[Patch],
    target: &Target,
    taken: &mut Vec<PathBuf>,
) -> Option<PinnedFile> {
    let mut outcome = PinnedFile {
        file: source.name.clone(),
        written_to: None,
        images: 0,
        error: None,
    };
    let edits = match edits(source, documents, patches) {
        Ok(edits) => edits,
        Err(error) => {
            outcome.error = Some(error);
            return Some(outcome);
        }
    };
    let destination = match target {
        Target::InPlace if edits.is_empty() => return None,
        Target::InPlace => match &source.path {
            Some(path) => std::fs::canonicalize(path)
                .map_err(|e| format!("cannot resolve {}: {e}", path.display())),
            None => {
                Err("standard input cannot be pinned in place: use --write-pinned DIR".to_owned())
            }
        },
        Target::Dir(dir) => Ok(dir.join(&source.relative)),
    };
    let result = destination.and_then(|path| {
        if taken.contains(&path) {
            return Err(format!(
                "{} is written from another input already",
                path.display()
            ));
        }
        taken.push(path.clone());
        let text = apply(&source.text, &edits);
        write_atomically(&path, &text, source.path.as_deref())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    });
    match result {
        Ok(path) => {
            outcome.written_to = Some(path.display().to_string());
            outcome.images = edits.len();
        }
        Err(error) => outcome.error = Some(error),
    }
    Some(outcome)
}

/// The edits of every patched document of `source`, in file order, each document checked
/// to read back as its patched value; or why one cannot be pinned.
fn edits(
    source: &Source,
    documents: &[ParsedDocument],
    patches: &[Patch],
) -> Result<Vec<Edit>, String> {
    let mut by_document: BTreeMap<usize, Vec<&Patch>> = BTreeMap::new();
    for patch in patches {
        by_document.entry(patch.document).or_default().push(patch);
    }
    let mut all = Vec::new();
    for (index, patches) in by_document {
        let parsed = &documents[index];
        let range = parsed.document.range.clone();
        let text = &source.text[range.clone()];
        let name = |patch: &Patch| {
            let origin = Origin {
                file: source.name.clone(),
                document: Some(parsed.document.number),
                line: Some(parsed.document.line),
                item: patch.item,
            };
            format!("{origin} ({})", patch.name)
        };
        let scalars = Scalars::parse(text).map_err(|e| {
            format!(
                "{}: the text cannot be read for its positions: {e}",
                name(patches[0])
            )
        })?;
        let mut expected = parsed.value.clone().unwrap_or(Value::Null);
        let mut edits = Vec::new();
        for patch in &patches {
            let prefix = patch
                .item
                .map(|i| format!("/items/{i}"))
                .unwrap_or_default();
            let fail = |why: String| format!("{}: {why}", name(patch));
            let target = expected
                .pointer_mut(&prefix)
                .ok_or_else(|| fail("no such list item".into()))?;
            let operations: json_patch::Patch = serde_json::from_value(patch.operations.clone())
                .map_err(|e| fail(format!("unreadable patch: {e}")))?;
            for operation in &operations.0 {
                let edit = edit(text, &scalars, target, &prefix, operation).map_err(&fail)?;
                edits.push(edit);
            }
            json_patch::patch(target, &operations)
                .map_err(|e| fail(format!("the patch does not apply: {e}")))?;
        }
        edits.sort_by_key(|e| e.range.start);
        let pinned = apply(text, &edits);
        let read_back = manifest::value(source.format, &pinned, parsed.document.line)
            .map_err(|e| format!("{}: the pinned text would not read: {e}", name(patches[0])))?;
        if read_back.as_ref() != Some(&expected) {
            return Err(format!(
                "{}: the pinned text would not read back as the patched object",
                name(patches[0])
            ));
        }
        all.extend(edits.into_iter().map(|e| Edit {
            range: e.range.start + range.start..e.range.end + range.start,
            text: e.text,
        }));
    }
    Ok(all)
}

/// The edit one `replace` of a string makes, in the scalar's own style.
fn edit(
    text: &str,
    scalars: &Scalars,
    object: &Value,
    prefix: &str,
    operation: &json_patch::PatchOperation,
) -> Result<Edit, String> {
    let json_patch::PatchOperation::Replace(replace) = operation else {
        let operation = serde_json::to_string(operation).unwrap_or_default();
        return Err(format!(
            "the patch does more than replace a value: {operation}"
        ));
    };
    let path = replace.path.to_string();
    let (Some(new), Some(Value::String(old))) = (replace.value.as_str(), object.pointer(&path))
    else {
        return Err(format!(
            "{path}: the patch replaces something other than a string"
        ));
    };
    let scalar = match scalars.lookup(&format!("{prefix}{path}")) {
        Lookup::Scalar(scalar) => scalar,
        Lookup::ThroughAlias => {
            return Err(format!(
                "{path}: written through a YAML alias; pin it by hand"
            ))
        }
        Lookup::Missing => {
            return Err(format!(
                "{path}: not a scalar of the text (a merge key?); pin it by hand"
            ))
        }
    };
    if scalar.shared {
        return Err(format!(
            "{path}: shared through a YAML anchor and alias; pin it by hand"
        ));
    }
    let written = written(scalar, new).map_err(|why| format!("{path}: {why}"))?;
    if scalar.value != *old || !scalar.text_agrees(text) {
        return Err(format!("{path}: the YAML parsers disagree on its value"));
    }
    Ok(Edit {
        range: scalar.range.clone(),
        text: written,
    })
}

/// `value` written as `scalar` is: plain, in single quotes, or in double quotes (as a JSON
/// string, which YAML reads the same). A scalar on several lines, a block scalar, or a
/// value that the scalar's style cannot hold on one line is refused.
fn written(scalar: &Scalar, value: &str) -> Result<String, String> {
    if value.contains(['\n', '\r']) {
        return Err("the new value spans lines".into());
    }
    match scalar.style {
        Style::Block => Err("written as a block scalar (| or >)".into()),
        _ if scalar.value.contains('\n') => Err("written on several lines".into()),
        Style::Plain if scalar.in_flow && value.contains([',', '[', ']', '{', '}']) => {
            Err("the new value cannot be a plain scalar in a flow collection".into())
        }
        Style::Plain => Ok(value.to_owned()),
        Style::SingleQuoted => Ok(format!("'{}'", value.replace('\'', "''"))),
        Style::DoubleQuoted => Ok(serde_json::to_string(value).unwrap_or_default()),
    }
}

/// `text` with `edits` (sorted, not overlapping) made.
fn apply(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len() + edits.len() * 80);
    let mut at = 0;
    for edit in edits {
        out.push_str(&text[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Writes `text` to a temporary file beside `path` and renames it over `path`, so that
/// `path` is never half written; the file keeps the permissions of `like` when given.
fn write_atomically(path: &Path, text: &str, like: Option<&Path>) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::Builder::new()
        .prefix(".pinned-")
        .tempfile_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    let permissions = match like.map(std::fs::metadata) {
        Some(Ok(metadata)) => metadata.permissions(),
        _ => std::os::unix::fs::PermissionsExt::from_mode(0o644),
    };
    file.as_file().set_permissions(permissions)?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Format;
    use serde_json::json;

    fn source(format: Format, text: &str) -> Source {
        Source {
            name: "in.yaml".into(),
            path: None,
            relative: "in.yaml".into(),
            format,
            text: text.into(),
        }
    }

    /// `text` pinned with `patches` of `(document index, item, operations)`.
    fn pinned(
        format: Format,
        text: &str,
        patches: &[(usize, Option<usize>, Value)],
    ) -> Result<String, String> {
        let source = source(format, text);
        let documents = manifest::parse(&source);
        let patches: Vec<Patch> = patches
            .iter()
            .map(|(document, item, operations)| Patch {
                document: *document,
                item: *item,
                name: "Deployment default/web".into(),
                operations,
            })
            .collect();
        let edits = edits(&source, &documents, &patches)?;
        Ok(apply(&source.text, &edits))
    }

    fn replace(path: &str, value: &str) -> Value {
        json!([{"op": "replace", "path": path, "value": value}])
    }

    #[test]
    fn rewrites_only_the_image_bytes_in_their_style() {
        let text = "# chart: web\nkind: ConfigMap # first\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}  # keep\nspec:\n  template:\n    spec:\n      containers:\n      - image: r/a:v1   # plain\n        name: a\n      - {name: b, image: \"r/b:v1\"}\n      initContainers:\n      - image: 'r/c:v1'\n";
        let patch = json!([
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "r/a:v1@sha256:aa"},
            {"op": "replace", "path": "/spec/template/spec/containers/1/image", "value": "r/b:v1@sha256:bb"},
            {"op": "replace", "path": "/spec/template/spec/initContainers/0/image", "value": "r/c:v1@sha256:cc"},
        ]);
        let out = pinned(Format::Yaml, text, &[(1, None, patch)]).unwrap();
        assert_eq!(
            out,
            text.replace("r/a:v1 ", "r/a:v1@sha256:aa ")
                .replace("\"r/b:v1\"", "\"r/b:v1@sha256:bb\"")
                .replace("'r/c:v1'", "'r/c:v1@sha256:cc'")
        );
    }

    #[test]
    fn pins_list_items_and_json() {
        let text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: a, image: r/a:v1}]}\n";
        let out = pinned(
            Format::Yaml,
            text,
            &[(
                0,
                Some(0),
                replace("/spec/containers/0/image", "r/a:v1@sha256:aa"),
            )],
        )
        .unwrap();
        assert_eq!(out, text.replace("r/a:v1}", "r/a:v1@sha256:aa}"));
        let json_text = "{\n  \"kind\": \"Pod\",\n  \"spec\": {\"containers\": [{\"image\": \"r/\\u0061:v1\"}]}\n}\n";
        let out = pinned(
            Format::Json,
            json_text,
            &[(
                0,
                None,
                replace("/spec/containers/0/image", "r/a:v1@sha256:aa"),
            )],
        )
        .unwrap();
        assert_eq!(
            out,
            json_text.replace("\"r/\\u0061:v1\"", "\"r/a:v1@sha256:aa\"")
        );
    }

    #[test]
    fn refuses_what_it_cannot_map_onto_the_text() {
        let refused = |text: &str, path: &str| {
            pinned(
                Format::Yaml,
                text,
                &[(0, None, replace(path, "r/a:v1@sha256:aa"))],
            )
            .unwrap_err()
        };
        let alias = "a: &img r/a:v1\nb: *img\n";
        assert!(refused(alias, "/b").contains("through a YAML alias"));
        assert!(refused(alias, "/a").contains("shared through a YAML anchor"));
        let merged = "base: &b {image: r/a:v1}\nc:\n  <<: *b\n";
        assert!(
            refused(merged, "/c/image").contains("written through a YAML alias")
                || refused(merged, "/c/image").contains("merge key")
        );
        assert!(refused("image: |\n  r/a:v1\n", "/image").contains("block scalar"));
        assert!(
            refused("image: r/a\n  :v1\n", "/image").contains("several lines")
                || refused("image: r/a\n  :v1\n", "/image").contains("disagree")
        );
        let add = json!([{"op": "add", "path": "/x", "value": "y"}]);
        assert!(pinned(Format::Yaml, "a: 1\n", &[(0, None, add)])
            .unwrap_err()
            .contains("more than replace"));
        assert!(refused("image: 3\n", "/image").contains("other than a string"));
    }

    #[test]
    fn a_pin_that_would_not_read_back_is_refused() {
        // A plain value with `: ` would read as a mapping.
        let out = pinned(
            Format::Yaml,
            "image: r/a\n",
            &[(0, None, replace("/image", "r/a: v1"))],
        );
        assert!(out.unwrap_err().contains("would not"));
    }

    #[test]
    fn writes_whole_files_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.yaml");
        write_atomically(&path, "a: 1\n", None).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a: 1\n");
        write_atomically(&path, "a: 2\n", Some(&path)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a: 2\n");
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }
}
