//! The one vocabulary of failures: what the host answers about a check, and what the
//! policy concludes from those answers, each class named once for warnings and audit
//! records.

use std::fmt;

/// Why a check failed, in a short class and the host's words, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    /// The host's text, first line only, for registry and host errors; empty otherwise.
    pub detail: String,
}

/// The kind of a failure, short and stable. The first seven are what a host answers
/// about one check; the others are what the policy concludes about an entry or image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureClass {
    NoSignatures,
    NotSigned,
    AnnotationsMismatch,
    /// The registry could not be reached, or the connection broke during its answer.
    RegistryUnreachable,
    /// The registry answered with an error: its HTTP status, when the host gives it.
    RegistryRefused(Option<u16>),
    /// The registry served a manifest or signature layer that does not match its digest:
    /// corrupt or truncated. Never taken for a signature.
    InvalidSignatureData,
    /// Any other host error: the host's words are all the policy knows.
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
            FailureClass::RegistryUnreachable => "registry-unreachable",
            FailureClass::RegistryRefused(_) => "registry-refused",
            FailureClass::InvalidSignatureData => "invalid-signature-data",
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

    /// A host error of the policy's own making (a request it cannot encode, an answer it
    /// cannot read), in its words, trimmed.
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
    /// registry faults ([`registry_fault`]) and input errors, kept in the host's words.
    pub fn from_host_error(text: &str) -> Self {
        if text.contains("no signatures found") {
            Self::new(FailureClass::NoSignatures)
        } else if text.contains("missing signatures")
            || text.contains("Signature Layers failed verification")
        {
            Self::new(FailureClass::NotSigned)
        } else {
            Self {
                class: registry_fault(text).unwrap_or(FailureClass::HostError),
                detail: trim_host_text(text),
            }
        }
    }
}

/// The registry fault a host's error text reports, in the words of the real host's
/// registry client (kwctl and policy-server 1.31 and 1.35 alike; `tests/real_host_texts.rs`
/// holds the texts recorded through a misbehaving registry):
/// - `Digest error: Invalid digest. Expected ..., got ...`: what the registry served
///   does not match its digest (a corrupt manifest fetched by digest, a truncated layer);
/// - `Server error: url ..., code: 503, message: ...`: an error status whose body the
///   host's client does not read as a registry error (500, 503), `Not authorized: url ...`
///   (401), or `Registry error: url ..., envelope: OCI API errors: [...]`: the registry's
///   own errors (429 `TOOMANYREQUESTS`, 404 `MANIFEST_UNKNOWN`), whose status the host
///   does not give;
/// - `error sending request for url (...)`: no connection (refused, or a host name that
///   does not resolve); `error decoding response body`: the connection broke during the
///   answer.
///
/// Image references hold no spaces, so none of these can come from an image's name.
fn registry_fault(text: &str) -> Option<FailureClass> {
    if text.contains("Digest error: ") {
        Some(FailureClass::InvalidSignatureData)
    } else if let Some(status) = server_error_status(text) {
        Some(FailureClass::RegistryRefused(Some(status)))
    } else if text.contains("Not authorized: url ") {
        Some(FailureClass::RegistryRefused(Some(401)))
    } else if text.contains("Registry error: url ") {
        Some(FailureClass::RegistryRefused(None))
    } else if text.contains("error sending request for url")
        || text.contains("error decoding response body")
    {
        Some(FailureClass::RegistryUnreachable)
    } else {
        None
    }
}

/// The `NNN` of `Server error: url URL, code: NNN, message: ...`.
fn server_error_status(text: &str) -> Option<u16> {
    let (_, answer) = text.split_once("Server error: url ")?;
    let (_, code) = answer.split_once(", code: ")?;
    code.get(..3)?.parse().ok()
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.class {
            FailureClass::NoSignatures => f.write_str("no signatures"),
            FailureClass::NotSigned => f.write_str("not signed by the required signer"),
            FailureClass::AnnotationsMismatch => {
                f.write_str("signed by the required signer, but annotations mismatch")
            }
            FailureClass::RegistryUnreachable => {
                write!(f, "registry unreachable: {}", self.detail)
            }
            FailureClass::RegistryRefused(Some(status)) => {
                write!(f, "refused by registry (HTTP {status}): {}", self.detail)
            }
            FailureClass::RegistryRefused(None) => {
                write!(f, "refused by registry: {}", self.detail)
            }
            FailureClass::InvalidSignatureData => {
                write!(f, "invalid signature data: {}", self.detail)
            }
            FailureClass::HostError => write!(f, "registry or host error: {}", self.detail),
            // The policy's conclusions are never a host's answer; named all the same.
            concluded => f.write_str(concluded.as_str()),
        }
    }
}

const MAX_DETAIL: usize = 200;

/// Keeps the first line of a host's text, without the transport's and the verifier's
/// prefixes and never a PEM block, at most [`MAX_DETAIL`] characters.
fn trim_host_text(text: &str) -> String {
    let mut line = text.lines().next().unwrap_or_default().trim();
    // The last opens every registry error of `v2/verify`, which the class names.
    for prefix in [
        "Host error:",
        "Callback evaluation failure:",
        "failed to get image trusted layers:",
    ] {
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
        assert_eq!(registry.class, FailureClass::RegistryUnreachable);
        assert_eq!(
            registry.detail,
            "error sending request for url (http://127.0.0.1:1/v2/): connection refused"
        );
    }

    #[test]
    fn registry_faults_are_named_with_the_hosts_words() {
        let cases = [
            (
                "failed to get image trusted layers: Cannot fetch manifest of r/a:v1: Server error: url http://r/v2/a/manifests/v1, code: 503, message: unavailable",
                FailureClass::RegistryRefused(Some(503)),
                "refused by registry (HTTP 503): Cannot fetch manifest of r/a:v1: Server error: url http://r/v2/a/manifests/v1, code: 503, message: unavailable",
            ),
            (
                "Cannot fetch manifest of r/a:v1: Not authorized: url http://r/v2/a/manifests/v1",
                FailureClass::RegistryRefused(Some(401)),
                "refused by registry (HTTP 401): Cannot fetch manifest of r/a:v1: Not authorized: url http://r/v2/a/manifests/v1",
            ),
            (
                "Registry error: url http://r/v2/a/manifests/v1, envelope: OCI API errors: [OCI API error: too many requests]",
                FailureClass::RegistryRefused(None),
                "refused by registry: Registry error: url http://r/v2/a/manifests/v1, envelope: OCI API errors: [OCI API error: too many requests]",
            ),
            (
                "Cannot pull r/a:sha256-ab.sig: Digest error: Invalid digest. Expected sha256:ab, got sha256:cd",
                FailureClass::InvalidSignatureData,
                "invalid signature data: Cannot pull r/a:sha256-ab.sig: Digest error: Invalid digest. Expected sha256:ab, got sha256:cd",
            ),
            (
                "Cannot pull r/a:sha256-ab.sig: error decoding response body",
                FailureClass::RegistryUnreachable,
                "registry unreachable: Cannot pull r/a:sha256-ab.sig: error decoding response body",
            ),
            (
                "Policy has not been granted access to the 'oci/v1/manifest_digest' host capability.",
                FailureClass::HostError,
                "registry or host error: Policy has not been granted access to the 'oci/v1/manifest_digest' host capability.",
            ),
        ];
        for (text, class, shown) in cases {
            let failure = Failure::from_host_error(text);
            assert_eq!(failure.class, class, "{text}");
            assert_eq!(failure.to_string(), shown);
        }
        // A status is read only where the host reports one.
        assert_eq!(
            server_error_status("Server error: url u, code: 5x3, message: m"),
            None
        );
        assert_eq!(server_error_status("code: 503"), None);
        let names: Vec<&str> = [
            FailureClass::RegistryUnreachable,
            FailureClass::RegistryRefused(Some(429)),
            FailureClass::RegistryRefused(None),
            FailureClass::InvalidSignatureData,
        ]
        .map(FailureClass::as_str)
        .to_vec();
        assert_eq!(
            names,
            [
                "registry-unreachable",
                "registry-refused",
                "registry-refused",
                "invalid-signature-data"
            ]
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
