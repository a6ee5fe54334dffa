//! Policy settings: parsed from the wire format into rules whose every part is already
//! checked, so the rest of the policy never meets a half-valid setting.

mod duplicates;
mod error;
mod keys;
mod locations;
mod on_failure;
mod pem;
mod platforms;
mod rule;
mod wire;

pub use keys::accepted_keys;

pub(crate) use error::SettingsError;
pub(crate) use on_failure::OnFailure;
pub(crate) use platforms::{Platform, PlatformSignatures};
pub(crate) use rule::{Requirement, Rule};

use serde_json::value::RawValue;

use crate::image::ImagePattern;
use crate::workload::KindPaths;
use wire::{WirePinning, WireSettings};

#[derive(Debug)]
pub(crate) struct Settings {
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
    /// `imageLocations`: where the images of other kinds lie.
    pub image_locations: Vec<KindPaths>,
}

/// Which workloads get their verified images pinned to the verified digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pinning {
    All,
    /// Only Pods: controllers kept in Git stay as written, so GitOps tools see no drift.
    PodsOnly,
    None,
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

impl Settings {
    /// Parses settings and checks everything but the PEM blocks, which
    /// [`Settings::validate`] checks once, when the host validates the settings.
    ///
    /// The host runs every evaluation in a fresh instance (measured on policy-server 1.31
    /// and 1.35), so the settings are parsed on every request.
    pub fn from_json(settings: &RawValue) -> Result<Self, SettingsError> {
        let mut deserializer = serde_json::Deserializer::from_str(settings.get());
        let wire: WireSettings =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                // Positions in the host's compact JSON mean nothing to the user; the path does.
                let inner = e.inner().to_string();
                let message = inner.split(" at line ").next().unwrap_or_default();
                let path = match e.path().to_string() {
                    root if root == "." => String::new(),
                    path => path,
                };
                SettingsError::new(path, message)
            })?;
        Self::from_wire(wire)
    }

    /// Full validation, as `validate_settings` runs it: structure and PEM contents.
    pub fn validate(settings: &RawValue) -> Result<Self, SettingsError> {
        let parsed = Self::from_json(settings)?;
        for rule in &parsed.rules {
            for requirement in &rule.alternatives {
                pem::check_requirement(requirement)?;
                duplicates::check_requirement(requirement)?;
            }
        }
        Ok(parsed)
    }

    fn from_wire(wire: WireSettings) -> Result<Self, SettingsError> {
        if wire.signatures.is_empty() {
            return Err(SettingsError::new(
                "signatures",
                "must list at least one entry",
            ));
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
                ImagePattern::parse(p)
                    .map_err(|e| SettingsError::new(format!("skipImages[{index}]"), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let pinning = match (wire.modify_images_with_digest, wire.digest_pinning) {
            (Some(false), Some(scope)) if scope != WirePinning::None => {
                return Err(SettingsError::new(
                    "digestPinning",
                    "contradicts modifyImagesWithDigest: false",
                ))
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
            image_locations: locations::from_wire(wire.image_locations)?,
        })
    }
}

#[cfg(test)]
mod tests;
