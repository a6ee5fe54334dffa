//! The part of an OCI image index (or Docker manifest list) the policy reads: which
//! manifest serves which platform. A few fields of serde structs, rather than the full
//! `oci-spec` types, keep the module small.

use std::fmt;

use serde::Deserialize;

/// What `oci/v1/oci_manifest` answered about an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// An image index: one entry per platform manifest.
    Index(Vec<IndexEntry>),
    /// A single image manifest: there are no platform manifests to check.
    Image,
}

impl Manifest {
    /// Reads the host's answer: an index has `manifests`, an image manifest has not.
    pub fn from_json(json: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Wire {
            manifests: Option<Vec<IndexEntry>>,
        }
        let wire: Wire = serde_json::from_slice(json)?;
        Ok(wire.manifests.map_or(Manifest::Image, Manifest::Index))
    }
}

/// One manifest an index lists.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IndexEntry {
    pub digest: String,
    pub platform: Option<Platform>,
    pub annotations: Option<EntryAnnotations>,
}

/// The one annotation the policy reads; the others are skipped unread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct EntryAnnotations {
    /// BuildKit's `vnd.docker.reference.type`: `attestation-manifest` on the entries of
    /// its provenance and SBOM manifests.
    #[serde(rename = "vnd.docker.reference.type")]
    pub reference_type: Option<String>,
}

/// `os/architecture[/variant]`: the platform an index entry serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(variant) => write!(f, "/{variant}"),
            None => Ok(()),
        }
    }
}

const ATTESTATION: &str = "attestation-manifest";

impl IndexEntry {
    /// An attestation manifest, or an `unknown/unknown` entry: nothing a node runs.
    pub fn is_attestation(&self) -> bool {
        let annotated = self
            .annotations
            .as_ref()
            .and_then(|a| a.reference_type.as_deref())
            .is_some_and(|t| t == ATTESTATION);
        let unknown = self
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" && p.architecture == "unknown");
        annotated || unknown
    }

    /// The entry's name in messages: its platform, or its digest when it names none.
    pub fn label(&self) -> String {
        match &self.platform {
            Some(platform) => platform.to_string(),
            None => format!("{} (no platform)", self.digest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_indexes_and_image_manifests() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1","size":1,"platform":{"architecture":"arm","os":"linux","variant":"v7"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2","size":1,"platform":{"architecture":"unknown","os":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"sha256:1"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3","size":1,"annotations":{"vnd.docker.reference.type":"attestation-manifest"}},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:4","size":1},
            {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:5","size":1,"platform":{"architecture":"unknown","os":"linux"}}]}"#;
        let Manifest::Index(entries) = Manifest::from_json(index).unwrap() else {
            panic!("an index");
        };
        let labels: Vec<(String, bool)> = entries
            .iter()
            .map(|e| (e.label(), e.is_attestation()))
            .collect();
        assert_eq!(
            labels,
            [
                ("linux/arm/v7".to_owned(), false),
                ("unknown/unknown".to_owned(), true),
                ("sha256:3 (no platform)".to_owned(), true),
                ("sha256:4 (no platform)".to_owned(), false),
                ("linux/unknown".to_owned(), false),
            ]
        );
        let image = br#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:1","size":1},"layers":[]}"#;
        assert_eq!(Manifest::from_json(image).unwrap(), Manifest::Image);
        assert!(Manifest::from_json(br#"{"manifests":[{"size":1}]}"#).is_err());
    }
}
