//! Dispatch of the guest's host calls (`__host_call`) to the capabilities this
//! host serves, with the real host's failure texts. A failure is always a failed
//! host call (an `Err` here), never a payload.

use std::sync::Arc;

use kubewarden_policy_sdk::host_capabilities::crypto_v1::CertificateVerificationRequest;
use kubewarden_policy_sdk::host_capabilities::SigstoreVerificationInputV2;
use serde_json::Value;
use tokio::runtime::Handle;

use super::bench::InstantAnswers;
use super::crypto::is_certificate_trusted;
use super::registry::Registry;
use super::stats::StatsRecorder;
use super::verify::SigstoreVerifier;

/// What the guest receives when a host call fails.
pub(crate) type HostCallError = Box<dyn std::error::Error + Send + Sync>;

/// The prefix the real host puts on every error its callback handler reports.
fn callback_failure(text: impl std::fmt::Display) -> HostCallError {
    format!("Callback evaluation failure: {text}").into()
}

pub(crate) struct Capabilities {
    pub(crate) verifier: SigstoreVerifier,
    pub(crate) registry: Registry,
    pub(crate) stats: Arc<StatsRecorder>,
    /// The async runtime the registry work runs on; host calls arrive on the
    /// policy's worker thread, which blocks on it.
    pub(crate) runtime: Handle,
    /// Canned answers that replace the registry, for benchmarks of the policy alone.
    pub(crate) instant_answers: Option<InstantAnswers>,
}

impl Capabilities {
    /// Serves one host call.
    pub(crate) fn dispatch(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, HostCallError> {
        if binding != "kubewarden" {
            return Err(format!("unknown binding: {binding}").into());
        }
        self.stats.record_call(namespace, operation);
        if let Some(answer) = self
            .instant_answers
            .as_ref()
            .and_then(|canned| canned.answer(namespace, operation))
        {
            return Ok(answer);
        }
        match (namespace, operation) {
            ("tracing", "log") => {
                log_guest_event(payload);
                Ok(Vec::new())
            }
            ("oci", "v2/verify") => {
                // A payload the SDK type refuses fails with serde's own text.
                let input: SigstoreVerificationInputV2 = serde_json::from_slice(payload)?;
                self.runtime
                    .block_on(self.verifier.verify(input))
                    .map_err(|e| e.to_string().into())
            }
            ("oci", "v1/manifest_digest") => {
                let image: String = serde_json::from_slice(payload)?;
                self.registry_answer(self.registry.manifest_digest(&image))
            }
            ("oci", "v1/oci_manifest") => {
                let image: String = serde_json::from_slice(payload)?;
                self.registry_answer(self.registry.manifest(&image))
            }
            ("oci", "v1/oci_manifest_config") => {
                let image: String = serde_json::from_slice(payload)?;
                self.registry_answer(self.registry.manifest_and_config(&image))
            }
            ("crypto", "v1/is_certificate_trusted") => {
                let req: CertificateVerificationRequest = serde_json::from_slice(payload)?;
                let answer = is_certificate_trusted(&req).map_err(callback_failure)?;
                Ok(serde_json::to_vec(&answer)?)
            }
            ("tracing" | "oci" | "crypto" | "net" | "kubernetes", _) => {
                Err(format!("unknown operation: {operation}").into())
            }
            _ => Err(format!("unknown namespace: {namespace}").into()),
        }
    }

    fn registry_answer(
        &self,
        request: impl std::future::Future<Output = Result<impl serde::Serialize, String>>,
    ) -> Result<Vec<u8>, HostCallError> {
        let value = self.runtime.block_on(request).map_err(callback_failure)?;
        Ok(serde_json::to_vec(&value)?)
    }
}

/// Prints a guest log event (`{"level":..,"message":..,...}`) to stderr. A
/// malformed event is reported but never fails the guest, as on the real host.
fn log_guest_event(payload: &[u8]) {
    match serde_json::from_slice::<serde_json::Map<String, Value>>(payload) {
        Ok(mut event) => {
            let text = |v: Option<Value>| match v {
                Some(Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            let level = text(event.remove("level"));
            let message = text(event.remove("message"));
            if event.is_empty() {
                eprintln!("[policy {level}] {message}");
            } else {
                eprintln!("[policy {level}] {message} {}", Value::Object(event));
            }
        }
        Err(e) => eprintln!(
            "[host] cannot log policy event {:?}: {e}",
            String::from_utf8_lossy(payload)
        ),
    }
}
