//! A stand-in for the Kubewarden policy-server: loads a waPC policy, serves the host
//! capabilities with real Sigstore checks, and builds signed-image fixtures in a local registry;
//! and ships the policy: annotated with its metadata and published as an OCI artifact.

pub mod bench;
pub mod fixtures;
pub mod host;
pub mod load;
pub mod policy_artifact;
pub mod policy_server;
mod supervised;
