//! `platformSignatures`: which platform manifests must be signed when an image index
//! is not, from the wire format to [`PlatformSignatures`].

use std::fmt;

use crate::verifier;

use super::error::SettingsError;
use super::wire::WirePlatformSignatures;

/// Which platform manifests must be signed when the index is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformSignatures {
    /// Every platform the index lists, but attestation manifests and `unknown/unknown`.
    All,
    /// These platforms, each of which must be in the index.
    Listed(Vec<Platform>),
}

/// A platform as the settings name it, `os/architecture[/variant]`: `linux/arm64`
/// stands for every variant of it; `linux/arm/v7` for that variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform(verifier::Platform);

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
                Ok(Self(verifier::Platform {
                    os: (*os).to_owned(),
                    architecture: (*architecture).to_owned(),
                    variant: variant.first().map(|v| (*v).to_owned()),
                }))
            }
            _ => Err(format!(
                "{text:?} is not a platform: write os/architecture[/variant] in lower case, e.g. linux/amd64"
            )),
        }
    }

    /// Whether an index entry's `platform` is this one, or a variant of it.
    pub fn matches(&self, platform: &verifier::Platform) -> bool {
        let Self(named) = self;
        named.os == platform.os
            && named.architecture == platform.architecture
            && (named.variant.is_none() || named.variant == platform.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `all`, a list of platforms, or the same list as one comma-separated string (what a
/// settings form's text field gives).
pub(super) fn from_wire(
    id: &str,
    wire: Option<WirePlatformSignatures>,
) -> Result<Option<PlatformSignatures>, SettingsError> {
    let field = format!("{id}.platformSignatures");
    let list = match wire {
        None => return Ok(None),
        Some(WirePlatformSignatures::Word(word)) if word.trim() == "all" => {
            return Ok(Some(PlatformSignatures::All))
        }
        Some(WirePlatformSignatures::Word(word)) => {
            word.split(',').map(|p| p.trim().to_owned()).collect()
        }
        Some(WirePlatformSignatures::List(list)) => list,
    };
    if list.is_empty() {
        return Err(SettingsError::new(
            field,
            "must list at least one platform, or be \"all\"",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(index, text)| {
            Platform::parse(text).map_err(|e| {
                SettingsError::new(format!("{field}[{index}]"), format!("{e}, or \"all\""))
            })
        })
        .collect::<Result<_, _>>()
        .map(|platforms| Some(PlatformSignatures::Listed(platforms)))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
