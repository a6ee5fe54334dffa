//! PEM contents of the settings, checked once when the host validates the settings.
//! Errors name the entry and never repeat the PEM text.

use der::DecodePem;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

use super::{Requirement, Signer};

pub(super) fn check_requirement(requirement: &Requirement) -> Result<(), String> {
    let id = &requirement.id;
    for (index, signer) in requirement.signers.iter().enumerate() {
        match signer {
            Signer::PubKey(key) => public_key(key)
                .map_err(|e| format!("{id}.pubKeys[{index}]: not a PEM public key: {e}"))?,
            Signer::Certificate {
                certificate, chain, ..
            } => {
                self::certificate(certificate).map_err(|e| {
                    format!("{id}.certificates[{index}]: not a PEM X.509 certificate: {e}")
                })?;
                // The chain is shared by every certificate of the entry: check it once.
                if index == 0 {
                    for (link, pem) in chain.iter().flatten().enumerate() {
                        self::certificate(pem).map_err(|e| {
                            format!(
                                "{id}.certificateChain[{link}]: not a PEM X.509 certificate: {e}"
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

fn public_key(pem: &str) -> Result<(), der::Error> {
    SubjectPublicKeyInfoOwned::from_pem(pem.trim()).map(drop)
}

fn certificate(pem: &str) -> Result<(), der::Error> {
    Certificate::from_pem(pem.trim()).map(drop)
}
