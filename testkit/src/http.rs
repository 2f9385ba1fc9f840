//! A misbehaving HTTP/1.1 (and HTTPS) server for probe, proxy and end-to-end tests.
//!
//! Routes (all `GET`, everything else is `404`):
//!
//! | path | behaviour |
//! |---|---|
//! | `/` | `200 ok` |
//! | `/health` | the status set with [`HttpServer::set_health_status`] (default 200), body `health` |
//! | `/status/{code}` | that status code, body `status {code}` |
//! | `/slow-headers/{ms}` | waits `ms` milliseconds before sending anything |
//! | `/slow-body/{ms}` | sends headers and `partial` at once, the rest after `ms` milliseconds |
//! | `/big-body/{bytes}` | `200` with a body of `bytes` bytes of `a` |
//! | `/endless-body` | `200` with a body that never ends |
//! | `/redirect-loop` | `302` to itself, forever |
//! | `/chain/{n}` | `302` to `/chain/{n-1}`; `/chain/0` is `200 end of chain` |
//! | `/redirect?to={url}` | `302` with `Location: {url}` (percent-decoded) |
//! | `/no-location` | `302` without a `Location` header |
//! | `/echo` | `200`, body lists the request headers as `name: value` lines |
//!
//! Every request is counted ([`HttpServer::request_count`]) and the last
//! [`MAX_RECORDED`] are kept with their path and headers ([`HttpServer::requests`]).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::{AbortOnDrop, Error};

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Path and query, e.g. `/health?x=1`.
    pub path_and_query: String,
    /// Protocol version, e.g. `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Headers in arrival order, names lower-cased (as the `http` crate stores them).
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// All values of header `name` (case-insensitive).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Most requests kept for [`HttpServer::requests`] (long-running tests probe a lot).
pub const MAX_RECORDED: usize = 1000;

#[derive(Debug)]
struct State {
    health: AtomicU16,
    total: AtomicUsize,
    requests: Mutex<VecDeque<RecordedRequest>>,
}

/// A running test HTTP or HTTPS server on `127.0.0.1`; stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    tls: bool,
    state: Arc<State>,
    _task: AbortOnDrop,
}

type Body = BoxBody<Bytes, Infallible>;

impl HttpServer {
    /// Starts a plain HTTP/1.1 server on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, Error> {
        Self::start_inner(None).await
    }

    /// Starts an HTTPS server with a freshly generated self-signed certificate for `localhost`
    /// and `127.0.0.1` (no client can verify it, which is the point).
    pub async fn start_tls() -> Result<Self, Error> {
        Self::start_tls_alpn(Vec::new()).await
    }

    /// Like [`Self::start_tls`], but also offers HTTP/2 by ALPN (`h2`, then `http/1.1`).
    pub async fn start_tls_h2() -> Result<Self, Error> {
        Self::start_tls_alpn(vec![b"h2".to_vec(), b"http/1.1".to_vec()]).await
    }

    async fn start_tls_alpn(alpn: Vec<Vec<u8>>) -> Result<Self, Error> {
        let cert = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])?;
        let der = CertificateDer::from(cert.cert.der().to_vec());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![der], key)?;
        let mut config = config;
        config.alpn_protocols = alpn;
        Self::start_inner(Some(TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_inner(tls: Option<TlsAcceptor>) -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            health: AtomicU16::new(200),
            total: AtomicUsize::new(0),
            requests: Mutex::new(VecDeque::new()),
        });
        let is_tls = tls.is_some();
        let task_state = state.clone();
        let task = tokio::spawn(async move {
            // Connections live in the set, so aborting the accept loop drops them all.
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = task_state.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(route(&state, req).await) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                if s.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()) {
                                    let h2 = hyper::server::conn::http2::Builder::new(
                                        hyper_util::rt::TokioExecutor::new(),
                                    );
                                    let _ = h2.serve_connection(TokioIo::new(s), svc).await;
                                } else {
                                    let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                                }
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
                // Reap finished connections so the set does not grow without bound.
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            tls: is_tls,
            state,
            _task: AbortOnDrop(task),
        })
    }

    /// The bound address (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>` or `https://…` for a TLS server.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Sets the status code `/health` answers from now on (e.g. 500 to make a probe fail).
    pub fn set_health_status(&self, code: u16) {
        self.state.health.store(code, Ordering::SeqCst);
    }

    /// The requests received so far (the last [`MAX_RECORDED`]), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().iter().cloned().collect()
    }

    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        self.state.total.load(Ordering::SeqCst)
    }
}

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

fn redirect(location: Option<&str>) -> Response<Body> {
    let body = match location {
        Some(l) => format!("<a href=\"{l}\">Found</a>."),
        None => String::new(),
    };
    let mut resp = full(302, body);
    if let Some(l) = location
        && let Ok(v) = http::HeaderValue::from_str(l)
    {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn route(state: &State, req: Request<Incoming>) -> Response<Body> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    state.total.fetch_add(1, Ordering::SeqCst);
    {
        let mut requests = state.requests.lock();
        if requests.len() >= MAX_RECORDED {
            requests.pop_front();
        }
        requests.push_back(RecordedRequest {
            version: format!("{:?}", req.version()),
            path_and_query: path_and_query.clone(),
            headers: headers.clone(),
        });
    }
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let num = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|n| n.parse::<u64>().ok())
    };

    if path == "/" {
        return full(200, "ok");
    }
    if path == "/health" {
        return full(state.health.load(Ordering::SeqCst), "health");
    }
    if let Some(code) = num("/status/") {
        return full(u16::try_from(code).unwrap_or(500), format!("status {code}"));
    }
    if let Some(ms) = num("/slow-headers/") {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return full(200, "slow headers");
    }
    if let Some(ms) = num("/slow-body/") {
        let chunks = futures::stream::unfold(0u8, move |step| async move {
            match step {
                0 => Some((Ok(Frame::data(Bytes::from_static(b"partial"))), 1)),
                1 => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Some((Ok(Frame::data(Bytes::from_static(b" rest"))), 2))
                }
                _ => None,
            }
        });
        return Response::new(StreamBody::new(chunks).boxed());
    }
    if let Some(n) = num("/big-body/") {
        let n = usize::try_from(n).unwrap_or(0);
        return full(200, vec![b'a'; n]);
    }
    if path == "/endless-body" {
        let chunk = Bytes::from(vec![b'a'; 4096]);
        let chunks = futures::stream::repeat_with(move || Ok(Frame::data(chunk.clone())));
        return Response::new(StreamBody::new(chunks).boxed());
    }
    if path == "/redirect-loop" {
        return redirect(Some("/redirect-loop"));
    }
    if let Some(n) = num("/chain/") {
        if n == 0 {
            return full(200, "end of chain");
        }
        return redirect(Some(&format!("/chain/{}", n - 1)));
    }
    if path == "/redirect" {
        let to = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("to="))
            .map(percent_decode);
        return redirect(to.as_deref());
    }
    if path == "/no-location" {
        return redirect(None);
    }
    if path == "/echo" {
        let body: String = headers.iter().map(|(n, v)| format!("{n}: {v}\n")).collect();
        return full(200, body);
    }
    full(404, "not found")
}
