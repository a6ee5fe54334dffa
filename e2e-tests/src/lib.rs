//! A stand-in for the Kubewarden policy-server: loads a waPC policy, serves the host
//! capabilities with real Sigstore checks, and builds signed-image fixtures in a local registry;
//! and runs the end-to-end suite on it or on the real Kubewarden stack (`backend`).

pub mod backend;
pub mod bench;
pub mod fixtures;
pub mod host;
pub mod load;
pub mod policy_artifact;
pub mod policy_server;
mod supervised;
