//! Runs a Kubewarden waPC policy the way policy-server / `kwctl run` do, and
//! serves its host capabilities (Sigstore verification, OCI registry reads,
//! certificate checks, logging) with real checks against real registries.
//!
//! ```no_run
//! use e2e_tests::host::{Host, Sources};
//! let host = Host::builder()
//!     .policy_location("annotated-policy.wasm")
//!     .settings(serde_json::json!({}))
//!     .sources(Sources::insecure(["127.0.0.1:5000"]))
//!     .build()?;
//! assert!(host.validate_settings().valid);
//! let request = serde_json::json!({"uid": "1", "kind": {}, "resource": {},
//!     "operation": "CREATE", "userInfo": {}, "object": {}});
//! let response = host.validate(&request)?;
//! println!("{}", serde_json::to_string(&response)?);
//! # anyhow::Ok(())
//! ```

mod bench;
mod cache;
mod capabilities;
mod constraints;
mod crypto;
mod peak_memory;
mod registry;
mod request;
mod response;
mod runtime;
mod sources;
mod stats;
mod trust;
mod verify;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use kubewarden_policy_sdk::response::ValidationResponse;
use kubewarden_policy_sdk::settings::SettingsValidationResponse;
use serde_json::{json, Value};

pub use bench::PolicyInstance;
pub use response::{AdmissionResponse, AdmissionResponseStatus};
pub use runtime::DEADLINE_EXCEEDED;
pub use sources::Sources;
pub use stats::HostCallStats;
pub use trust::{TrustConfigError, TrustRoot};

use crate::policy_artifact::{PolicyMetadata, METADATA_SECTION};
use bench::BenchOptions;
use capabilities::Capabilities;
use peak_memory::PeakMemory;
use registry::Registry;
use runtime::{Limits, PolicyModule, Workers};
use stats::StatsRecorder;
use verify::{Caching, SigstoreVerifier};

/// Default execution deadline of one policy call (kwctl's default is 2 s).
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(2);
/// Default cap on a policy's linear memory.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 * 1024 * 1024;
/// How long a successful verification is reused (the real host keeps 60 s).
pub const DEFAULT_VERIFICATION_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long an image's signatures, once read, are reused (the real host's sigstore client
/// caches registry responses 60 s).
pub const DEFAULT_REGISTRY_CACHE_TTL: Duration = Duration::from_secs(60);
/// Bound on each registry operation, so an unreachable registry fails the call.
pub const DEFAULT_REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prefix of a policy location that names an OCI artifact.
const REGISTRY_SCHEME: &str = "registry://";

enum PolicySource {
    Bytes(Vec<u8>),
    Location(String),
}

/// Configures and builds a [`Host`].
pub struct HostBuilder {
    policy: Option<PolicySource>,
    settings: Value,
    trust_root: Option<TrustRoot>,
    sources: Sources,
    execution_timeout: Duration,
    memory_limit: usize,
    cache_ttl: Duration,
    registry_cache_ttl: Duration,
    registry_timeout: Duration,
    workers: usize,
    allow_unannotated: bool,
    bench: BenchOptions,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self {
            policy: None,
            settings: json!({}),
            trust_root: None,
            sources: Sources::default(),
            execution_timeout: DEFAULT_EXECUTION_TIMEOUT,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            cache_ttl: DEFAULT_VERIFICATION_CACHE_TTL,
            registry_cache_ttl: DEFAULT_REGISTRY_CACHE_TTL,
            registry_timeout: DEFAULT_REGISTRY_TIMEOUT,
            workers: 1,
            allow_unannotated: false,
            bench: BenchOptions::default(),
        }
    }
}

impl HostBuilder {
    /// The policy module itself.
    pub fn wasm_bytes(mut self, wasm: Vec<u8>) -> Self {
        self.policy = Some(PolicySource::Bytes(wasm));
        self
    }

    /// A `.wasm` file path, or `registry://HOST[:PORT]/REPO:TAG` to pull the
    /// policy artifact (plain HTTP for insecure sources) at build time.
    pub fn policy_location(mut self, location: impl Into<String>) -> Self {
        self.policy = Some(PolicySource::Location(location.into()));
        self
    }

    /// The policy settings (`{}` by default); `null` counts as `{}`.
    pub fn settings(mut self, settings: Value) -> Self {
        self.settings = if settings.is_null() {
            json!({})
        } else {
            settings
        };
        self
    }

    /// Fulcio and Rekor trust material; without it keyless signatures cannot be
    /// trusted and Rekor bundles are not checked, as on a host without a trust root.
    pub fn trust_root(mut self, trust_root: TrustRoot) -> Self {
        self.trust_root = Some(trust_root);
        self
    }

    /// Registry access settings.
    pub fn sources(mut self, sources: Sources) -> Self {
        self.sources = sources;
        self
    }

    /// Shorthand for [`HostBuilder::sources`] with only plain-HTTP registries.
    pub fn insecure_sources<I, S>(self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.sources(Sources::insecure(hosts))
    }

    /// Deadline of each policy call (and of `wapc_init`).
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = timeout;
        self
    }

    /// Maximum size of the policy's linear memory, in bytes.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// How long successful `v2/verify` answers are reused.
    pub fn verification_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// How long an image's digest and signature layers, once read, serve later `v2/verify`
    /// calls about it (with other keys or identities), as the real host's registry cache does.
    pub fn registry_cache_ttl(mut self, ttl: Duration) -> Self {
        self.registry_cache_ttl = ttl;
        self
    }

    /// Bound on each registry operation.
    pub fn registry_timeout(mut self, timeout: Duration) -> Self {
        self.registry_timeout = timeout;
        self
    }

    /// Number of policy instances serving calls in parallel (1 by default, which
    /// makes `validate_settings` and `validate` share an instance like `kwctl run`).
    pub fn workers(mut self, count: usize) -> Self {
        self.workers = count.max(1);
        self
    }

    /// Also loads a module without Kubewarden metadata (the module as built, for
    /// benchmarks, or a hand-written test guest). By default such a module is
    /// refused, as policy-server refuses it: the metadata says how to run the policy.
    pub fn allow_unannotated(mut self) -> Self {
        self.allow_unannotated = true;
        self
    }

    /// Loads the policy, checks its metadata, instantiates it and starts serving.
    pub fn build(self) -> Result<Host> {
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kwhost-io")
            .enable_all()
            .build()?;
        let stats = Arc::new(StatsRecorder::default());
        let registry = Registry::new(&self.sources, self.registry_timeout);
        let wasm = match self.policy {
            None => return Err(anyhow!("no policy given")),
            Some(PolicySource::Bytes(wasm)) => wasm,
            Some(PolicySource::Location(location)) => {
                match location.strip_prefix(REGISTRY_SCHEME) {
                    Some(image) => block_on_elsewhere(&io, registry.pull_policy(image))
                        .map_err(|e| anyhow!(e))?,
                    None => std::fs::read(Path::new(&location))
                        .with_context(|| format!("cannot read policy {location}"))?,
                }
            }
        };
        let metadata = PolicyMetadata::from_wasm(&wasm)?;
        match &metadata {
            Some(metadata) => metadata.check_runnable()?,
            None if self.allow_unannotated => {}
            None => {
                return Err(anyhow!(
                    "the policy is not annotated (no `{METADATA_SECTION}` custom section): \
                     annotate it with `kwctl annotate` \
                     (`make annotated-policy.wasm`)"
                ))
            }
        }
        let verifier = SigstoreVerifier::new(
            &self.sources,
            self.trust_root.as_ref(),
            Caching {
                verification_ttl: self.cache_ttl,
                registry_ttl: self.registry_cache_ttl,
            },
            self.registry_timeout,
            stats.clone(),
        )?;
        let capabilities = Arc::new(Capabilities {
            verifier,
            registry,
            stats: stats.clone(),
            runtime: io.handle().clone(),
            instant_answers: self.bench.instant_answers,
        });
        let limits = Limits {
            execution_timeout: self.execution_timeout,
            memory_bytes: self.memory_limit,
        };
        let peak_memory = self.bench.peak_memory;
        let module = Arc::new(PolicyModule::compile(
            &wasm,
            limits,
            capabilities,
            peak_memory.clone(),
        )?);
        let workers = Workers::start(module.clone(), self.workers)?;
        Ok(Host {
            workers,
            module,
            peak_memory,
            io: Some(io),
            stats,
            settings: self.settings,
            metadata,
        })
    }
}

/// Reads a settings, request or sources file the way kwctl does: YAML, of which JSON is
/// a subset; an empty file is `null`.
pub fn read_yaml_or_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Option<Value> =
        serde_yaml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))?;
    Ok(value.unwrap_or(Value::Null))
}

/// Drives `future` on the runtime from a scratch thread, so building a host
/// also works from inside a caller's own async runtime.
fn block_on_elsewhere<F>(runtime: &tokio::runtime::Runtime, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A loaded policy and the host capabilities it can call. `Send + Sync`: calls
/// from several threads are served by the configured number of instances.
pub struct Host {
    workers: Workers,
    module: Arc<PolicyModule>,
    peak_memory: Option<Arc<PeakMemory>>,
    io: Option<tokio::runtime::Runtime>,
    stats: Arc<StatsRecorder>,
    settings: Value,
    metadata: Option<PolicyMetadata>,
}

impl Host {
    /// Starts configuring a host.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The metadata embedded in the policy; `None` only for a module loaded with
    /// [`HostBuilder::allow_unannotated`].
    pub fn metadata(&self) -> Option<&PolicyMetadata> {
        self.metadata.as_ref()
    }

    /// The settings the policy is evaluated with.
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// Runs the guest's `validate_settings`, answering like policy-evaluator
    /// does when the call itself fails.
    pub fn validate_settings(&self) -> SettingsValidationResponse {
        self.validate_settings_with(&self.settings)
    }

    /// [`Host::validate_settings`] for other settings: one loaded policy serves many
    /// configurations, as one policy-server serves many policies of one module.
    pub fn validate_settings_with(&self, settings: &Value) -> SettingsValidationResponse {
        let payload = settings.to_string().into_bytes();
        match self.workers.call("validate_settings", payload) {
            Ok(answer) => {
                serde_json::from_slice(&answer).unwrap_or_else(|e| SettingsValidationResponse {
                    valid: false,
                    message: Some(format!("error: cannot convert response: {e:?}")),
                })
            }
            Err(e) => SettingsValidationResponse {
                valid: false,
                message: Some(format!(
                    "Error invoking settings validation callback: {e:?}"
                )),
            },
        }
    }

    /// Evaluates an AdmissionRequest (bare or inside an AdmissionReview) and
    /// returns the response the real host would send. Policy failures become
    /// `internal server error` rejections; `Err` means the input is unusable.
    pub fn validate(&self, input: &Value) -> Result<AdmissionResponse> {
        self.validate_with(&self.settings, input)
    }

    /// [`Host::validate`] with other settings.
    pub fn validate_with(&self, settings: &Value, input: &Value) -> Result<AdmissionResponse> {
        let (request, uid) = request::admission_request(input)?;
        let payload = json!({ "request": request, "settings": settings });
        let answer = match self
            .workers
            .call("validate", payload.to_string().into_bytes())
        {
            Ok(answer) => answer,
            Err(e) => return Ok(AdmissionResponse::internal_server_error(uid, e)),
        };
        let verdict: ValidationResponse = match serde_json::from_slice(&answer) {
            Ok(verdict) => verdict,
            Err(e) => {
                return Ok(AdmissionResponse::internal_server_error(
                    uid,
                    format!("cannot deserialize policy validation response: {e:?}"),
                ))
            }
        };
        Ok(
            AdmissionResponse::from_validation_response(uid, request.get("object"), verdict)
                .unwrap_or_else(|e| AdmissionResponse::internal_server_error(uid, e)),
        )
    }

    /// Calls any waPC operation of the guest (e.g. `protocol_version`) and returns
    /// its raw answer, or the waPC error text.
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.workers
            .call(operation, payload.to_vec())
            .map_err(|e| e.to_string())
    }

    /// Host calls served so far.
    pub fn stats(&self) -> HostCallStats {
        self.stats.snapshot()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Workers first: they may be blocked on the runtime in a host call.
        self.workers.shutdown();
        if let Some(io) = self.io.take() {
            // Never blocks, so dropping a host inside an async test is safe.
            io.shutdown_background();
        }
    }
}
