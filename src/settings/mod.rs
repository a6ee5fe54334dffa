//! Policy settings: parsed from the wire format into rules whose every part is already
//! checked, so the rest of the policy never meets a half-valid setting.

mod duplicates;
mod keys;
mod on_failure;
mod pem;
mod platforms;
mod wire;

pub use keys::accepted_keys;
pub use on_failure::OnFailure;
pub use platforms::{Platform, PlatformSignatures};

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use serde_json::value::RawValue;

use crate::image::ImagePattern;
use crate::verifier::Signer;
use wire::{WirePinning, WireRule, WireSettings};

#[derive(Debug)]
pub struct Settings {
    pub rules: Vec<Rule>,
    /// Images that are neither verified nor pinned.
    pub skip_images: Vec<ImagePattern>,
    /// What becomes of an image that no rule names; `None`: admitted unverified.
    pub reject_unmatched_images: Option<OnFailure>,
    /// What becomes of an image written without a digest; `None`: nothing.
    pub require_digest: Option<OnFailure>,
    /// On UPDATE, verify again the images the old object already carried (never pinned).
    pub reverify_unchanged_images: bool,
    pub pinning: Pinning,
}

/// Which workloads get their verified images pinned to the verified digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    All,
    /// Only Pods: controllers kept in Git stay as written, so GitOps tools see no drift.
    PodsOnly,
    None,
}

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

impl Pinning {
    /// Whether verified images of an object of `kind` are pinned.
    pub fn applies_to(self, kind: &str) -> bool {
        match self {
            Pinning::All => true,
            Pinning::PodsOnly => kind == "Pod",
            Pinning::None => false,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PubKeys,
    Keyless,
    KeylessPrefix,
    GithubActions,
    Certificates,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::PubKeys => "pubKeys",
            Kind::Keyless => "keyless",
            Kind::KeylessPrefix => "keylessPrefix",
            Kind::GithubActions => "githubActions",
            Kind::Certificates => "certificates",
        })
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

impl Settings {
    /// [`Settings::from_json`], remembering the last settings parsed on this thread.
    ///
    /// A policy-server instance evaluates every request of a policy with the same
    /// settings; parsing them again each time would be a fixed cost on every request.
    pub fn from_json_cached(settings: &RawValue) -> Result<Rc<Self>, String> {
        thread_local! {
            static LAST: RefCell<Option<(Box<str>, Rc<Settings>)>> = const { RefCell::new(None) };
        }
        LAST.with_borrow_mut(|last| match last {
            Some((raw, parsed)) if **raw == *settings.get() => Ok(parsed.clone()),
            _ => {
                let parsed = Rc::new(Self::from_json(settings)?);
                *last = Some((settings.get().into(), parsed.clone()));
                Ok(parsed)
            }
        })
    }

    /// Parses settings and checks everything but the PEM blocks, which
    /// [`Settings::validate`] checks once, when the host validates the settings.
    pub fn from_json(settings: &RawValue) -> Result<Self, String> {
        let mut deserializer = serde_json::Deserializer::from_str(settings.get());
        let wire: WireSettings =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                // Positions in the host's compact JSON mean nothing to the user; the path does.
                let inner = e.inner().to_string();
                let message = inner.split(" at line ").next().unwrap_or_default();
                match e.path().to_string().as_str() {
                    "." => message.to_owned(),
                    path => format!("{path}: {message}"),
                }
            })?;
        Self::from_wire(wire)
    }

    /// Full validation, as `validate_settings` runs it: structure and PEM contents.
    pub fn validate(settings: &RawValue) -> Result<Self, String> {
        let parsed = Self::from_json(settings)?;
        for rule in &parsed.rules {
            for requirement in &rule.alternatives {
                pem::check_requirement(requirement)?;
                duplicates::check_requirement(requirement)?;
            }
        }
        Ok(parsed)
    }

    fn from_wire(wire: WireSettings) -> Result<Self, String> {
        if wire.signatures.is_empty() {
            return Err("signatures: must list at least one entry".into());
        }
        let rules = wire
            .signatures
            .into_iter()
            .enumerate()
            .map(|(index, rule)| Rule::from_wire(format!("signatures[{index}]"), rule))
            .collect::<Result<Vec<_>, _>>()?;
        let skip_images = wire
            .skip_images
            .iter()
            .enumerate()
            .map(|(index, p)| {
                ImagePattern::parse(p).map_err(|e| format!("skipImages[{index}]: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pinning = match (wire.modify_images_with_digest, wire.digest_pinning) {
            (Some(false), Some(scope)) if scope != WirePinning::None => {
                return Err("digestPinning: contradicts modifyImagesWithDigest: false".into())
            }
            (_, Some(WirePinning::All)) | (None | Some(true), None) => Pinning::All,
            (_, Some(WirePinning::Pods)) => Pinning::PodsOnly,
            (_, Some(WirePinning::None)) | (Some(false), None) => Pinning::None,
        };
        Ok(Self {
            rules,
            skip_images,
            reject_unmatched_images: wire.reject_unmatched_images.0,
            require_digest: wire.require_digest.0,
            reverify_unchanged_images: wire.reverify_unchanged_images,
            pinning,
        })
    }
}

impl Rule {
    fn from_wire(id: String, mut wire: WireRule) -> Result<Self, String> {
        let pattern = wire
            .image
            .take()
            .ok_or_else(|| format!("{id}.image: missing field `image`"))?;
        let image = ImagePattern::parse(&pattern).map_err(|e| format!("{id}.image: {e}"))?;
        let on_failure = wire.on_failure.take().unwrap_or_default();
        let platform_signatures = platforms::from_wire(&id, wire.platform_signatures.take())?;
        let alternatives = match wire.any_of.take() {
            None => vec![Requirement::from_wire(id.clone(), wire)?],
            Some(any_of) => {
                if wire.annotations.is_some()
                    || wire.minimum_matches.is_some()
                    || wire.kinds().next().is_some()
                {
                    return Err(format!(
                        "{id}: an entry with anyOf carries nothing but image, onFailure, platformSignatures and anyOf; \
                         put annotations, minimumMatches and signers in its alternatives"
                    ));
                }
                if any_of.is_empty() {
                    return Err(format!("{id}.anyOf: must list at least one alternative"));
                }
                any_of
                    .into_iter()
                    .enumerate()
                    .map(|(index, alternative)| {
                        let alt_id = format!("{id}.anyOf[{index}]");
                        if alternative.image.is_some() {
                            return Err(format!("{alt_id}.image: the pattern belongs to the entry, not to an alternative"));
                        }
                        if alternative.any_of.is_some() {
                            return Err(format!("{alt_id}.anyOf: alternatives do not nest"));
                        }
                        if alternative.on_failure.is_some() {
                            return Err(format!("{alt_id}.onFailure: belongs to the entry, not to an alternative"));
                        }
                        if alternative.platform_signatures.is_some() {
                            return Err(format!("{alt_id}.platformSignatures: belongs to the entry, not to an alternative"));
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

const KINDS: &str = "pubKeys, keyless, keylessPrefix, githubActions, certificates, anyOf";

impl WireRule {
    fn kinds(&self) -> impl Iterator<Item = Kind> {
        [
            (self.pub_keys.is_some(), Kind::PubKeys),
            (self.keyless.is_some(), Kind::Keyless),
            (self.keyless_prefix.is_some(), Kind::KeylessPrefix),
            (self.github_actions.is_some(), Kind::GithubActions),
            (self.certificates.is_some(), Kind::Certificates),
        ]
        .into_iter()
        .filter_map(|(present, kind)| present.then_some(kind))
    }
}

impl Requirement {
    fn from_wire(id: String, mut wire: WireRule) -> Result<Self, String> {
        let kinds: Vec<Kind> = wire.kinds().collect();
        let kind = match kinds.as_slice() {
            [kind] => *kind,
            [] => {
                return Err(format!(
                    "{id}: names no signature kind; give one of {KINDS}"
                ))
            }
            several => {
                let names: Vec<String> = several.iter().map(Kind::to_string).collect();
                return Err(format!(
                    "{id}: carries {}; an entry has exactly one of {KINDS}",
                    names.join(" and ")
                ));
            }
        };
        if kind != Kind::Certificates {
            for (present, field) in [
                (wire.certificate_chain.is_some(), "certificateChain"),
                (wire.require_rekor_bundle.is_some(), "requireRekorBundle"),
            ] {
                if present {
                    return Err(format!("{id}.{field}: only allowed with certificates"));
                }
            }
        }
        if let Some(annotations) = &wire.annotations {
            if annotations.keys().any(String::is_empty) {
                return Err(format!("{id}.annotations: keys must not be empty"));
            }
        }
        let signers = signers(&id, kind, &mut wire)?;
        let minimum_matches = match wire.minimum_matches {
            None => signers.len(),
            Some(_) if kind == Kind::GithubActions => {
                return Err(format!("{id}.minimumMatches: githubActions names one identity; minimumMatches applies to lists"))
            }
            Some(0) => return Err(format!("{id}.minimumMatches: must be at least 1")),
            Some(n) if n > signers.len() => {
                return Err(format!(
                    "{id}.minimumMatches: {n} is more than the {} {kind} listed",
                    signers.len()
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
fn signers(id: &str, kind: Kind, wire: &mut WireRule) -> Result<Vec<Signer>, String> {
    let non_empty = |len: usize| {
        if len == 0 {
            Err(format!("{id}.{kind}: must list at least one entry"))
        } else {
            Ok(())
        }
    };
    let required = |value: &str, field: String| {
        if value.trim().is_empty() {
            Err(format!("{id}.{field}: must not be empty"))
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
                .collect::<Result<_, String>>()?
        }
        Kind::KeylessPrefix => {
            let prefixes = wire.keyless_prefix.take().unwrap_or_default();
            non_empty(prefixes.len())?;
            prefixes
                .into_iter()
                .enumerate()
                .map(|(i, k)| {
                    required(&k.issuer, format!("keylessPrefix[{i}].issuer"))?;
                    check_url_prefix(&k.url_prefix)
                        .map_err(|e| format!("{id}.keylessPrefix[{i}].urlPrefix: {e}"))?;
                    Ok(Signer::KeylessPrefix {
                        issuer: k.issuer,
                        url_prefix: k.url_prefix,
                    })
                })
                .collect::<Result<_, String>>()?
        }
        Kind::GithubActions => {
            let github = wire
                .github_actions
                .take()
                .ok_or_else(|| format!("{id}.githubActions: missing"))?;
            required(&github.owner, "githubActions.owner".into())?;
            if github.owner.contains('/') {
                return Err(format!(
                    "{id}.githubActions.owner: a user or organisation name, without '/'"
                ));
            }
            if let Some(repo) = &github.repo {
                required(repo, "githubActions.repo".into())?;
                if repo.contains('/') {
                    return Err(format!(
                        "{id}.githubActions.repo: a repository name, without the owner or '/'"
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
                return Err(format!(
                    "{id}.certificateChain: must list at least one certificate, or be left out"
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
/// the real host's handler panic, so it is refused here.
fn check_url_prefix(prefix: &str) -> Result<(), String> {
    let url = url::Url::parse(prefix).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
