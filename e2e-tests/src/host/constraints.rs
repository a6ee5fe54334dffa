//! The signature constraints of a `v2/verify` request, modelled on the Kubewarden
//! host's verification config (`allOf` list of `Signature`s).
//!
//! Each constraint holds when at least one trusted signature layer satisfies it.
//! A failing request names the unsatisfied constraints as a YAML dump of these
//! values, so their serialized shape (`kind`, fields, `annotations`) follows the
//! real host's.

use std::collections::BTreeMap;

use serde::Serialize;
use sigstore::cosign::signature_layers::{CertificateSubject, SignatureLayer};
use sigstore::cosign::verification_constraint::cert_subject_email_verifier::StringVerifier;
use sigstore::cosign::verification_constraint::{
    AnnotationVerifier, CertSubjectEmailVerifier, CertSubjectUrlVerifier, PublicKeyVerifier,
    VerificationConstraint,
};
use sigstore::errors::{Result, SigstoreError};
use url::Url;

/// The OIDC issuer of GitHub Actions workflow identities.
pub(crate) const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

pub(crate) type Annotations = Option<BTreeMap<String, String>>;

/// How a keyless subject must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Subject {
    Equal(String),
    UrlPrefix(String),
}

/// One constraint of the all-of list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub(crate) enum Signature {
    PubKey {
        owner: Option<String>,
        key: String,
        annotations: Annotations,
    },
    GenericIssuer {
        issuer: String,
        subject: Subject,
        annotations: Annotations,
    },
    GithubAction {
        owner: String,
        repo: Option<String>,
        annotations: Annotations,
    },
}

impl Signature {
    /// The sigstore constraint that checks this signature. A key that cannot be
    /// parsed yields an error, which the caller counts as an unsatisfied constraint.
    pub(crate) fn verifier(&self) -> Result<Box<dyn VerificationConstraint>> {
        match self {
            Signature::PubKey {
                key, annotations, ..
            } => Ok(Box::new(WithAnnotations::new(
                PublicKeyVerifier::try_from(key.as_bytes())?,
                annotations,
            ))),
            Signature::GenericIssuer {
                issuer,
                subject: Subject::Equal(subject),
                annotations,
            } => Ok(Box::new(WithAnnotations::new(
                KeylessExact::new(issuer, subject),
                annotations,
            ))),
            Signature::GenericIssuer {
                issuer,
                subject: Subject::UrlPrefix(prefix),
                annotations,
            } => Ok(Box::new(WithAnnotations::new(
                KeylessUrlPrefix::new(issuer, prefix)?,
                annotations,
            ))),
            Signature::GithubAction {
                owner,
                repo,
                annotations,
            } => Ok(Box::new(WithAnnotations::new(
                GitHubActions {
                    owner: owner.clone(),
                    repo: repo.clone(),
                },
                annotations,
            ))),
        }
    }
}

/// A constraint that must hold on the same layer as the annotations required.
#[derive(Debug)]
struct WithAnnotations<C> {
    inner: C,
    annotations: Option<AnnotationVerifier>,
}

impl<C> WithAnnotations<C> {
    fn new(inner: C, annotations: &Annotations) -> Self {
        Self {
            inner,
            annotations: annotations
                .clone()
                .map(|annotations| AnnotationVerifier { annotations }),
        }
    }
}

impl<C: VerificationConstraint> VerificationConstraint for WithAnnotations<C> {
    fn verify(&self, layer: &SignatureLayer) -> Result<bool> {
        if !self.inner.verify(layer)? {
            return Ok(false);
        }
        self.annotations
            .as_ref()
            .map_or(Ok(true), |a| a.verify(layer))
    }
}

/// Issuer equal and certificate SAN (e-mail or URI) equal.
#[derive(Debug)]
struct KeylessExact {
    email: CertSubjectEmailVerifier,
    uri: CertSubjectUrlVerifier,
}

impl KeylessExact {
    fn new(issuer: &str, subject: &str) -> Self {
        Self {
            email: CertSubjectEmailVerifier {
                email: StringVerifier::ExactMatch(subject.to_owned()),
                issuer: Some(StringVerifier::ExactMatch(issuer.to_owned())),
            },
            uri: CertSubjectUrlVerifier {
                url: subject.to_owned(),
                issuer: issuer.to_owned(),
            },
        }
    }
}

impl VerificationConstraint for KeylessExact {
    fn verify(&self, layer: &SignatureLayer) -> Result<bool> {
        Ok(self.email.verify(layer)? || self.uri.verify(layer)?)
    }
}

fn subject_text(subject: &CertificateSubject) -> &str {
    match subject {
        CertificateSubject::Email(e) => e,
        CertificateSubject::Uri(u) => u,
    }
}

/// Issuer equal and subject starting with a URL prefix. The prefix gets a
/// trailing `/` so `https://github.com/acme` cannot match `https://github.com/acme-evil/..`.
#[derive(Debug)]
struct KeylessUrlPrefix {
    issuer: String,
    prefix: String,
}

impl KeylessUrlPrefix {
    fn new(issuer: &str, prefix: &str) -> Result<Self> {
        let parsed = Url::parse(prefix)
            .map_err(|e| SigstoreError::VerificationConstraintError(format!("{prefix}: {e}")))?;
        let prefix = if parsed.as_str().ends_with('/') {
            parsed
        } else {
            Url::parse(&format!("{prefix}/"))
                .map_err(|e| SigstoreError::VerificationConstraintError(format!("{prefix}: {e}")))?
        };
        Ok(Self {
            issuer: issuer.to_owned(),
            prefix: prefix.to_string(),
        })
    }
}

impl VerificationConstraint for KeylessUrlPrefix {
    fn verify(&self, layer: &SignatureLayer) -> Result<bool> {
        Ok(layer.certificate_signature.as_ref().is_some_and(|cert| {
            cert.issuer.as_deref() == Some(self.issuer.as_str())
                && subject_text(&cert.subject).starts_with(&self.prefix)
        }))
    }
}

/// A `github.com/OWNER/REPO` location.
struct GitHubRepo {
    owner: String,
    repo: String,
}

impl GitHubRepo {
    fn parse(url: &str) -> Option<Self> {
        let url = Url::parse(url).ok()?;
        if url.host_str() != Some("github.com") {
            return None;
        }
        let mut segments = url.path_segments()?;
        Some(Self {
            owner: segments.next()?.to_owned(),
            repo: segments.next()?.to_owned(),
        })
    }
}

/// A keyless signature made inside a GitHub Actions workflow of `owner` (and
/// `repo` when given), judged by the certificate's workflow-repository extension
/// rather than by the subject alone, since the subject names the workflow file,
/// which may live in another repository.
#[derive(Debug)]
struct GitHubActions {
    owner: String,
    repo: Option<String>,
}

impl VerificationConstraint for GitHubActions {
    fn verify(&self, layer: &SignatureLayer) -> Result<bool> {
        let Some(cert) = &layer.certificate_signature else {
            return Ok(false);
        };
        if cert.issuer.as_deref() != Some(GITHUB_ACTIONS_ISSUER) {
            return Ok(false);
        }
        let CertificateSubject::Uri(subject) = &cert.subject else {
            return Ok(false);
        };
        if GitHubRepo::parse(subject).is_none() {
            return Err(SigstoreError::VerificationConstraintError(format!(
                "The certificate subject url doesn't seem a GitHub valid one, despite the issuer being the GitHub Action one: {subject}"
            )));
        }
        let repository = cert.github_workflow_repository.as_ref().ok_or_else(|| {
            SigstoreError::VerificationConstraintError(
                "The certificate is missing the github_workflow_repository extension despite being a GitHub Action one".to_owned(),
            )
        })?;
        let signer = GitHubRepo::parse(&format!("https://github.com/{repository}")).ok_or_else(|| {
            SigstoreError::VerificationConstraintError(format!(
                "The certificate doesn't have a valid github_workflow_repository extension, despite the issuer being the GitHub Action one: {repository}"
            ))
        })?;
        Ok(signer.owner == self.owner && self.repo.as_ref().is_none_or(|r| *r == signer.repo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_dump_names_kind_fields_and_annotations() {
        let sig = Signature::PubKey {
            owner: None,
            key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
            annotations: None,
        };
        assert_eq!(
            serde_yaml::to_string(&sig).unwrap(),
            "kind: pubKey\nowner: null\nkey: |\n  -----BEGIN PUBLIC KEY-----\n  AAAA\n  -----END PUBLIC KEY-----\nannotations: null\n"
        );
        let sig = Signature::GithubAction {
            owner: "acme".into(),
            repo: Some("app".into()),
            annotations: Some(BTreeMap::from([("env".into(), "prod".into())])),
        };
        assert_eq!(
            serde_yaml::to_string(&sig).unwrap(),
            "kind: githubAction\nowner: acme\nrepo: app\nannotations:\n  env: prod\n"
        );
        let sig = Signature::GenericIssuer {
            issuer: "https://issuer".into(),
            subject: Subject::Equal("alice@example.com".into()),
            annotations: None,
        };
        let yaml = serde_yaml::to_string(&sig).unwrap();
        assert!(yaml.starts_with("kind: genericIssuer\nissuer: https://issuer\nsubject: "));
        assert!(yaml.contains("alice@example.com"));
    }

    #[test]
    fn url_prefix_gets_a_trailing_slash() {
        let p = KeylessUrlPrefix::new("i", "https://github.com/acme").unwrap();
        assert_eq!(p.prefix, "https://github.com/acme/");
        let p = KeylessUrlPrefix::new("i", "https://github.com/acme/").unwrap();
        assert_eq!(p.prefix, "https://github.com/acme/");
        assert!(KeylessUrlPrefix::new("i", "not a url").is_err());
    }

    #[test]
    fn github_repo_parsing() {
        let r = GitHubRepo::parse(
            "https://github.com/acme/app/.github/workflows/ci.yml@refs/heads/main",
        )
        .unwrap();
        assert_eq!((r.owner.as_str(), r.repo.as_str()), ("acme", "app"));
        assert!(GitHubRepo::parse("https://gitlab.com/acme/app").is_none());
        assert!(GitHubRepo::parse("https://github.com/acme").is_none());
    }
}
