//! The settings as users write them. Every struct refuses unknown keys: a typo such as
//! `pubkeys` must be an error, never an entry of another kind.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::on_failure::{OnFailure, WireCheck};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct WireSettings {
    pub signatures: Vec<WireRule>,
    #[serde(default)]
    pub skip_images: Vec<String>,
    #[serde(default)]
    pub reject_unmatched_images: WireCheck,
    #[serde(default)]
    pub require_digest: WireCheck,
    #[serde(default)]
    pub reverify_unchanged_images: bool,
    pub modify_images_with_digest: Option<bool>,
    pub digest_pinning: Option<WirePinning>,
    #[serde(default)]
    pub image_locations: Vec<WireImageLocation>,
}

/// One entry of `imageLocations`: a kind, and the paths where its images lie.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireImageLocation {
    /// The API group; `""` for the core group.
    pub group: String,
    pub kind: String,
    pub paths: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(super) enum WirePinning {
    All,
    Pods,
    None,
}

/// One entry of `signatures`, or one alternative of an entry's `anyOf`: every kind's
/// fields in one struct, so that an entry carrying two kinds is seen and refused.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct WireRule {
    pub image: Option<String>,
    pub on_failure: Option<OnFailure>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub minimum_matches: Option<usize>,
    pub pub_keys: Option<Vec<String>>,
    pub keyless: Option<Vec<WireKeyless>>,
    pub keyless_prefix: Option<Vec<WireKeylessPrefix>>,
    pub github_actions: Option<WireGithubActions>,
    pub certificates: Option<Vec<String>>,
    pub certificate_chain: Option<Vec<String>>,
    pub require_rekor_bundle: Option<bool>,
    pub any_of: Option<Vec<WireRule>>,
    pub platform_signatures: Option<WirePlatformSignatures>,
}

/// `platformSignatures`: the word `all`, or a list of platforms.
pub(super) enum WirePlatformSignatures {
    Word(String),
    List(Vec<String>),
}

/// By hand rather than `#[serde(untagged)]`, whose buffering costs the wasm module tens
/// of kilobytes, and whose error names no expected shape.
impl<'de> Deserialize<'de> for WirePlatformSignatures {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = WirePlatformSignatures;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a list of platforms such as linux/amd64")
            }

            fn visit_str<E: de::Error>(self, word: &str) -> Result<Self::Value, E> {
                Ok(WirePlatformSignatures::Word(word.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut list = Vec::new();
                while let Some(platform) = seq.next_element()? {
                    list.push(platform);
                }
                Ok(WirePlatformSignatures::List(list))
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireKeyless {
    pub issuer: String,
    pub subject: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct WireKeylessPrefix {
    pub issuer: String,
    /// The Kubewarden policy documents `urlPrefix`; the SDK type serialises `url_prefix`.
    #[serde(alias = "url_prefix")]
    pub url_prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WireGithubActions {
    pub owner: String,
    pub repo: Option<String>,
}
