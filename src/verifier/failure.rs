//! The one vocabulary of failures: what the host answers about a check, and what the
//! policy concludes from those answers, each class named once for warnings and audit
//! records.

use std::fmt;

/// Why a check failed, in a short class and the host's words, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    /// The host's text, first line only, for host errors; empty otherwise.
    pub detail: String,
}

/// The kind of a failure, short and stable. The first four are what a host answers
/// about one check; the others are what the policy concludes about an entry or image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureClass {
    NoSignatures,
    NotSigned,
    AnnotationsMismatch,
    HostError,
    /// Fewer signers than required verified, for different reasons.
    TooFewSigners,
    /// No alternative of `anyOf` holds, for different reasons.
    NoAlternativeHolds,
    /// The entry verified another digest than the image's.
    DigestMismatch,
    /// No entry matches the image (`rejectUnmatchedImages`).
    Unmatched,
    /// The image is written without a digest (`requireDigest`).
    NoDigest,
}

impl FailureClass {
    /// The class's name in warnings and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::NoSignatures => "no-signatures",
            FailureClass::NotSigned => "not-signed",
            FailureClass::AnnotationsMismatch => "annotations-mismatch",
            FailureClass::HostError => "host-error",
            FailureClass::TooFewSigners => "too-few-signers",
            FailureClass::NoAlternativeHolds => "no-alternative-holds",
            FailureClass::DigestMismatch => "digest-mismatch",
            FailureClass::Unmatched => "unmatched",
            FailureClass::NoDigest => "no-digest",
        }
    }

    /// The class all of `classes` share, or `otherwise`.
    pub fn common(classes: impl IntoIterator<Item = FailureClass>, otherwise: Self) -> Self {
        let mut classes = classes.into_iter();
        let first = classes.next().unwrap_or(otherwise);
        if classes.all(|class| class == first) {
            first
        } else {
            otherwise
        }
    }

    /// Whether the image simply lacks a signature by the signer, rather than a host
    /// error or a conclusion about several checks.
    pub fn is_unsigned(self) -> bool {
        matches!(self, FailureClass::NoSignatures | FailureClass::NotSigned)
    }
}

impl Failure {
    pub fn new(class: FailureClass) -> Self {
        Self {
            class,
            detail: String::new(),
        }
    }

    /// A registry or host error, in the host's words, trimmed.
    pub fn host(text: &str) -> Self {
        Self {
            class: FailureClass::HostError,
            detail: trim_host_text(text),
        }
    }

    /// Sorts a host's error text into a class. The real host says
    /// `no signatures found for image: ...` when the image has no trusted signature at
    /// all; `Image verification failed: missing signatures` followed by a YAML dump of
    /// the constraints (PEM keys included) when none satisfies the check, or, for
    /// certificates, `Several Signature Layers failed verification`; other texts are
    /// registry and input errors.
    pub fn from_host_error(text: &str) -> Self {
        if text.contains("no signatures found") {
            Self::new(FailureClass::NoSignatures)
        } else if text.contains("missing signatures")
            || text.contains("Signature Layers failed verification")
        {
            Self::new(FailureClass::NotSigned)
        } else {
            Self::host(text)
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            FailureClass::NoSignatures => f.write_str("no signatures"),
            FailureClass::NotSigned => f.write_str("not signed by the required signer"),
            FailureClass::AnnotationsMismatch => {
                f.write_str("signed by the required signer, but annotations mismatch")
            }
            FailureClass::HostError => write!(f, "registry or host error: {}", self.detail),
            // The policy's conclusions are never a host's answer; named all the same.
            concluded => f.write_str(concluded.as_str()),
        }
    }
}

const MAX_DETAIL: usize = 200;

/// Keeps the first line of a host's text, without the transport's prefixes and
/// never a PEM block, at most [`MAX_DETAIL`] characters.
fn trim_host_text(text: &str) -> String {
    let mut line = text.lines().next().unwrap_or_default().trim();
    for prefix in ["Host error:", "Callback evaluation failure:"] {
        line = line.strip_prefix(prefix).unwrap_or(line).trim();
    }
    let line = line.split("-----BEGIN").next().unwrap_or_default().trim();
    match line.char_indices().nth(MAX_DETAIL) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None if line.is_empty() => "no reason given".into(),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_texts_are_classified() {
        let not_signed = "Host error: Callback evaluation failure: Image verification failed: missing signatures\nThe following constraints were not satisfied:\nkind: pubKey\nkey: |\n  -----BEGIN PUBLIC KEY-----\n  MFkw\n  -----END PUBLIC KEY-----\n";
        assert_eq!(
            Failure::from_host_error(not_signed),
            Failure::new(FailureClass::NotSigned)
        );
        assert_eq!(
            Failure::from_host_error("Host error: Callback evaluation failure: verification failed: Several Signature Layers failed verification"),
            Failure::new(FailureClass::NotSigned)
        );
        assert_eq!(
            Failure::from_host_error("no signatures found for image: 127.0.0.1:5000/app:v1"),
            Failure::new(FailureClass::NoSignatures)
        );
        let registry = Failure::from_host_error(
            "Host error: Callback evaluation failure: error sending request for url (http://127.0.0.1:1/v2/): connection refused\ncaused by: ...",
        );
        assert_eq!(registry.class, FailureClass::HostError);
        assert_eq!(
            registry.detail,
            "error sending request for url (http://127.0.0.1:1/v2/): connection refused"
        );
    }

    #[test]
    fn host_text_never_carries_pem_or_runs_long() {
        let pem = Failure::from_host_error(
            "bad key -----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
        );
        assert_eq!(pem.detail, "bad key");
        let long = Failure::from_host_error(&"x".repeat(1000));
        assert_eq!(long.detail.len(), MAX_DETAIL + 3);
        assert_eq!(Failure::from_host_error("").detail, "no reason given");
    }
}
