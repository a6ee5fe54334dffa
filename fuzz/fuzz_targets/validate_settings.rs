//! Arbitrary bytes as settings: never a panic, and settings that `validate_settings`
//! accepts are accepted by `validate` too (else every request would be refused).
#![no_main]

use libfuzzer_sys::fuzz_target;
use verify_image_signatures::policy::{self, Verdict};
use verify_image_signatures_fuzz::Unsigned;

const REQUEST: &str = r#"{"uid":"fuzz","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"name":"a","image":"ghcr.io/acme/app:v1"},{"name":"b","image":"nginx@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]}}}"#;

fuzz_target!(|data: &[u8]| {
    if policy::validate_settings(data).is_err() {
        return;
    }
    let mut payload = format!(r#"{{"request":{REQUEST},"settings":"#).into_bytes();
    payload.extend_from_slice(data);
    payload.push(b'}');
    if let Verdict::Reject(reason) = policy::validate(&payload, &Unsigned) {
        assert!(
            !reason.starts_with("invalid settings"),
            "validate_settings accepted what validate refuses: {reason}"
        );
    }
});
