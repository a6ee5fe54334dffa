//! `image\npattern`: parsing never panics, normalisation is idempotent, every
//! equivalent spelling of an image is the same image, and matching is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use verify_image_signatures::image::{ImagePattern, ImageRef, Spellings};

const DOCKER_HUB_ALIASES: &[&str] = &[
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Other ways to write `image`'s registry and repository that a runtime resolves alike.
fn spellings(image: &ImageRef) -> Vec<String> {
    let full = image.to_string();
    let suffix = &full[image.name().len()..];
    let (registry, repository) = image.name().split_once('/').expect("a registry");
    let mut names = Vec::new();
    // A first component with a `.` is a registry even when it is no DNS name
    // (`a_b.c/app`): such a one takes no port and no upper case.
    let host = registry.split(':').next().unwrap_or_default();
    if host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        if !registry.contains(':') {
            names.push(format!("{registry}:443/{repository}"));
        }
        // DNS names are case-insensitive; `localhost` is a registry only in lower case.
        if registry.contains(['.', ':']) {
            names.push(format!("{}/{repository}", registry.to_ascii_uppercase()));
        }
    }
    if registry == "docker.io" {
        names.extend(
            DOCKER_HUB_ALIASES
                .iter()
                .map(|a| format!("{a}/{repository}")),
        );
        // Without a registry, as long as the first component does not read as one.
        let first = repository.split('/').next().unwrap_or_default();
        if !first.contains(['.', ':']) && first != "localhost" {
            names.push(repository.to_owned());
            // `library/` is implied for a one-component name only.
            match repository.strip_prefix("library/") {
                Some(bare) if !bare.contains('/') => names.push(bare.to_owned()),
                _ => {}
            }
        }
    }
    names.into_iter().map(|name| name + suffix).collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (image, pattern) = text.split_once('\n').unwrap_or((text, "*"));
    let pattern = ImagePattern::parse(pattern).ok();
    let Ok(image) = ImageRef::parse(image) else {
        return;
    };
    let normal = image.to_string();
    assert_eq!(
        ImageRef::parse(&normal).as_ref(),
        Ok(&image),
        "{normal} is not normal"
    );
    let own = ImagePattern::parse(&normal).expect("an image is a valid pattern");
    assert!(
        own.may_match(&Spellings::new(&image, [])),
        "{normal} does not match itself"
    );
    // What the runtime pulls by: the digest when there is one (a tag beside it is ignored).
    let pulled = match image.digest() {
        Some(digest) => format!("{}@{digest}", image.name()),
        None => normal.clone(),
    };
    let exact = ImagePattern::parse(&pulled).expect("an image is a valid pattern");
    assert!(
        exact.surely_matches(&image),
        "{pulled} does not exempt {normal}"
    );
    for spelling in spellings(&image) {
        assert_eq!(
            ImageRef::parse(&spelling).as_ref(),
            Ok(&image),
            "{spelling} vs {normal}"
        );
    }
    if let Some(pattern) = pattern {
        assert!(!pattern.surely_matches(&image) || pattern.may_match(&Spellings::new(&image, [])));
    }
});
