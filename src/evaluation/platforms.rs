//! Multi-arch images signed per platform (`platformSignatures`, off by default).
//!
//! A multi-arch image is an image index over one manifest per platform, and some
//! publishers sign only those manifests, never the index. For an entry that opts in,
//! a rule that fails on the index only for lack of signatures is checked again on each
//! required platform manifest, by digest. Host and registry errors are never retried
//! this way. The image is still pinned to the index digest: the index fixes every
//! platform digest, so whatever a node pulls through it was verified.

use crate::image::ImageRef;
use crate::settings::{Platform, PlatformSignatures, Rule};
use crate::verifier::IndexEntry;

use super::rule::{self, Signature};
use super::session::Session;

/// Every required platform must satisfy the rule. On success the index digest is what
/// was verified, by every signer that signed a platform.
pub fn on_platforms<'p>(
    rule: &'p Rule,
    wanted: &PlatformSignatures,
    image: &ImageRef,
    session: &mut Session<'p>,
) -> Result<Vec<Signature>, String> {
    let index = session.index(image)?;
    let (entries, mut failures) = required(wanted, &index.entries);
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
        match rule::as_written(rule, &platform, session) {
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

/// The entries whose manifests must be signed, in index order, and the listed
/// platforms the index lacks.
fn required<'i>(
    wanted: &PlatformSignatures,
    entries: &'i [IndexEntry],
) -> (Vec<&'i IndexEntry>, Vec<String>) {
    let runnable: Vec<&IndexEntry> = entries.iter().filter(|e| !e.is_attestation()).collect();
    let PlatformSignatures::Listed(platforms) = wanted else {
        return (runnable, Vec::new());
    };
    let serves = |p: &Platform, e: &IndexEntry| e.platform.as_ref().is_some_and(|ep| p.matches(ep));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verifier;

    fn entry(digest: &str, platform: Option<(&str, &str, Option<&str>)>) -> IndexEntry {
        IndexEntry {
            digest: digest.into(),
            platform: platform.map(|(os, architecture, variant)| verifier::Platform {
                os: os.into(),
                architecture: architecture.into(),
                variant: variant.map(Into::into),
            }),
            annotations: None,
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
            digests(required(&PlatformSignatures::All, &entries)),
            ("sha256:1 sha256:2 sha256:4".to_owned(), vec![])
        );
        let listed = |names: &[&str]| {
            PlatformSignatures::Listed(names.iter().map(|n| Platform::parse(n).unwrap()).collect())
        };
        assert_eq!(
            digests(required(&listed(&["linux/arm64", "linux/s390x"]), &entries)),
            (
                "sha256:2".to_owned(),
                vec!["linux/s390x: not in the index".to_owned()]
            )
        );
        assert_eq!(
            digests(required(
                &listed(&["linux/arm64/v7", "linux/arm64/v8", "linux/amd64"]),
                &entries
            )),
            (
                "sha256:1 sha256:2".to_owned(),
                vec!["linux/arm64/v7: not in the index".to_owned()]
            )
        );
        assert_eq!(
            digests(required(&listed(&["unknown/unknown"]), &entries)),
            (
                String::new(),
                vec!["unknown/unknown: not in the index".to_owned()]
            )
        );
    }
}
