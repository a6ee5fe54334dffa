//! Reading the admission request a policy evaluates: either a bare
//! AdmissionRequest or a whole AdmissionReview (`{"request": {...}}`), as
//! `kwctl run --request-path` accepts both.

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
        let bare = json!({"uid": "1", "operation": "CREATE", "object": {}});
        assert_eq!(admission_request(&bare).unwrap(), (&bare, "1"));
        let review = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": bare});
        assert_eq!(admission_request(&review).unwrap(), (&bare, "1"));
        assert!(admission_request(&json!({"operation": "CREATE"})).is_err());
        assert!(admission_request(&json!({"request": "x"})).is_err());
        assert!(admission_request(&json!([1])).is_err());
    }
}
