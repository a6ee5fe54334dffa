//! Running the policy: a wasmtime engine with WASI, a memory limit and an
//! execution deadline enforced by epoch interruption, and worker threads that
//! each own one waPC instance (a `WapcHost` is tied to its thread), like the
//! policy-server's workers. An instance whose call hit the deadline is thrown
//! away and rebuilt, as the real host does.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Result};
use wapc::errors::Error as WapcError;
use wapc::{WapcHost, WasiParams};
use wasmtime_provider::wasmtime::{Config, Engine};
use wasmtime_provider::{
    EpochDeadlines, ResourceLimits, WasmtimeEngineProviderBuilder, WasmtimeEngineProviderPre,
};

use super::capabilities::Capabilities;
use super::peak_memory::PeakMemory;

/// The text wasmtime-provider gives a call interrupted by the deadline.
pub const DEADLINE_EXCEEDED: &str = "guest code interrupted, execution deadline exceeded";

/// Granularity of the deadline: the engine's epoch advances this often.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource bounds of one policy instance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) execution_timeout: Duration,
    pub(crate) memory_bytes: usize,
}

/// Advances the engine's epoch until dropped, which is what makes deadlines fire.
struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kwhost-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            // The ticker only sleeps and ticks: it cannot have panicked.
            let _ = thread.join();
        }
    }
}

/// A compiled policy, ready to be instantiated many times.
pub(crate) struct PolicyModule {
    pre: WasmtimeEngineProviderPre,
    /// `None` when tracking peak memory: see [`PolicyModule::compile`].
    deadlines: Option<EpochDeadlines>,
    capabilities: Arc<Capabilities>,
    _ticker: Option<EpochTicker>,
}

impl PolicyModule {
    pub(crate) fn compile(
        wasm: &[u8],
        limits: Limits,
        capabilities: Arc<Capabilities>,
        peak_memory: Option<Arc<PeakMemory>>,
    ) -> Result<Self> {
        let mut config = Config::new();
        // Tracked memories rule out copy-on-write images, and without those wasmtime
        // checks the epoch while instantiating, before the provider sets a deadline:
        // a host that tracks memory runs without deadlines.
        let tracks_memory = peak_memory.is_some();
        match peak_memory {
            Some(peak_memory) => config.with_host_memory(peak_memory).memory_init_cow(false),
            None => config.epoch_interruption(true),
        };
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("cannot create the wasm engine: {e}"))?;
        let ticks = limits
            .execution_timeout
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis())
            .max(1);
        let ticks = u64::try_from(ticks).unwrap_or(u64::MAX);
        let deadlines = EpochDeadlines {
            wapc_init: ticks,
            wapc_func: ticks,
        };
        let deadlines = (!tracks_memory).then_some(deadlines);
        let mut builder = WasmtimeEngineProviderBuilder::new()
            .engine(engine.clone())
            .module_bytes(wasm)
            .wasi_params(WasiParams::default());
        if let Some(deadlines) = deadlines {
            builder = builder.enable_epoch_interruptions(deadlines);
        }
        let pre = builder
            .enable_resource_limits(ResourceLimits {
                max_memory_size: Some(limits.memory_bytes),
                max_table_elements: None,
            })
            .build_pre()
            .map_err(|e| anyhow!("cannot load the policy: {e}"))?;
        Ok(Self {
            pre,
            deadlines,
            capabilities,
            _ticker: (!tracks_memory)
                .then(|| EpochTicker::start(engine))
                .transpose()?,
        })
    }

    /// A fresh instance with `wapc_init` run, wired to the host capabilities.
    pub(crate) fn instantiate(&self) -> Result<WapcHost, WapcError> {
        let provider = self
            .pre
            .rehydrate(self.deadlines)
            .map_err(|e| WapcError::ProviderFailure(Box::new(e)))?;
        let capabilities = self.capabilities.clone();
        WapcHost::new(
            Box::new(provider),
            Some(Box::new(
                move |_id, binding, namespace, operation, payload| {
                    capabilities.dispatch(binding, namespace, operation, payload)
                },
            )),
        )
    }
}

/// The answer of one waPC call.
pub(crate) type CallResult = Result<Vec<u8>, WapcError>;

struct Job {
    operation: String,
    payload: Vec<u8>,
    reply: mpsc::Sender<CallResult>,
}

/// Threads that each keep one policy instance and serve waPC calls in turn.
pub(crate) struct Workers {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` workers; fails if the policy cannot be instantiated.
    pub(crate) fn start(module: Arc<PolicyModule>, count: usize) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Self {
            jobs: Some(jobs),
            threads: Vec::new(),
        };
        for n in 0..count.max(1) {
            let (ready, is_ready) = mpsc::channel();
            let (module, queue) = (module.clone(), queue.clone());
            let thread = std::thread::Builder::new()
                .name(format!("kwhost-policy-{n}"))
                .spawn(move || serve(&module, &queue, &ready))?;
            workers.threads.push(thread);
            is_ready
                .recv()
                .map_err(|_| anyhow!("the policy worker stopped while starting"))?
                .map_err(|e| anyhow!("cannot instantiate the policy: {e}"))?;
        }
        Ok(workers)
    }

    /// Runs one waPC call on the next free worker.
    pub(crate) fn call(&self, operation: &str, payload: Vec<u8>) -> CallResult {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            operation: operation.to_owned(),
            payload,
            reply,
        };
        let gone = || WapcError::General("the policy worker is gone".to_owned());
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    /// Stops the workers after the calls in flight (a deadline bounds each).
    pub(crate) fn shutdown(&mut self) {
        self.jobs.take();
        for thread in self.threads.drain(..) {
            // A worker that panicked has already answered its caller with an error.
            let _ = thread.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(
    module: &PolicyModule,
    queue: &Mutex<mpsc::Receiver<Job>>,
    ready: &mpsc::Sender<Result<(), WapcError>>,
) {
    let mut instance = match module.instantiate() {
        Ok(instance) => {
            let _ = ready.send(Ok(()));
            Some(instance)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    loop {
        let job = match queue.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let current = match instance.take().map_or_else(|| module.instantiate(), Ok) {
            Ok(current) => current,
            Err(e) => {
                let _ = job.reply.send(Err(e));
                continue;
            }
        };
        let result = current.call(&job.operation, &job.payload);
        let timed_out =
            matches!(&result, Err(WapcError::GuestCallFailure(text)) if text == DEADLINE_EXCEEDED);
        instance = if timed_out {
            // The interrupted instance may hold half-updated state: start afresh
            // now, or on the next call if that fails too.
            drop(current);
            module.instantiate().ok()
        } else {
            Some(current)
        };
        let _ = job.reply.send(result);
    }
}
