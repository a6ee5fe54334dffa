//! The real Kubewarden host the objects are evaluated in, started once per run through
//! `host-driver`: a policy-server loading the policy with its settings, granted exactly the
//! capabilities the policy declares, fed the AdmissionRequests from a few client threads at
//! once; or, where only kwctl is installed (or `--host kwctl`), one `kwctl run` per object.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use host_driver::{
    AdmissionResponse, HostOptions, Kubewarden, Kwctl, Policy, PolicyServer, PolicyServerConfig,
    Run, RunOutcome, SettingsRefused, SETTINGS_NOT_VALID,
};
use serde::Serialize;
use serde_json::Value;

/// The policy's id in policy-server's policies file.
const POLICY_ID: &str = "policy";

/// Which host to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// policy-server when installed, else kwctl.
    Auto,
    PolicyServer,
    Kwctl,
}

/// What the host is started with.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// `file:///ABSOLUTE/PATH` or a `registry://` (or `https://`) reference.
    pub policy: String,
    pub settings: Value,
    /// What the policy's metadata.yml declares: what it is granted (from Kubewarden 1.35).
    pub capabilities: Vec<String>,
    /// `--sources-path`, absolute.
    pub sources_path: Option<PathBuf>,
    /// `--sigstore-trust-config`, absolute.
    pub trust_config: Option<PathBuf>,
    /// policy-server's `--policy-timeout`, in seconds (its default when `None`).
    pub policy_timeout: Option<u64>,
    /// Requests in flight at once.
    pub clients: usize,
}

impl HostConfig {
    /// The policy as `kwctl run` takes it: a file by its path.
    fn kwctl_policy(&self) -> &str {
        self.policy.strip_prefix("file://").unwrap_or(&self.policy)
    }
}

/// Why the host could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The policy refused the settings: its own message.
    #[error("the policy refused the settings: {0}")]
    SettingsRefused(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The host as the report names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    /// `policy-server` or `kwctl`.
    pub name: &'static str,
    pub version: String,
    /// `true` for one `kwctl run` per object, `false` for one policy-server for the run.
    pub per_object: bool,
    /// Requests in flight at once.
    pub clients: usize,
    /// Why kwctl runs instead of policy-server, when it does.
    pub note: Option<String>,
}

enum Engine {
    Server(PolicyServer),
    Kwctl { options: HostOptions },
}

/// A started host.
pub struct Host {
    kwctl: Kwctl,
    engine: Engine,
    config: HostConfig,
    info: HostInfo,
}

/// The Kubewarden binaries of `version` (the plain names when `None`) that `choice` asks
/// for, and why kwctl runs alone when it does.
pub fn locate(
    version: Option<&str>,
    choice: Choice,
) -> anyhow::Result<(Kubewarden, Option<String>)> {
    Ok(match choice {
        Choice::PolicyServer => (Kubewarden::locate(version)?, None),
        Choice::Kwctl => (
            Kubewarden::locate_kwctl(version)?,
            Some("--host kwctl: one `kwctl run` per object".to_owned()),
        ),
        Choice::Auto => {
            let kubewarden = Kubewarden::locate_available(version)?;
            let note = (!kubewarden.has_policy_server()).then(|| {
                "policy-server is not installed: falling back to one `kwctl run` per object"
                    .to_owned()
            });
            (kubewarden, note)
        }
    })
}

impl Host {
    /// Starts the host of `kubewarden` (policy-server when it has one, unless `note` says
    /// kwctl runs alone) with the policy and its settings. The settings are checked before
    /// any object is: a refusal is [`HostError::SettingsRefused`] with the policy's message.
    pub fn start(
        kubewarden: &Kubewarden,
        kwctl: Kwctl,
        note: Option<String>,
        config: HostConfig,
    ) -> Result<Host, HostError> {
        let server = kubewarden.has_policy_server() && note.is_none();
        let info = HostInfo {
            name: if server { "policy-server" } else { "kwctl" },
            version: kubewarden.version.clone(),
            per_object: !server,
            clients: config.clients,
            note,
        };
        let engine = if server {
            Engine::Server(start_server(kubewarden, &config)?)
        } else {
            let options = HostOptions {
                sources_path: config.sources_path.clone(),
                trust_config: config.trust_config.clone(),
                capabilities: Some(config.capabilities.clone()),
            };
            check_settings(&kwctl, &config, &options)?;
            Engine::Kwctl { options }
        };
        Ok(Host {
            kwctl,
            engine,
            config,
            info,
        })
    }

    pub fn info(&self) -> &HostInfo {
        &self.info
    }

    /// The answer to each of `requests`, in order, from up to `clients` requests in flight;
    /// an error is what kept the host from answering that one.
    pub fn evaluate(&self, requests: &[Value]) -> Vec<Result<AdmissionResponse, String>> {
        let next = AtomicUsize::new(0);
        let answers = Mutex::new(Vec::with_capacity(requests.len()));
        std::thread::scope(|scope| {
            for _ in 0..self.config.clients.clamp(1, requests.len().max(1)) {
                scope.spawn(|| loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(index) else {
                        break;
                    };
                    let answer = self.evaluate_one(request);
                    answers
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((index, answer));
                });
            }
        });
        let mut answers = answers.into_inner().unwrap_or_else(|p| p.into_inner());
        answers.sort_by_key(|(index, _)| *index);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }

    fn evaluate_one(&self, request: &Value) -> Result<AdmissionResponse, String> {
        match &self.engine {
            Engine::Server(server) => server
                .validate(POLICY_ID, request)
                .map_err(|e| format!("{e:#}")),
            Engine::Kwctl { options } => {
                match kwctl_run(&self.kwctl, &self.config, options, request) {
                    Ok(RunOutcome::Answered(response)) => Ok(response),
                    Ok(RunOutcome::SettingsRefused(line)) => Err(line),
                    Err(e) => Err(format!("{e:#}")),
                }
            }
        }
    }
}

fn kwctl_run(
    kwctl: &Kwctl,
    config: &HostConfig,
    options: &HostOptions,
    request: &Value,
) -> anyhow::Result<RunOutcome> {
    kwctl.run(&Run {
        policy: config.kwctl_policy(),
        settings: &config.settings,
        request,
        host: options,
        record: None,
    })
}

/// One policy-server for the run. It validates the settings as it starts, and refuses to
/// start when the policy refuses them: its log has the policy's message.
fn start_server(kubewarden: &Kubewarden, config: &HostConfig) -> Result<PolicyServer, HostError> {
    if config.trust_config.is_some() && !kubewarden.server_takes_trust_config() {
        return Err(anyhow::anyhow!(
            "--sigstore-trust-config: policy-server {} has no such option (policy-server 1.35 and later have it); \
             use policy-server 1.35 (--kubewarden-version), or --host kwctl, whose `kwctl run` takes it",
            kubewarden.version
        )
        .into());
    }
    let policy = Policy {
        capabilities: Some(config.capabilities.clone()),
        ..Policy::new(config.policy.clone(), config.settings.clone())
    };
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let server_config = PolicyServerConfig {
        sources_path: config.sources_path.clone(),
        trust_config: config.trust_config.clone(),
        workers,
        policy_timeout: config.policy_timeout,
        ..PolicyServerConfig::new([(POLICY_ID, policy)])
    };
    PolicyServer::start(kubewarden, &server_config).map_err(|e| {
        match e.downcast_ref::<SettingsRefused>() {
            Some(refused) => HostError::SettingsRefused(refused.message.clone()),
            None => HostError::Other(e.context("cannot start policy-server")),
        }
    })
}

/// The policy's verdict on the settings, from one `kwctl run`.
fn check_settings(
    kwctl: &Kwctl,
    config: &HostConfig,
    options: &HostOptions,
) -> Result<(), HostError> {
    let verdict = kwctl.check_settings(config.kwctl_policy(), &config.settings, options);
    match verdict.context("kwctl run")? {
        None => Ok(()),
        Some(line) => Err(HostError::SettingsRefused(
            line.split_once(SETTINGS_NOT_VALID)
                .map_or(line.as_str(), |(_, message)| {
                    message.trim_start_matches(':').trim()
                })
                .to_owned(),
        )),
    }
}
