//! Host calls: the seam between the policy's logic and the Kubewarden host.
//!
//! The logic talks to a [`Verifier`]; in the wasm module that is [`HostVerifier`], which
//! builds each host call's payload and reads its answer, and makes the call through a
//! [`HostCall`] (waPC; in the profile, an instant answer); in tests it is a fake. The seam
//! knows image references and nothing of the settings: a [`Signer`] is what the host checks
//! in one call, and the settings are built out of signers.

mod check;
mod failure;
mod host;
mod manifest;

pub use check::{Check, Signer, Verifier};
pub use failure::{Failure, FailureClass};
pub use host::{HostCall, HostVerifier, Wapc};
pub use manifest::{EntryAnnotations, IndexEntry, Manifest, Platform};
