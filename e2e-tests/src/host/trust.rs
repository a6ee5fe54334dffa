//! Sigstore trust material read from a `ClientTrustConfig` JSON file, the format
//! `kwctl --sigstore-trust-config` takes (sigstore protobuf-specs, JSON mapping).
//!
//! Only the parts the cosign verification needs are read: the Fulcio CA chains
//! (`trustedRoot.certificateAuthorities[].certChain.certificates[].rawBytes`) and
//! the Rekor keys (`trustedRoot.tlogs[].publicKey.rawBytes`, keyed by the hex of
//! `logId.keyId`, which is what a cosign bundle's `logID` names). Validity windows
//! are honoured the way sigstore-rs' own `SigstoreTrustRoot` does: a CA that is
//! not yet valid is skipped but an expired one is kept (it may have been valid at
//! signing time); a Rekor key must be inside its window.

use std::collections::BTreeMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;
use serde::Deserialize;
use sigstore::trust::ManualTrustRoot;

/// Why a trust configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustConfigError {
    #[error("cannot read Sigstore trust config {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid Sigstore ClientTrustConfig JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("invalid Sigstore ClientTrustConfig: trustedRoot field is missing")]
    MissingTrustedRoot,
    #[error("invalid Sigstore ClientTrustConfig: {field} is not valid base64: {source}")]
    Base64 {
        field: &'static str,
        source: base64::DecodeError,
    },
    #[error("invalid Sigstore ClientTrustConfig: {field} is not an RFC 3339 timestamp: {value}")]
    Timestamp { field: &'static str, value: String },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientTrustConfig {
    trusted_root: Option<TrustedRoot>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrustedRoot {
    #[serde(default)]
    tlogs: Vec<TransparencyLog>,
    #[serde(default)]
    certificate_authorities: Vec<CertificateAuthority>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransparencyLog {
    public_key: Option<PublicKey>,
    log_id: Option<LogId>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKey {
    raw_bytes: Option<String>,
    valid_for: Option<TimeRange>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogId {
    key_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CertificateAuthority {
    cert_chain: Option<CertChain>,
    valid_for: Option<TimeRange>,
}

#[derive(Deserialize)]
struct CertChain {
    #[serde(default)]
    certificates: Vec<RawBytes>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBytes {
    raw_bytes: String,
}

#[derive(Deserialize)]
struct TimeRange {
    start: Option<String>,
    end: Option<String>,
}

impl TimeRange {
    /// Same rule as sigstore-rs: no start means always valid; before the start is
    /// never valid; past the end is valid only when expired material is allowed.
    fn is_valid(&self, now: DateTime<Utc>, allow_expired: bool) -> Result<bool, TrustConfigError> {
        let Some(start) = parse_time("validFor.start", self.start.as_deref())? else {
            return Ok(true);
        };
        if now < start {
            return Ok(false);
        }
        if allow_expired {
            return Ok(true);
        }
        Ok(parse_time("validFor.end", self.end.as_deref())?.is_none_or(|end| now <= end))
    }
}

fn parse_time(
    field: &'static str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, TrustConfigError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| TrustConfigError::Timestamp {
                    field,
                    value: v.to_owned(),
                })
        })
        .transpose()
}

fn valid(range: Option<&TimeRange>, allow_expired: bool) -> Result<bool, TrustConfigError> {
    range.map_or(Ok(true), |r| r.is_valid(Utc::now(), allow_expired))
}

fn decode(field: &'static str, value: &str) -> Result<Vec<u8>, TrustConfigError> {
    STANDARD
        .decode(value)
        .map_err(|source| TrustConfigError::Base64 { field, source })
}

/// Fulcio CA certificates and Rekor keys to verify keyless signatures with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustRoot {
    fulcio_certs: Vec<Vec<u8>>,
    rekor_keys: BTreeMap<String, Vec<u8>>,
}

impl TrustRoot {
    /// Builds a trust root from DER material directly (tests that mint their own CA).
    pub fn new(fulcio_certs: Vec<Vec<u8>>, rekor_keys: BTreeMap<String, Vec<u8>>) -> Self {
        Self {
            fulcio_certs,
            rekor_keys,
        }
    }

    /// Parses a `ClientTrustConfig` JSON document.
    pub fn from_client_trust_config(json: &[u8]) -> Result<Self, TrustConfigError> {
        let config: ClientTrustConfig = serde_json::from_slice(json)?;
        let root = config
            .trusted_root
            .ok_or(TrustConfigError::MissingTrustedRoot)?;

        let mut fulcio_certs = Vec::new();
        for ca in &root.certificate_authorities {
            if !valid(ca.valid_for.as_ref(), true)? {
                continue;
            }
            for cert in ca.cert_chain.iter().flat_map(|c| &c.certificates) {
                fulcio_certs.push(decode(
                    "certificateAuthorities[].certChain.certificates[].rawBytes",
                    &cert.raw_bytes,
                )?);
            }
        }

        let mut rekor_keys = BTreeMap::new();
        for tlog in &root.tlogs {
            let (Some(key), Some(log_id)) = (&tlog.public_key, &tlog.log_id) else {
                continue;
            };
            let Some(raw) = &key.raw_bytes else { continue };
            if !valid(key.valid_for.as_ref(), false)? {
                continue;
            }
            let key_id = hex::encode(decode("tlogs[].logId.keyId", &log_id.key_id)?);
            rekor_keys.insert(key_id, decode("tlogs[].publicKey.rawBytes", raw)?);
        }

        Ok(Self {
            fulcio_certs,
            rekor_keys,
        })
    }

    /// Reads and parses a `ClientTrustConfig` JSON file.
    pub fn from_file(path: &Path) -> Result<Self, TrustConfigError> {
        let bytes = std::fs::read(path).map_err(|source| TrustConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_client_trust_config(&bytes)
    }

    /// DER certificates of the Fulcio CAs (roots and intermediates alike).
    pub fn fulcio_certs(&self) -> &[Vec<u8>] {
        &self.fulcio_certs
    }

    /// DER public keys of Rekor, keyed by hex(sha256(key)) as in a bundle's `logID`.
    pub fn rekor_keys(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.rekor_keys
    }

    /// The form `sigstore::cosign::ClientBuilder::with_trust_repository` takes.
    pub(crate) fn manual_trust_root(&self) -> ManualTrustRoot<'_> {
        ManualTrustRoot {
            fulcio_certs: self
                .fulcio_certs
                .iter()
                .map(|c| CertificateDer::from(c.as_slice()))
                .collect(),
            rekor_keys: self.rekor_keys.clone(),
            ctfe_keys: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(data: &[u8]) -> String {
        STANDARD.encode(data)
    }

    #[test]
    fn reads_fulcio_chains_and_rekor_keys() {
        let config = json!({
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [{
                    "baseUrl": "https://rekor.example",
                    "hashAlgorithm": "SHA2_256",
                    "publicKey": {
                        "rawBytes": b64(b"rekor-der"),
                        "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                        "validFor": {"start": "2021-01-12T11:53:27Z"}
                    },
                    "logId": {"keyId": b64(&[0xab, 0xcd])}
                }],
                "certificateAuthorities": [{
                    "subject": {"organization": "example", "commonName": "fulcio"},
                    "uri": "https://fulcio.example",
                    "certChain": {"certificates": [
                        {"rawBytes": b64(b"intermediate")},
                        {"rawBytes": b64(b"root")}
                    ]},
                    "validFor": {"start": "2021-03-07T03:20:29.000Z", "end": "2022-12-31T23:59:59.999Z"}
                }],
                "ctlogs": [],
                "timestampAuthorities": []
            },
            "signingConfig": {}
        });
        let root = TrustRoot::from_client_trust_config(config.to_string().as_bytes()).unwrap();
        // The CA expired in 2022 but is kept: it may have issued still-verifiable leaves.
        assert_eq!(
            root.fulcio_certs(),
            &[b"intermediate".to_vec(), b"root".to_vec()]
        );
        assert_eq!(
            root.rekor_keys(),
            &BTreeMap::from([("abcd".to_owned(), b"rekor-der".to_vec())])
        );
        let manual = root.manual_trust_root();
        assert_eq!(manual.fulcio_certs.len(), 2);
        assert_eq!(manual.rekor_keys.len(), 1);
    }

    #[test]
    fn skips_material_outside_its_validity_window() {
        let config = json!({"trustedRoot": {
            "tlogs": [
                {"publicKey": {"rawBytes": b64(b"expired"), "validFor": {"start": "2020-01-01T00:00:00Z", "end": "2021-01-01T00:00:00Z"}}, "logId": {"keyId": b64(&[1])}},
                {"publicKey": {"rawBytes": b64(b"future"), "validFor": {"start": "2999-01-01T00:00:00Z"}}, "logId": {"keyId": b64(&[2])}},
                {"publicKey": {"rawBytes": b64(b"current")}, "logId": {"keyId": b64(&[3])}}
            ],
            "certificateAuthorities": [
                {"certChain": {"certificates": [{"rawBytes": b64(b"future-ca")}]}, "validFor": {"start": "2999-01-01T00:00:00Z"}}
            ]
        }});
        let root = TrustRoot::from_client_trust_config(config.to_string().as_bytes()).unwrap();
        assert!(root.fulcio_certs().is_empty());
        assert_eq!(
            root.rekor_keys(),
            &BTreeMap::from([("03".to_owned(), b"current".to_vec())])
        );
    }

    #[test]
    fn rejects_malformed_configs() {
        assert!(matches!(
            TrustRoot::from_client_trust_config(b"{}"),
            Err(TrustConfigError::MissingTrustedRoot)
        ));
        assert!(matches!(
            TrustRoot::from_client_trust_config(b"not json"),
            Err(TrustConfigError::Json(_))
        ));
        let bad_b64 = json!({"trustedRoot": {"certificateAuthorities": [
            {"certChain": {"certificates": [{"rawBytes": "%%%"}]}}
        ]}});
        assert!(matches!(
            TrustRoot::from_client_trust_config(bad_b64.to_string().as_bytes()),
            Err(TrustConfigError::Base64 { .. })
        ));
        let bad_time = json!({"trustedRoot": {"tlogs": [
            {"publicKey": {"rawBytes": b64(b"k"), "validFor": {"start": "yesterday"}}, "logId": {"keyId": b64(&[1])}}
        ]}});
        assert!(matches!(
            TrustRoot::from_client_trust_config(bad_time.to_string().as_bytes()),
            Err(TrustConfigError::Timestamp { .. })
        ));
    }
}
