//! What the check reads: each file named on the command line, the manifest files under each
//! directory named (recursively: `*.yaml`, `*.yml`, `*.json`), and standard input for `-`;
//! each as UTF-8 text of at most a size limit. A file that cannot be read is reported as
//! [`Found::Unreadable`] with its name and the reason, and the others are still read.
//!
//! - [`documents`]: a text split into its YAML or JSON documents.

pub mod documents;

use std::io::Read;
use std::path::{Path, PathBuf};

/// The name standard input goes by, on the command line and in reports.
pub const STDIN: &str = "-";
/// The file name a pinned copy of standard input gets under `--write-pinned DIR`.
const STDIN_COPY: &str = "stdin.yaml";
/// What a directory's manifests end with (compared without case).
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// How a file's documents are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML, possibly many documents (JSON is YAML too: standard input is read this way).
    Yaml,
    /// A `*.json` file: one JSON value, or several one after the other.
    Json,
}

/// A file read as text.
#[derive(Debug, Clone)]
pub struct Source {
    /// The path as found (a directory argument joined with the path under it), or `-`.
    pub name: String,
    /// The file itself; `None` for standard input.
    pub path: Option<PathBuf>,
    /// Where its pinned copy goes under `--write-pinned DIR`: the path under the directory
    /// argument it was found in, or the file name of a file argument.
    pub relative: PathBuf,
    pub format: Format,
    pub text: String,
}

/// What one argument led to, in the order found.
#[derive(Debug, Clone)]
pub enum Found {
    Text(Source),
    Unreadable { name: String, reason: String },
}

/// Every file the `arguments` name, in order: directories walked in file-name order,
/// following symbolic links (a loop is reported, not followed), and skipping entries whose
/// name starts with `.` (`.git`, `.github`); files larger than `limit` bytes are not read.
pub fn find(arguments: &[PathBuf], limit: u64, stdin: &mut dyn Read) -> Vec<Found> {
    let mut found = Vec::new();
    for argument in arguments {
        if argument.as_os_str() == STDIN {
            found.push(read_stdin(stdin, limit));
        } else if argument.is_dir() {
            walk(argument, limit, &mut found);
        } else {
            let relative = argument
                .file_name()
                .map_or_else(|| argument.clone(), PathBuf::from);
            found.push(read_file(argument, relative, limit));
        }
    }
    found
}

fn walk(dir: &Path, limit: u64, found: &mut Vec<Found>) {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !is_hidden(entry.file_name()));
    for entry in walker {
        match entry {
            Ok(entry) if entry.file_type().is_file() && is_manifest(entry.path()) => {
                let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
                found.push(read_file(entry.path(), relative.to_owned(), limit));
            }
            Ok(_) => {}
            Err(error) => found.push(walk_error(dir, &error)),
        }
    }
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

fn is_manifest(path: &Path) -> bool {
    path.extension().is_some_and(|extension| {
        let extension = extension.to_string_lossy();
        EXTENSIONS.iter().any(|e| extension.eq_ignore_ascii_case(e))
    })
}

/// A loop of symbolic links, or an entry that cannot be listed or followed.
fn walk_error(dir: &Path, error: &walkdir::Error) -> Found {
    let path = error.path().unwrap_or(dir);
    let reason = match (error.loop_ancestor(), error.io_error()) {
        (Some(ancestor), _) => format!(
            "a loop of symbolic links: it leads back to {}, which is not read again",
            ancestor.display()
        ),
        (None, Some(io)) => format!("cannot be read: {io}"),
        (None, None) => error.to_string(),
    };
    Found::Unreadable {
        name: path.display().to_string(),
        reason,
    }
}

fn read_file(path: &Path, relative: PathBuf, limit: u64) -> Found {
    let name = path.display().to_string();
    let format = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        Format::Json
    } else {
        Format::Yaml
    };
    let read = std::fs::File::open(path).and_then(|file| {
        let size = file.metadata()?.len();
        if size > limit {
            return Ok(Err(too_large(size, limit)));
        }
        read_limited(file, limit)
    });
    match read {
        Ok(Ok(text)) => Found::Text(Source {
            name,
            path: Some(path.to_owned()),
            relative,
            format,
            text,
        }),
        Ok(Err(reason)) => Found::Unreadable { name, reason },
        Err(error) => Found::Unreadable {
            name,
            reason: format!("cannot be read: {error}"),
        },
    }
}

fn read_stdin(stdin: &mut dyn Read, limit: u64) -> Found {
    match read_limited(stdin, limit) {
        Ok(Ok(text)) => Found::Text(Source {
            name: STDIN.to_owned(),
            path: None,
            relative: PathBuf::from(STDIN_COPY),
            format: Format::Yaml,
            text,
        }),
        Ok(Err(reason)) => Found::Unreadable {
            name: STDIN.to_owned(),
            reason,
        },
        Err(error) => Found::Unreadable {
            name: STDIN.to_owned(),
            reason: format!("cannot be read: {error}"),
        },
    }
}

/// At most `limit` bytes of `reader` as text; the outer error is the reader's, the inner
/// one why the bytes are not manifest text.
fn read_limited(reader: impl Read, limit: u64) -> std::io::Result<Result<String, String>> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(Err(format!(
            "more than the limit of {limit} bytes (--max-file-size)"
        )));
    }
    Ok(text(bytes))
}

fn too_large(size: u64, limit: u64) -> String {
    format!("{size} bytes, more than the limit of {limit} bytes (--max-file-size)")
}

/// `bytes` as text, or why they are not: binary data (a NUL byte, which no YAML or JSON
/// text holds), or bytes that are not UTF-8.
fn text(bytes: Vec<u8>) -> Result<String, String> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(format!(
            "binary data, not YAML or JSON text (a NUL byte at offset {at})"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (an invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreadable(found: &Found) -> &str {
        match found {
            Found::Unreadable { reason, .. } => reason,
            Found::Text(source) => panic!("{} was read", source.name),
        }
    }

    #[test]
    fn walks_directories_in_order_and_reads_only_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/deep")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for (path, text) in [
            ("b/deep/z.YML", "kind: A"),
            ("a.json", "{}"),
            ("c.yaml", "kind: C"),
            ("notes.txt", "not a manifest"),
            (".git/config.yaml", "hidden"),
            (".hidden.yaml", "hidden"),
        ] {
            std::fs::write(root.join(path), text).unwrap();
        }
        let found = find(&[root.to_owned()], 1024, &mut std::io::empty());
        let names: Vec<(String, PathBuf, Format)> = found
            .iter()
            .map(|f| match f {
                Found::Text(s) => (s.name.clone(), s.relative.clone(), s.format),
                Found::Unreadable { name, reason } => panic!("{name}: {reason}"),
            })
            .collect();
        let at = |p: &str| root.join(p).display().to_string();
        assert_eq!(
            names,
            [
                (at("a.json"), PathBuf::from("a.json"), Format::Json),
                (
                    at("b/deep/z.YML"),
                    PathBuf::from("b/deep/z.YML"),
                    Format::Yaml
                ),
                (at("c.yaml"), PathBuf::from("c.yaml"), Format::Yaml),
            ]
        );
    }

    #[test]
    fn a_symlink_loop_is_reported_and_the_rest_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::os::unix::fs::symlink(root, root.join("sub/loop")).unwrap();
        std::fs::write(root.join("sub/ok.yaml"), "kind: A").unwrap();
        let found = find(&[root.to_owned()], 1024, &mut std::io::empty());
        assert_eq!(found.len(), 2, "{found:?}");
        let reason = unreadable(&found[0]);
        assert!(reason.contains("loop of symbolic links"), "{reason}");
        assert!(matches!(&found[1], Found::Text(s) if s.text == "kind: A"));
    }

    #[test]
    fn large_binary_and_non_utf8_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let large = write("large.yaml", &[b'#'; 2048]);
        let binary = write("binary.yaml", b"kind: A\n\0\x01\x02");
        let latin1 = write("latin1.yaml", b"name: caf\xe9\n");
        let missing = dir.path().join("missing.yaml");
        let found = find(
            &[large, binary, latin1, missing],
            1024,
            &mut std::io::empty(),
        );
        let reasons: Vec<&str> = found.iter().map(unreadable).collect();
        assert!(
            reasons[0].starts_with("2048 bytes, more than"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].contains("NUL byte at offset 8"),
            "{}",
            reasons[1]
        );
        assert!(
            reasons[2].contains("invalid byte at offset 9"),
            "{}",
            reasons[2]
        );
        assert!(reasons[3].starts_with("cannot be read"), "{}", reasons[3]);
    }

    #[test]
    fn standard_input_is_read_within_the_limit() {
        let found = find(&[PathBuf::from("-")], 8, &mut "kind: A".as_bytes());
        assert!(
            matches!(&found[0], Found::Text(s) if s.name == "-" && s.path.is_none() && s.relative == Path::new("stdin.yaml"))
        );
        let found = find(&[PathBuf::from("-")], 4, &mut "kind: A".as_bytes());
        assert!(unreadable(&found[0]).contains("more than the limit of 4 bytes"));
    }
}
