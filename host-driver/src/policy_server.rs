//! A real Kubewarden `policy-server` on 127.0.0.1, fed AdmissionReviews over HTTP the way the
//! API server sends them.
//!
//! ```no_run
//! use host_driver::{Kubewarden, Policy, PolicyServer, PolicyServerConfig};
//! let kubewarden = Kubewarden::locate(None)?;
//! let policy = Policy {
//!     capabilities: Some(vec!["oci/v2/verify".into()]),
//!     ..Policy::new("registry://127.0.0.1:5000/policies/vis:v1", serde_json::json!({}))
//! };
//! let server = PolicyServer::start(&kubewarden, &PolicyServerConfig::new([("vis", policy)]))?;
//! let response = server.validate("vis", &serde_json::json!({"uid": "1", "object": {}}))?;
//! println!("{} (peak RSS {} KiB)", response.allowed, server.peak_rss_kib()?);
//! # anyhow::Ok(())
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::binaries::Kubewarden;
use crate::process::{free_port, Supervised};
use crate::response::AdmissionResponse;

/// Downloading and compiling the policy on a busy 2-core machine can take many seconds.
const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on one HTTP exchange; far above any `--policy-timeout` in use.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// The server's stdout and stderr, in its directory.
const LOG_FILE: &str = "policy-server.log";
/// Lines of the server's log quoted when it fails to start.
const LOG_TAIL_LINES: usize = 30;
/// A free port can be taken by someone else between probing and binding: retry a few times.
const START_ATTEMPTS: usize = 3;

/// What policy-server writes when a policy refuses its settings, before it exits.
const SETTINGS_INVALID: &str = "Policy settings are invalid: ";

/// policy-server did not start because a policy refused its settings: the policy's own
/// message (from the server's log). [`PolicyServer::start`] fails with this error, which
/// callers find with `anyhow::Error::downcast_ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsRefused {
    pub message: String,
}

impl std::fmt::Display for SettingsRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the policy refused its settings: {}", self.message)
    }
}

impl std::error::Error for SettingsRefused {}

/// One policy of the `--policies` file.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `registry://...`, `file:///...` or `https://...`.
    pub module: String,
    pub settings: Value,
    /// `allowedToMutate`: a mutation from a policy without it is refused by the server.
    pub allowed_to_mutate: bool,
    /// `hostCapabilities` (honoured from 1.35, where a policy without it is granted
    /// nothing); left out when `None`.
    pub capabilities: Option<Vec<String>>,
    /// `timeoutEvalSeconds` (1.35): this policy's deadline instead of `--policy-timeout`.
    pub timeout_eval_seconds: Option<u64>,
}

impl Policy {
    /// `module` with `settings`, allowed to mutate, with the host's default grant and
    /// deadline.
    pub fn new(module: impl Into<String>, settings: Value) -> Self {
        Self {
            module: module.into(),
            settings,
            allowed_to_mutate: true,
            capabilities: None,
            timeout_eval_seconds: None,
        }
    }

    fn entry(&self) -> Value {
        let mut entry = json!({
            "module": self.module,
            "allowedToMutate": self.allowed_to_mutate,
            "settings": self.settings,
        });
        if let Some(capabilities) = &self.capabilities {
            entry["hostCapabilities"] = json!(capabilities);
        }
        if let Some(seconds) = self.timeout_eval_seconds {
            entry["timeoutEvalSeconds"] = json!(seconds);
        }
        entry
    }
}

/// What to run: the policies and the server's flags.
#[derive(Clone, Debug)]
pub struct PolicyServerConfig {
    /// The `--policies` file: policy id -> policy.
    pub policies: BTreeMap<String, Policy>,
    /// `--sources-path` (e.g. `insecure_sources` for the local registry).
    pub sources_path: Option<PathBuf>,
    /// `--sigstore-trust-config` (policy-server 1.35 and later).
    pub trust_config: Option<PathBuf>,
    /// `--workers`: evaluation threads.
    pub workers: usize,
    /// `--policy-timeout` in seconds; policy-server's default (2 s) when `None`.
    pub policy_timeout: Option<u64>,
}

impl PolicyServerConfig {
    /// `policies` with no sources, two workers and the default timeout.
    pub fn new<I: Into<String>>(policies: impl IntoIterator<Item = (I, Policy)>) -> Self {
        Self {
            policies: policies.into_iter().map(|(id, p)| (id.into(), p)).collect(),
            sources_path: None,
            trust_config: None,
            workers: 2,
            policy_timeout: None,
        }
    }
}

/// A running policy-server, serving plain HTTP on 127.0.0.1. Dropping it stops the process
/// and deletes its directories.
pub struct PolicyServer {
    /// First, so that the process is stopped before its directory is deleted.
    process: Supervised,
    port: u16,
    client: reqwest::blocking::Client,
    dir: TempDir,
}

/// The answer to `POST /validate/<id>`.
#[derive(Deserialize)]
struct AdmissionReview {
    response: AdmissionResponse,
}

impl PolicyServer {
    /// Starts policy-server with its own ports, download and Sigstore cache directories and
    /// HOME, and waits until its readiness probe answers 200: every policy downloaded and
    /// compiled. Fails with [`SettingsRefused`] when a policy refuses its settings, and
    /// otherwise with the tail of the server's log if it exits or is not ready in time.
    pub fn start(kubewarden: &Kubewarden, config: &PolicyServerConfig) -> Result<PolicyServer> {
        ensure!(
            config.trust_config.is_none() || kubewarden.server_takes_trust_config(),
            "policy-server {} has no --sigstore-trust-config",
            kubewarden.version
        );
        let mut attempt = 1;
        loop {
            match Self::start_once(kubewarden, config) {
                Err(e)
                    if attempt < START_ATTEMPTS
                        && e.downcast_ref::<SettingsRefused>().is_none()
                        && format!("{e:#}").contains("in use") =>
                {
                    attempt += 1
                }
                result => return result,
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `http://127.0.0.1:PORT`, where `/validate/<policy id>` is served.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log (stdout and stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(LOG_FILE)).unwrap_or_default()
    }

    /// The peak resident set size of the server so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Result<u64> {
        ensure!(!self.process.has_exited(), "policy-server has exited");
        let path = format!("/proc/{}/status", self.pid());
        let status =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .with_context(|| format!("no VmHWM in {path}"))
    }

    /// Sends `request` (an AdmissionRequest) as the API server does and returns the
    /// `response` of the AdmissionReview that comes back. Transport failures, HTTP errors
    /// and unreadable answers are errors; a rejection is a response.
    pub fn validate(&self, policy_id: &str, request: &Value) -> Result<AdmissionResponse> {
        self.validate_review(policy_id, admission_review(request))
    }

    /// [`Self::validate`] with the AdmissionReview already serialised by [`admission_review`]:
    /// a load generator serialises each request once, so that its own work stays out of
    /// the latencies it measures.
    pub fn validate_review(&self, policy_id: &str, review: Vec<u8>) -> Result<AdmissionResponse> {
        let (status, body) = self.post(policy_id, review)?;
        ensure!(
            status == 200,
            "POST /validate/{policy_id}: {status}: {body}"
        );
        let review: AdmissionReview = serde_json::from_str(&body).with_context(|| {
            format!("POST /validate/{policy_id}: not an AdmissionReview: {body}")
        })?;
        Ok(review.response)
    }

    /// POSTs `body` to `/validate/<policy_id>` as it is: the HTTP status and the answer's text.
    /// Only a transport failure is an error.
    pub fn post(&self, policy_id: &str, body: Vec<u8>) -> Result<(u16, String)> {
        let url = format!("{}/validate/{policy_id}", self.url());
        let answer = self
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .with_context(|| format!("POST {url}"))?;
        let status = answer.status().as_u16();
        let text = answer
            .text()
            .with_context(|| format!("POST {url}: reading the answer"))?;
        Ok((status, text))
    }

    /// [`Self::post`] on a connection of its own that reads the answer while the body is
    /// still being written. A server that refuses a body before reading it all (one larger
    /// than it accepts) answers and closes the connection mid-body; an ordinary client then
    /// reports the broken pipe of its next write, not the answer the server gave.
    pub fn post_reading_early(&self, policy_id: &str, body: &[u8]) -> Result<(u16, String)> {
        let what = format!("POST /validate/{policy_id}");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port))
            .with_context(|| format!("{what}: connecting"))?;
        let head = format!(
            "POST /validate/{policy_id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        let mut writer = stream.try_clone()?;
        writer.set_write_timeout(Some(REQUEST_TIMEOUT))?;
        let mut answer = Vec::new();
        let read = std::thread::scope(|scope| {
            // The writer's error is the expected broken pipe once the server has answered.
            scope.spawn(move || {
                let _ = writer
                    .write_all(head.as_bytes())
                    .and_then(|()| writer.write_all(body));
            });
            read_answer(&mut stream, &mut answer)
        });
        read.with_context(|| format!("{what}: reading the answer"))?;
        parse_answer(&answer)
            .with_context(|| format!("{what}: {}", String::from_utf8_lossy(&answer)))
    }

    fn start_once(kubewarden: &Kubewarden, config: &PolicyServerConfig) -> Result<PolicyServer> {
        let dir = tempfile::Builder::new()
            .prefix("kw-policy-server-")
            .tempdir()?;
        let path = |name: &str| dir.path().join(name);
        for sub in ["downloads", "sigstore-cache", "home"] {
            std::fs::create_dir(path(sub))?;
        }
        let policies: serde_json::Map<String, Value> = config
            .policies
            .iter()
            .map(|(id, policy)| (id.clone(), policy.entry()))
            .collect();
        std::fs::write(path("policies.yml"), Value::Object(policies).to_string())?;
        let (port, readiness_port) = (free_port()?, free_port()?);
        let log = std::fs::File::create(path(LOG_FILE))?;

        let mut command = Command::new(kubewarden.policy_server()?);
        command
            .args(["--addr", "127.0.0.1", "--log-no-color"])
            .arg("--port")
            .arg(port.to_string())
            .arg("--readiness-probe-port")
            .arg(readiness_port.to_string())
            .arg("--policies")
            .arg(path("policies.yml"))
            .arg("--policies-download-dir")
            .arg(path("downloads"))
            .arg("--sigstore-cache-dir")
            .arg(path("sigstore-cache"))
            .arg("--workers")
            .arg(config.workers.to_string())
            .arg("--ignore-kubernetes-connection-failure");
        if let Some(sources) = &config.sources_path {
            command.arg("--sources-path").arg(sources);
        }
        if let Some(trust_config) = &config.trust_config {
            command.arg("--sigstore-trust-config").arg(trust_config);
        }
        if let Some(seconds) = config.policy_timeout {
            command.arg("--policy-timeout").arg(seconds.to_string());
        }
        // Only the flags above configure it: no KUBEWARDEN_* variable from the caller.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("KUBEWARDEN_") {
                command.env_remove(name);
            }
        }
        command
            .env("HOME", path("home"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let process =
            Supervised::spawn(command, "policy-server").context("cannot start policy-server")?;
        let server = PolicyServer {
            process,
            port,
            client: reqwest::blocking::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()?,
            dir,
        };
        if let Err(e) = server.wait_ready(readiness_port) {
            if let Some(refused) = settings_refused(&server.log()) {
                return Err(refused.into());
            }
            bail!(
                "{e}; policy-server log (last {LOG_TAIL_LINES} lines):\n{}",
                server.log_tail()
            );
        }
        Ok(server)
    }

    fn wait_ready(&self, readiness_port: u16) -> Result<()> {
        let url = format!("http://127.0.0.1:{readiness_port}/readiness");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.process.has_exited() {
                bail!("policy-server exited during start-up");
            }
            let ready = self
                .client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .is_ok_and(|answer| answer.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("policy-server: {url} did not answer 200 within {READY_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }
}

/// The policy's message in a log that says a policy refused its settings (1.31 and 1.35
/// write `Error: Policy settings are invalid: MESSAGE` and exit).
fn settings_refused(log: &str) -> Option<SettingsRefused> {
    log.lines().find_map(|line| {
        let (_, message) = line.split_once(SETTINGS_INVALID)?;
        Some(SettingsRefused {
            message: message.trim().to_owned(),
        })
    })
}

/// The `admission.k8s.io/v1` AdmissionReview the API server POSTs for `request`, as JSON.
pub fn admission_review(request: &Value) -> Vec<u8> {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": request,
    })
    .to_string()
    .into_bytes()
}

/// Reads until the server closes the connection. A reset after the answer has arrived is how
/// a server closes a connection whose body it did not read.
fn read_answer(stream: &mut std::net::TcpStream, answer: &mut Vec<u8>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    let mut chunk = [0; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !answer.is_empty() => {
                return Ok(())
            }
            Err(e) => return Err(e),
        }
    }
}

/// The status and body of a whole HTTP/1.1 answer.
fn parse_answer(answer: &[u8]) -> Result<(u16, String)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(answer)? else {
        bail!("the answer ends within its head");
    };
    let status = response.code.context("no status")?;
    let length: usize = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .context("no content-length")
        .and_then(|h| Ok(std::str::from_utf8(h.value)?.parse()?))?;
    let body = answer
        .get(head..head + length)
        .context("the answer is cut short")?;
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_policys_message_in_the_log_of_a_refused_start() {
        let log = "\u{1b}[32m INFO\u{1b}[0m policy download name=\"vis\"\n\
                   Error: Policy settings are invalid: signatures[0].pubkeys: unknown field `pubkeys`\n   0: <unknown>\n";
        assert_eq!(
            settings_refused(log),
            Some(SettingsRefused {
                message: "signatures[0].pubkeys: unknown field `pubkeys`".into()
            })
        );
        assert_eq!(settings_refused("Error: Cannot bind 127.0.0.1:3000"), None);
    }
}
