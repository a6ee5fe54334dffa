//! Multi-arch images signed per platform (`platformSignatures`, off by default).
//!
//! A multi-arch image is an image index over one manifest per platform, and some
//! publishers sign only those manifests, never the index. For an entry that opts in,
//! a rule that fails on the index only for lack of signatures is checked again on each
//! required platform manifest, by digest. Host and registry errors are never retried
//! this way. The image is still pinned to the index digest: the index fixes every
//! platform digest, so whatever a node pulls through it was verified.

mod index;

use std::rc::Rc;

pub use index::{EntryAnnotations, IndexEntry, Manifest, Platform};

use crate::image::ImageRef;
use crate::settings::Rule;
use crate::verdict::{self, EntryFailure, Session, Signature};
use crate::verifier::Verifier;

/// Which platform manifests must be signed when the index is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformSignatures {
    /// Every platform the index lists, but attestation manifests and `unknown/unknown`.
    All,
    /// These platforms, each of which must be in the index.
    Listed(Vec<Platform>),
}

impl Platform {
    pub fn parse(text: &str) -> Result<Self, String> {
        let word = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        };
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [os, architecture, variant @ ..] if variant.len() <= 1 && parts.iter().all(|p| word(p)) => {
                Ok(Self {
                    os: (*os).to_owned(),
                    architecture: (*architecture).to_owned(),
                    variant: variant.first().map(|v| (*v).to_owned()),
                })
            }
            _ => Err(format!(
                "{text:?} is not a platform: write os/architecture[/variant] in lower case, e.g. linux/amd64"
            )),
        }
    }

    /// As written in the settings: `linux/arm64` stands for every variant of it;
    /// `linux/arm/v7` for that variant.
    fn matches(&self, platform: &Platform) -> bool {
        self.os == platform.os
            && self.architecture == platform.architecture
            && (self.variant.is_none() || self.variant == platform.variant)
    }
}

impl PlatformSignatures {
    /// The entries whose manifests must be signed, in index order, and the listed
    /// platforms the index lacks.
    fn required<'i>(&self, entries: &'i [IndexEntry]) -> (Vec<&'i IndexEntry>, Vec<String>) {
        let runnable: Vec<&IndexEntry> = entries.iter().filter(|e| !e.is_attestation()).collect();
        let PlatformSignatures::Listed(platforms) = self else {
            return (runnable, Vec::new());
        };
        let serves =
            |p: &Platform, e: &IndexEntry| e.platform.as_ref().is_some_and(|ep| p.matches(ep));
        let chosen = runnable
            .iter()
            .copied()
            .filter(|e| platforms.iter().any(|p| serves(p, e)))
            .collect();
        let missing = platforms
            .iter()
            .filter(|p| !runnable.iter().any(|e| serves(p, e)))
            .map(|p| format!("{p}: not in the index"))
            .collect();
        (chosen, missing)
    }
}

/// An image index as read for one image: its digest and its entries.
#[derive(Debug)]
pub struct Index {
    pub digest: String,
    pub entries: Vec<IndexEntry>,
}

/// Reads the index `image` names: by the digest written in the spec, or else by the
/// digest its tag resolves to now (`oci/v1/manifest_digest`), so that the entries read
/// and the digest pinned are one and the same index.
pub fn read_index(verifier: &dyn Verifier, image: &ImageRef) -> Result<Rc<Index>, String> {
    let digest = match image.digest() {
        Some(digest) => digest.to_owned(),
        None => verifier
            .manifest_digest(image)
            .map_err(|e| format!("cannot resolve the image index: {e}"))?,
    };
    let by_digest = ImageRef::parse(&format!("{}@{digest}", image.name()))
        .map_err(|e| format!("the registry answered an unusable digest {digest:?}: {e}"))?;
    match verifier
        .oci_manifest(&by_digest)
        .map_err(|e| format!("cannot read the image index: {e}"))?
    {
        Manifest::Index(entries) => Ok(Rc::new(Index { digest, entries })),
        Manifest::Image => Err("not a multi-arch image: no platform manifests to check".into()),
    }
}

/// A rule on an image: on the image as written, then, if it opts in and the image
/// is merely unsigned, on the platform manifests its index requires.
pub fn evaluate_rule<'p>(
    rule: &'p Rule,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<Signature>, EntryFailure> {
    let unmet = match verdict::evaluate_rule(rule, image, session) {
        Ok(signatures) => return Ok(signatures),
        Err(unmet) => unmet,
    };
    match &rule.platform_signatures {
        Some(wanted) if unmet.unsigned => {
            on_platforms(rule, wanted, image, session).map_err(|why| EntryFailure {
                reason: format!("{}; platformSignatures: {why}", unmet.reason),
                ..unmet
            })
        }
        _ => Err(unmet),
    }
}

/// Every required platform must satisfy the rule. On success the index digest is what
/// was verified, by every signer that signed a platform.
fn on_platforms<'p>(
    rule: &'p Rule,
    wanted: &PlatformSignatures,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<Signature>, String> {
    let index = session.index(image)?;
    let (entries, mut failures) = wanted.required(&index.entries);
    let mut signers: Vec<String> = Vec::new();
    if entries.is_empty() && failures.is_empty() {
        return Err(format!("the index {} lists no platform", index.digest));
    }
    for entry in entries {
        let label = entry.label();
        let platform = match ImageRef::parse(&format!("{}@{}", image.name(), entry.digest)) {
            Ok(platform) => platform,
            Err(e) => {
                failures.push(format!("{label}: unusable digest {:?}: {e}", entry.digest));
                continue;
            }
        };
        match verdict::evaluate_rule(rule, &platform, session) {
            Ok(verified) => {
                if let Some(other) = verified.iter().find(|s| s.digest != entry.digest) {
                    failures.push(format!("{label}: the host verified {}", other.digest));
                }
                for signature in verified {
                    if !signers.contains(&signature.signer) {
                        signers.push(signature.signer);
                    }
                }
            }
            Err(unmet) => failures.push(format!("{label}: {}", unmet.reason)),
        }
    }
    if failures.is_empty() {
        Ok(signers
            .into_iter()
            .map(|signer| Signature {
                signer,
                digest: index.digest.clone(),
            })
            .collect())
    } else {
        Err(format!(
            "the index {} has unsigned platforms: {}",
            index.digest,
            failures.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(digest: &str, platform: Option<(&str, &str, Option<&str>)>) -> IndexEntry {
        IndexEntry {
            digest: digest.into(),
            platform: platform.map(|(os, architecture, variant)| Platform {
                os: os.into(),
                architecture: architecture.into(),
                variant: variant.map(Into::into),
            }),
            annotations: None,
        }
    }

    #[test]
    fn platforms_parse() {
        assert_eq!(
            Platform::parse("linux/arm/v7").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        for bad in [
            "linux",
            "linux/",
            "/amd64",
            "linux/arm/v7/x",
            "Linux/amd64",
            "linux/amd 64",
            "",
        ] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn required_entries() {
        let entries = [
            entry("sha256:1", Some(("linux", "amd64", None))),
            entry("sha256:2", Some(("linux", "arm64", Some("v8")))),
            entry("sha256:3", Some(("unknown", "unknown", None))),
            entry("sha256:4", None),
        ];
        let digests = |(chosen, missing): (Vec<&IndexEntry>, Vec<String>)| {
            (
                chosen
                    .iter()
                    .map(|e| e.digest.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                missing,
            )
        };
        assert_eq!(
            digests(PlatformSignatures::All.required(&entries)),
            ("sha256:1 sha256:2 sha256:4".to_owned(), vec![])
        );
        let listed = |names: &[&str]| {
            PlatformSignatures::Listed(names.iter().map(|n| Platform::parse(n).unwrap()).collect())
        };
        assert_eq!(
            digests(listed(&["linux/arm64", "linux/s390x"]).required(&entries)),
            (
                "sha256:2".to_owned(),
                vec!["linux/s390x: not in the index".to_owned()]
            )
        );
        assert_eq!(
            digests(
                listed(&["linux/arm64/v7", "linux/arm64/v8", "linux/amd64"]).required(&entries)
            ),
            (
                "sha256:1 sha256:2".to_owned(),
                vec!["linux/arm64/v7: not in the index".to_owned()]
            )
        );
        assert_eq!(
            digests(listed(&["unknown/unknown"]).required(&entries)),
            (
                String::new(),
                vec!["unknown/unknown: not in the index".to_owned()]
            )
        );
    }
}
