//! Image references and image patterns, normalised in exactly one place.
//!
//! A container runtime pulls `nginx`, `library/nginx`, `docker.io/nginx`,
//! `INDEX.DOCKER.IO/library/nginx:latest` from the same repository. If a rule
//! and an image were compared as written, a different spelling would walk
//! around the rule. So both sides go through [`normalise_name`] and are compared
//! only in that form.

use std::fmt;

use wildmatch::WildMatch;

mod grammar;

const DOCKER_HUB: &str = "docker.io";

/// Host names that all serve Docker Hub.
const DOCKER_HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// A container image reference, normalised the way a container runtime resolves it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// `registry/repository`, e.g. `docker.io/library/nginx`.
    name: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses an image as written in a container spec.
    pub fn parse(image: &str) -> Result<Self, String> {
        if image.trim() != image {
            return Err("image reference has leading or trailing white space".into());
        }
        let parts = grammar::parse(image).map_err(|e| e.to_string())?;
        let name = normalise_name(parts.registry.unwrap_or(DOCKER_HUB), parts.repository)?;
        Ok(Self {
            name,
            // Like the runtime: `latest` only when there is neither a tag nor a digest.
            tag: match (parts.tag, parts.digest) {
                (None, None) => Some("latest".to_owned()),
                (tag, _) => tag.map(str::to_owned),
            },
            digest: parts.digest.map(str::to_owned),
        })
    }

    /// `registry/repository`, normalised.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag, when the runtime would honour it: a tag written next to a digest is
    /// ignored by the runtime, so it is no evidence of what is pulled.
    pub fn effective_tag(&self) -> Option<&str> {
        match self.digest {
            Some(_) => None,
            None => self.tag.as_deref(),
        }
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Lower-cases the registry host (DNS names are case-insensitive), folds the Docker
/// Hub aliases and the default HTTPS port, and adds Docker Hub's `library/`.
fn normalise_name(registry: &str, repository: &str) -> Result<String, String> {
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository name must be lowercase: {repository}"));
    }
    let registry = registry.to_ascii_lowercase();
    // `host:443` is `host`, unless dropping the port would make the host read as a
    // Docker Hub path (`foo:443/app` is not `foo/app`, which is `docker.io/foo/app`).
    let registry = match registry.strip_suffix(":443") {
        Some(host) if grammar::is_registry(host) => host,
        _ => &registry,
    };
    let registry = if DOCKER_HUB_ALIASES.contains(&registry) {
        DOCKER_HUB
    } else {
        registry
    };
    if registry == DOCKER_HUB && !repository.contains('/') {
        // `library/` counts towards the length limit, as for the runtime.
        if "library/".len() + repository.len() > grammar::NAME_MAX {
            return Err(grammar::ReferenceError::NameTooLong.to_string());
        }
        Ok(format!("{DOCKER_HUB}/library/{repository}"))
    } else {
        Ok(format!("{registry}/{repository}"))
    }
}

/// An image pattern from the settings: `[registry/]repository[:tag][@digest]`, where
/// `*` and `?` are wildcards. The name part is normalised like an [`ImageRef`].
#[derive(Debug, Clone)]
pub struct ImagePattern {
    text: String,
    name: WildMatch,
    tag: Option<WildMatch>,
    digest: Option<WildMatch>,
}

const WILDCARDS: &[char] = &['*', '?'];

impl ImagePattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("image pattern is empty".into());
        }
        if pattern.chars().any(|c| c.is_whitespace()) {
            return Err(format!("image pattern contains white space: {pattern:?}"));
        }
        let (rest, digest) = match pattern.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest_pattern(digest)?)),
            None => (pattern, None),
        };
        let (name, tag) = grammar::split_tag(rest);
        let name = normalise_name_pattern(name)?;
        if let Some(tag) = tag {
            if tag.is_empty() {
                return Err(format!("image pattern {pattern:?} has an empty tag"));
            }
            // A tag is a word of at most 128 characters; wildcards stand for such characters.
            if !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-*?".contains(c))
            {
                return Err(format!("image pattern {pattern:?} has an invalid tag"));
            }
        }
        Ok(Self {
            text: pattern.to_owned(),
            name: WildMatch::new(&name),
            tag: tag.map(WildMatch::new),
            digest: digest.map(|d| WildMatch::new(&d)),
        })
    }

    /// Whether this pattern may name the image. Where the pattern constrains a tag
    /// or digest the reference does not pin down (`app@sha256:..` against `app:v1`),
    /// the answer is yes: a rule that may apply must apply.
    pub fn may_match(&self, image: &ImageRef) -> bool {
        self.name.matches(image.name())
            && part_matches(&self.tag, image.effective_tag(), true)
            && part_matches(&self.digest, image.digest(), true)
    }

    /// Whether this pattern certainly names the image: the opposite default of
    /// [`Self::may_match`], for exemptions, which must never widen.
    pub fn surely_matches(&self, image: &ImageRef) -> bool {
        self.name.matches(image.name())
            && part_matches(&self.tag, image.effective_tag(), false)
            && part_matches(&self.digest, image.digest(), false)
    }
}

impl fmt::Display for ImagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn part_matches(pattern: &Option<WildMatch>, value: Option<&str>, when_unknown: bool) -> bool {
    match (pattern, value) {
        (None, _) => true,
        (Some(pattern), Some(value)) => pattern.matches(value),
        (Some(_), None) => when_unknown,
    }
}

fn parse_digest_pattern(digest: &str) -> Result<String, String> {
    let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm.bytes().all(|b| b.is_ascii_alphanumeric())
            && !hex.is_empty()
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase() || WILDCARDS.contains(&c))
    });
    if valid {
        Ok(digest.to_owned())
    } else {
        Err(format!("image pattern has an invalid digest: {digest:?}"))
    }
}

/// Normalises the `registry/repository` part of a pattern. A first component that
/// holds a wildcard is a registry glob (`*/acme/app`); a name made only of
/// wildcards matches every image.
fn normalise_name_pattern(name: &str) -> Result<String, String> {
    if !name.is_empty() && name.chars().all(|c| WILDCARDS.contains(&c)) {
        return Ok(name.to_owned());
    }
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let has_registry = grammar::is_registry(first) || first.contains(WILDCARDS);
    let (registry, repository) = if has_registry {
        (first, rest)
    } else {
        (DOCKER_HUB, name)
    };
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("repository name must be lowercase: {repository}"));
    }
    // Validate the shape with the reference grammar, wildcards standing in for a letter.
    let probe: String = name
        .chars()
        .map(|c| if WILDCARDS.contains(&c) { 'x' } else { c })
        .collect();
    grammar::parse(&probe).map_err(|e| format!("invalid image pattern {name:?}: {e}"))?;
    if registry.contains(WILDCARDS) {
        return Ok(format!("{}/{repository}", registry.to_ascii_lowercase()));
    }
    normalise_name(registry, repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    fn pattern(s: &str) -> ImagePattern {
        ImagePattern::parse(s).unwrap()
    }

    #[test]
    fn docker_hub_spellings_are_one_image() {
        let spellings = [
            "nginx",
            "nginx:latest",
            "library/nginx",
            "docker.io/nginx",
            "docker.io/library/nginx:latest",
            "index.docker.io/library/nginx",
            "INDEX.DOCKER.IO/library/nginx",
            "registry-1.docker.io/library/nginx",
            "docker.io:443/nginx",
        ];
        for s in spellings {
            assert_eq!(
                image(s).to_string(),
                "docker.io/library/nginx:latest",
                "{s}"
            );
        }
    }

    #[test]
    fn registry_host_is_case_insensitive_and_port_443_is_the_default() {
        assert_eq!(image("GHCR.io/acme/app:v1").name(), "ghcr.io/acme/app");
        assert_eq!(image("ghcr.io:443/acme/app:v1").name(), "ghcr.io/acme/app");
        assert_eq!(
            image("127.0.0.1:5000/acme/app").name(),
            "127.0.0.1:5000/acme/app"
        );
        assert_eq!(image("localhost/app").name(), "localhost/app");
        assert_eq!(image("localhost:443/app").name(), "localhost/app");
        // `library/` counts towards the 255 characters of a repository name.
        assert!(ImageRef::parse(&"a".repeat(247)).is_ok());
        assert!(ImageRef::parse(&"a".repeat(248)).is_err());
        // Without its port, `foo` would be a Docker Hub namespace: the port stays.
        let single_label = image("foo:443/app");
        assert_eq!(single_label.to_string(), "foo:443/app:latest");
        assert_eq!(ImageRef::parse(&single_label.to_string()), Ok(single_label));
        assert_eq!(image("acme/app").name(), "docker.io/acme/app");
    }

    #[test]
    fn tag_next_to_a_digest_is_not_trusted() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned = image(&format!("ghcr.io/acme/app:v1@{digest}"));
        assert_eq!(pinned.effective_tag(), None);
        assert_eq!(pinned.digest(), Some(digest.as_str()));
        assert_eq!(image("ghcr.io/acme/app").effective_tag(), Some("latest"));
    }

    #[test]
    fn invalid_references_are_refused_with_a_reason() {
        for bad in [
            "",
            " nginx",
            "Nginx",
            "UPPER/app",
            "ghcr.io/Acme/app",
            "app@sha256:abc",
            "app:",
            "a b",
            // 255 characters as written, too many once in `library/`.
            &"a".repeat(250),
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?}");
        }
        // The grammar's reasons reach the rejection message.
        assert_eq!(ImageRef::parse("app:").unwrap_err(), "invalid tag format");
        assert_eq!(
            ImageRef::parse("ghcr.io/Ab$").unwrap_err(),
            "invalid reference format"
        );
        // At most 255 characters of repository; every digest algorithm of the grammar.
        assert!(ImageRef::parse(&format!("ghcr.io/{}", "a".repeat(255))).is_ok());
        assert!(ImageRef::parse(&format!("ghcr.io/{}", "a".repeat(256))).is_err());
        for (algorithm, length) in [("sha256", 64), ("sha384", 96), ("sha512", 128)] {
            let pinned = format!("app@{algorithm}:{}", "0".repeat(length));
            assert!(ImageRef::parse(&pinned).is_ok(), "{pinned}");
        }
    }

    #[test]
    fn patterns_are_normalised_like_images() {
        for p in [
            "nginx",
            "library/nginx",
            "docker.io/nginx",
            "index.docker.io/library/*",
            "docker.io/library/nginx:*",
            "DOCKER.IO/library/ngin?",
        ] {
            for i in [
                "nginx",
                "docker.io/library/nginx:1.25",
                "library/nginx:latest",
            ] {
                assert!(pattern(p).may_match(&image(i)), "{p} ~ {i}");
                assert!(pattern(p).surely_matches(&image(i)), "{p} ~ {i}");
            }
        }
        assert!(!pattern("nginx").may_match(&image("evil/nginx")));
        assert!(!pattern("ghcr.io/acme/*").may_match(&image("ghcr.io/acmeevil/app")));
        assert!(pattern("GHCR.IO/acme/*").may_match(&image("ghcr.io/acme/team/app:v1")));
        // Shown as the user wrote it, not normalised.
        assert_eq!(pattern("GHCR.IO/acme/*").to_string(), "GHCR.IO/acme/*");
    }

    #[test]
    fn wildcard_registries_and_catch_all() {
        assert!(pattern("*").may_match(&image("quay.io/x/y:z")));
        assert!(pattern("*").may_match(&image("nginx")));
        assert!(pattern("*/acme/app").may_match(&image("ghcr.io/acme/app:v1")));
        // Docker Hub is a registry like any other: `acme/app` is `docker.io/acme/app`.
        assert!(pattern("*/acme/app").may_match(&image("acme/app:v1")));
        assert!(!pattern("*/acme/app").may_match(&image("acme/app2:v1")));
        assert!(pattern("*.example.com/*").may_match(&image("reg.example.com/a/b")));
        assert!(pattern("127.0.0.1:5000/*").may_match(&image("127.0.0.1:5000/a:b")));
    }

    #[test]
    fn tags_and_digests_in_patterns() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let by_digest = image(&format!("ghcr.io/acme/app@{digest}"));
        let tagged_and_pinned = image(&format!("ghcr.io/acme/app:v1@{digest}"));
        let p = pattern("ghcr.io/acme/app:v1");
        assert!(p.may_match(&image("ghcr.io/acme/app:v1")));
        assert!(!p.may_match(&image("ghcr.io/acme/app:v2")));
        assert!(!p.may_match(&image("ghcr.io/acme/app")));
        // A digest-pinned reference still falls under a tag-style rule for its repository,
        // but is never exempted by a tag-style skip pattern.
        assert!(p.may_match(&by_digest) && p.may_match(&tagged_and_pinned));
        assert!(!p.surely_matches(&by_digest) && !p.surely_matches(&tagged_and_pinned));
        let d = pattern(&format!("ghcr.io/acme/app@{digest}"));
        assert!(d.surely_matches(&by_digest));
        assert!(d.may_match(&image("ghcr.io/acme/app:v1")));
        assert!(!d.surely_matches(&image("ghcr.io/acme/app:v1")));
        assert!(pattern("ghcr.io/acme/app@sha256:*").surely_matches(&by_digest));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            "",
            "ghcr.io/acme/ app",
            "ghcr.io/Acme/*",
            "ghcr.io/acme/app:",
            "ghcr.io/acme/app:v/1",
            "ghcr.io/acme/app@sha256",
            "ghcr.io/acme/app@md5:XYZ",
            "ghcr.io/acme/app@sha256:abz",
            "ghcr.io//app",
        ] {
            assert!(ImagePattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
