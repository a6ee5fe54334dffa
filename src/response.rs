//! The `validate` answer, in the host's ValidationResponse shape (the SDK's type,
//! field for field). A mutated object is already JSON text (the request's object with
//! image strings rewritten), so it is written as it is: neither rebuilt as a
//! `serde_json::Value` nor scanned again.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::policy::{self, Answer, Verdict};
use crate::verifier::Verifier;

#[derive(Serialize)]
struct ValidationResponse<'a> {
    accepted: bool,
    message: Option<&'a str>,
    code: Option<u16>,
    /// `null` rather than empty, as the SDK writes an answer without any.
    audit_annotations: Option<&'a BTreeMap<String, String>>,
    warnings: Option<&'a [String]>,
}

/// `validate`: the answer's bytes for one admission request, as the host receives them.
pub fn respond(payload: &[u8], verifier: &dyn Verifier) -> serde_json::Result<Vec<u8>> {
    encode(policy::answer(payload, verifier))
}

fn encode(answer: Answer) -> serde_json::Result<Vec<u8>> {
    let Answer { verdict, report } = answer;
    let (accepted, message, mutated_object) = match &verdict {
        Verdict::Accept => (true, None, None),
        Verdict::Reject(message) => (false, Some(message.as_str()), None),
        Verdict::Mutate(object) => (true, None, Some(object)),
    };
    // Sized once for the whole answer: each growth would copy what is written so far, the
    // report's text and then the mutated object. Escaping about doubles the report's text.
    let text: usize = (report.audit_annotations.iter())
        .map(|(key, value)| key.len() + value.len())
        .chain(report.warnings.iter().map(String::len))
        .chain(message.map(str::len))
        .sum();
    let mut response = Vec::with_capacity(128 + 2 * text + mutated_object.map_or(0, String::len));
    serde_json::to_writer(
        &mut response,
        &ValidationResponse {
            accepted,
            message,
            code: None,
            audit_annotations: Some(&report.audit_annotations).filter(|a| !a.is_empty()),
            warnings: Some(report.warnings.as_slice()).filter(|w| !w.is_empty()),
        },
    )?;
    if let Some(object) = mutated_object {
        // Replace the closing brace with the last field.
        response.pop();
        response.extend_from_slice(b",\"mutated_object\":");
        response.extend_from_slice(object.as_bytes());
        response.push(b'}');
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Report;
    use kubewarden_policy_sdk::response::ValidationResponse as SdkResponse;

    fn roundtrip_answer(verdict: Verdict, report: Report) -> SdkResponse {
        serde_json::from_slice(&encode(Answer { verdict, report }).unwrap()).unwrap()
    }

    fn roundtrip(verdict: Verdict) -> SdkResponse {
        roundtrip_answer(verdict, Report::default())
    }

    #[test]
    fn reads_back_as_the_sdk_type() {
        let accepted = roundtrip(Verdict::Accept);
        assert!(
            accepted.accepted && accepted.message.is_none() && accepted.mutated_object.is_none()
        );
        let rejected = roundtrip(Verdict::Reject("why".into()));
        assert!(!rejected.accepted);
        assert_eq!(rejected.message.as_deref(), Some("why"));
        let mutated = roundtrip(Verdict::Mutate(r#"{"spec": {"x": 1.50}}"#.into()));
        assert!(mutated.accepted);
        assert_eq!(
            mutated.mutated_object,
            Some(serde_json::json!({"spec": {"x": 1.5}}))
        );
    }

    #[test]
    fn warnings_and_audit_annotations_reach_the_sdk_fields() {
        let plain = roundtrip(Verdict::Accept);
        assert_eq!((plain.warnings, plain.audit_annotations), (None, None));
        let report = Report {
            warnings: vec!["w1".into(), "w2".into()],
            audit_annotations: BTreeMap::from([("image-0".into(), "{\"a\":1}".into())]),
        };
        for verdict in [
            Verdict::Reject("why".into()),
            Verdict::Mutate("{}".into()),
            Verdict::Accept,
        ] {
            let response = roundtrip_answer(verdict, report.clone());
            assert_eq!(response.warnings, Some(vec!["w1".into(), "w2".into()]));
            let annotations = response.audit_annotations.unwrap();
            assert_eq!(annotations.len(), 1);
            assert_eq!(annotations["image-0"], "{\"a\":1}");
        }
    }
}
