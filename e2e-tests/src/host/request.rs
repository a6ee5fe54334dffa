//! Reading the admission request a policy evaluates: either a bare
//! AdmissionRequest or a whole AdmissionReview (`{"request": {...}}`), as
//! `kwctl run --request-path` accepts both.

/// The fields the real host (policy-evaluator's `AdmissionRequest`) cannot do without.
const REQUIRED_FIELDS: [&str; 5] = ["uid", "kind", "resource", "operation", "userInfo"];

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

/// The AdmissionRequest inside `input` and its uid.
pub(crate) fn admission_request(input: &Value) -> Result<(&Value, &str)> {
    let request = match input.get("request") {
        Some(inner @ Value::Object(_)) => inner,
        Some(_) => bail!("the AdmissionReview's `request` is not an object"),
        None => input,
    };
    if !request.is_object() {
        bail!("the admission request is not a JSON object");
    }
    // The real host's words, e.g. for a request without `userInfo`.
    if let Some(missing) = REQUIRED_FIELDS.iter().find(|f| request.get(**f).is_none()) {
        bail!("cannot build AdmissionRequest object from given input: missing field `{missing}`");
    }
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the admission request has no string `uid`"))?;
    Ok((request, uid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_bare_requests_and_reviews() {
        let bare = json!({"uid": "1", "kind": {}, "resource": {}, "operation": "CREATE", "userInfo": {}, "object": {}});
        assert_eq!(admission_request(&bare).unwrap(), (&bare, "1"));
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": bare});
        assert_eq!(admission_request(&review).unwrap(), (&bare, "1"));
        assert!(admission_request(&json!({"operation": "CREATE"})).is_err());
        assert!(admission_request(&json!({"request": "x"})).is_err());
        assert!(admission_request(&json!([1])).is_err());
        let mut anonymous = bare.clone();
        anonymous.as_object_mut().unwrap().remove("userInfo");
        let err = admission_request(&anonymous).unwrap_err().to_string();
        assert!(err.ends_with("missing field `userInfo`"), "{err}");
    }
}
