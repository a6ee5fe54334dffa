//! The syntax of image references: the grammar of the distribution project's
//! `reference` package, the one container runtimes parse with.
//!
//! oci-spec implements the same grammar with one large regular expression; linking
//! the `regex` crate made the policy 880 KB (58%) larger and cost microseconds per
//! image, so the grammar is written out here and oci-spec is kept as the oracle the
//! tests compare this parser with. Where the two differ, this one is stricter in the
//! way runtimes are: ASCII-only tags and lower-case digest hex.
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [ domain "/" ] path-component *( "/" path-component )
//! domain           := domain-component *( "." domain-component ) [ ":" port ]
//! domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component   := [a-z0-9]+ *( separator [a-z0-9]+ )
//! separator        := "." | "_" | "__" | "-"+
//! tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
//! digest           := "sha256:" hex{64} | "sha384:" hex{96} | "sha512:" hex{128}
//! ```

use std::fmt;

pub const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// An image reference split into its parts, as written.
#[derive(Debug, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The registry, when the first component is one (see [`is_registry`]).
    pub registry: Option<&'a str>,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

/// Why an image reference is refused; rendered in the runtime's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceError {
    /// Written with white space around it, which a runtime would not trim.
    SurroundingWhiteSpace,
    Empty,
    InvalidFormat,
    NameContainsUppercase,
    NameTooLong,
    InvalidTag,
    InvalidDigest,
    UnsupportedDigest,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReferenceError::SurroundingWhiteSpace => {
                "image reference has leading or trailing white space"
            }
            ReferenceError::Empty => "repository name must have at least one component",
            ReferenceError::InvalidFormat => "invalid reference format",
            ReferenceError::NameContainsUppercase => "repository name must be lowercase",
            ReferenceError::NameTooLong => "repository name must not be more than 255 characters",
            ReferenceError::InvalidTag => "invalid tag format",
            ReferenceError::InvalidDigest => "invalid checksum digest format",
            ReferenceError::UnsupportedDigest => "unsupported digest algorithm",
        })
    }
}

/// Splits and validates a reference.
pub fn parse(reference: &str) -> Result<Parts<'_>, ReferenceError> {
    if reference.is_empty() {
        return Err(ReferenceError::Empty);
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (reference, None),
    };
    let (name, tag) = split_tag(rest);
    if let Some(digest) = digest {
        check_digest(digest)?;
    }
    if let Some(tag) = tag {
        check_tag(tag)?;
    }
    let (registry, repository) = split_name(name)?;
    Ok(Parts {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Splits `name[:tag]`: a colon before the last `/` belongs to a registry port.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let last_component = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_component..].find(':') {
        Some(i) => {
            let colon = last_component + i;
            (&reference[..colon], Some(&reference[colon + 1..]))
        }
        None => (reference, None),
    }
}

/// Whether a name's first component is a registry rather than a path, by the test
/// the runtimes use: it holds a `.` or a `:`, or is `localhost`.
pub fn is_registry(first_component: &str) -> bool {
    first_component.contains(['.', ':']) || first_component == "localhost"
}

fn split_name(name: &str) -> Result<(Option<&str>, &str), ReferenceError> {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if is_registry(first) => (Some(first), rest),
        _ => (None, name),
    };
    // The grammar reads the whole name first (a first component may be a domain or a
    // path component), and only then splits the registry off by `is_registry`.
    if let Some(registry) = registry {
        if !is_domain(registry) && !is_path_component(registry) {
            return Err(ReferenceError::InvalidFormat);
        }
    }
    if path.is_empty() {
        return Err(ReferenceError::InvalidFormat);
    }
    for component in path.split('/') {
        if !is_path_component(component) {
            let lower = component.to_ascii_lowercase();
            return Err(if lower != component && is_path_component(&lower) {
                ReferenceError::NameContainsUppercase
            } else {
                ReferenceError::InvalidFormat
            });
        }
    }
    if path.len() > NAME_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    Ok((registry, path))
}

/// Whether a registry is a host name or address, with an optional port.
pub fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && !host.is_empty() && host.split('.').all(is_domain_component)
}

fn is_domain_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn is_lower_alphanumeric(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let Some((first, last)) = bytes.first().zip(bytes.last()) else {
        return false;
    };
    if !is_lower_alphanumeric(*first) || !is_lower_alphanumeric(*last) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if is_lower_alphanumeric(b) {
            if !matches!(separator.as_str(), "" | "." | "_" | "__")
                && !separator.bytes().all(|s| s == b'-')
            {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn check_tag(tag: &str) -> Result<(), ReferenceError> {
    let bytes = tag.as_bytes();
    let valid = bytes.len() <= TAG_MAX
        && bytes.first().is_some_and(|b| is_word(*b))
        && bytes
            .iter()
            .all(|b| is_word(*b) || matches!(b, b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(ReferenceError::InvalidTag)
    }
}

fn check_digest(digest: &str) -> Result<(), ReferenceError> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or(ReferenceError::InvalidDigest)?;
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::UnsupportedDigest),
    };
    if hex.len() == length
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(ReferenceError::InvalidDigest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::distribution::Reference;

    #[test]
    fn splits_references() {
        let digest = format!("sha256:{}", "0".repeat(64));
        let cases = [
            ("nginx", None, "nginx", None, None),
            ("nginx:1.25", None, "nginx", Some("1.25"), None),
            ("library/nginx", None, "library/nginx", None, None),
            (
                "ghcr.io/acme/app:v1",
                Some("ghcr.io"),
                "acme/app",
                Some("v1"),
                None,
            ),
            (
                "localhost:5000/a/b/c",
                Some("localhost:5000"),
                "a/b/c",
                None,
                None,
            ),
            ("localhost/app", Some("localhost"), "app", None, None),
            (
                "Registry.Example.COM/app",
                Some("Registry.Example.COM"),
                "app",
                None,
                None,
            ),
        ];
        for (reference, registry, repository, tag, digest_part) in cases {
            assert_eq!(
                parse(reference),
                Ok(Parts {
                    registry,
                    repository,
                    tag,
                    digest: digest_part
                }),
                "{reference}"
            );
        }
        let pinned = format!("127.0.0.1:5000/app:v1@{digest}");
        assert_eq!(
            parse(&pinned),
            Ok(Parts {
                registry: Some("127.0.0.1:5000"),
                repository: "app",
                tag: Some("v1"),
                digest: Some(&digest)
            })
        );
    }

    #[test]
    fn refuses_what_runtimes_refuse() {
        let cases = [
            ("", ReferenceError::Empty),
            (":tag", ReferenceError::InvalidFormat),
            ("app:", ReferenceError::InvalidTag),
            ("app:-x", ReferenceError::InvalidTag),
            ("Nginx", ReferenceError::NameContainsUppercase),
            ("acme/App", ReferenceError::NameContainsUppercase),
            ("a..b", ReferenceError::InvalidFormat),
            ("a___b", ReferenceError::InvalidFormat),
            ("-a", ReferenceError::InvalidFormat),
            ("a/", ReferenceError::InvalidFormat),
            ("ghcr.io/", ReferenceError::InvalidFormat),
            ("ghcr.io:/app", ReferenceError::InvalidFormat),
            ("-bad.io/app", ReferenceError::InvalidFormat),
            ("a b", ReferenceError::InvalidFormat),
            ("app@sha256:abc", ReferenceError::InvalidDigest),
            (
                "app@md5:0123456789abcdef0123456789abcdef",
                ReferenceError::UnsupportedDigest,
            ),
        ];
        for (reference, error) in cases {
            assert_eq!(parse(reference), Err(error), "{reference:?}");
        }
        assert_eq!(parse(&"a".repeat(256)), Err(ReferenceError::NameTooLong));
        assert_eq!(
            parse(&format!("a:{}", "t".repeat(129))),
            Err(ReferenceError::InvalidTag)
        );
    }

    /// Small pieces that exercise every branch of the grammar, valid and invalid.
    const PIECES: &[&str] = &[
        "a",
        "z9",
        "app",
        "ngin-x",
        "a--b",
        "a.b",
        "a_b",
        "a__b",
        "a___b",
        "a..b",
        "-a",
        "a-",
        "A",
        "Ab",
        "ghcr.io",
        "LOCALHOST",
        "localhost",
        "127.0.0.1",
        ":5000",
        ":",
        "/",
        "//",
        "@",
        ":v1",
        ":V1.0-rc_1",
        ":-x",
        ".",
        "_",
        "x.y.z",
        "ex-ample.com",
        "-ex.com",
        "ex-.com",
    ];

    fn oracle_agrees(reference: &str) {
        let ours = parse(reference);
        let oracle = Reference::try_from(reference);
        match (&ours, &oracle) {
            (Ok(parts), Ok(r)) => {
                // oci-spec folds Docker Hub on its own; compare the path it keeps.
                let registry = parts.registry.unwrap_or("docker.io");
                assert!(
                    r.registry() == registry
                        || (registry == "index.docker.io" && r.registry() == "docker.io"),
                    "{reference:?}: registry {registry} vs {}",
                    r.registry()
                );
                assert!(r.repository().ends_with(parts.repository), "{reference:?}");
                assert_eq!(
                    r.tag(),
                    parts.tag.or(parts.digest.map_or(Some("latest"), |_| None)),
                    "{reference:?}"
                );
                assert_eq!(r.digest(), parts.digest, "{reference:?}");
            }
            (Err(_), Err(_)) => {}
            // oci-spec's regex lets an upper-case first component through as a path.
            (Err(ReferenceError::NameContainsUppercase), Ok(_)) => {}
            _ => panic!("{reference:?}: ours {ours:?}, oci-spec {oracle:?}"),
        }
    }

    #[test]
    fn agrees_with_oci_spec_on_every_combination_of_pieces() {
        let digest = format!("@sha256:{}", "ab".repeat(32));
        let mut checked = 0;
        for a in PIECES {
            for b in PIECES {
                for c in ["", ":v1", &digest, "/x", "/x:tag"] {
                    oracle_agrees(&format!("{a}{b}{c}"));
                    oracle_agrees(&format!("{a}/{b}{c}"));
                    checked += 2;
                }
            }
        }
        assert!(checked > 10_000);
    }
}
