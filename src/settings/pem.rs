//! PEM contents of the settings, checked once when the host validates the settings.
//! Errors name the entry and never repeat the PEM text.

use der::Decode;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::error::SettingsError;
use super::rule::Requirement;
use crate::verifier::Signer;

pub(super) fn check_requirement(requirement: &Requirement) -> Result<(), SettingsError> {
    let id = &requirement.id;
    for (index, signer) in requirement.signers.iter().enumerate() {
        match signer {
            Signer::PubKey(key) => public_key(key).map_err(|e| {
                SettingsError::at(
                    id,
                    format!("pubKeys[{index}]"),
                    format!("not a PEM public key: {e}"),
                )
            })?,
            Signer::Certificate {
                certificate, chain, ..
            } => {
                self::certificate(certificate).map_err(|e| {
                    SettingsError::at(id, format!("certificates[{index}]"), not_a_certificate(&e))
                })?;
                // The chain is shared by every certificate of the entry: check it once.
                if index == 0 {
                    for (link, pem) in chain.iter().flatten().enumerate() {
                        self::certificate(pem).map_err(|e| {
                            SettingsError::at(
                                id,
                                format!("certificateChain[{link}]"),
                                not_a_certificate(&e),
                            )
                        })?;
                    }
                }
            }
            Signer::Keyless { .. }
            | Signer::KeylessPrefix { .. }
            | Signer::GithubActions { .. } => {}
        }
    }
    Ok(())
}

/// The bytes a PEM block encodes, or the block's text if it does not decode (which
/// [`check_requirement`] refuses first).
pub(super) fn der(pem: &str) -> Vec<u8> {
    ::pem::parse(pem).map_or_else(
        |_| pem.trim().as_bytes().to_vec(),
        ::pem::Pem::into_contents,
    )
}

fn not_a_certificate(error: &str) -> String {
    format!("not a PEM X.509 certificate: {error}")
}

fn public_key(pem: &str) -> Result<(), String> {
    let block = ::pem::parse(pem).map_err(|e| e.to_string())?;
    SubjectPublicKeyInfoOwned::from_der(block.contents())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn certificate(pem: &str) -> Result<(), String> {
    let block = ::pem::parse(pem).map_err(|e| e.to_string())?;
    Certificate::from_der(block.contents())
        .map(drop)
        .map_err(|e| e.to_string())
}
