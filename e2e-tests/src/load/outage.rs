//! `make load`'s registry outage: the same clients against a fresh policy-server with its
//! default deadline, whose registry reads go through a [`FaultProxy`], in three phases:
//! the registry slow, down, and back. Each phase's signed requests name images no earlier
//! phase verified, so that the host's cache of verified checks (60 s) does not answer for
//! the registry; the phase after the outage asks again for the images the outage failed.
//!
//! A verdict is right, or a rejection a fault explains (the policy's, naming the image,
//! or the server's deadline), or wrong: an unsigned image admitted, a wrong pin, a request
//! no rule matches rejected. Wrong verdicts fail the run.

use std::time::{Duration, Instant};

use host_driver::{AdmissionResponse, PolicyServer};

use super::mix::{Kind, Request};
use super::{duration, percentile, Sample};
use crate::fault_proxy::{Fault, FaultProxy};

/// What policy-server answers when an evaluation outlives its deadline.
const INTERRUPTED: &str =
    "Policy execution interrupted because it exceeded the allowed execution time";

/// One phase of the outage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Every registry exchange held back.
    Slow,
    /// Connections refused.
    Down,
    /// Forwarded again, asking for the images the outage failed.
    Back,
}

impl Phase {
    pub const ALL: [Phase; 3] = [Phase::Slow, Phase::Down, Phase::Back];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Slow => "registry slow",
            Phase::Down => "registry down",
            Phase::Back => "registry back",
        }
    }

    fn fault(self, slow: Duration) -> Fault {
        match self {
            Phase::Slow => Fault::Delay(slow),
            Phase::Down => Fault::Refuse,
            Phase::Back => Fault::None,
        }
    }
}

/// How an answer came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// The request's one right verdict, as without a fault.
    Right,
    /// A signed image rejected by the policy, which names it and the fault.
    RejectedForTheFault,
    /// Rejected by the server: the evaluation outlived its deadline.
    Deadline,
    /// Anything else: never acceptable.
    Wrong,
    /// No AdmissionReview came back.
    Transport,
}

impl Verdict {
    const ALL: [Verdict; 5] = [
        Verdict::Right,
        Verdict::RejectedForTheFault,
        Verdict::Deadline,
        Verdict::Wrong,
        Verdict::Transport,
    ];

    fn name(self) -> &'static str {
        match self {
            Verdict::Right => "right",
            Verdict::RejectedForTheFault => "rejected for the fault",
            Verdict::Deadline => "deadline",
            Verdict::Wrong => "wrong",
            Verdict::Transport => "transport error",
        }
    }

    /// `response` to `request`, sorted.
    pub fn of(request: &Request, response: &AdmissionResponse) -> Verdict {
        if request.check(response).is_ok() {
            Verdict::Right
        } else if response.allowed {
            Verdict::Wrong
        } else if response.message() == INTERRUPTED {
            Verdict::Deadline
        } else if request.kind == Kind::Signed && request.rejection_names_its_image(response) {
            Verdict::RejectedForTheFault
        } else {
            Verdict::Wrong
        }
    }
}

/// The answers of one phase.
pub struct PhaseReport {
    phase: Phase,
    samples: Vec<(Sample, Verdict)>,
    wall: Duration,
    /// From the fault's end to the first answer admitting a signed image (phase `Back`).
    recovery: Option<Duration>,
}

impl PhaseReport {
    pub fn wrong(&self) -> usize {
        self.samples
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Wrong | Verdict::Transport))
            .count()
    }
}

/// The requests of a phase: `signed[i]` for the i-th signed request (rotating), the others
/// as they are.
pub struct PhaseRequests<'a> {
    pub signed: &'a [Request],
    pub unsigned: &'a Request,
    pub unmatched: &'a Request,
}

impl PhaseRequests<'_> {
    /// Request `i`: of every 10, 5 signed, 2 unsigned, 3 that no rule matches.
    fn pick(&self, i: usize) -> &Request {
        match i % 10 {
            1 | 4 | 8 => self.unmatched,
            2 | 7 => self.unsigned,
            _ => &self.signed[(i / 2) % self.signed.len()],
        }
    }
}

/// Runs `phase` with `requests` from `clients` clients, `count` requests in all.
pub fn run_phase(
    server: &PolicyServer,
    proxy: &FaultProxy,
    phase: Phase,
    slow: Duration,
    requests: &PhaseRequests<'_>,
    (count, clients): (usize, usize),
) -> PhaseReport {
    proxy.set(phase.fault(slow));
    let started = Instant::now();
    let answers = super::load(server, count, clients, |i| requests.pick(i));
    let wall = started.elapsed();
    let samples: Vec<(Sample, Verdict)> = answers
        .into_iter()
        .map(|answer| {
            let verdict = match &answer.response {
                Ok(response) => Verdict::of(answer.request, response),
                Err(_) => Verdict::Transport,
            };
            (answer.sample, verdict)
        })
        .collect();
    let recovery = (phase == Phase::Back)
        .then(|| {
            samples
                .iter()
                .filter(|(s, v)| s.kind == Kind::Signed && *v == Verdict::Right)
                .map(|(s, _)| s.sent + s.latency - started)
                .min()
        })
        .flatten();
    PhaseReport {
        phase,
        samples,
        wall,
        recovery,
    }
}

/// The phases' table and the recovery, as `make load` prints them.
pub fn print(reports: &[PhaseReport], slow: Duration) {
    println!(
        "\nRegistry outage, through a fault proxy, on a fresh policy-server with its default \
         deadline (2 s): slow = every registry exchange held back {}, down = connections \
         refused, back = forwarded again, asking for the images the outage failed:\n",
        duration(slow)
    );
    let names: Vec<&str> = Verdict::ALL.iter().map(|v| v.name()).collect();
    println!(
        "| phase | request | requests | {} | p50 | p99 |\n|---|---|---|{}---|---|",
        names.join(" | "),
        "---|".repeat(names.len())
    );
    for report in reports {
        let kinds = [Kind::Signed, Kind::Unsigned, Kind::NoMatch];
        let all = format!("all, in {}", duration(report.wall));
        println!("{}", row(report, &all, |_| true));
        for kind in kinds {
            println!("{}", row(report, kind.name(), |k| k == kind));
        }
    }
    for report in reports.iter().filter(|r| r.phase == Phase::Back) {
        match report.recovery {
            Some(took) => println!(
                "\nRecovery: the first signed image the outage had failed was admitted {} \
                 after the registry came back.",
                duration(took)
            ),
            None => println!("\nRecovery: no signed image was admitted after the outage."),
        }
    }
}

/// `| phase | request | requests | counts... | p50 | p99 |` over the samples of `report`
/// whose kind `kinds` takes.
fn row(report: &PhaseReport, request: &str, kinds: impl Fn(Kind) -> bool) -> String {
    let samples: Vec<&(Sample, Verdict)> = report
        .samples
        .iter()
        .filter(|(s, _)| kinds(s.kind))
        .collect();
    let mut latencies: Vec<Duration> = samples.iter().map(|(s, _)| s.latency).collect();
    latencies.sort();
    let counts: Vec<String> = Verdict::ALL
        .iter()
        .map(|v| {
            samples
                .iter()
                .filter(|(_, got)| got == v)
                .count()
                .to_string()
        })
        .collect();
    let (p50, p99) = match latencies.is_empty() {
        true => ("-".into(), "-".into()),
        false => (
            duration(percentile(&latencies, 50)),
            duration(percentile(&latencies, 99)),
        ),
    };
    format!(
        "| {} | {request} | {} | {} | {p50} | {p99} |",
        report.phase.name(),
        samples.len(),
        counts.join(" | ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::Image;
    use crate::load::mix::MixImages;
    use host_driver::AdmissionResponseStatus;

    #[test]
    fn verdicts_are_right_explained_or_wrong() {
        let image = |name: &str| Image {
            reference: format!("127.0.0.1:5000/{name}:v1"),
            digest: format!("sha256:{:064}", name.len()),
        };
        let (signed, unsigned) = (image("signed"), image("unsigned"));
        let requests = Request::all(&MixImages {
            signed: &signed,
            unsigned: &unsigned,
            many: &[],
            unmatched: "docker.io/library/nginx:1.27",
        });
        let of = |kind| requests.iter().find(|r| r.kind == kind).unwrap();
        let rejected = |message: &str| AdmissionResponse {
            status: Some(AdmissionResponseStatus {
                message: Some(message.into()),
                code: None,
            }),
            ..AdmissionResponse::default()
        };
        let for_the_fault = rejected(&format!(
            "1 image failed verification: spec.template.spec.containers[0] ({}): signatures[0] pubKeys: pubKeys[0]: registry unreachable: ...",
            signed.reference
        ));
        assert_eq!(
            Verdict::of(of(Kind::Signed), &for_the_fault),
            Verdict::RejectedForTheFault
        );
        assert_eq!(
            Verdict::of(of(Kind::Signed), &rejected(INTERRUPTED)),
            Verdict::Deadline
        );
        assert_eq!(
            Verdict::of(of(Kind::NoMatch), &rejected(INTERRUPTED)),
            Verdict::Deadline
        );
        assert_eq!(
            Verdict::of(of(Kind::NoMatch), &for_the_fault),
            Verdict::Wrong
        );
        let admitted = AdmissionResponse {
            allowed: true,
            ..AdmissionResponse::default()
        };
        assert_eq!(Verdict::of(of(Kind::Unsigned), &admitted), Verdict::Wrong);
        assert_eq!(Verdict::of(of(Kind::Signed), &admitted), Verdict::Wrong);
        assert_eq!(Verdict::of(of(Kind::NoMatch), &admitted), Verdict::Right);
    }

    #[test]
    fn half_the_requests_are_signed_and_rotate() {
        let image = Image {
            reference: "127.0.0.1:5000/a:v1".into(),
            digest: format!("sha256:{:064}", 1),
        };
        let mix = Request::all(&MixImages {
            signed: &image,
            unsigned: &image,
            many: &[],
            unmatched: "nginx",
        });
        let signed: Vec<Request> = (0..3).map(|_| Request::signed(&image)).collect();
        let phase = PhaseRequests {
            signed: &signed,
            unsigned: &mix[2],
            unmatched: &mix[0],
        };
        let kinds: Vec<Kind> = (0..100).map(|i| phase.pick(i).kind).collect();
        assert_eq!(kinds.iter().filter(|&&k| k == Kind::Signed).count(), 50);
        assert_eq!(kinds.iter().filter(|&&k| k == Kind::Unsigned).count(), 20);
        assert_eq!(kinds.iter().filter(|&&k| k == Kind::NoMatch).count(), 30);
    }
}
