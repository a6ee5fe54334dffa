//! One entry of `signatures` and its alternatives, from the wire format into a
//! [`Rule`] whose every part is checked.

use std::collections::BTreeMap;
use std::fmt;

use crate::image::ImagePattern;
use crate::verifier::Signer;

use super::error::SettingsError;
use super::on_failure::OnFailure;
use super::platforms::{self, PlatformSignatures};
use super::wire::WireRule;

/// One entry of `signatures`: every rule whose pattern matches an image must hold.
#[derive(Debug)]
pub struct Rule {
    /// Where the rule sits in the settings, e.g. `signatures[2]`.
    pub id: String,
    pub image: ImagePattern,
    /// Whether a failure rejects the request or only warns.
    pub on_failure: OnFailure,
    /// The rule holds when any of these holds; a plain entry has exactly one.
    pub alternatives: Vec<Requirement>,
    /// Whether signed platform manifests make up for an unsigned index.
    pub platform_signatures: Option<PlatformSignatures>,
}

/// A set of signers of one kind, of which `minimum_matches` must have signed.
#[derive(Debug)]
pub struct Requirement {
    /// e.g. `signatures[2]` or `signatures[2].anyOf[1]`.
    pub id: String,
    pub kind: Kind,
    pub signers: Vec<Signer>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub minimum_matches: usize,
}

/// What kind of signer an entry lists: one settings key each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PubKeys,
    Keyless,
    KeylessPrefix,
    GithubActions,
    Certificates,
}

impl Kind {
    /// Every kind, in the order messages list them.
    const ALL: [Kind; 5] = [
        Kind::PubKeys,
        Kind::Keyless,
        Kind::KeylessPrefix,
        Kind::GithubActions,
        Kind::Certificates,
    ];

    /// The key the settings list signers of this kind under.
    fn key(self) -> &'static str {
        match self {
            Kind::PubKeys => "pubKeys",
            Kind::Keyless => "keyless",
            Kind::KeylessPrefix => "keylessPrefix",
            Kind::GithubActions => "githubActions",
            Kind::Certificates => "certificates",
        }
    }

    /// What an entry may carry to name its signers: a kind, or `anyOf`.
    fn choices() -> String {
        let mut keys = Kind::ALL.map(Kind::key).to_vec();
        keys.push("anyOf");
        keys.join(", ")
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Requirement {
    /// The name of its `index`th signer in messages: never a whole PEM.
    pub fn signer_name(&self, index: usize) -> String {
        let kind = self.kind;
        match &self.signers[index] {
            Signer::Keyless { issuer, subject } => {
                format!("{kind}[{index}] ({subject} from {issuer})")
            }
            Signer::KeylessPrefix { issuer, url_prefix } => {
                format!("{kind}[{index}] ({url_prefix}* from {issuer})")
            }
            Signer::GithubActions { owner, repo } => match repo {
                Some(repo) => format!("{kind} ({owner}/{repo})"),
                None => format!("{kind} ({owner})"),
            },
            Signer::PubKey(_) | Signer::Certificate { .. } => format!("{kind}[{index}]"),
        }
    }
}

impl Rule {
    pub(super) fn from_wire(id: String, mut wire: WireRule) -> Result<Self, SettingsError> {
        let pattern = wire
            .image
            .take()
            .ok_or_else(|| SettingsError::at(&id, "image", "missing field `image`"))?;
        let image =
            ImagePattern::parse(&pattern).map_err(|e| SettingsError::at(&id, "image", e))?;
        let on_failure = wire.on_failure.take().unwrap_or_default();
        let platform_signatures = platforms::from_wire(&id, wire.platform_signatures.take())?;
        let alternatives = match wire.any_of.take() {
            None => vec![Requirement::from_wire(id.clone(), wire)?],
            Some(any_of) => {
                if wire.annotations.is_some()
                    || wire.minimum_matches.is_some()
                    || wire.kinds().next().is_some()
                {
                    return Err(SettingsError::new(
                        id,
                        "an entry with anyOf carries nothing but image, onFailure, platformSignatures and anyOf; \
                         put annotations, minimumMatches and signers in its alternatives",
                    ));
                }
                if any_of.is_empty() {
                    return Err(SettingsError::at(
                        &id,
                        "anyOf",
                        "must list at least one alternative",
                    ));
                }
                any_of
                    .into_iter()
                    .enumerate()
                    .map(|(index, alternative)| {
                        let alt_id = format!("{id}.anyOf[{index}]");
                        let misplaced = [
                            (
                                alternative.image.is_some(),
                                "image",
                                "the pattern belongs to the entry, not to an alternative",
                            ),
                            (
                                alternative.any_of.is_some(),
                                "anyOf",
                                "alternatives do not nest",
                            ),
                            (
                                alternative.on_failure.is_some(),
                                "onFailure",
                                "belongs to the entry, not to an alternative",
                            ),
                            (
                                alternative.platform_signatures.is_some(),
                                "platformSignatures",
                                "belongs to the entry, not to an alternative",
                            ),
                        ];
                        if let Some((_, field, reason)) =
                            misplaced.iter().find(|(present, ..)| *present)
                        {
                            return Err(SettingsError::at(&alt_id, field, reason));
                        }
                        Requirement::from_wire(alt_id, alternative)
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        Ok(Self {
            id,
            image,
            on_failure,
            alternatives,
            platform_signatures,
        })
    }
}

impl WireRule {
    /// The kinds of signers the entry lists.
    fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        Kind::ALL.into_iter().filter(|kind| match kind {
            Kind::PubKeys => self.pub_keys.is_some(),
            Kind::Keyless => self.keyless.is_some(),
            Kind::KeylessPrefix => self.keyless_prefix.is_some(),
            Kind::GithubActions => self.github_actions.is_some(),
            Kind::Certificates => self.certificates.is_some(),
        })
    }
}

impl Requirement {
    fn from_wire(id: String, mut wire: WireRule) -> Result<Self, SettingsError> {
        let kinds: Vec<Kind> = wire.kinds().collect();
        let kind = match kinds.as_slice() {
            [kind] => *kind,
            [] => {
                return Err(SettingsError::new(
                    id,
                    format!("names no signature kind; give one of {}", Kind::choices()),
                ))
            }
            several => {
                let names: Vec<String> = several.iter().map(Kind::to_string).collect();
                return Err(SettingsError::new(
                    id,
                    format!(
                        "carries {}; an entry has exactly one of {}",
                        names.join(" and "),
                        Kind::choices()
                    ),
                ));
            }
        };
        if kind != Kind::Certificates {
            for (present, field) in [
                (wire.certificate_chain.is_some(), "certificateChain"),
                (wire.require_rekor_bundle.is_some(), "requireRekorBundle"),
            ] {
                if present {
                    return Err(SettingsError::at(
                        &id,
                        field,
                        "only allowed with certificates",
                    ));
                }
            }
        }
        if let Some(annotations) = &wire.annotations {
            if annotations.keys().any(String::is_empty) {
                return Err(SettingsError::at(
                    &id,
                    "annotations",
                    "keys must not be empty",
                ));
            }
        }
        let signers = signers(&id, kind, &mut wire)?;
        let minimum_matches = match wire.minimum_matches {
            None => signers.len(),
            Some(_) if kind == Kind::GithubActions => {
                return Err(SettingsError::at(
                    &id,
                    "minimumMatches",
                    "githubActions names one identity; minimumMatches applies to lists",
                ))
            }
            Some(0) => {
                return Err(SettingsError::at(
                    &id,
                    "minimumMatches",
                    "must be at least 1",
                ))
            }
            Some(n) if n > signers.len() => {
                return Err(SettingsError::at(
                    &id,
                    "minimumMatches",
                    format!("{n} is more than the {} {kind} listed", signers.len()),
                ))
            }
            Some(n) => n,
        };
        Ok(Self {
            id,
            kind,
            signers,
            annotations: wire.annotations,
            minimum_matches,
        })
    }
}

/// Takes the signers of `kind` out of `wire`, checking each.
fn signers(id: &str, kind: Kind, wire: &mut WireRule) -> Result<Vec<Signer>, SettingsError> {
    let non_empty = |len: usize| {
        if len == 0 {
            Err(SettingsError::at(id, kind, "must list at least one entry"))
        } else {
            Ok(())
        }
    };
    let required = |value: &str, field: String| {
        if value.trim().is_empty() {
            Err(SettingsError::at(id, field, "must not be empty"))
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        Kind::PubKeys => {
            let keys = wire.pub_keys.take().unwrap_or_default();
            non_empty(keys.len())?;
            keys.into_iter().map(Signer::PubKey).collect()
        }
        Kind::Keyless => {
            let identities = wire.keyless.take().unwrap_or_default();
            non_empty(identities.len())?;
            identities
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    required(&k.issuer, format!("keyless[{i}].issuer"))?;
                    required(&k.subject, format!("keyless[{i}].subject"))?;
                    Ok(Signer::Keyless {
                        issuer: k.issuer,
                        subject: k.subject,
                    })
                })
                .collect::<Result<_, SettingsError>>()?
        }
        Kind::KeylessPrefix => {
            let prefixes = wire.keyless_prefix.take().unwrap_or_default();
            non_empty(prefixes.len())?;
            prefixes
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    required(&k.issuer, format!("keylessPrefix[{i}].issuer"))?;
                    check_url_prefix(&k.url_prefix).map_err(|e| {
                        SettingsError::at(id, format!("keylessPrefix[{i}].urlPrefix"), e)
                    })?;
                    Ok(Signer::KeylessPrefix {
                        issuer: k.issuer,
                        url_prefix: k.url_prefix,
                    })
                })
                .collect::<Result<_, SettingsError>>()?
        }
        Kind::GithubActions => {
            let github = wire
                .github_actions
                .take()
                .ok_or_else(|| SettingsError::at(id, "githubActions", "missing"))?;
            required(&github.owner, "githubActions.owner".into())?;
            if github.owner.contains('/') {
                return Err(SettingsError::at(
                    id,
                    "githubActions.owner",
                    "a user or organisation name, without '/'",
                ));
            }
            if let Some(repo) = &github.repo {
                required(repo, "githubActions.repo".into())?;
                if repo.contains('/') {
                    return Err(SettingsError::at(
                        id,
                        "githubActions.repo",
                        "a repository name, without the owner or '/'",
                    ));
                }
            }
            vec![Signer::GithubActions {
                owner: github.owner,
                repo: github.repo,
            }]
        }
        Kind::Certificates => {
            let certificates = wire.certificates.take().unwrap_or_default();
            let certificate_chain = wire.certificate_chain.take();
            non_empty(certificates.len())?;
            if certificate_chain.as_ref().is_some_and(Vec::is_empty) {
                return Err(SettingsError::at(
                    id,
                    "certificateChain",
                    "must list at least one certificate, or be left out",
                ));
            }
            let require_rekor_bundle = wire.require_rekor_bundle.unwrap_or(true);
            certificates
                .into_iter()
                .map(|certificate| Signer::Certificate {
                    certificate,
                    chain: certificate_chain.clone(),
                    require_rekor_bundle,
                })
                .collect()
        }
    })
}

/// The host parses the prefix as a URL and appends `/`; an unparsable prefix makes
/// the real host's handler panic, so it is refused here. Host names are read as ASCII
/// only (`idna_adapter` 1.0, which keeps Unicode tables out of the module): an
/// international domain name is refused with a pointer to its `xn--` form, which the
/// host reads the same.
fn check_url_prefix(prefix: &str) -> Result<(), String> {
    let url = url::Url::parse(prefix).map_err(|e| match e {
        url::ParseError::IdnaError if !prefix.is_ascii() => format!(
            "not a valid URL ({e}): write an international domain name in its ASCII (xn--) form"
        ),
        e => format!("not a valid URL ({e})"),
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    Ok(())
}
