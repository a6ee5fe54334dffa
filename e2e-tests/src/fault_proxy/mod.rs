//! A registry that misbehaves on demand: an HTTP proxy on 127.0.0.1 in front of the
//! fixtures' real [`Registry`](crate::fixtures::Registry), whose [`Fault`] a test changes
//! while the host runs.
//!
//! ```no_run
//! use e2e_tests::fault_proxy::{Fault, FaultProxy};
//! let proxy = FaultProxy::start("127.0.0.1:5000")?;
//! // Images named `127.0.0.1:PROXYPORT/...` now reach the registry through it.
//! proxy.set(Fault::Status(503));
//! // ... the host's registry reads are answered 503 ...
//! proxy.set(Fault::None);
//! # anyhow::Ok(())
//! ```
//!
//! The proxy runs on a tokio runtime of its own (one thread), built on hyper: it serves
//! HTTP/1.1 and forwards each request with hyper's client. It never outlives its handle,
//! and its thread ends with the process. Every exchange is logged ([`FaultProxy::exchanges`]),
//! so a test can prove that its fault met the host.

mod fault;
mod server;

use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::runtime::Runtime;

pub use fault::{Fault, Target};
use server::Shared;

use crate::fixtures::Image;

/// How long [`FaultProxy::set`] waits for the port to close or open, and how often it looks.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(5);
const LISTEN_POLL: Duration = Duration::from_millis(5);

/// One request the proxy answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// When the request arrived.
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The status of the answer's head (a reset answer's too).
    pub status: u16,
    /// The fault in force ([`Fault::name`]).
    pub fault: &'static str,
}

/// A running fault proxy; dropping it stops it and closes its connections.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`.
    host: String,
    /// The registry behind the proxy, `127.0.0.1:PORT`.
    upstream: String,
    shared: Arc<Shared>,
    /// Owns the proxy's thread and tasks: dropping it ends them.
    _runtime: Runtime,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 in front of `upstream`
    /// (`127.0.0.1:PORT`), forwarding everything ([`Fault::None`]).
    pub fn start(upstream: &str) -> Result<FaultProxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .context("cannot start the fault proxy's runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("cannot listen on 127.0.0.1")?;
        let host = listener.local_addr()?.to_string();
        let shared = Arc::new(Shared::new(upstream));
        runtime.spawn(server::serve(listener, shared.clone()));
        Ok(FaultProxy {
            host,
            upstream: upstream.to_owned(),
            shared,
            _runtime: runtime,
        })
    }

    /// `127.0.0.1:PORT`, the registry part of the images it serves.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Puts `fault` in force for every request from now on. Into or out of
    /// [`Fault::Refuse`], returns once the port refuses connections, or takes them again.
    pub fn set(&self, fault: Fault) {
        let refuse = fault == Fault::Refuse;
        let was = self.shared.fault.send_replace(fault);
        if refuse != (was == Fault::Refuse) {
            let deadline = Instant::now() + LISTEN_TIMEOUT;
            while TcpStream::connect(&self.host).is_ok() == refuse && Instant::now() < deadline {
                std::thread::sleep(LISTEN_POLL);
            }
        }
    }

    /// `image` reached through the proxy: the same repository, tag and digest.
    pub fn image(&self, image: &Image) -> Image {
        let reference = match image.reference.strip_prefix(&self.upstream) {
            Some(rest) => format!("{}{rest}", self.host),
            None => image.reference.clone(),
        };
        Image {
            reference,
            digest: image.digest.clone(),
        }
    }

    /// Every exchange so far, in the order they were answered.
    pub fn exchanges(&self) -> Vec<Exchange> {
        let exchanges = self.shared.exchanges.lock();
        exchanges.unwrap_or_else(|p| p.into_inner()).clone()
    }
}
