//! What a failed check does: reject the request, or only warn. Warning lets teams roll
//! signing out one registry or team at a time; the failures reach the user as admission
//! warnings instead of rejections.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// `onFailure` of a `signatures` entry; `reject` when left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    #[default]
    Reject,
    Warn,
}

/// `rejectUnmatchedImages` and `requireDigest`: the boolean Kubewarden's policy takes, or
/// the word `reject` or `warn`. `None` (`false`, or left out) means the check is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct WireCheck(pub Option<OnFailure>);

impl<'de> Deserialize<'de> for WireCheck {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(WireCheckVisitor)
    }
}

struct WireCheckVisitor;

impl Visitor<'_> for WireCheckVisitor {
    type Value = WireCheck;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false, \"reject\" or \"warn\"")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<WireCheck, E> {
        Ok(WireCheck(value.then_some(OnFailure::Reject)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<WireCheck, E> {
        match value {
            "reject" => Ok(WireCheck(Some(OnFailure::Reject))),
            "warn" => Ok(WireCheck(Some(OnFailure::Warn))),
            other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
        }
    }
}
