//! The policy as a pure function of the payload and a [`Verifier`]: read, scope (what
//! the request changes), plan, verify, then accept, pin or reject.

use serde_json::value::RawValue;

use crate::mutation::{self, Pin};
use crate::plan::Plan;
use crate::rejection;
use crate::report::Report;
use crate::request::{AdmissionRequest, Payload};
use crate::settings::Settings;
use crate::update::Scope;
use crate::verdict;
use crate::verifier::Verifier;
use crate::workload::{self, ContainerImage, FieldPaths, KindRef, Object, Workload};

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
/// The payload is read in one pass, the object's images with it; an old object is kept
/// as text, and read only for what an UPDATE compares. The object's text is looked up
/// again only when it is needed whole: to pin, and to compare ephemeral containers.
fn evaluate(
    payload: &[u8],
    verifier: &dyn Verifier,
    report: &mut Report,
) -> Result<Verdict, String> {
    let read = match Payload::<Object>::parse(payload) {
        Ok(read) => read,
        Err(error) => return unread(payload, error),
    };
    let settings = settings_of(&read)?;
    let Payload { mut request, .. } = read;
    let Some(object) = request.object.take() else {
        let kind = &request.kind.kind;
        return match request.operation.as_deref() {
            Some("CREATE" | "UPDATE") => Err(format!("the {kind} request carries no object")),
            _ => Ok(Verdict::Accept),
        };
    };
    let kind = KindRef {
        group: &request.kind.group,
        kind: &request.kind.kind,
    };
    let fields = FieldPaths::of(kind, &settings.image_locations);
    let pods = object.pod_images(kind.kind, payload)?;
    // Spans in the payload, as the pod specs' are.
    let text = || object_text(&request, payload, kind.kind, &[]);
    let containers = match workload::combine(pods, fields.as_ref(), kind.kind, text)? {
        Workload::NotCovered => return Ok(Verdict::Accept),
        Workload::Containers(containers) => containers,
    };
    let scope = Scope::new(
        &request,
        kind,
        &settings.image_locations,
        || {
            object_text(&request, payload, kind.kind, &[])
                .ok()
                .map(|(text, _)| text)
        },
        settings.reverify_unchanged_images,
    );
    let mut pins = match verify(&settings, kind.kind, &scope, containers, verifier, report) {
        Ok(pins) if pins.is_empty() => return Ok(Verdict::Accept),
        Ok(pins) => pins,
        Err(message) => return Ok(Verdict::Reject(message)),
    };
    // The spans are in the payload: the object's text is where they are rewritten.
    let (text, offset) = object_text(&request, payload, kind.kind, &pins)?;
    for pin in &mut pins {
        pin.span = pin.span.start - offset..pin.span.end - offset;
    }
    Ok(mutation::apply(text, pins)?.map_or(Verdict::Accept, Verdict::Mutate))
}

/// The object's text within `payload`, and where it starts there. The keys of `request`
/// around the object bound it; where they do not, or a pin would fall outside, the
/// payload is read again for it.
fn object_text<'p, O>(
    request: &AdmissionRequest<'p, O>,
    payload: &'p [u8],
    kind: &str,
    pins: &[Pin],
) -> Result<(&'p str, usize), String> {
    let offset = |text: &str| text.as_ptr() as usize - payload.as_ptr() as usize;
    let holds_every_pin = |text: &&str| {
        let span = offset(text)..offset(text) + text.len();
        pins.iter()
            .all(|pin| span.start <= pin.span.start && pin.span.end <= span.end)
    };
    let text = match request.object_text(payload).filter(holds_every_pin) {
        Some(text) => text,
        None => {
            let read: Payload<'p> = Payload::parse(payload)?;
            read.request
                .object()
                .map(RawValue::get)
                .ok_or_else(|| format!("the {kind} request carries no object"))?
        }
    };
    Ok((text, offset(text)))
}

/// What a payload the one pass cannot read comes to: read again the general way, whose
/// errors name the part that is wrong, or an object of no covered kind. Anything else
/// is the one pass's `error`: what is not understood is not admitted.
fn unread(payload: &[u8], error: String) -> Result<Verdict, String> {
    let read = Payload::parse(payload)?;
    let settings = settings_of(&read)?;
    let kind = KindRef {
        group: &read.request.kind.group,
        kind: &read.request.kind.kind,
    };
    let object = read.request.object().ok_or(error.clone())?;
    match workload::extract(kind, object.get(), &settings.image_locations)? {
        Workload::NotCovered => Ok(Verdict::Accept),
        Workload::Containers(_) => Err(error),
    }
}

/// The settings a payload carries, parsed on every request: each runs in a fresh instance.
fn settings_of<O>(payload: &Payload<'_, O>) -> Result<Settings, String> {
    payload
        .settings
        .ok_or_else(|| "the request carries no settings".to_owned())
        .and_then(|settings| Settings::from_json(settings).map_err(|e| e.to_string()))
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
    if let Some(message) = rejection::message(kind, &plan, &outcomes) {
        return Err(message);
    }
    if !settings.pinning.applies_to(kind) {
        return Ok(Vec::new());
    }
    Ok(mutation::pins(&outcomes, |c| scope.may_pin(c)))
}

#[cfg(test)]
mod tests;
