//! `crypto/v1/is_certificate_trusted`: is a certificate valid (at `not_after`, or
//! now) and, when a chain is given, issued for code signing by that chain?
//! The answers and reasons are the Kubewarden host's.

use chrono::{DateTime, Utc};
use kubewarden_policy_sdk::host_capabilities::crypto::{Certificate, CertificateEncoding};
use kubewarden_policy_sdk::host_capabilities::crypto_v1::{
    CertificateVerificationRequest, CertificateVerificationResponse,
};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::der::Decode;

/// DER value of the id-kp-codeSigning OID (1.3.6.1.5.5.7.3.3).
const EKU_CODE_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];

fn der_of(cert: &Certificate) -> Result<Vec<u8>, String> {
    match cert.encoding {
        CertificateEncoding::Der => Ok(cert.data.clone()),
        CertificateEncoding::Pem => match x509_cert::der::pem::decode_vec(&cert.data) {
            Ok(("CERTIFICATE", der)) => Ok(der),
            Ok(_) => Err("Certificate PEM data is not valid".to_owned()),
            Err(e) => Err(e.to_string()),
        },
    }
}

fn untrusted(reason: &str) -> CertificateVerificationResponse {
    CertificateVerificationResponse {
        trusted: false,
        reason: reason.to_owned(),
    }
}

/// Checks `req`; `Err` is a failed host call (malformed input), `Ok` carries the verdict.
pub(crate) fn is_certificate_trusted(
    req: &CertificateVerificationRequest,
) -> Result<CertificateVerificationResponse, String> {
    let der = der_of(&req.cert)
        .map_err(|_| "Certificate is not a valid DER or PEM encoded certificate".to_owned())?;
    let der = CertificateDer::from(der);
    let end_entity = EndEntityCert::try_from(&der)
        .map_err(|_| "Certificate is not a valid end-entity certificate".to_owned())?;
    let cert = x509_cert::Certificate::from_der(&der).map_err(|e| e.to_string())?;
    let validity = cert.tbs_certificate().validity();
    let now = Utc::now();

    let verification_time = match &req.not_after {
        Some(not_after) => {
            let not_after: DateTime<Utc> = DateTime::parse_from_rfc3339(not_after)
                .map_err(|_| "Timestamp not_after is not in RFC3339 format".to_owned())?
                .with_timezone(&Utc);
            let expires = validity.not_after.to_unix_duration().as_secs();
            if i64::try_from(expires).unwrap_or(i64::MAX) < not_after.timestamp() {
                return Ok(untrusted(
                    "Certificate is being used after its expiration date",
                ));
            }
            not_after
        }
        None => now,
    };
    let starts = validity.not_before.to_unix_duration().as_secs();
    if i64::try_from(starts).unwrap_or(i64::MAX) > now.timestamp() {
        return Ok(untrusted(
            "Certificate is being used before its validity date",
        ));
    }

    let Some(chain) = &req.cert_chain else {
        // No chain: the caller only asked about the validity window.
        return Ok(CertificateVerificationResponse {
            trusted: true,
            reason: String::new(),
        });
    };
    // The chain lists intermediates first and the root last.
    let mut chain_der = chain
        .iter()
        .map(|c| der_of(c).map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(root) = chain_der.pop() else {
        return Ok(untrusted(
            "Certificate not trusted: the certificate chain is empty",
        ));
    };
    let anchor: TrustAnchor<'_> = webpki::anchor_from_trusted_cert(&root)
        .map_err(|e| format!("the root certificate of the chain is not usable: {e}"))?;
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(verification_time.timestamp()).unwrap_or(0),
    ));
    let anchors = [anchor];
    let verdict = end_entity.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain_der,
        time,
        KeyUsage::required(EKU_CODE_SIGNING),
        None,
        None,
    );
    Ok(match verdict {
        Ok(_) => CertificateVerificationResponse {
            trusted: true,
            reason: String::new(),
        },
        Err(webpki::Error::InvalidSignatureForPublicKey) => {
            untrusted("Certificate is not trusted by the provided cert chain")
        }
        Err(e) => untrusted(&format!("Certificate not trusted: {e}")),
    })
}
