//! The `kwctl --sources-path` file: which registries are reached over plain HTTP.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

/// Registry access settings. Only `insecure_sources` matters to this host: every
/// other registry is reached over HTTPS with the system's web PKI roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Sources {
    /// `HOST:PORT` entries reached over plain HTTP (e.g. a local test registry).
    #[serde(default)]
    pub insecure_sources: BTreeSet<String>,
}

impl Sources {
    /// Sources with the given plain-HTTP registries.
    pub fn insecure<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            insecure_sources: hosts.into_iter().map(Into::into).collect(),
        }
    }

    /// Parses a sources document, YAML or JSON (YAML is a superset of JSON).
    pub fn parse(text: &str) -> Result<Self, serde_yaml::Error> {
        let parsed: Option<Self> = serde_yaml::from_str(text)?;
        Ok(parsed.unwrap_or_default())
    }

    /// Reads and parses a sources file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read sources file {}: {e}", path.display()))?;
        Self::parse(&text)
            .map_err(|e| anyhow::anyhow!("invalid sources file {}: {e}", path.display()))
    }

    /// The list in the form the OCI clients' `HttpsExcept` protocol takes.
    pub(crate) fn insecure_list(&self) -> Vec<String> {
        self.insecure_sources.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_json_and_empty_files() {
        let yaml = Sources::parse("insecure_sources:\n  - 127.0.0.1:5000\n").unwrap();
        assert_eq!(yaml, Sources::insecure(["127.0.0.1:5000"]));
        let json =
            Sources::parse(r#"{"insecure_sources": ["localhost:1"], "source_authorities": {}}"#)
                .unwrap();
        assert_eq!(json.insecure_list(), vec!["localhost:1".to_owned()]);
        assert_eq!(Sources::parse("").unwrap(), Sources::default());
    }
}
