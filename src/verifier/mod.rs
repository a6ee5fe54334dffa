//! Host calls: the seam between the policy's logic and the Kubewarden host.
//!
//! The logic talks to a [`Verifier`]; in the wasm module that is `HostVerifier`,
//! which asks the host over waPC; in tests it is a fake. The seam knows image
//! references and nothing of the settings: a [`Signer`] is what the host checks in
//! one call, and the settings are built out of signers.

mod check;
mod failure;
mod host;
mod manifest;

pub use check::{Check, Signer, Verifier};
pub use failure::{Failure, FailureClass};
pub(crate) use host::HostVerifier;
pub use manifest::{EntryAnnotations, IndexEntry, Manifest, Platform};
