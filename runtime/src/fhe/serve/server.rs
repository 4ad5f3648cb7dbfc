//! The HTTP service (axum on tokio; TLS 1.3 by rustls with ring, or plain HTTP).
//!
//! Routes: `GET /health`, `GET /metrics`, `GET /v1/models`, `GET /v1/models/{id}/client`,
//! `POST /v1/keys[?model=ID]`, `POST /v1/models/{id}/infer` (with the
//! [`KEY_ID_HEADER`]). Errors are `{"error": "..."}` with the status that says whose
//! fault it is: 400 a body that is not what the route takes, 404 an unknown model or key,
//! 409 a key or ciphertexts made for another model, 413 a body over its limit, 422 a key
//! whose sizes do not fit its parameter set, 429 a full queue, 504 a request past its
//! deadline.
//!
//! The bootstraps run on worker threads, off the async runtime: each takes one request
//! at a time from one FIFO queue and spreads its bootstraps over rayon's pool, so
//! requests are served in arrival order and each gets the whole machine in turn. The
//! queue is bounded (429 beyond it), and a request still queued at its deadline, or
//! whose client has gone, is dropped unevaluated.

use super::metrics::Metrics;
use super::store::KeyStore;
use super::{hex, ErrorReply, KeyReceipt, ModelInfo, KEY_ID_HEADER, MAX_REQUEST_ROWS};
use crate::fhe::exec::{CtValues, ServerProgram};
use crate::fhe::file::{decode_file, encode_file, FileError, Kind};
use crate::fhe::keys::{CompressedServerKey, ServerKey};
use crate::fhe::params::resolve_params;
use axum::body::Body;
use axum::extract::{MatchedPath, Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use secc_ir::artifact::Artifact;
use secc_ir::client_spec::ClientSpec;
use secc_ir::lowered::fhe::KeyLayout;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

/// A model the service serves.
pub struct ServedModel {
    /// Its id in paths.
    pub id: String,
    /// The compiled model (the server's side: weights, tables).
    pub artifact: Artifact,
}

/// How the service runs.
pub struct ServeConfig {
    /// Where uploaded keys are kept.
    pub data_dir: PathBuf,
    /// Most bytes of key files held; the least recently used go first.
    pub key_budget: u64,
    /// Largest key upload accepted.
    pub max_key_bytes: u64,
    /// Requests admitted beyond those being evaluated; more get 429.
    pub queue: usize,
    /// Requests evaluated at once (each spreads its bootstraps over every core).
    pub workers: usize,
    /// A request not answered within this gets 504.
    pub deadline: Duration,
    /// TLS, or plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A model cannot be served.
    #[error("model {id}: {reason}")]
    Model {
        /// Its id.
        id: String,
        /// Why.
        reason: String,
    },
    /// Two models share an id.
    #[error("two models have the id {0}; give their files different names")]
    DuplicateId(String),
    /// The data directory or the socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("TLS: {0}")]
    Tls(String),
}

/// A model ready to serve: its spec's bytes and its per-request limits.
struct Model {
    id: String,
    artifact: Artifact,
    digest: [u8; 32],
    spec: Vec<u8>,
    /// The keys a client makes for it.
    keys: KeyLayout,
    info: ModelInfo,
    /// Largest ciphertext body accepted: [`MAX_REQUEST_ROWS`] samples and some slack.
    max_body: usize,
}

/// An inference waiting for a worker.
struct Job {
    model: Arc<Model>,
    key: Arc<ServerKey>,
    file_key_id: [u8; 16],
    body: Vec<u8>,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Result<Vec<u8>, ApiError>>,
}

struct Service {
    models: Vec<Arc<Model>>,
    by_id: HashMap<String, usize>,
    keys: Mutex<KeyStore>,
    max_key_bytes: u64,
    deadline: Duration,
    queue: mpsc::SyncSender<Job>,
    metrics: Arc<Metrics>,
}

/// An error reply.
#[derive(Debug)]
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_string(&ErrorReply { error: self.1 }).expect("strings serialize");
        (self.0, [("content-type", "application/json")], body).into_response()
    }
}

fn err(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

/// A key or ciphertext file refused: whose fault, in HTTP terms.
fn file_error(e: FileError) -> ApiError {
    let status = match e {
        FileError::OtherModel { .. } | FileError::OtherKeys { .. } => StatusCode::CONFLICT,
        FileError::Size { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    err(status, e.to_string())
}

impl Model {
    fn new(m: ServedModel) -> Result<Model, ServiceError> {
        let bad = |reason: String| ServiceError::Model { id: m.id.clone(), reason };
        let spec = ClientSpec::from_artifact(&m.artifact).map_err(|e| bad(e.to_string()))?;
        let params =
            spec.keys.sets.iter().map(resolve_params).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
        let graph = m.artifact.quantized.as_ref().map_err(|e| bad(e.clone()))?;
        // Each ciphertext is its mask and body, a length and its modulus in bincode.
        let bytes = |e: &secc_ir::client_spec::Encrypted| {
            let lwe_size = params[e.partition as usize].big_lwe_size().0;
            graph.ty(secc_ir::ValueId(e.value)).shape.numel() * (lwe_size * 8 + 64)
        };
        let max_body = MAX_REQUEST_ROWS * spec.encrypted.iter().map(bytes).sum::<usize>() + (1 << 16);
        let digest = spec.artifact_digest;
        let info = ModelInfo {
            id: m.id.clone(),
            name: spec.model.clone(),
            params: spec.keys.name(),
            pbs: spec.pbs,
            digest: hex(&digest),
        };
        Ok(Model { id: m.id, artifact: m.artifact, digest, spec: spec.to_bytes(), keys: spec.keys, info, max_body })
    }

    /// Decodes the ciphertexts in `body`, evaluates each sample, encodes the results.
    fn evaluate(
        &self,
        key: &ServerKey,
        file_key_id: &[u8; 16],
        body: &[u8],
        metrics: &Metrics,
    ) -> Result<Vec<u8>, ApiError> {
        let (inputs, _): (Vec<CtValues>, _) =
            decode_file(body, "the request body", Kind::Ciphertexts, &self.digest, Some(file_key_id))
                .map_err(file_error)?;
        if inputs.is_empty() || inputs.len() > MAX_REQUEST_ROWS {
            return Err(err(
                StatusCode::BAD_REQUEST,
                format!("{} samples; a request holds 1 to {MAX_REQUEST_ROWS}", inputs.len()),
            ));
        }
        let graph = self.artifact.quantized.as_ref().expect("checked when loaded");
        let circuit = self.artifact.fhe.as_ref().expect("checked when loaded");
        let program = ServerProgram::new(graph, circuit, key).map_err(|e| err(StatusCode::CONFLICT, e.to_string()))?;
        let t = Instant::now();
        let n = inputs.len();
        let outputs = inputs
            .into_iter()
            .map(|s| program.evaluate(s, &|| {}))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?;
        metrics.record_bootstraps((program.pbs_count() * n) as u64, t.elapsed());
        Ok(encode_file(Kind::Ciphertexts, &self.digest, file_key_id, &outputs))
    }
}

/// Serves `models` on `listener` until the process ends.
pub fn serve(
    models: Vec<ServedModel>,
    listener: std::net::TcpListener,
    config: ServeConfig,
) -> Result<(), ServiceError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| ServiceError::Io { what: what.clone(), source }
    };
    let mut by_id = HashMap::new();
    let mut ready = Vec::new();
    for m in models {
        if by_id.insert(m.id.clone(), ready.len()).is_some() {
            return Err(ServiceError::DuplicateId(m.id));
        }
        ready.push(Arc::new(Model::new(m)?));
    }
    let keys =
        KeyStore::open(&config.data_dir, config.key_budget).map_err(io(&config.data_dir.display().to_string()))?;
    let metrics = Arc::new(Metrics::default());
    let (queue, jobs) = mpsc::sync_channel::<Job>(config.queue);
    let jobs = Arc::new(Mutex::new(jobs));
    for _ in 0..config.workers.max(1) {
        let (jobs, metrics) = (jobs.clone(), metrics.clone());
        std::thread::spawn(move || work(&jobs, &metrics));
    }
    let service = Arc::new(Service {
        models: ready,
        by_id,
        keys: Mutex::new(keys),
        max_key_bytes: config.max_key_bytes,
        deadline: config.deadline,
        queue,
        metrics,
    });
    listener.set_nonblocking(true).map_err(io("the listening socket"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("the async runtime"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(io("the listening socket"))?;
        accept(listener, router(service), config.tls).await;
        Ok(())
    })
}

/// One worker: requests in queue order, one at a time.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>, metrics: &Metrics) {
    loop {
        let job = match jobs.lock().expect("queue lock").recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
        if job.reply.is_closed() {
            continue;
        }
        let result = if Instant::now() > job.deadline {
            Err(err(StatusCode::GATEWAY_TIMEOUT, "the request waited past its deadline"))
        } else {
            job.model.evaluate(&job.key, &job.file_key_id, &job.body, metrics)
        };
        let _ = job.reply.send(result);
    }
}

fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{id}/client", get(client_spec))
        .route("/v1/models/{id}/infer", post(infer))
        .route("/v1/keys", post(upload_key))
        .fallback(|| async { err(StatusCode::NOT_FOUND, "no such route; see GET /v1/models") })
        .layer(axum::middleware::from_fn_with_state(service.clone(), count))
        .with_state(service)
}

/// Times and counts every request.
async fn count(State(s): State<Arc<Service>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("other".to_string(), |p| p.as_str().to_string());
    let t = Instant::now();
    let response = next.run(request).await;
    s.metrics.record(&route, response.status().as_u16(), t.elapsed());
    response
}

async fn metrics(State(s): State<Arc<Service>>) -> String {
    s.metrics.render()
}

async fn list_models(State(s): State<Arc<Service>>) -> Response {
    let list: Vec<&ModelInfo> = s.models.iter().map(|m| &m.info).collect();
    json(&list)
}

fn json(value: &impl serde::Serialize) -> Response {
    ([("content-type", "application/json")], serde_json::to_string(value).expect("replies serialize")).into_response()
}

impl Service {
    fn model(&self, id: &str) -> Result<&Arc<Model>, ApiError> {
        let unknown = || err(StatusCode::NOT_FOUND, format!("no model {id:?}; see GET /v1/models"));
        self.by_id.get(id).map(|&i| &self.models[i]).ok_or_else(unknown)
    }
}

async fn client_spec(State(s): State<Arc<Service>>, UrlPath(id): UrlPath<String>) -> Result<Vec<u8>, ApiError> {
    Ok(s.model(&id)?.spec.clone())
}

#[derive(serde::Deserialize)]
struct KeyQuery {
    model: Option<String>,
}

/// Streams a server key to disk within the limit, then checks it off the runtime.
async fn upload_key(
    State(s): State<Arc<Service>>,
    Query(q): Query<KeyQuery>,
    body: Body,
) -> Result<Response, ApiError> {
    let expected = match &q.model {
        Some(id) => Some(s.model(id)?.clone()),
        None => None,
    };
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let part = s.keys.lock().expect("keys lock").upload_path(&hex(&nonce));
    let received = receive(body, &part, s.max_key_bytes).await;
    let checked = match received {
        Ok(()) => {
            let s = s.clone();
            let part = part.clone();
            tokio::task::spawn_blocking(move || check_key(&s, &part, expected.as_deref()))
                .await
                .unwrap_or_else(|e| Err(err(StatusCode::INTERNAL_SERVER_ERROR, format!("key check failed: {e}"))))
        }
        Err(e) => Err(e),
    };
    let _ = tokio::fs::remove_file(&part).await;
    Ok(json(&checked?))
}

/// Writes `body` to `path`, refusing more than `limit` bytes.
async fn receive(body: Body, path: &std::path::Path, limit: u64) -> Result<(), ApiError> {
    let internal = |e: std::io::Error| err(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the upload: {e}"));
    let mut file = tokio::fs::File::create(path).await.map_err(internal)?;
    read_body(body, limit, Sink::File(&mut file))
        .await
        .map_err(|e| e.reply(format!("a server key of more than {limit} bytes")))?;
    file.flush().await.map_err(internal)
}

/// Where a body goes.
enum Sink<'a> {
    File(&'a mut tokio::fs::File),
    Memory(&'a mut Vec<u8>),
}

enum BodyError {
    TooLarge,
    Broken(String),
    Io(std::io::Error),
}

impl BodyError {
    fn reply(self, too_large: String) -> ApiError {
        match self {
            BodyError::TooLarge => err(StatusCode::PAYLOAD_TOO_LARGE, too_large),
            BodyError::Broken(e) => err(StatusCode::BAD_REQUEST, format!("the body broke off: {e}")),
            BodyError::Io(e) => err(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot store the body: {e}")),
        }
    }
}

/// Most bytes read on, and for how long, past a body's limit before refusing it.
const DRAIN_BYTES: u64 = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Reads `body` into `sink`, refusing more than `limit` bytes. A body over its limit is
/// read on (within [`DRAIN_BYTES`] and [`DRAIN_TIME`]) before the refusal goes out: a
/// connection closed on unread data is reset, and the client would lose the answer.
async fn read_body(mut body: Body, limit: u64, mut sink: Sink<'_>) -> Result<(), BodyError> {
    let mut got = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
        let Ok(data) = frame.into_data() else { continue };
        got += data.len() as u64;
        if got > limit {
            let drain = async {
                while got <= limit + DRAIN_BYTES {
                    match body.frame().await {
                        Some(Ok(frame)) => got += frame.into_data().map_or(0, |d| d.len() as u64),
                        _ => break,
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
            return Err(BodyError::TooLarge);
        }
        match &mut sink {
            Sink::File(f) => f.write_all(&data).await.map_err(BodyError::Io)?,
            Sink::Memory(v) => v.extend_from_slice(&data),
        }
    }
    Ok(())
}

/// Decodes and checks an uploaded key, and holds it under the SHA-256 of its file (an
/// identical upload gets the same id; nobody can pick another's).
fn check_key(s: &Service, part: &std::path::Path, expected: Option<&Model>) -> Result<KeyReceipt, ApiError> {
    let bytes = crate::fhe::file::read_limited(part, Kind::ServerKey).map_err(file_error)?;
    let id = hex(&Sha256::digest(&bytes)[..16]);
    let mut found = None;
    for (i, m) in s.models.iter().enumerate() {
        match decode_file::<CompressedServerKey>(&bytes, "the upload", Kind::ServerKey, &m.digest, None) {
            Err(FileError::OtherModel { .. }) => continue,
            Err(e) => return Err(file_error(e)),
            Ok(decoded) => {
                found = Some((i, decoded));
                break;
            }
        }
    }
    let Some((i, (key, file_key_id))) = found else {
        return Err(err(StatusCode::CONFLICT, "the key was made for a model this server does not serve"));
    };
    let model = &s.models[i];
    if let Some(e) = expected.filter(|e| e.id != model.id) {
        return Err(err(StatusCode::CONFLICT, format!("the key was made for model {}, not {}", model.id, e.id)));
    }
    if key.params != model.info.params {
        return Err(err(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("the key is for {}, model {} uses {}", key.params, model.id, model.info.params),
        ));
    }
    let key = key.decompress(&model.keys).map_err(|e| err(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
    let mut keys = s.keys.lock().expect("keys lock");
    if !keys.contains(&id) {
        std::fs::rename(part, keys.key_path(&id))
            .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot keep the key: {e}")))?;
        keys.insert(id.clone(), i, Arc::new(key), file_key_id);
    }
    s.metrics.keys_held.store(keys.len(), Ordering::Relaxed);
    s.metrics.key_bytes.store(keys.bytes(), Ordering::Relaxed);
    Ok(KeyReceipt { key_id: id, model: model.id.clone() })
}

/// Holds again a key an earlier run kept at `path`, checked as an upload is; a file
/// whose contents are not the key `id` names (altered on disk) is refused.
fn reload_key(s: &Service, path: &std::path::Path, id: &str) -> Result<(), ApiError> {
    let receipt = check_key(s, path, None)?;
    if receipt.key_id != id {
        return Err(err(StatusCode::INTERNAL_SERVER_ERROR, format!("the kept file of key {id} holds another key")));
    }
    Ok(())
}

async fn infer(
    State(s): State<Arc<Service>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    let deadline = Instant::now() + s.deadline;
    let model = s.model(&id)?.clone();
    let key_id = headers.get(KEY_ID_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        err(StatusCode::BAD_REQUEST, format!("no {KEY_ID_HEADER} header: upload a key to /v1/keys first"))
    })?;
    let kept = s.keys.lock().expect("keys lock").kept_file(key_id);
    if let Some(path) = kept {
        let (s, key_id) = (s.clone(), key_id.to_string());
        tokio::task::spawn_blocking(move || reload_key(&s, &path, &key_id))
            .await
            .unwrap_or_else(|e| Err(err(StatusCode::INTERNAL_SERVER_ERROR, format!("key check failed: {e}"))))?;
    }
    let (key, file_key_id) = {
        let mut keys = s.keys.lock().expect("keys lock");
        let held = keys.get(key_id).ok_or_else(|| {
            err(StatusCode::NOT_FOUND, format!("unknown key id {key_id:?}: upload the server key again"))
        })?;
        if s.models[held.model].id != model.id {
            return Err(err(
                StatusCode::CONFLICT,
                format!("key {key_id} was made for model {}, not {}", s.models[held.model].id, model.id),
            ));
        }
        (held.key.clone(), held.file_key_id)
    };
    let limit = model.max_body;
    let mut bytes = Vec::new();
    read_body(body, limit as u64, Sink::Memory(&mut bytes))
        .await
        .map_err(|e| e.reply(format!("a request of more than {limit} bytes for {}", model.id)))?;
    let (reply, result) = tokio::sync::oneshot::channel();
    let job = Job { model, key, file_key_id, body: bytes, deadline, reply };
    s.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
    if s.queue.try_send(job).is_err() {
        s.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
        return Err(err(StatusCode::TOO_MANY_REQUESTS, "the queue is full; try again later"));
    }
    match tokio::time::timeout_at(deadline.into(), result).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => Err(err(StatusCode::INTERNAL_SERVER_ERROR, "the worker stopped")),
        Err(_) => Err(err(StatusCode::GATEWAY_TIMEOUT, format!("no result within {:?}", s.deadline))),
    }
}

/// Accepts connections for ever, each served on its own task (TLS handshake included,
/// so a slow client holds up nobody).
async fn accept(listener: tokio::net::TcpListener, app: Router, tls: Option<Arc<rustls::ServerConfig>>) {
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let Ok((tcp, _)) = listener.accept().await else { continue };
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => serve_connection(tcp, app).await,
                Some(tls) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                        serve_connection(stream, app).await
                    }
                }
            }
        });
    }
}

async fn serve_connection<I>(io: I, app: Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

/// The TLS settings of a server with the certificate chain and private key in these
/// PEM files.
pub fn server_tls(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<rustls::ServerConfig>, ServiceError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServiceError::Tls(format!("the certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(ServiceError::Tls("the certificate file holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| ServiceError::Tls(format!("the key file: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| ServiceError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServiceError::Tls(e.to_string()))?;
    Ok(Arc::new(config))
}
