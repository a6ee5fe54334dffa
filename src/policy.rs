//! The policy as a pure function of the payload and a [`Verifier`]: read, scope (what
//! the request changes), plan, verify, then accept, pin or reject.

use std::rc::Rc;

use serde_json::value::RawValue;

use crate::mutation::{self, Pin};
use crate::plan::Plan;
use crate::rejection;
use crate::report::Report;
use crate::request::Payload;
use crate::settings::Settings;
use crate::update::Scope;
use crate::verdict;
use crate::verifier::Verifier;
use crate::workload::{self, ContainerImage, Object, Workload};

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
///
/// A request without an old object (a CREATE, and most others) is read in one pass,
/// its images with it, and the object's text is looked up again only to pin. Anything
/// else, and anything that pass cannot read, is read the general way, whose errors
/// say why.
fn evaluate(
    payload: &[u8],
    verifier: &dyn Verifier,
    report: &mut Report,
) -> Result<Verdict, String> {
    if let Ok(read) = Payload::<Object>::parse(payload) {
        if read.request.object.is_some() && read.request.old_object().is_none() {
            return evaluate_read(read, payload, verifier, report);
        }
    }
    let payload_read = Payload::parse(payload)?;
    let settings = settings_of(&payload_read)?;
    let request = &payload_read.request;
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
    let pins = match verify(&settings, kind, &scope, containers, verifier, report) {
        Ok(pins) => pins,
        Err(message) => return Ok(Verdict::Reject(message)),
    };
    Ok(mutation::apply(object.get(), pins).map_or(Verdict::Accept, Verdict::Mutate))
}

/// [`evaluate`] of a request read in one pass, with its object and no old object.
fn evaluate_read(
    read: Payload<'_, Object<'_>>,
    payload: &[u8],
    verifier: &dyn Verifier,
    report: &mut Report,
) -> Result<Verdict, String> {
    let settings = settings_of(&read)?;
    let Payload { mut request, .. } = read;
    let kind = request.kind.kind.as_str();
    let Some(object) = request.object.take() else {
        return Err(format!("the {kind} request carries no object"));
    };
    let containers = match object.workload(kind, payload)? {
        Workload::NotCovered => return Ok(Verdict::Accept),
        Workload::Containers(containers) => containers,
    };
    let scope = Scope::without_old_object(&request, settings.reverify_unchanged_images);
    let mut pins = match verify(&settings, kind, &scope, containers, verifier, report) {
        Ok(pins) if pins.is_empty() => return Ok(Verdict::Accept),
        Ok(pins) => pins,
        Err(message) => return Ok(Verdict::Reject(message)),
    };
    // The spans are in the payload: the object's text is where they are rewritten.
    let whole = Payload::parse(payload)?;
    let text = whole
        .request
        .object()
        .ok_or_else(|| format!("the {kind} request carries no object"))?;
    let offset = text.get().as_ptr() as usize - payload.as_ptr() as usize;
    for pin in &mut pins {
        pin.span = pin.span.start - offset..pin.span.end - offset;
    }
    Ok(mutation::apply(text.get(), pins).map_or(Verdict::Accept, Verdict::Mutate))
}

/// The settings a payload carries, parsed once per instance.
fn settings_of<O>(payload: &Payload<'_, O>) -> Result<Rc<Settings>, String> {
    payload
        .settings
        .ok_or_else(|| "the request carries no settings".to_owned())
        .and_then(|settings| Settings::from_json_cached(settings).map_err(|e| e.to_string()))
        .map_err(|e| format!("invalid settings: {e}"))
}

/// Plans and verifies the containers in scope and fills in `report`: the pins to apply
/// (none when pinning does not apply to `kind`), or the rejection's text.
fn verify(
    settings: &Settings,
    kind: &str,
    scope: &Scope,
    containers: Vec<ContainerImage>,
    verifier: &dyn Verifier,
    report: &mut Report,
) -> Result<Vec<Pin>, String> {
    let plan = Plan::new(settings, scope.to_verify(containers));
    let outcomes = verdict::evaluate(&plan, verifier);
    *report = Report::new(settings, &outcomes);
    if let Some(message) = rejection::message(&plan, &outcomes) {
        return Err(message);
    }
    if !settings.pinning.applies_to(kind) {
        return Ok(Vec::new());
    }
    Ok(mutation::pins(&outcomes, |c| scope.may_pin(c)))
}

#[cfg(test)]
mod tests;
