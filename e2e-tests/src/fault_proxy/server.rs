//! The proxy's HTTP side: hyper serves 127.0.0.1, hyper's client forwards to the registry,
//! and the fault in force decides what comes back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use http_body_util::channel::Channel;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::http::response::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::fault::{corrupt, error_body, tamper_payload, truncate, Fault, Target, SIMPLE_SIGNING};
use super::Exchange;
use crate::fixtures::sha256_digest;

type Body = BoxBody<Bytes, std::io::Error>;

/// How long a reset answer's first half is given to reach the host before the reset: a
/// reset discards what the kernel has not sent yet.
const RESET_PAUSE: Duration = Duration::from_millis(100);
/// How often a refusing proxy tries to listen on its port again once the fault is lifted.
const REBIND_PAUSE: Duration = Duration::from_millis(20);
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
/// Headers of one hop that are not forwarded (hyper frames each answer itself).
const HOP_HEADERS: [&str; 4] = ["connection", "keep-alive", "transfer-encoding", "upgrade"];

/// What the proxy's tasks share with the [`FaultProxy`](super::FaultProxy) handle.
pub(super) struct Shared {
    pub fault: watch::Sender<Fault>,
    pub exchanges: Mutex<Vec<Exchange>>,
    /// Tampered signature payloads, by digest: the blobs the rewritten manifests name.
    substitutes: Mutex<HashMap<String, Bytes>>,
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Shared {
    pub fn new(upstream: &str) -> Shared {
        Shared {
            fault: watch::Sender::new(Fault::None),
            exchanges: Mutex::default(),
            substitutes: Mutex::default(),
            upstream: upstream.to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

/// Accepts connections on `listener` until the proxy is dropped. Under [`Fault::Refuse`]
/// the listener is closed, so connections are refused, and opened again on the same port
/// once another fault is set.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let Ok(address) = listener.local_addr() else {
        return;
    };
    let mut faults = shared.fault.subscribe();
    let mut listener = Some(listener);
    loop {
        let refuse = match &listener {
            Some(open) => tokio::select! {
                accepted = open.accept() => {
                    if let Ok((stream, _)) = accepted {
                        tokio::spawn(connection(stream, shared.clone()));
                    }
                    false
                }
                changed = faults.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    *faults.borrow_and_update() == Fault::Refuse
                }
            },
            None => {
                if faults.changed().await.is_err() {
                    return;
                }
                if *faults.borrow_and_update() != Fault::Refuse {
                    listener = Some(listen_again(address).await);
                }
                continue;
            }
        };
        if refuse {
            listener = None;
        }
    }
}

/// The port again, as soon as the kernel gives it back.
async fn listen_again(address: SocketAddr) -> TcpListener {
    loop {
        match TcpListener::bind(address).await {
            Ok(listener) => return listener,
            Err(_) => tokio::time::sleep(REBIND_PAUSE).await,
        }
    }
}

/// Serves one connection until it ends or a fault that closes connections is set.
async fn connection(stream: TcpStream, shared: Arc<Shared>) {
    let mut faults = shared.fault.subscribe();
    if matches!(*faults.borrow_and_update(), Fault::ResetMidBody(_)) {
        // Closing this connection resets it (RST) instead of ending it (FIN).
        let _ = stream.set_zero_linger();
    }
    let service = service_fn(move |request| handle(request, shared.clone()));
    let serving = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = serving => {}
        _ = closing(&mut faults) => {}
    }
}

/// Resolves when a fault that closes connections is set, or the proxy is dropped.
async fn closing(faults: &mut watch::Receiver<Fault>) {
    while faults.changed().await.is_ok() {
        if faults.borrow_and_update().closes_connections() {
            return;
        }
    }
}

/// What a request asks the registry for, as far as the faults care.
enum Resource {
    /// `/v2/<repository>/manifests/<reference>`; `signature` for a cosign `.sig` tag.
    Manifest {
        repository: String,
        signature: bool,
    },
    /// `/v2/<repository>/blobs/<digest>`.
    Blob {
        digest: String,
    },
    Other,
}

impl Resource {
    fn of(path: &str) -> Resource {
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Resource::Other;
        };
        if let Some((repository, reference)) = rest.rsplit_once("/manifests/") {
            return Resource::Manifest {
                repository: repository.to_owned(),
                signature: reference.starts_with("sha256-") && reference.ends_with(".sig"),
            };
        }
        match rest.rsplit_once("/blobs/") {
            Some((_, digest)) => Resource::Blob {
                digest: digest.to_owned(),
            },
            None => Resource::Other,
        }
    }

    /// Whether this is a read of `target`.
    fn is(&self, target: Target) -> bool {
        match (self, target) {
            (Resource::Manifest { signature, .. }, Target::SignatureManifests) => *signature,
            (Resource::Manifest { signature, .. }, Target::ImageManifests) => !signature,
            (Resource::Blob { .. }, Target::Blobs) => true,
            _ => false,
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    let fault = shared.fault.borrow().clone();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let at = Instant::now();
    let answer = answer(request, &fault, &shared).await;
    let exchange = Exchange {
        at,
        method: method.to_string(),
        path,
        status: answer.status().as_u16(),
        fault: fault.name(),
    };
    lock(&shared.exchanges).push(exchange);
    Ok(answer)
}

/// The answer to `request` under `fault`.
async fn answer(request: Request<Incoming>, fault: &Fault, shared: &Shared) -> Response<Body> {
    let resource = Resource::of(request.uri().path());
    let get = request.method() == Method::GET;
    if let Resource::Blob { digest } = &resource {
        if let Some(payload) = lock(&shared.substitutes).get(digest).cloned() {
            return served_blob(digest, payload);
        }
    }
    match fault {
        Fault::Status(status) => return registry_error(*status, None),
        Fault::TooManyRequests { retry_after } => return registry_error(429, Some(*retry_after)),
        Fault::Delay(delay) => tokio::time::sleep(*delay).await,
        _ => {}
    }
    let (parts, body) = match forward(request, shared).await {
        Ok(answer) => answer,
        Err(e) => return bad_gateway(&e),
    };
    let served = get && parts.status == StatusCode::OK;
    match (fault, resource) {
        (Fault::ResetMidBody(target), resource) if resource.is(*target) && !body.is_empty() => {
            reset_mid_body(parts, body)
        }
        (Fault::CorruptManifest(target), resource) if served && resource.is(*target) => {
            replaced(parts, corrupt(&body), None)
        }
        (Fault::TruncatedLayer, Resource::Blob { .. }) if served => {
            replaced(parts, truncate(&body), None)
        }
        (
            Fault::MismatchedSignaturePayload,
            Resource::Manifest {
                repository,
                signature: true,
            },
        ) if served => match tamper_manifest(&repository, &body, shared).await {
            Ok(manifest) => {
                let digest = sha256_digest(&manifest);
                replaced(parts, manifest, Some(&digest))
            }
            Err(e) => bad_gateway(&e),
        },
        _ => Response::from_parts(parts, full(body)),
    }
}

/// Sends `request` on to the registry: its answer's head and whole body.
async fn forward(request: Request<Incoming>, shared: &Shared) -> Result<(Parts, Bytes)> {
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{}{path}", shared.upstream).parse()?;
    parts
        .headers
        .insert(HOST, HeaderValue::from_str(&shared.upstream)?);
    let answer = shared
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await
        .context("the registry did not answer")?;
    let (mut parts, body) = answer.into_parts();
    for header in HOP_HEADERS {
        parts.headers.remove(header);
    }
    Ok((parts, body.collect().await?.to_bytes()))
}

/// GETs a blob of `repository` from the registry, bypassing the fault.
async fn fetch_blob(repository: &str, digest: &str, shared: &Shared) -> Result<Bytes> {
    let uri = format!("http://{}/v2/{repository}/blobs/{digest}", shared.upstream);
    let request = Request::get(uri)
        .header(HOST, &shared.upstream)
        .body(Full::default())?;
    let answer = shared.client.request(request).await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "blob {digest}: {}",
        answer.status()
    );
    Ok(answer.into_body().collect().await?.to_bytes())
}

/// A cosign signature manifest whose every signature layer carries a tampered payload,
/// kept by the proxy under its new digest, and described with that digest and size.
async fn tamper_manifest(repository: &str, manifest: &[u8], shared: &Shared) -> Result<Vec<u8>> {
    let mut manifest: Value = serde_json::from_slice(manifest)?;
    let layers = manifest["layers"]
        .as_array_mut()
        .context("a signature manifest without layers")?;
    for layer in layers
        .iter_mut()
        .filter(|layer| layer["mediaType"] == SIMPLE_SIGNING)
    {
        let digest = layer["digest"].as_str().context("a layer without digest")?;
        let payload = tamper_payload(&fetch_blob(repository, digest, shared).await?)?;
        let tampered = sha256_digest(&payload);
        layer["digest"] = Value::String(tampered.clone());
        layer["size"] = Value::from(payload.len());
        lock(&shared.substitutes).insert(tampered, Bytes::from(payload));
    }
    Ok(serde_json::to_vec(&manifest)?)
}

/// The registry's answer with another body (and, for a manifest, its digest).
fn replaced(mut parts: Parts, body: Vec<u8>, digest: Option<&str>) -> Response<Body> {
    parts.headers.remove(CONTENT_LENGTH);
    if let Some(digest) = digest.and_then(|d| HeaderValue::from_str(d).ok()) {
        parts.headers.insert(DOCKER_CONTENT_DIGEST, digest);
    }
    Response::from_parts(parts, full(Bytes::from(body)))
}

/// The head and the first half of the body (the head announcing all of it), then a reset.
fn reset_mid_body(parts: Parts, body: Bytes) -> Response<Body> {
    let (mut sender, channel) = Channel::<Bytes, std::io::Error>::new(1);
    let half = body.slice(..body.len() / 2);
    tokio::spawn(async move {
        if sender.send_data(half).await.is_ok() {
            tokio::time::sleep(RESET_PAUSE).await;
            sender.abort(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "reset by the fault proxy",
            ));
        }
    });
    let mut response = Response::from_parts(parts, channel.boxed());
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

/// A tampered payload, served as the registry serves a blob.
fn served_blob(digest: &str, payload: Bytes) -> Response<Body> {
    let mut response = Response::new(full(payload));
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(digest) = HeaderValue::from_str(digest) {
        headers.insert(DOCKER_CONTENT_DIGEST, digest);
    }
    response
}

/// `status` with the registry's error body, and `Retry-After` when given.
fn registry_error(status: u16, retry_after: Option<u64>) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(error_body(status))));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(seconds) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// What the proxy answers when it cannot do its job: never mistaken for the registry's
/// answer by a test, which checks the proxy's log.
fn bad_gateway(error: &anyhow::Error) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(format!("fault proxy: {error:#}"))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}

fn full(body: Bytes) -> Body {
    Full::new(body).map_err(|never| match never {}).boxed()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
