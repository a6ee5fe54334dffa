//! Image patterns from the settings: `[registry/]repository[:tag][@digest]`, where `*`
//! and `?` are wildcards.
//!
//! A pattern has several readings, and the principle decides which count: a signature
//! rule **applies** when any reading matches any spelling of the image (rules
//! over-approximate), while `skipImages` **exempts** only under the runtime's reading,
//! with the registry and the repository matched each on its own (exemptions
//! under-approximate).

use std::cell::OnceCell;
use std::fmt;

use wildmatch::WildMatch;

use super::grammar::{self, ReferenceError};
use super::{normalise_registry, normalise_repository, ImageRef, DOCKER_HUB};

const WILDCARDS: &[char] = &['*', '?'];

/// An image with the spellings patterns are globbed over: the ones the normalisation
/// table lists, computed the first time a pattern needs them, and the ones the
/// workload wrote.
pub struct Spellings<'a> {
    image: &'a ImageRef,
    written: Vec<&'a str>,
    table: OnceCell<Vec<String>>,
}

impl<'a> Spellings<'a> {
    /// `written`: the image as each container that names it wrote it.
    pub fn new(image: &'a ImageRef, written: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            image,
            written: written.into_iter().collect(),
            table: OnceCell::new(),
        }
    }

    fn any(&self, glob: &WildMatch) -> bool {
        self.written.iter().any(|w| glob.matches(w))
            || self
                .table
                .get_or_init(|| self.image.spellings())
                .iter()
                .any(|s| glob.matches(s))
    }
}

/// One reading of a pattern's name: a registry glob, matched against the image's
/// registry alone (so it never runs into the repository path), and a repository glob.
#[derive(Debug, Clone)]
struct NameGlob {
    registry: WildMatch,
    repository: WildMatch,
}

impl NameGlob {
    fn new(registry: &str, repository: &str) -> Self {
        Self {
            registry: WildMatch::new(registry),
            repository: WildMatch::new(repository),
        }
    }

    fn matches(&self, image: &ImageRef) -> bool {
        self.registry.matches(image.registry()) && self.repository.matches(image.repository())
    }
}

#[derive(Debug, Clone)]
pub struct ImagePattern {
    text: String,
    /// Kubewarden's reading: one glob over the whole reference. Case-insensitive, because
    /// registry host names are: `INDEX.DOCKER.IO/*` must cover `nginx` too.
    whole: WildMatch,
    /// The runtime's reading of the name first, then the other readings a rule covers.
    names: Vec<NameGlob>,
    tag: Option<WildMatch>,
    digest: Option<WildMatch>,
}

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
        let names = name_readings(name)?;
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
            whole: WildMatch::new_case_insensitive(pattern),
            names,
            tag: tag.map(WildMatch::new),
            digest: digest.map(|d| WildMatch::new(&d)),
        })
    }

    /// Whether a signature rule with this pattern applies to the image: under any
    /// reading of the pattern, or as a glob over any spelling of the image. Where the
    /// pattern constrains a tag or digest the reference does not pin down
    /// (`app@sha256:..` against `app:v1`), the answer is yes: a rule that may apply
    /// must apply.
    pub fn may_match(&self, image: &Spellings<'_>) -> bool {
        let structured = self.names.iter().any(|name| name.matches(image.image))
            && part_matches(&self.tag, image.image.effective_tag(), true)
            && part_matches(&self.digest, image.image.digest(), true);
        structured || image.any(&self.whole)
    }

    /// Whether this pattern certainly names the image, for exemptions, which must never
    /// widen: the runtime's reading only, its registry glob over the registry alone,
    /// and tag and digest constraints that hold for what the runtime pulls.
    pub fn surely_matches(&self, image: &ImageRef) -> bool {
        self.names[0].matches(image)
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

/// The readings of a pattern's `registry/repository` part, the runtime's first.
///
/// - A name made only of wildcards, with a `*`, matches every image.
/// - A first component that is a registry, or holds a wildcard and is followed by `/`,
///   is the registry part (`ghcr.io/acme/*`, `*.example.com/*`); a wildcard one is
///   also read as a Docker Hub namespace (`acme*/app`).
/// - Otherwise the name is a Docker Hub repository.
/// - A Docker Hub repository without `/` is an official image (`library/`); with a
///   wildcard it is also read as it stands, so `docker.io/*` covers every Docker Hub
///   repository, as in Kubewarden's policy.
fn name_readings(name: &str) -> Result<Vec<NameGlob>, String> {
    if name.contains('*') && name.chars().all(|c| WILDCARDS.contains(&c)) {
        return Ok(vec![NameGlob::new("*", "*")]);
    }
    let registry_part = name
        .split_once('/')
        .filter(|(first, _)| grammar::is_registry(first) || first.contains(WILDCARDS));
    let mut readings = Vec::new();
    match registry_part {
        Some((registry, repository)) if registry.contains(WILDCARDS) => {
            let registry = registry.to_ascii_lowercase();
            for repository in repository_readings(&registry, repository)? {
                readings.push(NameGlob::new(&registry, &repository));
            }
            for repository in repository_readings(DOCKER_HUB, name)? {
                readings.push(NameGlob::new(DOCKER_HUB, &repository));
            }
        }
        Some((registry, repository)) => {
            let registry = normalise_registry(registry);
            for repository in repository_readings(&registry, repository)? {
                readings.push(NameGlob::new(&registry, &repository));
            }
        }
        None => {
            for repository in repository_readings(DOCKER_HUB, name)? {
                readings.push(NameGlob::new(DOCKER_HUB, &repository));
            }
        }
    }
    // Validate the shape with the reference grammar, wildcards standing in for a letter.
    let probe: String = name
        .chars()
        .map(|c| if WILDCARDS.contains(&c) { 'x' } else { c })
        .collect();
    grammar::parse(&probe).map_err(|e| format!("invalid image pattern {name:?}: {e}"))?;
    Ok(readings)
}

/// A repository part as the runtime reads it, then as it stands when that differs
/// and the part holds a wildcard.
fn repository_readings(registry: &str, repository: &str) -> Result<Vec<String>, String> {
    // A repository is lower case; the message names the part at fault.
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "{}: {repository}",
            ReferenceError::NameContainsUppercase
        ));
    }
    let normal = normalise_repository(registry, repository).map_err(|e| e.to_string())?;
    Ok(if normal != repository && repository.contains(WILDCARDS) {
        vec![normal, repository.to_owned()]
    } else {
        vec![normal]
    })
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

    /// Whether a rule with pattern `p` applies to `i`, written as it is.
    fn applies(p: &str, i: &str) -> bool {
        pattern(p).may_match(&Spellings::new(&image(i), [i]))
    }

    fn exempts(p: &str, i: &str) -> bool {
        pattern(p).surely_matches(&image(i))
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
                assert!(applies(p, i), "{p} ~ {i}");
                assert!(exempts(p, i), "{p} ~ {i}");
            }
        }
        assert!(!applies("nginx", "evil/nginx"));
        assert!(!applies("ghcr.io/acme/*", "ghcr.io/acmeevil/app"));
        assert!(applies("GHCR.IO/acme/*", "ghcr.io/acme/team/app:v1"));
        // Shown as the user wrote it, not normalised.
        assert_eq!(pattern("GHCR.IO/acme/*").to_string(), "GHCR.IO/acme/*");
    }

    #[test]
    fn docker_hub_patterns() {
        // `docker.io/*` covers every Docker Hub repository, official or not, however written.
        for i in [
            "docker.io/bitnami/nginx:1.25",
            "bitnami/nginx:1.25",
            "index.docker.io/bitnami/nginx",
            "nginx",
            "docker.io/library/nginx:1.25",
        ] {
            assert!(applies("docker.io/*", i), "{i}");
        }
        assert!(!applies("docker.io/*", "ghcr.io/acme/app:v1"));
        // `docker.io/library/*` covers the official images only.
        assert!(applies("docker.io/library/*", "nginx:1.25"));
        assert!(!applies("docker.io/library/*", "bitnami/nginx:1.25"));
        // A pattern with no registry and a glob is matched against every spelling.
        assert!(applies("*acme*", "ghcr.io/acme/app:v1"));
        assert!(applies("*unsigned*", "127.0.0.1:5000/test/unsigned:v1"));
        assert!(applies("*acme*", "acme/app"));
        assert!(!applies("*acme*", "ghcr.io/other/app:v1"));
        // A wildcard first component is a registry glob and a Docker Hub namespace.
        assert!(applies("acme*/app", "acme-team/app:v1"));
        assert!(applies("acme*/app", "acme.example.com/app:v1"));
    }

    #[test]
    fn kubewardens_glob_over_the_reference_as_written_applies() {
        // Only the written form has `:0443`; Kubewarden's policy would apply this rule.
        assert!(applies("*:0443/*", "ghcr.io:0443/acme/app:v1"));
        assert!(!applies("*:0443/*", "ghcr.io/acme/app:v1"));
        assert!(applies("ghcr.io/acme/app:v*", "ghcr.io/acme/app:v1"));
        // A spelling from the table: `docker.io:443/...` for `nginx`.
        assert!(applies("*:443/library/nginx*", "nginx"));
    }

    #[test]
    fn ports_are_numbers_in_patterns() {
        assert!(applies("ghcr.io/acme/*", "ghcr.io:0443/acme/app:v1"));
        assert!(applies("ghcr.io:443/acme/*", "ghcr.io/acme/app:v1"));
        assert!(applies("ghcr.io:0443/acme/*", "ghcr.io:443/acme/app:v1"));
        assert!(applies("host.example:05000/*", "host.example:5000/app"));
        assert!(exempts("host.example:5000/*", "host.example:005000/app"));
        assert!(!applies("host.example:5000/*", "host.example:50000/app"));
    }

    #[test]
    fn wildcard_registries_and_catch_all() {
        assert!(applies("*", "quay.io/x/y:z"));
        assert!(applies("*", "nginx"));
        assert!(exempts("*", "quay.io/x/y:z"));
        assert!(applies("*/acme/app", "ghcr.io/acme/app:v1"));
        // Docker Hub is a registry like any other: `acme/app` is `docker.io/acme/app`.
        assert!(applies("*/acme/app", "acme/app:v1"));
        assert!(!applies("*/acme/app", "acme/app2:v1"));
        assert!(applies("*.example.com/*", "reg.example.com/a/b"));
        assert!(applies("127.0.0.1:5000/*", "127.0.0.1:5000/a:b"));
    }

    #[test]
    fn a_registry_glob_never_exempts_past_the_registry() {
        assert!(exempts("*.example.com/*", "reg.example.com/a/b"));
        for i in [
            "ghcr.io/attacker/x.example.com/app:v1",
            "ghcr.io/x.example.com/app",
            "x.example.com.evil.io/app",
        ] {
            assert!(!exempts("*.example.com/*", i), "{i}");
        }
        // Without a registry part, a skip names Docker Hub only.
        assert!(exempts("*acme*", "acme"));
        assert!(!exempts("*acme*", "ghcr.io/acme/app:v1"));
        // `docker.io/*` in a skip exempts the official images; `docker.io/*/*` all of Docker Hub.
        assert!(exempts("docker.io/*", "nginx"));
        assert!(!exempts("docker.io/*", "bitnami/nginx"));
        assert!(exempts("docker.io/*/*", "bitnami/nginx"));
        assert!(!exempts("docker.io/*/*", "ghcr.io/bitnami/nginx"));
    }

    #[test]
    fn tags_and_digests_in_patterns() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let by_digest = format!("ghcr.io/acme/app@{digest}");
        let tagged_and_pinned = format!("ghcr.io/acme/app:v1@{digest}");
        let p = "ghcr.io/acme/app:v1";
        assert!(applies(p, "ghcr.io/acme/app:v1"));
        assert!(!applies(p, "ghcr.io/acme/app:v2"));
        assert!(!applies(p, "ghcr.io/acme/app"));
        // A digest-pinned reference still falls under a tag-style rule for its repository,
        // but is never exempted by a tag-style skip pattern.
        assert!(applies(p, &by_digest) && applies(p, &tagged_and_pinned));
        assert!(!exempts(p, &by_digest) && !exempts(p, &tagged_and_pinned));
        let d = format!("ghcr.io/acme/app@{digest}");
        assert!(exempts(&d, &by_digest));
        assert!(applies(&d, "ghcr.io/acme/app:v1"));
        assert!(!exempts(&d, "ghcr.io/acme/app:v1"));
        assert!(exempts("ghcr.io/acme/app@sha256:*", &by_digest));
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
