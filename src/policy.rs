//! The policy as a pure function of the payload and a [`Verifier`]: read, scope (what
//! the request changes), plan, verify, then accept, pin or reject.

use serde_json::value::RawValue;

use crate::mutation;
use crate::plan::Plan;
use crate::rejection;
use crate::report::Report;
use crate::request::Payload;
use crate::settings::Settings;
use crate::update::Scope;
use crate::verdict;
use crate::verifier::Verifier;
use crate::workload::{self, Workload};

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Accept,
    /// Accept, with the whole object as it must be stored, as JSON text.
    Mutate(String),
    Reject(String),
}

/// A verdict, and the warnings and audit annotations that go with it.
#[derive(Debug, PartialEq)]
pub(crate) struct Answer {
    pub verdict: Verdict,
    pub report: Report,
}

/// `validate_settings`: `Ok` or the reason the settings are refused.
pub fn validate_settings(payload: &[u8]) -> Result<(), String> {
    let settings: &RawValue =
        serde_json::from_slice(payload).map_err(|e| format!("settings are not JSON: {e}"))?;
    Settings::validate(settings)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `validate`: the verdict for one admission request.
pub fn validate(payload: &[u8], verifier: &dyn Verifier) -> Verdict {
    answer(payload, verifier).verdict
}

/// `validate`: the verdict for one admission request, with its report.
pub(crate) fn answer(payload: &[u8], verifier: &dyn Verifier) -> Answer {
    let mut report = Report::default();
    let verdict = evaluate(payload, verifier, &mut report).unwrap_or_else(Verdict::Reject);
    Answer { verdict, report }
}

/// The verdict; `report` is filled in once the images are verified, so that a
/// rejection carries the record of what did pass.
fn evaluate(
    payload: &[u8],
    verifier: &dyn Verifier,
    report: &mut Report,
) -> Result<Verdict, String> {
    let payload = Payload::parse(payload)?;
    let settings = payload
        .settings
        .ok_or_else(|| "the request carries no settings".to_owned())
        .and_then(|settings| Settings::from_json_cached(settings).map_err(|e| e.to_string()))
        .map_err(|e| format!("invalid settings: {e}"))?;
    let request = &payload.request;
    let kind = request.kind.kind.as_str();
    let Some(object) = request.object() else {
        return match request.operation.as_deref() {
            Some("CREATE" | "UPDATE") => Err(format!("the {kind} request carries no object")),
            _ => Ok(Verdict::Accept),
        };
    };
    let containers = match workload::extract(kind, object.get())? {
        Workload::NotCovered => return Ok(Verdict::Accept),
        Workload::Containers(containers) => containers,
    };

    let scope = Scope::new(
        request,
        kind,
        object.get(),
        settings.reverify_unchanged_images,
    );
    let plan = Plan::new(&settings, scope.to_verify(containers));
    let outcomes = verdict::evaluate(&plan, verifier);
    *report = Report::new(&settings, &outcomes);
    if let Some(message) = rejection::message(&plan, &outcomes) {
        return Ok(Verdict::Reject(message));
    }
    if !settings.pinning.applies_to(kind) {
        return Ok(Verdict::Accept);
    }
    let pins = mutation::pins(&outcomes, |c| scope.may_pin(c));
    Ok(mutation::apply(object.get(), pins).map_or(Verdict::Accept, Verdict::Mutate))
}

#[cfg(test)]
mod tests;
