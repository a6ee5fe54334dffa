//! The policy-server backend: the annotated policy is pushed to the fixtures' registry with
//! `kwctl push`, and a real policy-server loads it from there by `registry://`, as a cluster's
//! does; AdmissionReviews are POSTed to it over HTTP.
//!
//! The policy is granted exactly the capabilities of the backend's [`Grant`] (its
//! `hostCapabilities`, which 1.31 ignores), and on 1.35 the fixtures' trust root is the
//! server's `--sigstore-trust-config`.
//!
//! A policy-server's policies and their settings are fixed when it starts, and the suite uses
//! many settings. So one server holds one policy id per distinct settings seen so far, and is
//! restarted with one more policy when a request comes with new settings (all policies share
//! one module, which the server compiles once). Restarts are counted: [`Self::restarts`].

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use host_driver::{AdmissionResponse, Kubewarden, Kwctl, Policy, PolicyServer, PolicyServerConfig};
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use serde_json::Value;

use super::{BackendConfig, Grant};

/// Where the suite pushes the policy in the fixtures' registry.
const POLICY_REPOSITORY: &str = "policies/verify-image-signatures:e2e";

/// The running server and the settings of each of its policy ids.
#[derive(Default)]
struct State {
    server: Option<PolicyServer>,
    /// Settings (as JSON text) -> policy id.
    ids: BTreeMap<String, String>,
    restarts: usize,
    restart_time: Duration,
}

/// One policy-server, restarted whenever new settings appear.
pub struct PolicyServerBackend {
    kubewarden: &'static Kubewarden,
    module: String,
    sources: std::path::PathBuf,
    trust_config: Option<std::path::PathBuf>,
    grant: Grant,
    state: RwLock<State>,
}

impl PolicyServerBackend {
    pub fn new(config: &BackendConfig) -> Result<Self> {
        let kubewarden = Kubewarden::from_env()?;
        let module = format!(
            "registry://{}/{POLICY_REPOSITORY}",
            config.fixtures.registry
        );
        Kwctl::new(kubewarden)?.push(config.wasm, &module, Some(&config.fixtures.sources))?;
        Ok(Self {
            kubewarden,
            module,
            sources: config.fixtures.sources.clone(),
            trust_config: kubewarden
                .server_takes_trust_config()
                .then(|| config.fixtures.trust_config.clone()),
            grant: config.grant.clone(),
            state: RwLock::default(),
        })
    }

    /// Server starts after the first so far, and the time they took.
    pub fn restarts(&self) -> (usize, Duration) {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        (state.restarts, state.restart_time)
    }

    pub fn validate(&self, settings: &Value, request: &Value) -> Result<AdmissionResponse> {
        let id = self.policy_id(settings)?;
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let server = state
            .server
            .as_ref()
            .ok_or_else(|| anyhow!("no policy-server is running"))?;
        server.validate(&id, request)
    }

    /// policy-server validates every policy's settings when it starts and refuses to start
    /// when one is invalid: the verdict is whether a server holding these settings starts.
    pub fn validate_settings(&self, settings: &Value) -> SettingsValidationResponse {
        match self.policy_id(settings) {
            Ok(_) => SettingsValidationResponse {
                valid: true,
                message: None,
            },
            Err(e) => SettingsValidationResponse {
                valid: false,
                message: Some(format!("{e:#}")),
            },
        }
    }

    /// Makes sure the server holds a policy for each of `settings`, with one restart for
    /// all that are new.
    pub fn prepare(&self, settings: &[Value]) -> Result<()> {
        self.policy_ids(settings).map(drop)
    }

    /// The policy id serving `settings`, restarting the server with it when it is new.
    fn policy_id(&self, settings: &Value) -> Result<String> {
        Ok(self.policy_ids(std::slice::from_ref(settings))?.remove(0))
    }

    /// The policy id serving each of `settings`, restarting the server once with those
    /// that are new. When the new server does not start, the previous policies are started
    /// again.
    fn policy_ids(&self, settings: &[Value]) -> Result<Vec<String>> {
        let keys: Vec<String> = settings.iter().map(Value::to_string).collect();
        let known = |state: &State| -> Option<Vec<String>> {
            keys.iter().map(|key| state.ids.get(key).cloned()).collect()
        };
        if let Some(ids) = known(&self.state.read().unwrap_or_else(|p| p.into_inner())) {
            return Ok(ids);
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if let Some(ids) = known(&state) {
            return Ok(ids);
        }
        let mut ids = state.ids.clone();
        for key in &keys {
            if !ids.contains_key(key) {
                let id = format!("p{}", ids.len());
                ids.insert(key.clone(), id);
            }
        }
        // Stop the old server first: two servers at once would compete for the two cores.
        let had_server = state.server.take().is_some();
        let started = Instant::now();
        match self.start(&ids) {
            Ok(server) => {
                state.server = Some(server);
                state.ids = ids;
                if had_server {
                    state.restarts += 1;
                    state.restart_time += started.elapsed();
                }
                // Past the harness's capture: the cost of this design, measured.
                let _ = writeln!(
                    std::io::stderr(),
                    "policy-server: started with {} policies in {:.2} s ({} restarts, {:.1} s in all)",
                    state.ids.len(),
                    started.elapsed().as_secs_f64(),
                    state.restarts,
                    state.restart_time.as_secs_f64()
                );
                Ok(known(&state).expect("every key was just added"))
            }
            Err(e) => {
                if !state.ids.is_empty() {
                    state.server = Some(
                        self.start(&state.ids)
                            .context("cannot restart policy-server with the previous policies")?,
                    );
                }
                Err(e)
            }
        }
    }

    fn start(&self, ids: &BTreeMap<String, String>) -> Result<PolicyServer> {
        let mut policies = Vec::new();
        for (settings, id) in ids {
            let policy = Policy {
                capabilities: Some(self.grant.0.clone()),
                ..Policy::new(self.module.clone(), serde_json::from_str(settings)?)
            };
            policies.push((id.clone(), policy));
        }
        PolicyServer::start(
            self.kubewarden,
            &PolicyServerConfig {
                sources_path: Some(self.sources.clone()),
                trust_config: self.trust_config.clone(),
                ..PolicyServerConfig::new(policies)
            },
        )
    }
}
