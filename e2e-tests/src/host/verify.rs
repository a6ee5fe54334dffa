//! `oci/v2/verify`: Sigstore (cosign) signature verification against a registry,
//! with the request semantics and failure texts of the Kubewarden host.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use kubewarden_policy_sdk::host_capabilities::SigstoreVerificationInputV2;
use serde_json::json;
use sigstore::cosign::verification_constraint::{
    AnnotationVerifier, CertificateVerifier, VerificationConstraintVec,
};
use sigstore::cosign::{verify_constraints, ClientBuilder, CosignCapabilities, SignatureLayer};
use sigstore::registry::oci_reference::OciReference;
use sigstore::registry::{Auth, Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use url::Url;

use super::cache::{Origin, TtlCache};
use super::constraints::{Annotations, Signature, Subject};
use super::sources::Sources;
use super::stats::StatsRecorder;
use super::trust::TrustRoot;

/// How a verification failed, which decides the text the guest sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// The request or the registry failed the check; the real host reports these
    /// as `Callback evaluation failure: <text>`.
    Failed(String),
    /// The real host's handler panics on an unparsable `url_prefix` and the guest
    /// only learns that the callback channel closed.
    HandlerCrashed,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::Failed(text) => write!(f, "Callback evaluation failure: {text}"),
            VerifyError::HandlerCrashed => {
                f.write_str("Error obtaining response over callback channel")
            }
        }
    }
}

/// How a DSSE pre-authentication encoding starts (the signed bytes of a Sigstore bundle).
const DSSE_PAE_PREFIX: &[u8] = b"DSSEv1 ";

fn failed(text: impl Into<String>) -> VerifyError {
    VerifyError::Failed(text.into())
}

/// What a request asks for, once checked.
enum Plan {
    /// Every signature must be satisfied by at least one trusted layer.
    AllOf(Vec<Signature>),
    /// The layers must be signed by the key of a given certificate.
    Certificate {
        certificate: Vec<u8>,
        chain: Option<Vec<Vec<u8>>>,
        require_rekor_bundle: bool,
        annotations: Annotations,
    },
}

fn plan(input: SigstoreVerificationInputV2) -> Result<(String, Plan), VerifyError> {
    use SigstoreVerificationInputV2 as In;
    match input {
        In::SigstorePubKeyVerify {
            image,
            pub_keys,
            annotations,
        } => {
            if pub_keys.is_empty() {
                return Err(failed("Must provide at least one pub key"));
            }
            let sigs = pub_keys
                .into_iter()
                .map(|key| Signature::PubKey {
                    owner: None,
                    key,
                    annotations: annotations.clone(),
                })
                .collect();
            Ok((image, Plan::AllOf(sigs)))
        }
        In::SigstoreKeylessVerify {
            image,
            keyless,
            annotations,
        } => {
            if keyless.is_empty() {
                return Err(failed("Must provide keyless info"));
            }
            let sigs = keyless
                .into_iter()
                .map(|k| Signature::GenericIssuer {
                    issuer: k.issuer,
                    subject: Subject::Equal(k.subject),
                    annotations: annotations.clone(),
                })
                .collect();
            Ok((image, Plan::AllOf(sigs)))
        }
        In::SigstoreKeylessPrefixVerify {
            image,
            keyless_prefix,
            annotations,
        } => {
            if keyless_prefix.is_empty() {
                return Err(failed("Must provide keyless info"));
            }
            let sigs = keyless_prefix
                .into_iter()
                .map(|k| {
                    let prefix =
                        Url::parse(&k.url_prefix).map_err(|_| VerifyError::HandlerCrashed)?;
                    Ok(Signature::GenericIssuer {
                        issuer: k.issuer,
                        subject: Subject::UrlPrefix(prefix.to_string()),
                        annotations: annotations.clone(),
                    })
                })
                .collect::<Result<_, _>>()?;
            Ok((image, Plan::AllOf(sigs)))
        }
        In::SigstoreGithubActionsVerify {
            image,
            owner,
            repo,
            annotations,
        } => {
            if owner.is_empty() {
                return Err(failed("Must provide owner info"));
            }
            let sig = Signature::GithubAction {
                owner,
                repo,
                annotations,
            };
            Ok((image, Plan::AllOf(vec![sig])))
        }
        In::SigstoreCertificateVerify {
            image,
            certificate,
            certificate_chain,
            require_rekor_bundle,
            annotations,
        } => Ok((
            image,
            Plan::Certificate {
                certificate,
                chain: certificate_chain,
                require_rekor_bundle,
                annotations,
            },
        )),
    }
}

fn check_all_of(signatures: &[Signature], layers: &[SignatureLayer]) -> Result<(), VerifyError> {
    let unsatisfied: Vec<&Signature> = signatures
        .iter()
        .filter(|sig| match sig.verifier() {
            Ok(verifier) => {
                let constraints = [verifier];
                verify_constraints(layers, constraints.iter()).is_err()
            }
            // A key or prefix the crate cannot use is a constraint nobody satisfies.
            Err(_) => true,
        })
        .collect();
    if unsatisfied.is_empty() {
        return Ok(());
    }
    let mut text = String::from(
        "Image verification failed: missing signatures\nThe following constraints were not satisfied:\n",
    );
    for sig in unsatisfied {
        text.push_str(&serde_yaml::to_string(sig).map_err(|e| failed(e.to_string()))?);
    }
    Err(failed(text))
}

fn check_certificate(
    certificate: &[u8],
    chain: Option<&[Vec<u8>]>,
    require_rekor_bundle: bool,
    annotations: Annotations,
    layers: &[SignatureLayer],
) -> Result<(), VerifyError> {
    let chain: Option<Vec<Certificate>> = chain.map(|certs| {
        certs
            .iter()
            .map(|data| Certificate {
                data: data.clone(),
                encoding: CertificateEncoding::Pem,
            })
            .collect()
    });
    let verifier =
        CertificateVerifier::from_pem(certificate, require_rekor_bundle, chain.as_deref())
            .map_err(|e| failed(e.to_string()))?;
    let mut constraints: VerificationConstraintVec = vec![Box::new(verifier)];
    if let Some(annotations) = annotations {
        constraints.push(Box::new(AnnotationVerifier { annotations }));
    }
    verify_constraints(layers, constraints.iter())
        .map_err(|e| failed(format!("verification failed: {e}")))
}

/// How long each cache of the verifier keeps a success (errors are never kept).
pub(crate) struct Caching {
    /// Answers to identical `v2/verify` requests.
    pub(crate) verification_ttl: Duration,
    /// An image's digest and signature layers, for every request about that image: the real
    /// host's sigstore client caches registry responses per image (60 s), so checking one
    /// image against three keys reads its signatures once.
    pub(crate) registry_ttl: Duration,
}

/// A cosign client for the configured registries and trust root, plus the
/// caches the real host keeps.
pub(crate) struct SigstoreVerifier {
    // The cosign client needs `&mut self` for every registry round trip.
    client: tokio::sync::Mutex<sigstore::cosign::Client>,
    cache: TtlCache<String>,
    /// Image as requested -> (digest, trusted signature layers).
    layers: TtlCache<(String, Vec<SignatureLayer>)>,
    registry_timeout: Duration,
    stats: Arc<StatsRecorder>,
}

impl SigstoreVerifier {
    pub(crate) fn new(
        sources: &Sources,
        trust_root: Option<&TrustRoot>,
        caching: Caching,
        registry_timeout: Duration,
        stats: Arc<StatsRecorder>,
    ) -> anyhow::Result<Self> {
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(sources.insecure_list()),
            ..ClientConfig::default()
        };
        let builder = ClientBuilder::default().with_oci_client_config(config);
        let manual = trust_root.map(TrustRoot::manual_trust_root);
        let builder = match &manual {
            Some(root) => builder.with_trust_repository(root)?,
            None => builder,
        };
        Ok(Self {
            client: tokio::sync::Mutex::new(builder.build()?),
            cache: TtlCache::new(caching.verification_ttl),
            layers: TtlCache::new(caching.registry_ttl),
            registry_timeout,
            stats,
        })
    }

    /// Answers one `v2/verify` request: `{"is_trusted":true,"digest":..}` or the
    /// failure the guest receives as a host error.
    pub(crate) async fn verify(
        &self,
        input: SigstoreVerificationInputV2,
    ) -> Result<Vec<u8>, VerifyError> {
        let key = serde_json::to_string(&input).map_err(|e| failed(e.to_string()))?;
        let (image, plan) = plan(input)?;
        let (digest, origin) = self
            .cache
            .get_or_try_insert(key, || self.verify_uncached(&image, plan))
            .await?;
        if origin == Origin::Cached {
            self.stats.record_cache_hit();
        }
        Ok(json!({ "is_trusted": true, "digest": digest })
            .to_string()
            .into_bytes())
    }

    async fn verify_uncached(&self, image: &str, plan: Plan) -> Result<String, VerifyError> {
        self.stats.record_verification_performed();
        let ((digest, layers), _) = self
            .layers
            .get_or_try_insert(image.to_owned(), || self.trusted_layers(image))
            .await?;
        match plan {
            Plan::AllOf(signatures) => check_all_of(&signatures, &layers)?,
            Plan::Certificate {
                certificate,
                chain,
                require_rekor_bundle,
                annotations,
            } => check_certificate(
                &certificate,
                chain.as_deref(),
                require_rekor_bundle,
                annotations,
                &layers,
            )?,
        }
        Ok(digest)
    }

    /// Resolves `image` to its manifest digest and reads the signature layers of
    /// that very digest (so a tag moved meanwhile cannot mix two images), from the
    /// `sha256-<hex>.sig` tag only, as the real host's sigstore 0.13 does.
    async fn trusted_layers(
        &self,
        image: &str,
    ) -> Result<(String, Vec<SignatureLayer>), VerifyError> {
        let reference = OciReference::from_str(image).map_err(|e| failed(e.to_string()))?;
        let auth = Auth::Anonymous;
        let mut client = self.client.lock().await;
        let (_, digest) = self
            .bounded(image, client.triangulate(&reference, &auth))
            .await?;
        let pinned = OciReference::with_digest(
            reference.registry().to_owned(),
            reference.repository().to_owned(),
            digest.clone(),
        );
        self.stats.record_signatures_read();
        let mut layers = self
            .bounded(image, client.trusted_signature_layers(&auth, &pinned))
            .await?;
        // sigstore 0.15 also returns cosign v3 bundles attached as OCI referrers, whose
        // signed bytes are a DSSE envelope's PAE; the real host never reads them.
        layers.retain(|layer| !layer.raw_data.starts_with(DSSE_PAE_PREFIX));
        if layers.is_empty() {
            // The real host's text, trailing space included.
            return Err(failed(format!("no signatures found for image: {image} ")));
        }
        Ok((digest, layers))
    }

    /// Runs one registry operation under the registry timeout: the sigstore
    /// client has no connect timeout of its own.
    async fn bounded<T>(
        &self,
        image: &str,
        operation: impl std::future::Future<Output = sigstore::errors::Result<T>>,
    ) -> Result<T, VerifyError> {
        match tokio::time::timeout(self.registry_timeout, operation).await {
            // The real host's prefix for every registry error of a verification.
            Ok(result) => {
                result.map_err(|e| failed(format!("failed to get image trusted layers: {e}")))
            }
            Err(_) => Err(failed(format!(
                "registry did not answer within {}s while verifying {image}",
                self.registry_timeout.as_secs_f32()
            ))),
        }
    }
}
