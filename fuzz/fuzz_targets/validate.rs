//! Arbitrary bytes as the `validate` payload: never a panic, and no mutation beyond images.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verify_image_signatures::policy;
use verify_image_signatures_fuzz::{assert_patch_touches_only_images, Signed, Unsigned};

fuzz_target!(|data: &[u8]| {
    if let policy::Verdict::Mutate(_) = policy::validate(data, &Unsigned) {
        panic!("an unsigned image was pinned");
    }
    assert_patch_touches_only_images(data, &policy::validate(data, &Signed));
});
