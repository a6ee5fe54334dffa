//! The host's floor: a Kubewarden waPC policy that accepts every request and every settings
//! without reading them. What `kwctl bench` measures for it is what the host spends on any
//! policy (instance, payload, response); `make bench` subtracts it to get the policy's own
//! cost.

use wapc_guest::{register_function, CallResult};

#[no_mangle]
pub extern "C" fn wapc_init() {
    register_function("protocol_version", |_| answer(br#""v1""#));
    register_function("validate_settings", |_| answer(br#"{"valid":true}"#));
    register_function("validate", |_| answer(br#"{"accepted":true}"#));
}

fn answer(json: &[u8]) -> CallResult {
    Ok(json.to_vec())
}
