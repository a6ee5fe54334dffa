//! verify-image-signatures: a Kubewarden policy that verifies the Sigstore signatures
//! of every container image of a workload, and can pin verified images to their digest.
//!
//! This file only wires the waPC entry points; the policy is in [`policy`].
//!
//! The public surface is what the fuzz targets (`fuzz/`) and the integration tests
//! (`tests/`) drive the policy through; every other module is private:
//!
//! - [`policy::validate`], [`policy::validate_settings`] and [`policy::Verdict`]: the
//!   policy as a pure function of the payload and a verifier;
//! - [`response::respond`]: the `validate` answer's bytes, as the host receives them;
//! - [`verifier`]: the [`verifier::Verifier`] trait that fakes implement, with the
//!   [`verifier::Check`] it answers and the [`verifier::Failure`] it may give, and the
//!   [`verifier::HostVerifier`] behind a [`verifier::HostCall`] (the profile's seam);
//! - [`image::ImageRef`], [`image::ImagePattern`] and [`image::Spellings`]: references
//!   and patterns, for the properties of their normalisation;
//! - [`settings::accepted_keys`]: the settings keys, checked against the documentation.

mod evaluation;
pub mod image;
mod mutation;
mod plan;
pub mod policy;
mod rejection;
mod report;
mod request;
pub mod response;
pub mod settings;
mod update;
mod verdict;
pub mod verifier;
mod workload;

use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use wapc_guest::{register_function, CallResult};

use verifier::{HostVerifier, Wapc};

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
    Ok(response::respond(payload, &HostVerifier(Wapc))?)
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
