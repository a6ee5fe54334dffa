//! The documents' commands and settings exist: every `make` and `kwctl` command README.md and
//! DEVELOPMENT.md show, and every settings example, names only what there is. `make lint`
//! runs this test; each failure names the document, the line and what does not exist.
//!
//! - **Commands** are read from code blocks (fenced or indented; in a `console` block with
//!   `$ ` prompts only those lines; never the body of a heredoc) and from code spans that start with `make `
//!   or `kwctl `, split as a shell splits them.
//!   - `make TARGET... VAR=value...`: each target is one of the Makefile's database
//!     (`make -pq`), each variable one the Makefile reads (`$(VAR)` or `${VAR}` in it).
//!   - `kwctl SUBCOMMAND... --flag...`: each subcommand and flag is one `kwctl SUBCOMMAND
//!     --help` lists, on every supported version ([`KWCTL_VERSIONS`]). One that only some
//!     versions have must be said so: the command's lines, or the three lines before them,
//!     name each version that has it (`1.35`).
//! - **Settings examples** are the `yaml` blocks, and the heredocs ending in `YAML` of shell
//!   blocks. Each is read as:
//!   - a list: the entries of `signatures`;
//!   - a mapping with `apiVersion` and `kind`: a Kubernetes object; a ClusterAdmissionPolicy
//!     or AdmissionPolicy must carry `spec.settings`, which are settings; other kinds are not
//!     settings;
//!   - a mapping with `image`: one entry (every entry has an `image`; settings have none);
//!   - any other mapping: settings, given one entry of a test key when they have no
//!     `signatures` (the examples of a single option).
//!
//!   The placeholders the documents write for keys and certificates ([`NAMED_KEYS`],
//!   [`PEM_BODIES`]) are replaced by test keys of `tests/data/`, then the policy's own
//!   `validate_settings` decides. Any other placeholder is refused by it as an invalid key, so
//!   a new placeholder fails here until it is added to these lists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use host_driver::{Kubewarden, Kwctl};
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use serde_json::{json, Value};

/// The documents checked, from the workspace root.
const DOCUMENTS: [&str; 2] = ["README.md", "DEVELOPMENT.md"];
/// The kwctl versions the project supports, on PATH as `kwctl-VERSION`.
const KWCTL_VERSIONS: [&str; 2] = ["1.31.0", "1.35.0"];

const KEY1: &str = include_str!("../../tests/data/key1.pub");
const KEY2: &str = include_str!("../../tests/data/key2.pub");
const KEY3: &str = include_str!("../../tests/data/key3.pub");
const CERTIFICATE: &str = include_str!("../../tests/data/ca.crt");
/// Every name the documents write in place of a public key, and the key standing in for it
/// (distinct keys for names listed together).
const NAMED_KEYS: [(&str, &str); 4] = [
    ("RELEASE_KEY", KEY1),
    ("ALICE", KEY1),
    ("BOB", KEY2),
    ("CAROL", KEY3),
];
/// Every text the documents write in place of a PEM block's base64, with or without the END
/// line: such a `PUBLIC KEY` becomes [`KEY1`], such a `CERTIFICATE` [`CERTIFICATE`].
const PEM_BODIES: [&str; 2] = ["...", "...your cosign.pub..."];

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A code block or code span of a document, and the line its text starts on.
struct Snippet {
    line: usize,
    text: String,
    /// The block's language (`""` when it has none); `None` for a code span.
    language: Option<String>,
}

fn snippets(markdown: &str) -> Vec<Snippet> {
    let line_of = |offset: usize| markdown[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut block: Option<Snippet> = None;
    for (event, range) in Parser::new(markdown).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let (line, language) = match kind {
                    CodeBlockKind::Fenced(info) => (
                        line_of(range.start) + 1,
                        info.split_whitespace().next().unwrap_or("").to_owned(),
                    ),
                    CodeBlockKind::Indented => (line_of(range.start), String::new()),
                };
                block = Some(Snippet {
                    line,
                    text: String::new(),
                    language: Some(language),
                });
            }
            Event::Text(text) => {
                if let Some(block) = block.as_mut() {
                    block.text.push_str(&text);
                }
            }
            Event::End(TagEnd::CodeBlock) => found.extend(block.take()),
            Event::Code(text) => found.push(Snippet {
                line: line_of(range.start),
                text: text.into_string(),
                language: None,
            }),
            _ => {}
        }
    }
    found
}

/// What the snippets of a document hold: commands and settings examples, with their lines.
#[derive(Default)]
struct Contents {
    /// `(first line, last line, command as written)`.
    commands: Vec<(usize, usize, String)>,
    /// `(first line, YAML text)`.
    yaml: Vec<(usize, String)>,
}

const SHELLS: [&str; 5] = ["", "console", "sh", "bash", "shell"];

fn contents(markdown: &str) -> Contents {
    let mut contents = Contents::default();
    for snippet in snippets(markdown) {
        match snippet.language.as_deref() {
            None => {
                if snippet.text.starts_with("make ") || snippet.text.starts_with("kwctl ") {
                    contents
                        .commands
                        .push((snippet.line, snippet.line, snippet.text));
                }
            }
            Some("yaml") => contents.yaml.push((snippet.line, snippet.text)),
            Some(shell) if SHELLS.contains(&shell) => {
                let prompts =
                    shell == "console" && snippet.text.lines().any(|l| l.starts_with("$ "));
                shell_lines(&snippet, prompts, &mut contents)
            }
            Some(_) => {}
        }
    }
    contents
}

/// The commands of a shell block, continuation lines joined, and its YAML heredocs.
fn shell_lines(snippet: &Snippet, prompts: bool, contents: &mut Contents) {
    let mut lines = snippet
        .text
        .lines()
        .enumerate()
        .map(|(i, l)| (snippet.line + i, l));
    while let Some((first, line)) = lines.next() {
        let mut command = if prompts {
            match line.strip_prefix("$ ") {
                Some(command) => command.to_owned(),
                None => continue,
            }
        } else {
            line.to_owned()
        };
        let mut last = first;
        while let Some(head) = command.strip_suffix('\\') {
            command = head.to_owned();
            let Some((n, next)) = lines.next() else { break };
            command.push(' ');
            command.push_str(next.trim_start());
            last = n;
        }
        if let Some(delimiter) = heredoc_delimiter(&command) {
            let mut body = String::new();
            for (_, line) in lines.by_ref() {
                if line.trim() == delimiter {
                    break;
                }
                body.push_str(line);
                body.push('\n');
            }
            if delimiter == "YAML" {
                contents.yaml.push((last + 1, body));
            }
        }
        contents.commands.push((first, last, command));
    }
}

/// `WORD` of a `<<WORD`, `<<'WORD'` or `<<"WORD"` in `command`.
fn heredoc_delimiter(command: &str) -> Option<String> {
    let (_, rest) = command.split_once("<<")?;
    let word = rest.split_whitespace().next()?;
    Some(word.trim_matches(['\'', '"']).to_owned())
}

/// The `make` and `kwctl` invocations of a command line: its words split as a shell splits
/// them, cut at `&&`, `||`, `;` and `|`, leading `VAR=value` assignments and redirections
/// dropped.
fn invocations(command: &str) -> Result<Vec<Vec<String>>, String> {
    let words = shlex::split(command).ok_or("cannot be split as a shell splits it")?;
    let mut found = Vec::new();
    for part in words.split(|w| ["&&", "||", ";", "|"].contains(&w.as_str())) {
        let mut words = part
            .iter()
            .skip_while(|w| w.contains('=') && !w.starts_with('-'))
            .peekable();
        if !matches!(words.peek().map(|w| w.as_str()), Some("make" | "kwctl")) {
            continue;
        }
        let mut invocation = Vec::new();
        while let Some(word) = words.next() {
            if word.starts_with(['>', '<']) || word.starts_with("2>") {
                if word.trim_start_matches(['2', '>', '<', '&']).is_empty() {
                    words.next();
                }
                continue;
            }
            invocation.push(word.clone());
        }
        found.push(invocation);
    }
    Ok(found)
}

/// The Makefile's targets and the variables it reads.
struct Makefile {
    targets: BTreeSet<String>,
    variables: BTreeSet<String>,
}

impl Makefile {
    fn read() -> Makefile {
        // -q: only ask whether the default target is up to date, so no recipe runs.
        let output = Command::new("make")
            .args(["-pq", "-f", "Makefile"])
            .current_dir(root())
            .output()
            .expect("run make");
        let database = String::from_utf8_lossy(&output.stdout);
        assert!(
            database.contains("# Make data base"),
            "no database from make -pq"
        );
        let mut targets = BTreeSet::new();
        let mut not_a_target = false;
        for line in database.lines() {
            let rule = !line.starts_with(['#', '\t', ' ']) && !line.contains(":=");
            match line.split_once(':') {
                Some((names, _)) if rule && !not_a_target && !names.contains('=') => {
                    targets.extend(names.split_whitespace().map(String::from))
                }
                _ => {}
            }
            not_a_target = line == "# Not a target:";
        }
        let text = std::fs::read_to_string(root().join("Makefile")).expect("read the Makefile");
        let mut variables = BTreeSet::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find('$') {
            let after = &rest[at + 1..];
            rest = after;
            if let Some(name) = after.strip_prefix(['(', '{']) {
                let end = name
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(name.len());
                if name[end..].starts_with([')', '}', ':']) {
                    variables.insert(name[..end].to_owned());
                }
            } else if let Some(escaped) = after.strip_prefix('$') {
                rest = escaped; // `$$` is the shell's `$`, not make's
            }
        }
        Makefile { targets, variables }
    }

    /// What `make ARGS` names that the Makefile does not have.
    fn check(&self, args: &[String]) -> Vec<String> {
        args.iter()
            .filter_map(|arg| match arg.split_once('=') {
                Some((variable, _)) if !self.variables.contains(variable) => {
                    Some(format!("the Makefile reads no variable {variable}"))
                }
                Some(_) => None,
                None if arg.starts_with('-') => Some(format!("make option {arg} is not checked")),
                None if !self.targets.contains(arg) => {
                    Some(format!("the Makefile has no target {arg}"))
                }
                None => None,
            })
            .collect()
    }
}

/// What `kwctl ... --help` lists at one level.
#[derive(Default)]
struct Help {
    subcommands: BTreeSet<String>,
    flags: BTreeSet<String>,
}

impl Help {
    /// clap's help: subcommands indented by two under `Commands:`, flags at most six deep.
    fn parse(text: &str) -> Help {
        let mut help = Help::default();
        let mut section = "";
        for line in text.lines() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if indent == 0 && line.ends_with(':') {
                section = line;
            } else if section == "Commands:" && indent == 2 {
                help.subcommands
                    .extend(trimmed.split_whitespace().next().map(String::from));
            } else if section != "Arguments:" && indent <= 6 && trimmed.starts_with('-') {
                let words = trimmed.split_whitespace().map(|w| w.trim_end_matches(','));
                help.flags.extend(
                    words
                        .take_while(|w| w.starts_with('-'))
                        .map(|w| w.split(['=', '[', '<']).next().unwrap_or(w).to_owned()),
                );
            }
        }
        help
    }
}

/// The kwctl of every supported version, and the help of each command asked so far.
struct Kwctls {
    versions: Vec<(String, Kwctl)>,
    helps: BTreeMap<(usize, Vec<String>), Help>,
}

impl Kwctls {
    fn new() -> Kwctls {
        let versions = KWCTL_VERSIONS
            .iter()
            .map(|version| {
                let kubewarden = Kubewarden::locate_kwctl(Some(version))
                    .unwrap_or_else(|e| panic!("kwctl {version}: {e:#}"));
                (version.to_string(), Kwctl::new(&kubewarden).unwrap())
            })
            .collect();
        Kwctls {
            versions,
            helps: BTreeMap::new(),
        }
    }

    fn help(&mut self, version: usize, path: &[String]) -> &Help {
        let kwctl = &self.versions[version].1;
        self.helps
            .entry((version, path.to_vec()))
            .or_insert_with(|| {
                let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
                args.push("--help");
                Help::parse(&kwctl.output(&args).expect("kwctl --help"))
            })
    }

    /// What `kwctl ARGS` names that kwctl `version` does not have.
    fn missing(&mut self, version: usize, args: &[String]) -> Vec<String> {
        let mut path: Vec<String> = Vec::new();
        let mut missing = Vec::new();
        for arg in args {
            let help = self.help(version, &path);
            let command = format!("kwctl {}", path.join(" "));
            if arg.starts_with('-') {
                let flag = arg.split('=').next().unwrap_or(arg);
                if !help.flags.contains(flag) {
                    missing.push(format!("`{}` has no flag {flag}", command.trim_end()));
                }
            } else if !help.subcommands.is_empty() {
                if !help.subcommands.contains(arg) {
                    missing.push(format!("`{}` has no subcommand {arg}", command.trim_end()));
                    break;
                }
                path.push(arg.clone());
            }
        }
        missing
    }

    /// What `kwctl ARGS` names that a supported version lacks: on every version, or on some
    /// when `context` does not name the versions that have it.
    fn check(&mut self, args: &[String], context: &str) -> Vec<String> {
        let mut lacking: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for version in 0..self.versions.len() {
            for what in self.missing(version, args) {
                lacking
                    .entry(what)
                    .or_default()
                    .push(self.versions[version].0.clone());
            }
        }
        lacking
            .into_iter()
            .filter_map(|(what, lacking)| {
                let having: Vec<&str> = self
                    .versions
                    .iter()
                    .map(|(v, _)| v.as_str())
                    .filter(|v| !lacking.iter().any(|l| l == v))
                    .collect();
                let named = |v: &&str| context.contains(v.rsplit_once('.').map_or(*v, |(m, _)| m));
                match having.as_slice() {
                    [] => Some(format!("{what} (kwctl {})", lacking.join(", "))),
                    having if having.iter().all(named) => None,
                    having => Some(format!(
                        "{what} on kwctl {}: only {} has it, and the text does not say so",
                        lacking.join(", "),
                        having.join(", ")
                    )),
                }
            })
            .collect()
    }
}

/// The settings an example stands for (see the module doc), `None` for a Kubernetes object
/// that is not a policy.
fn settings_of(example: Value) -> Result<Option<Value>, String> {
    let entry = || json!({"image": "*", "pubKeys": [KEY1]});
    match example {
        Value::Array(entries) => Ok(Some(json!({"signatures": entries}))),
        Value::Object(object)
            if object.contains_key("apiVersion") && object.contains_key("kind") =>
        {
            match object["kind"].as_str() {
                Some("ClusterAdmissionPolicy" | "AdmissionPolicy") => object
                    .get("spec")
                    .and_then(|spec| spec.get("settings"))
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| "a policy without spec.settings".to_owned()),
                _ => Ok(None),
            }
        }
        Value::Object(object) if object.contains_key("image") => {
            Ok(Some(json!({"signatures": [object]})))
        }
        Value::Object(mut object) => {
            object
                .entry("signatures")
                .or_insert_with(|| json!([entry()]));
            Ok(Some(Value::Object(object)))
        }
        other => Err(format!("neither settings, entries nor an object: {other}")),
    }
}

/// The test key or certificate standing in for a placeholder.
fn stand_in(text: &str) -> Option<&'static str> {
    if let Some((_, key)) = NAMED_KEYS.iter().find(|(name, _)| *name == text) {
        return Some(key);
    }
    [("PUBLIC KEY", KEY1), ("CERTIFICATE", CERTIFICATE)]
        .into_iter()
        .find_map(|(kind, real)| {
            let rest = text
                .trim()
                .strip_prefix(&format!("-----BEGIN {kind}-----"))?;
            let body = rest
                .strip_suffix(&format!("-----END {kind}-----"))
                .unwrap_or(rest);
            PEM_BODIES.contains(&body.trim()).then_some(real)
        })
}

fn substitute(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Some(real) = stand_in(text) {
                *text = real.to_owned();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(substitute),
        Value::Object(fields) => fields.values_mut().for_each(substitute),
        _ => {}
    }
}

/// Why the YAML example is not valid settings, `None` when it is (or is no settings).
fn settings_problem(yaml: &str) -> Option<String> {
    let example: Value = match serde_yaml::from_str(yaml) {
        Ok(example) => example,
        Err(e) => return Some(format!("not YAML: {e}")),
    };
    let mut settings = match settings_of(example) {
        Ok(settings) => settings?,
        Err(e) => return Some(e),
    };
    substitute(&mut settings);
    let payload = serde_json::to_vec(&settings).expect("JSON");
    verify_image_signatures::policy::validate_settings(&payload)
        .err()
        .map(|e| format!("settings refused by validate_settings: {e}"))
}

/// How many commands and settings examples were checked, and what was wrong.
#[derive(Default)]
struct Report {
    make: usize,
    kwctl: usize,
    settings: usize,
    problems: Vec<String>,
}

fn check(
    document: &str,
    markdown: &str,
    makefile: &Makefile,
    kwctls: &mut Kwctls,
    report: &mut Report,
) {
    let lines: Vec<&str> = markdown.lines().collect();
    let contents = contents(markdown);
    for (first, last, command) in &contents.commands {
        let invocations = match invocations(command) {
            Ok(invocations) => invocations,
            Err(e) => {
                report
                    .problems
                    .push(format!("{document}:{first}: `{command}`: {e}"));
                continue;
            }
        };
        for invocation in invocations {
            let (program, args) = invocation.split_first().expect("a program");
            let problems = if program == "make" {
                report.make += 1;
                makefile.check(args)
            } else {
                report.kwctl += 1;
                let context = lines[first.saturating_sub(4)..(*last).min(lines.len())].join("\n");
                kwctls.check(args, &context)
            };
            report.problems.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{document}:{first}: `{}`: {p}", invocation.join(" "))),
            );
        }
    }
    for (line, yaml) in &contents.yaml {
        report.settings += 1;
        if let Some(problem) = settings_problem(yaml) {
            report
                .problems
                .push(format!("{document}:{line}: settings example: {problem}"));
        }
    }
}

#[test]
fn every_documented_command_and_settings_example_exists() {
    let makefile = Makefile::read();
    let mut kwctls = Kwctls::new();
    let mut report = Report::default();
    for document in DOCUMENTS {
        let markdown = std::fs::read_to_string(root().join(document)).expect("read the document");
        check(document, &markdown, &makefile, &mut kwctls, &mut report);
    }
    eprintln!(
        "checked {} make commands, {} kwctl commands and {} YAML examples in {}",
        report.make,
        report.kwctl,
        report.settings,
        DOCUMENTS.join(" and ")
    );
    assert!(
        report.make > 0 && report.kwctl > 0 && report.settings > 0,
        "nothing found to check"
    );
    assert!(
        report.problems.is_empty(),
        "{} problems:\n{}",
        report.problems.len(),
        report.problems.join("\n")
    );
}

/// The check fails on a target, a flag or a setting that does not exist, on a flag one
/// version lacks unless the text says which has it, and on an unknown placeholder.
#[test]
fn a_wrong_target_flag_or_setting_fails() {
    let markdown = r#"# Example

    make tset

```console
$ kwctl run --settings-pth settings.yml policy.wasm
$ kwctl scaffold manifests --type ClusterAdmissionPolicy x
```

Narrowing the grant: `kwctl run --allowed-host-capabilities oci/v2/verify -r r.json p.wasm`.

On kwctl 1.35 only: `kwctl run --allowed-host-capabilities oci/v2/verify -r r.json p.wasm`.

```yaml
- image: "*"
  pubkeys: [RELEASE_KEY]
```

```yaml
signatures:
  - image: "*"
    pubKeys: [DAVE]
```
"#;
    let mut report = Report::default();
    check(
        "EXAMPLE.md",
        markdown,
        &Makefile::read(),
        &mut Kwctls::new(),
        &mut report,
    );
    assert_eq!((report.make, report.kwctl, report.settings), (1, 4, 2));
    let expected = [
        "EXAMPLE.md:3: `make tset`: the Makefile has no target tset",
        "EXAMPLE.md:6: `kwctl run --settings-pth settings.yml policy.wasm`: `kwctl run` has no flag --settings-pth (kwctl 1.31.0, 1.35.0)",
        "EXAMPLE.md:7: `kwctl scaffold manifests --type ClusterAdmissionPolicy x`: `kwctl scaffold` has no subcommand manifests (kwctl 1.31.0, 1.35.0)",
        "EXAMPLE.md:10: `kwctl run --allowed-host-capabilities oci/v2/verify -r r.json p.wasm`: `kwctl run` has no flag --allowed-host-capabilities on kwctl 1.31.0: only 1.35.0 has it, and the text does not say so",
        "EXAMPLE.md:15: settings example: settings refused by validate_settings: signatures[0].pubkeys: unknown field `pubkeys`",
        "EXAMPLE.md:20: settings example: settings refused by validate_settings: signatures[0].pubKeys[0]: not a PEM public key",
    ];
    assert_eq!(
        report.problems.len(),
        expected.len(),
        "{:#?}",
        report.problems
    );
    for (problem, expected) in report.problems.iter().zip(expected) {
        assert!(
            problem.starts_with(expected),
            "{problem}\n  expected {expected}"
        );
    }
}
