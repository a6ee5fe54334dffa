//! verify-image-signatures: a Kubewarden policy that verifies the Sigstore signatures
//! of every container image of a workload, and can pin verified images to their digest.
//!
//! This file only wires the waPC entry points; the policy is in [`policy`].

pub mod evaluation;
pub mod image;
pub mod mutation;
pub mod plan;
pub mod policy;
pub mod rejection;
pub mod report;
pub mod request;
pub mod response;
pub mod settings;
pub mod update;
pub mod verdict;
pub mod verifier;
pub mod workload;

use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use wapc_guest::{register_function, CallResult};

use verifier::HostVerifier;

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("validate", validate);
    register_function("validate_settings", validate_settings);
    register_function(
        "protocol_version",
        kubewarden_policy_sdk::protocol_version_guest,
    );
}

fn validate(payload: &[u8]) -> CallResult {
    Ok(response::encode(policy::answer(payload, &HostVerifier))?)
}

fn validate_settings(payload: &[u8]) -> CallResult {
    let response = match policy::validate_settings(payload) {
        Ok(()) => SettingsValidationResponse {
            valid: true,
            message: None,
        },
        Err(message) => SettingsValidationResponse {
            valid: false,
            message: Some(message),
        },
    };
    Ok(serde_json::to_vec(&response)?)
}
