//! A stand-in for the Kubewarden policy-server: loads a waPC policy, serves the host
//! capabilities with real Sigstore checks, and builds signed-image fixtures in a local registry.

pub mod fixtures;
pub mod host;
