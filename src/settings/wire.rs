//! The settings as users write them. Every struct refuses unknown keys: a typo such as
//! `pubkeys` must be an error, never an entry of another kind.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct WireSettings {
    pub signatures: Vec<WireRule>,
    #[serde(default)]
    pub skip_images: Vec<String>,
    #[serde(default)]
    pub reject_unmatched_images: bool,
    #[serde(default)]
    pub require_digest: bool,
    pub modify_images_with_digest: Option<bool>,
    pub digest_pinning: Option<WirePinning>,
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
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum WirePlatformSignatures {
    Word(String),
    List(Vec<String>),
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
