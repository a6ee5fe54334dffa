//! The floors of `make bench`: a Kubewarden waPC policy that answers every request and every
//! settings without reading them. Built plain, it makes no host call and accepts: what
//! `kwctl bench` measures for it is what the host spends on any policy (instance, payload,
//! response). Built with `FLOOR_CASE` (build.rs), it makes one case's host calls, with the
//! payloads the policy sent, and gives the policy's answer: what the host spends on that case
//! whatever the policy does around the calls. Built to read, it first reads its whole payload
//! once with serde_json, every value skipped: the least a policy that reads its request with
//! serde pays on top.

use serde::de::IgnoredAny;
use wapc_guest::{host_call, register_function, CallResult};

/// One host call, as the policy made it.
struct Call {
    binding: &'static str,
    namespace: &'static str,
    operation: &'static str,
    payload: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/case.rs"));

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("protocol_version", |_| Ok(br#""v1""#.to_vec()));
    register_function("validate_settings", |_| Ok(br#"{"valid":true}"#.to_vec()));
    register_function("validate", validate);
}

/// The payload read if the case says so, the calls, their answers left unread, then the answer.
fn validate(payload: &[u8]) -> CallResult {
    if READ {
        serde_json::from_slice::<IgnoredAny>(payload)?;
    }
    for call in CALLS {
        host_call(call.binding, call.namespace, call.operation, call.payload)?;
    }
    Ok(ANSWER.to_vec())
}
