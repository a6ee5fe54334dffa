//! Image references and image patterns, normalised in exactly one place.
//!
//! A container runtime pulls `nginx`, `library/nginx`, `docker.io/nginx`,
//! `INDEX.DOCKER.IO/library/nginx:latest` from the same repository. If a rule and an
//! image were compared only as written, a different spelling would walk around the
//! rule. So images are normalised here, and [`ImagePattern`] matches an image in its
//! normal form and in every spelling [`ImageRef::spellings`] lists.

use std::fmt;

mod grammar;
mod pattern;

pub use grammar::ReferenceError;
pub use pattern::{ImagePattern, Spellings};

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
    /// Where the registry part of `name` ends.
    registry_len: usize,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parses an image as written in a container spec.
    pub fn parse(image: &str) -> Result<Self, ReferenceError> {
        if image.trim() != image {
            return Err(ReferenceError::SurroundingWhiteSpace);
        }
        let parts = grammar::parse(image)?;
        let registry = normalise_registry(parts.registry.unwrap_or(DOCKER_HUB));
        let repository = normalise_repository(&registry, parts.repository)?;
        Ok(Self {
            name: format!("{registry}/{repository}"),
            registry_len: registry.len(),
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

    /// The registry, normalised: `docker.io`, `ghcr.io`, `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.name[..self.registry_len]
    }

    /// The repository, normalised: `library/nginx`, `acme/app`.
    pub fn repository(&self) -> &str {
        &self.name[self.registry_len + 1..]
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

    /// Every spelling of this image that the normalisation table equates with it, in
    /// lower case: each Docker Hub alias or none, with and without the default port
    /// `:443`, with and without `library/`, with and without an implicit `:latest`, and
    /// without the tag a digest makes meaningless. Patterns that Kubewarden's policy
    /// globs over the reference as written are matched against each of these.
    pub fn spellings(&self) -> Vec<String> {
        let registry = self.registry();
        let repository = self.repository();
        let docker_hub = registry == DOCKER_HUB;
        let hosts: &[&str] = if docker_hub {
            DOCKER_HUB_ALIASES
        } else {
            &[registry]
        };
        let mut prefixes: Vec<String> = hosts.iter().map(|host| format!("{host}/")).collect();
        // Only a host name takes a port (`a_b.c/app` reads as a registry, but is no host).
        if !registry.contains(':') && grammar::is_domain(registry) {
            prefixes.extend(hosts.iter().map(|host| format!("{host}:443/")));
        }
        let first = repository.split('/').next().unwrap_or_default();
        if docker_hub && !grammar::is_registry(first) {
            prefixes.push(String::new());
        }
        let short = repository
            .strip_prefix("library/")
            .filter(|short| docker_hub && !short.contains('/'));
        let repositories = [Some(repository), short];
        let suffixes = match (&self.tag, &self.digest) {
            (Some(tag), None) if tag == "latest" => vec![":latest".to_owned(), String::new()],
            (Some(tag), None) => vec![format!(":{tag}")],
            (Some(tag), Some(digest)) => vec![format!(":{tag}@{digest}"), format!("@{digest}")],
            (None, Some(digest)) => vec![format!("@{digest}")],
            (None, None) => vec![String::new()],
        };
        let mut spellings = Vec::new();
        for prefix in &prefixes {
            for repository in repositories.iter().flatten() {
                for suffix in &suffixes {
                    spellings.push(format!("{prefix}{repository}{suffix}"));
                }
            }
        }
        spellings
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

/// Lower-cases the host (DNS names are case-insensitive), reads the port as the number
/// it is (`:0443` is `:443`, `:05000` is `:5000`), drops the default HTTPS port, and
/// folds the Docker Hub aliases.
fn normalise_registry(registry: &str) -> String {
    let registry = registry.to_ascii_lowercase();
    let registry = match registry.split_once(':') {
        None => registry,
        Some((host, port)) => match port.trim_start_matches('0') {
            // `host:443` is `host`, unless dropping the port would make the host read as
            // a Docker Hub path (`foo:443/app` is not `foo/app`, which is `docker.io/foo/app`).
            "443" if grammar::is_registry(host) => host.to_owned(),
            "" => format!("{host}:0"),
            port => format!("{host}:{port}"),
        },
    };
    if DOCKER_HUB_ALIASES.contains(&registry.as_str()) {
        DOCKER_HUB.to_owned()
    } else {
        registry
    }
}

/// Adds Docker Hub's `library/` to a name without `/`.
fn normalise_repository(registry: &str, repository: &str) -> Result<String, ReferenceError> {
    if registry == DOCKER_HUB && !repository.contains('/') {
        // `library/` counts towards the length limit, as for the runtime.
        if "library/".len() + repository.len() > grammar::NAME_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        Ok(format!("library/{repository}"))
    } else {
        Ok(repository.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
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
            "docker.io:0443/nginx",
        ];
        for s in spellings {
            assert_eq!(
                image(s).to_string(),
                "docker.io/library/nginx:latest",
                "{s}"
            );
        }
        let nginx = image("nginx");
        assert_eq!(
            (nginx.registry(), nginx.repository()),
            ("docker.io", "library/nginx")
        );
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
        assert_eq!(image("foo:0443/app").name(), "foo:443/app");
        assert_eq!(image("acme/app").name(), "docker.io/acme/app");
    }

    #[test]
    fn ports_are_numbers() {
        for written in ["ghcr.io", "ghcr.io:443", "ghcr.io:0443", "GHCR.IO:000443"] {
            let parsed = image(&format!("{written}/acme/app:v1"));
            assert_eq!(parsed.registry(), "ghcr.io", "{written}");
        }
        for written in [
            "host.example:5000",
            "host.example:05000",
            "host.example:005000",
        ] {
            let parsed = image(&format!("{written}/app"));
            assert_eq!(parsed.registry(), "host.example:5000", "{written}");
        }
        assert_eq!(image("host.example:00/app").registry(), "host.example:0");
        assert_ne!(
            image("host.example:5000/app").name(),
            image("host.example:50000/app").name()
        );
    }

    #[test]
    fn spellings_are_the_normalisation_table() {
        let nginx = image("nginx:1.25").spellings();
        for s in [
            "nginx:1.25",
            "library/nginx:1.25",
            "docker.io/nginx:1.25",
            "docker.io/library/nginx:1.25",
            "index.docker.io/nginx:1.25",
            "registry-1.docker.io:443/library/nginx:1.25",
            "registry.hub.docker.com/nginx:1.25",
        ] {
            assert!(nginx.iter().any(|n| n == s), "{s} missing from {nginx:?}");
        }
        let user = image("bitnami/nginx").spellings();
        assert!(user.iter().any(|s| s == "bitnami/nginx"));
        assert!(user.iter().any(|s| s == "docker.io/bitnami/nginx:latest"));
        assert!(!user.iter().any(|s| s.contains("library")));
        // Each spelling is the same image.
        for spelling in nginx.iter().chain(&user) {
            let parsed = image(spelling);
            assert!(parsed == image("nginx:1.25") || parsed == image("bitnami/nginx"));
        }
        let digest = format!("sha256:{}", "c".repeat(64));
        let pinned = image(&format!("ghcr.io/acme/app:v1@{digest}")).spellings();
        assert!(pinned.contains(&format!("ghcr.io/acme/app@{digest}")));
        assert!(pinned.contains(&format!("ghcr.io:443/acme/app:v1@{digest}")));
        assert_eq!(
            image("127.0.0.1:5000/app:v1").spellings(),
            ["127.0.0.1:5000/app:v1"]
        );
        // Only an official Docker Hub image drops `library/`: `library/a/b` is not `a/b`,
        // and `ghcr.io/library/app` is not `ghcr.io/app`.
        for (written, other) in [
            ("library/a/b", "a/b"),
            ("ghcr.io/library/app", "ghcr.io/app"),
        ] {
            let other = image(other);
            assert!(
                image(written).spellings().iter().all(|s| image(s) != other),
                "{written}"
            );
        }
        // A Docker Hub repository whose first component reads as a registry has no
        // spelling without a registry.
        assert!(image("docker.io/my.org/app")
            .spellings()
            .iter()
            .all(|s| s.contains("docker")));
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
        assert_eq!(
            ImageRef::parse("app:").unwrap_err().to_string(),
            "invalid tag format"
        );
        assert_eq!(
            ImageRef::parse("ghcr.io/Ab$").unwrap_err().to_string(),
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
}
