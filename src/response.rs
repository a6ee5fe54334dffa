//! The `validate` answer, in the host's ValidationResponse shape (the SDK's type,
//! field for field). A mutated object is already JSON text (the request's object with
//! image strings rewritten), so it is written as it is: neither rebuilt as a
//! `serde_json::Value` nor scanned again.

use serde::Serialize;

use crate::policy::Verdict;

#[derive(Serialize)]
struct ValidationResponse<'a> {
    accepted: bool,
    message: Option<&'a str>,
    code: Option<u16>,
    audit_annotations: Option<()>,
    warnings: Option<()>,
}

pub fn encode(verdict: Verdict) -> serde_json::Result<Vec<u8>> {
    let (accepted, message, mutated_object) = match &verdict {
        Verdict::Accept => (true, None, None),
        Verdict::Reject(message) => (false, Some(message.as_str()), None),
        Verdict::Mutate(object) => (true, None, Some(object)),
    };
    let mut response = serde_json::to_vec(&ValidationResponse {
        accepted,
        message,
        code: None,
        audit_annotations: None,
        warnings: None,
    })?;
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
    use kubewarden_policy_sdk::response::ValidationResponse as SdkResponse;

    fn roundtrip(verdict: Verdict) -> SdkResponse {
        serde_json::from_slice(&encode(verdict).unwrap()).unwrap()
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
}
