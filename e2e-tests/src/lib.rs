//! The end-to-end side of verify-image-signatures: signed-image fixtures in a local registry,
//! and the real Kubewarden host (`kwctl`, `policy-server`) that the suite, the demo, the
//! benchmark and the load test run the policy in.

pub mod backend;
pub mod bench;
pub mod fixtures;
pub mod kubewarden;
pub mod load;
pub mod policy_server;
pub mod response;
mod supervised;
