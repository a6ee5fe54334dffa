//! check-manifests: what `helm template`, `kustomize build` or a GitOps repository holds,
//! checked with verify-image-signatures as the cluster would check it, before it gets
//! there: the same settings, the same policy, the real Kubewarden host.
//!
//! [`check`] runs the whole pipeline, one module a step:
//!
//! - [`options`]: what a run is told ([`cli`] reads it from the command line);
//! - [`input`]: the files and directories named, read as text; their documents;
//! - [`manifest`]: each document parsed into objects (lists opened), or why it cannot be;
//! - [`resources`] and [`rules`]: which resource each object is created as, and whether the
//!   policy's rules have the API server send it to the policy;
//! - [`request`]: the CREATE AdmissionRequest of each object sent;
//! - [`host`]: the real host (policy-server once, or `kwctl run` per object), through
//!   `host-driver`, the only code that starts it;
//! - [`answer`]: what the policy answered about each object: images, digests, reasons;
//! - [`report`]: the rows, the exit code, and the table, JSON and JUnit renderings;
//! - [`pin`] with [`scalars`]: the manifests written back with the admitted images pinned.

pub mod answer;
pub mod cli;
pub mod host;
pub mod input;
pub mod manifest;
pub mod options;
pub mod pin;
pub mod report;
pub mod request;
pub mod resources;
pub mod rules;
pub mod scalars;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use host_driver::{declared_capabilities, policy_argument, Kwctl};
use serde_json::Value;

use crate::answer::{interpret, Answer};
use crate::host::{Host, HostConfig, HostError};
use crate::input::{Found, Source};
use crate::manifest::{Manifest, Origin, ParsedDocument};
use crate::report::{exit, ObjectId, Report, Row, Verdict};
use crate::resources::{Known, Resources};
use crate::rules::Rules;

pub use crate::options::{Options, OutputFormat};

/// Runs the check and writes the report to `stdout` (diagnostics to `stderr`); the exit
/// code ([`report::exit`]).
pub fn check(
    options: &Options,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let report = match run(options, stdin, stderr) {
        Ok(report) => report,
        Err(e) => {
            let _ = writeln!(stderr, "check-manifests: {e:#}");
            return exit::INCOMPLETE;
        }
    };
    let rendered = match options.output {
        OutputFormat::Table => report::table::render(&report),
        OutputFormat::Json => report::json::render(&report),
    };
    let mut code = report.exit_code();
    if let Err(e) = stdout
        .write_all(rendered.as_bytes())
        .and_then(|()| stdout.flush())
    {
        let _ = writeln!(stderr, "check-manifests: cannot write the report: {e}");
        code = exit::INCOMPLETE;
    }
    if let Some(path) = &options.junit {
        let written = report::junit::render(&report).and_then(|xml| std::fs::write(path, xml));
        if let Err(e) = written {
            let _ = writeln!(
                stderr,
                "check-manifests: cannot write {}: {e}",
                path.display()
            );
            code = exit::INCOMPLETE;
        }
    }
    code
}

/// A file read, with its documents parsed.
struct File {
    source: Source,
    documents: Vec<ParsedDocument>,
}

/// An object on its way to a row: where it comes from, and its request's index when the
/// policy is sent it.
struct Pending {
    file: usize,
    document: usize,
    manifest: Manifest,
    namespace: Option<String>,
    request: Option<usize>,
    /// Why it is not sent.
    not_sent: Option<String>,
}

enum Entry {
    Row(Row),
    Object(Pending),
}

fn run(options: &Options, stdin: &mut dyn Read, stderr: &mut dyn Write) -> anyhow::Result<Report> {
    let settings = read_settings(&options.settings)?;
    let (files, mut entries) = read_inputs(options, stdin);

    let (kubewarden, note) = host::locate(options.kubewarden_version.as_deref(), options.host)?;
    let kwctl = Kwctl::new(&kubewarden)?;
    let policy = policy_uri(&options.policy)?;
    let sources_path = absolute(options.sources_path.as_deref())?;
    let rules = policy_rules(options, &kwctl, &policy, sources_path.as_deref())?;
    let requests = route(&mut entries, &rules, &options.namespace);

    if let Some(note) = &note {
        let _ = writeln!(stderr, "check-manifests: {note}");
    }
    let config = HostConfig {
        policy: policy.clone(),
        settings,
        capabilities: declared_capabilities(&options.metadata)?,
        sources_path,
        trust_config: absolute(options.trust_config.as_deref())?,
        policy_timeout: options.policy_timeout,
        clients: options.clients,
    };
    let host = Host::start(&kubewarden, kwctl, note, config).map_err(|e| match e {
        HostError::SettingsRefused(message) => anyhow::anyhow!(
            "the policy refused the settings in {}: {message}",
            options.settings.display()
        ),
        HostError::Other(e) => e,
    })?;
    let answers: Vec<Result<Answer, String>> = host
        .evaluate(&requests)
        .into_iter()
        .map(|answer| answer.map(|response| interpret(&response)))
        .collect();

    let mut report = Report {
        host: host.info().clone(),
        policy,
        routed: rules.describe(),
        rows: Vec::new(),
        pinned: Vec::new(),
    };
    let mut patches: Vec<Vec<pin::Patch>> = files.iter().map(|_| Vec::new()).collect();
    for entry in &entries {
        let pending = match entry {
            Entry::Row(row) => {
                report.rows.push(row.clone());
                continue;
            }
            Entry::Object(pending) => pending,
        };
        let answer = pending.request.map(|i| &answers[i]);
        let row = object_row(pending, answer);
        let admitted = answer.and_then(|a| a.as_ref().ok()).filter(|a| a.allowed);
        if let Some(operations) = admitted.and_then(|a| a.patch.as_ref()) {
            patches[pending.file].push(pin::Patch {
                document: pending.document,
                item: pending.manifest.origin.item,
                name: row
                    .object
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                operations,
            });
        }
        report.rows.push(row);
    }
    if let Some(target) = &options.pin {
        let mut taken = Vec::new();
        for (file, patches) in files.iter().zip(&patches) {
            let pinned = pin::pin(&file.source, &file.documents, patches, target, &mut taken);
            report.pinned.extend(pinned);
        }
    }
    Ok(report)
}

/// The rules the cluster routes by: those of `--rules`, or those embedded in the policy.
fn policy_rules(
    options: &Options,
    kwctl: &Kwctl,
    policy: &str,
    sources: Option<&Path>,
) -> anyhow::Result<Rules> {
    let (rules, from) = match &options.rules {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(anyhow::Error::from)
                .and_then(|text| Rules::from_yaml(&text)),
            path.display().to_string(),
        ),
        None => (
            kwctl
                .inspect(policy.strip_prefix("file://").unwrap_or(policy), sources)
                .and_then(|metadata| Rules::from_yaml(&metadata)),
            policy.to_owned(),
        ),
    };
    rules.with_context(|| format!("cannot read the rules of {from}"))
}

/// The AdmissionRequest of each object the rules send to the policy, its index noted in
/// the object, and why each other object is not sent.
fn route(entries: &mut [Entry], rules: &Rules, namespace: &str) -> Vec<Value> {
    let resources = Resources::new(entries.iter().filter_map(|e| match e {
        Entry::Object(pending) => Some(&pending.manifest),
        Entry::Row(_) => None,
    }));
    let mut requests = Vec::new();
    for entry in entries {
        let Entry::Object(pending) = entry else {
            continue;
        };
        let manifest = &pending.manifest;
        let resource = resources.resource(&manifest.api_version, &manifest.kind);
        if resource.namespaced {
            let own = manifest.namespace.as_deref();
            pending.namespace = Some(own.unwrap_or(namespace).to_owned());
        }
        if rules.route_create(&resource) {
            let uid = format!("check-manifests-{}", requests.len());
            requests.push(request::admission_request(
                &uid, manifest, &resource, namespace,
            ));
            pending.request = Some(requests.len() - 1);
        } else {
            let group = if resource.group.is_empty() {
                "core"
            } else {
                &resource.group
            };
            let guessed = match resource.known {
                Known::Guessed => " (resource name guessed from the kind)",
                Known::BuiltIn | Known::Defined => "",
            };
            pending.not_sent = Some(format!(
                "the policy's rules do not send it: CREATE of {group}/{}/{}{guessed}",
                resource.version, resource.resource
            ));
        }
    }
    requests
}

/// The settings file, YAML or JSON; an empty one is no settings (`{}`).
fn read_settings(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the settings {}", path.display()))?;
    let value = manifest::value(input::Format::Yaml, &text, 1)
        .with_context(|| format!("cannot read the settings {}", path.display()))?;
    Ok(value.unwrap_or_else(|| Value::Object(Default::default())))
}

/// Every input read and parsed, and the rows and objects in input order.
fn read_inputs(options: &Options, stdin: &mut dyn Read) -> (Vec<File>, Vec<Entry>) {
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for found in input::find(&options.manifests, options.max_file_size, stdin) {
        let source = match found {
            Found::Text(source) => source,
            Found::Unreadable { name, reason } => {
                entries.push(Entry::Row(problem_row(Origin::file(&name), reason)));
                continue;
            }
        };
        let documents = manifest::parse(&source);
        for (index, document) in documents.iter().enumerate() {
            for object in &document.objects {
                entries.push(match object {
                    Ok(manifest) => Entry::Object(Pending {
                        file: files.len(),
                        document: index,
                        manifest: manifest.clone(),
                        namespace: None,
                        request: None,
                        not_sent: None,
                    }),
                    Err(problem) => Entry::Row(problem_row(
                        problem.origin.clone(),
                        problem.error.to_string(),
                    )),
                });
            }
        }
        files.push(File { source, documents });
    }
    (files, entries)
}

fn problem_row(origin: Origin, reason: String) -> Row {
    Row {
        origin,
        object: None,
        verdict: Verdict::Unreadable,
        message: Some(reason),
        images: Vec::new(),
        warnings: Vec::new(),
    }
}

/// The row of an object: not sent, or what the host answered.
fn object_row(pending: &Pending, answer: Option<&Result<Answer, String>>) -> Row {
    let manifest = &pending.manifest;
    let mut row = Row {
        origin: manifest.origin.clone(),
        object: Some(ObjectId {
            api_version: manifest.api_version.clone(),
            kind: manifest.kind.clone(),
            namespace: pending.namespace.clone(),
            name: manifest.name.clone(),
        }),
        verdict: Verdict::NotChecked,
        message: pending.not_sent.clone(),
        images: Vec::new(),
        warnings: Vec::new(),
    };
    match answer {
        None => {}
        Some(Err(error)) => {
            row.verdict = Verdict::Error;
            row.message = Some(format!("the host did not evaluate it: {error}"));
        }
        Some(Ok(answer)) => {
            row.verdict = if answer.allowed {
                Verdict::Admitted
            } else {
                Verdict::Rejected
            };
            row.message.clone_from(&answer.message);
            row.images.clone_from(&answer.images);
            row.warnings.clone_from(&answer.warnings);
        }
    }
    row
}

/// `policy` as policy-server loads it: `file://` and an absolute path for a file.
fn policy_uri(policy: &str) -> anyhow::Result<String> {
    match policy.strip_prefix("file://") {
        None if policy.contains("://") => Ok(policy.to_owned()),
        path => Ok(format!(
            "file://{}",
            policy_argument(path.unwrap_or(policy))?
        )),
    }
}

/// `path` made absolute: policy-server runs in a directory of its own.
fn absolute(path: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    path.map(|p| std::path::absolute(p).with_context(|| format!("{}", p.display())))
        .transpose()
}
