//! One signer listed twice would count twice towards `minimumMatches`: `pubKeys: [A, A, B]`
//! with `minimumMatches: 2` would hold with key A alone. So a list naming the same signer
//! twice, however it is written, is refused, and the message names both places.

use std::collections::HashMap;

use super::error::SettingsError;
use super::pem;
use super::rule::{Kind, Requirement};
use crate::verifier::Signer;

/// What makes two entries of a list the same signer.
#[derive(PartialEq, Eq, Hash)]
enum Identity<'a> {
    /// A key or certificate: its decoded bytes, whatever the PEM line wrapping.
    Der(Vec<u8>),
    Keyless {
        issuer: &'a str,
        subject: &'a str,
    },
    /// The prefix as the host compares it: parsed as a URL, ending in `/`.
    KeylessPrefix {
        issuer: &'a str,
        url_prefix: String,
    },
    GithubActions {
        owner: &'a str,
        repo: Option<&'a str>,
    },
}

pub(super) fn check_requirement(requirement: &Requirement) -> Result<(), SettingsError> {
    let kind = requirement.kind;
    let mut first_seen: HashMap<Identity, usize> = HashMap::new();
    for (index, signer) in requirement.signers.iter().enumerate() {
        if let Some(first) = first_seen.insert(identity(signer), index) {
            let same = match kind {
                Kind::PubKeys => "the same key",
                Kind::Certificates => "the same certificate",
                Kind::KeylessPrefix => "the same issuer and URL prefix",
                Kind::Keyless | Kind::GithubActions => "the same issuer and subject",
            };
            return Err(SettingsError::at(
                &requirement.id,
                format!("{kind}[{index}]"),
                format!("{same} as {kind}[{first}]; list each signer once"),
            ));
        }
    }
    Ok(())
}

fn identity(signer: &Signer) -> Identity<'_> {
    match signer {
        Signer::PubKey(pem)
        | Signer::Certificate {
            certificate: pem, ..
        } => Identity::Der(pem::der(pem)),
        Signer::Keyless { issuer, subject } => Identity::Keyless { issuer, subject },
        Signer::KeylessPrefix { issuer, url_prefix } => Identity::KeylessPrefix {
            issuer,
            url_prefix: normalised_prefix(url_prefix),
        },
        Signer::GithubActions { owner, repo } => Identity::GithubActions {
            owner,
            repo: repo.as_deref(),
        },
    }
}

/// The host parses the prefix as a URL and appends `/` unless it ends with one.
fn normalised_prefix(prefix: &str) -> String {
    let mut normal = url::Url::parse(prefix).map_or_else(|_| prefix.to_owned(), String::from);
    if !normal.ends_with('/') {
        normal.push('/');
    }
    normal
}
