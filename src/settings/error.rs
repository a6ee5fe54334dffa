//! Why settings are refused: the path of the field at fault and the reason, rendered
//! once as `path: reason`, so that every message names its field the same way.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// e.g. `signatures[2].anyOf[0].minimumMatches`; empty when the whole document is
    /// at fault.
    pub path: String,
    pub reason: String,
}

impl SettingsError {
    pub(super) fn new(path: impl Into<String>, reason: impl fmt::Display) -> Self {
        Self {
            path: path.into(),
            reason: reason.to_string(),
        }
    }

    /// At `field` of the entry or alternative `id`, e.g. `signatures[2]` and `image`.
    pub(super) fn at(id: &str, field: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self::new(format!("{id}.{field}"), reason)
    }
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for SettingsError {}
