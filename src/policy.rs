//! The policy as a pure function of the payload and a [`Verifier`]: read, plan,
//! verify, then accept, pin or reject.

use serde_json::value::RawValue;

use crate::mutation::{self, Pin};
use crate::plan::Plan;
use crate::request::Payload;
use crate::settings::{Pinning, Settings};
use crate::verdict::{self, Session};
use crate::verifier::Verifier;
use crate::workload::{self, ContainerList, Location, Workload};

#[derive(Debug, PartialEq)]
pub enum Verdict {
    Accept,
    /// Accept, with the whole object as it must be stored, as JSON text.
    Mutate(String),
    Reject(String),
}

/// `validate_settings`: `Ok` or the reason the settings are refused.
pub fn validate_settings(payload: &[u8]) -> Result<(), String> {
    let settings: &RawValue =
        serde_json::from_slice(payload).map_err(|e| format!("settings are not JSON: {e}"))?;
    Settings::validate(settings).map(drop)
}

/// `validate`: the verdict for one admission request.
pub fn validate(payload: &[u8], verifier: &dyn Verifier) -> Verdict {
    match evaluate(payload, verifier) {
        Ok(verdict) => verdict,
        Err(reason) => Verdict::Reject(reason),
    }
}

fn evaluate(payload: &[u8], verifier: &dyn Verifier) -> Result<Verdict, String> {
    let payload = Payload::parse(payload)?;
    let settings = payload
        .settings
        .ok_or_else(|| "the request carries no settings".to_owned())
        .and_then(Settings::from_json)
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

    let plan = Plan::new(&settings, containers);
    let mut session = Session::new(verifier);
    let outcomes = verdict::evaluate(&plan, &mut session);

    // (first location, where, why): sorted by location, so messages follow the object.
    let mut failures: Vec<(&Location, String, String)> = plan
        .unreadable
        .iter()
        .map(|u| {
            (
                &u.container.location,
                u.container.location.path(),
                u.reason.clone(),
            )
        })
        .collect();
    let mut pins = Vec::new();
    let pin_here = match settings.pinning {
        Pinning::All => true,
        Pinning::PodsOnly => kind == "Pod",
        Pinning::None => false,
    };
    for outcome in &outcomes {
        let containers = &outcome.planned.containers;
        match &outcome.result {
            Err(reasons) => {
                let places: Vec<String> = containers.iter().map(|c| c.location.path()).collect();
                let written = containers[0].image.as_deref().unwrap_or_default();
                failures.push((
                    &containers[0].location,
                    format!("{} ({written})", places.join(", ")),
                    reasons.join("; "),
                ));
            }
            Ok(Some(digest)) if pin_here && outcome.planned.image.digest().is_none() => {
                pins.extend(
                    containers
                        .iter()
                        .filter(|c| {
                            !request.is_ephemeral_containers()
                                || c.location.list == ContainerList::EphemeralContainers
                        })
                        .filter_map(|c| {
                            Some(Pin {
                                span: c.span.clone()?,
                                image: mutation::pinned(c.image.as_deref()?, digest),
                            })
                        }),
                );
            }
            Ok(_) => {}
        }
    }
    if !failures.is_empty() {
        failures.sort();
        let failures: Vec<(String, String)> =
            failures.into_iter().map(|(_, w, r)| (w, r)).collect();
        return Ok(Verdict::Reject(verdict::rejection_message(&failures)));
    }
    Ok(match mutation::apply(object.get(), pins) {
        Some(mutated) => Verdict::Mutate(mutated),
        None => Verdict::Accept,
    })
}

#[cfg(test)]
mod tests;
