//! What the load sends: four kinds of AdmissionRequest, each with the one verdict it must get.

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use host_driver::{admission_review, AdmissionResponse};

use crate::bench::objects::{admission_request, deployment};
use crate::fixtures::Image;

/// A kind of request in the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// One container, signed by the rule's key: admitted, pinned to its digest.
    Signed,
    /// One container, no signature: rejected.
    Unsigned,
    /// 50 containers, 50 distinct signed images: admitted, all 50 pinned.
    Deployment50,
    /// One container that no rule matches: admitted unchanged, no host call.
    NoMatch,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::NoMatch,
        Kind::Signed,
        Kind::Unsigned,
        Kind::Deployment50,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Signed => "signed, 1 container",
            Kind::Unsigned => "unsigned, 1 container",
            Kind::Deployment50 => "signed, 50 containers / 50 images",
            Kind::NoMatch => "no rule matches, 1 container",
        }
    }
}

/// Kind of request `i`: of every 10, 4 signed, 2 unsigned, 3 unmatched and 1 of 50
/// containers, interleaved so that every client sends every kind.
pub fn kind_of(i: usize) -> Kind {
    use Kind::*;
    const PATTERN: [Kind; 10] = [
        Signed,
        NoMatch,
        Unsigned,
        Signed,
        NoMatch,
        Deployment50,
        Signed,
        Unsigned,
        NoMatch,
        Signed,
    ];
    PATTERN[i % PATTERN.len()]
}

/// The images the requests run.
pub struct MixImages<'a> {
    pub signed: &'a Image,
    pub unsigned: &'a Image,
    /// 50 distinct images, all signed.
    pub many: &'a [Image],
    /// An image no rule matches.
    pub unmatched: &'a str,
}

/// One prepared request and the check of its answer.
pub struct Request {
    pub kind: Kind,
    /// The AdmissionReview to POST, serialised once.
    pub review: Vec<u8>,
    /// The image of its first container.
    first_image: String,
    expected: Expected,
}

enum Expected {
    /// Admitted with exactly these `(path, pinned image)` replacements.
    Pinned(Vec<(String, String)>),
    /// Rejected with a message that starts with this.
    Rejected(String),
    /// Admitted unchanged.
    Unchanged,
}

impl Request {
    /// The request of each kind, in [`Kind::ALL`] order.
    pub fn all(images: &MixImages<'_>) -> Vec<Request> {
        Kind::ALL
            .iter()
            .map(|&kind| Self::new(kind, images))
            .collect()
    }

    /// A signed, one-container request for `image`.
    pub fn signed(image: &Image) -> Request {
        Self::new(
            Kind::Signed,
            &MixImages {
                signed: image,
                unsigned: image,
                many: &[],
                unmatched: "",
            },
        )
    }

    fn new(kind: Kind, images: &MixImages<'_>) -> Request {
        let image_path = |i: usize| format!("/spec/template/spec/containers/{i}/image");
        let pinned = |image: &Image| format!("{}@{}", image.reference, image.digest);
        let (running, expected): (Vec<String>, Expected) = match kind {
            Kind::Signed => (
                vec![images.signed.reference.clone()],
                Expected::Pinned(vec![(image_path(0), pinned(images.signed))]),
            ),
            Kind::Unsigned => (
                vec![images.unsigned.reference.clone()],
                Expected::Rejected(format!(
                    "1 image failed verification: spec.template.spec.containers[0] ({})",
                    images.unsigned.reference
                )),
            ),
            Kind::Deployment50 => (
                images.many.iter().map(|i| i.reference.clone()).collect(),
                Expected::Pinned(
                    images
                        .many
                        .iter()
                        .enumerate()
                        .map(|(i, image)| (image_path(i), pinned(image)))
                        .collect(),
                ),
            ),
            Kind::NoMatch => (vec![images.unmatched.to_owned()], Expected::Unchanged),
        };
        Request {
            kind,
            review: admission_review(&admission_request(deployment("storefront", &running))),
            first_image: running.first().cloned().unwrap_or_default(),
            expected,
        }
    }

    /// Whether `response` rejects this request naming its first container's image first.
    pub fn rejection_names_its_image(&self, response: &AdmissionResponse) -> bool {
        let prefix = format!("spec.template.spec.containers[0] ({}): ", self.first_image);
        !response.allowed
            && response
                .message()
                .split_once(" failed verification: ")
                .is_some_and(|(_, failures)| failures.starts_with(&prefix))
    }

    /// Whether `response` is this request's one right verdict.
    pub fn check(&self, response: &AdmissionResponse) -> Result<()> {
        let message = response.status.as_ref().and_then(|s| s.message.as_deref());
        match &self.expected {
            Expected::Pinned(replacements) => {
                ensure!(
                    response.allowed,
                    "rejected: {}",
                    message.unwrap_or_default()
                );
                let want: Vec<Value> = replacements
                    .iter()
                    .map(|(path, value)| json!({"op": "replace", "path": path, "value": value}))
                    .collect();
                let patch = response.decoded_patch().context("no readable patch")?;
                ensure!(patch == Value::Array(want), "wrong patch: {patch}");
            }
            Expected::Rejected(prefix) => {
                ensure!(!response.allowed, "admitted");
                let message = message.unwrap_or_default();
                ensure!(message.starts_with(prefix), "wrong message: {message}");
            }
            Expected::Unchanged => {
                ensure!(
                    response.allowed,
                    "rejected: {}",
                    message.unwrap_or_default()
                );
                ensure!(response.patch.is_none(), "patched: {:?}", response.patch);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use host_driver::AdmissionResponseStatus;

    fn image(name: &str) -> Image {
        Image {
            reference: format!("127.0.0.1:5000/{name}:v1"),
            digest: format!("sha256:{:064}", name.len()),
        }
    }

    #[test]
    fn every_ten_requests_hold_four_signed_two_unsigned_three_unmatched_one_large() {
        let count = |kind| (0..2000).filter(|&i| kind_of(i) == kind).count();
        assert_eq!(count(Kind::Signed), 800);
        assert_eq!(count(Kind::Unsigned), 400);
        assert_eq!(count(Kind::NoMatch), 600);
        assert_eq!(count(Kind::Deployment50), 200);
    }

    #[test]
    fn each_kind_accepts_only_its_verdict() {
        let (signed, unsigned) = (image("signed"), image("unsigned"));
        let many: Vec<Image> = (0..50).map(|i| image(&format!("many-{i:02}"))).collect();
        let requests = Request::all(&MixImages {
            signed: &signed,
            unsigned: &unsigned,
            many: &many,
            unmatched: "docker.io/library/nginx:1.27",
        });
        let patch =
            |ops: Value| base64::Engine::encode(&base64::prelude::BASE64_STANDARD, ops.to_string());
        let pin = |i: usize, image: &Image| {
            json!({"op": "replace", "path": format!("/spec/template/spec/containers/{i}/image"),
                   "value": format!("{}@{}", image.reference, image.digest)})
        };
        let allowed = |patch: Option<String>| AdmissionResponse {
            allowed: true,
            patch,
            ..AdmissionResponse::default()
        };
        let rejected = |message: String| AdmissionResponse {
            status: Some(AdmissionResponseStatus {
                message: Some(message),
                code: None,
            }),
            ..AdmissionResponse::default()
        };
        let right = [
            allowed(None),
            allowed(Some(patch(json!([pin(0, &signed)])))),
            rejected(format!(
                "1 image failed verification: spec.template.spec.containers[0] ({}): no signatures",
                unsigned.reference
            )),
            allowed(Some(patch(Value::Array(
                many.iter().enumerate().map(|(i, m)| pin(i, m)).collect(),
            )))),
        ];
        for (request, response) in requests.iter().zip(&right) {
            assert!(request.check(response).is_ok(), "{:?}", request.kind);
        }
        let wrong = [
            allowed(Some(patch(json!([pin(0, &signed)])))),
            allowed(Some(patch(json!([pin(0, &unsigned)])))),
            rejected("internal server error: deadline exceeded".into()),
            allowed(Some(patch(json!([pin(0, &many[0])])))),
        ];
        for (request, response) in requests.iter().zip(&wrong) {
            assert!(request.check(response).is_err(), "{:?}", request.kind);
        }
        for (request, response) in requests.iter().zip(right.iter().rev()) {
            assert!(request.check(response).is_err(), "{:?}", request.kind);
        }
    }
}
