//! The data path: HTTP (port 80) and HTTPS (port 443) listeners that route each request by
//! the current [`crate::Table`] and forward it to a ready endpoint of its backend over a
//! kept-alive HTTP/1.1 connection, as ingress-nginx does ([`upstream`]: hyper's connection,
//! driven by the task of the request that uses it, parked in the worker's pool between
//! requests).
//!
//! Start at [`run`]: it serves each address on [`ServeConfig::workers`] threads, each a
//! single-threaded tokio runtime with its own [`Ingress`] (and upstream pool) accepting from
//! its own listening socket (`SO_REUSEPORT`: the kernel spreads connections over them), as
//! nginx's worker processes do. A request and the upstream connection it uses stay on one
//! task of one thread, so proxying wakes no other task or thread (on a multi-threaded runtime
//! those wake-ups cost more CPU than the proxying itself). The connection cap is split evenly
//! between the workers. The client side is paddock's one accept loop ([`accept::serve`]: a
//! connection cap that closes the idlest connection first, TLS handshake, request-head and
//! idle timeouts, heads over 64 KiB answered 431, lingering close, drain at shutdown), with
//! TLS by SNI ([`crate::tls`]) and ALPN `h2`/`http/1.1`, HTTP/1.1 or HTTP/2. Per request
//! ([`handle`]): the host from `:authority` or `Host` (port stripped; an invalid one, or none
//! in HTTP/1.1, is 400 as nginx answers; an unknown one goes to the default backend, 404 when
//! there is none, as ingress-nginx), hop-by-hop headers removed, `X-Forwarded-For/-Proto/-Host/
//! -Port/-Scheme` and `X-Real-IP` set to what this listener saw (not appended: client-sent ones
//! are not trusted, as ingress-nginx without `use-forwarded-headers`), WebSocket and other
//! `Upgrade`s passed through. Endpoints are chosen round-robin; a refused (or timed out)
//! connect is retried on another endpoint, and an idempotent request whose body was not sent
//! (or empty) is retried once on another endpoint when its connection fails before any response;
//! a request an idle upstream connection gave back unsent (its endpoint had just closed it)
//! goes to a new connection to the same endpoint.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::matching::normalize_host;
use crate::table::{Backend, Decision};
use upstream::{ExchangeError, Pool, Upstream};

pub mod upstream;
use crate::{Error, Router};

/// The listeners and their limits.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Plain HTTP addresses.
    pub http: Vec<SocketAddr>,
    /// HTTPS addresses.
    pub https: Vec<SocketAddr>,
    /// The client side's limits (per listener): connection cap, TLS handshake, header read
    /// and idle timeouts, largest request head (431 beyond), as every paddock server has.
    pub limits: accept::Limits,
    /// Time to connect to an endpoint before another is tried.
    pub connect_timeout: Duration,
    /// Time an endpoint has to answer a request's headers (then 504), as nginx's
    /// `proxy_read_timeout`.
    pub response_header_timeout: Duration,
    /// Threads serving the listeners, each a single-threaded runtime of its own (the
    /// machine's cores by default), as nginx's `worker_processes auto`.
    pub workers: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            http: Vec::new(),
            https: Vec::new(),
            limits: accept::Limits::new(accept::fd_share(4096)),
            connect_timeout: Duration::from_secs(5),
            response_header_timeout: Duration::from_secs(60),
            workers: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        }
    }
}

/// The body sent upstream.
pub type UpstreamBody = ReclaimBody;
/// The body sent to clients.
pub type ClientBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// How often idle upstream connections are checked for expiry and for endpoints that closed
/// them.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

struct Shared {
    router: Arc<Router>,
    pool: Arc<Pool>,
    tls: Arc<rustls::ServerConfig>,
    config: ServeConfig,
}

/// The listeners' shared state: the router, the upstream connection pool, TLS and the
/// connection cap.
#[derive(Clone)]
pub struct Ingress {
    shared: Arc<Shared>,
}

impl Ingress {
    /// The data path over `router` with `config`'s limits (its addresses are used by
    /// [`run`] only).
    pub fn new(router: Arc<Router>, config: ServeConfig) -> Result<Ingress, Error> {
        let tls = crate::tls::server_config(router.clone())?;
        Ok(Ingress::with_tls(router, config, tls))
    }

    fn with_tls(
        router: Arc<Router>,
        config: ServeConfig,
        tls: Arc<rustls::ServerConfig>,
    ) -> Ingress {
        Ingress {
            shared: Arc::new(Shared {
                router,
                pool: Arc::default(),
                tls,
                config,
            }),
        }
    }

    /// Serves `listener` (TLS first when `https`) on [`accept::serve`] until `shutdown`,
    /// then drains.
    pub async fn serve(&self, listener: TcpListener, https: bool, shutdown: CancellationToken) {
        let local_port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let shared = self.shared.clone();
        let service = tower::service_fn(move |req: Request<Incoming>| {
            let shared = shared.clone();
            async move {
                let peer = req
                    .extensions()
                    .get::<accept::ConnInfo>()
                    .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.peer);
                let ctx = ConnInfo {
                    peer,
                    local_port,
                    https,
                };
                Ok::<_, Infallible>(handle(&shared, ctx, req).await)
            }
        });
        let tls = https.then(|| self.shared.tls.clone());
        let pool = self.shared.pool.clone();
        let sweep = async move {
            let mut every = tokio::time::interval(SWEEP_EVERY);
            loop {
                every.tick().await;
                pool.sweep();
            }
        };
        tokio::select! {
            _ = accept::serve(
                listener,
                tls,
                service,
                self.shared.config.limits.clone(),
                shutdown.cancelled_owned(),
            ) => {}
            _ = sweep => {}
        }
    }
}

/// Serves `config`'s listeners from `router` until `shutdown`, on [`ServeConfig::workers`]
/// threads of their own (see the module docs). An address that cannot be bound yet (in use,
/// or not yet on the node) is retried every few seconds.
pub async fn run(
    router: Arc<Router>,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let tls = crate::tls::server_config(router.clone())?;
    let workers = config.workers.max(1);
    // The cap is per listener socket: the workers' shares add up to it.
    let mut limits = config.limits.clone();
    limits.max_connections = limits.max_connections.div_ceil(workers).max(1);
    let addresses: Vec<(SocketAddr, bool)> = config
        .http
        .iter()
        .map(|a| (*a, false))
        .chain(config.https.iter().map(|a| (*a, true)))
        .collect();
    let mut inboxes = Vec::with_capacity(workers);
    let mut finished = Vec::with_capacity(workers);
    for i in 0..workers {
        let ingress = Ingress::with_tls(
            router.clone(),
            ServeConfig {
                limits: limits.clone(),
                ..config.clone()
            },
            tls.clone(),
        );
        // Each address is handed over once.
        let (tx, rx) = mpsc::channel(addresses.len().max(1));
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Workers)?;
        let stop = shutdown.clone();
        std::thread::Builder::new()
            .name(format!("ingress-{i}"))
            .spawn(move || {
                rt.block_on(worker(ingress, rx, stop));
                let _ = done_tx.send(());
            })
            .map_err(Error::Workers)?;
        inboxes.push(tx);
        finished.push(done_rx);
    }
    let binds: Vec<_> = addresses
        .into_iter()
        .map(|(addr, https)| tokio::spawn(bind(addr, https, inboxes.clone(), shutdown.clone())))
        .collect();
    drop(inboxes);
    for b in binds {
        let _ = b.await;
    }
    for f in finished {
        let _ = f.await;
    }
    Ok(())
}

/// One worker: serves every listener it is handed until `shutdown`, then drains them.
async fn worker(
    ingress: Ingress,
    mut inbox: mpsc::Receiver<(std::net::TcpListener, bool)>,
    shutdown: CancellationToken,
) {
    let mut served = JoinSet::new();
    while let Some((listener, https)) = inbox.recv().await {
        match TcpListener::from_std(listener) {
            Ok(l) => {
                let (ingress, shutdown) = (ingress.clone(), shutdown.clone());
                served.spawn(async move { ingress.serve(l, https, shutdown).await });
            }
            Err(e) => tracing::warn!(error = %e, "ingress worker cannot take its listener"),
        }
    }
    while served.join_next().await.is_some() {}
}

/// Binds `addr` (retrying until it can, or until `shutdown`) and hands each worker a
/// listening socket of its own.
async fn bind(
    addr: SocketAddr,
    https: bool,
    workers: Vec<mpsc::Sender<(std::net::TcpListener, bool)>>,
    shutdown: CancellationToken,
) {
    let mut said = false;
    let listeners = loop {
        match listening_sockets(addr, workers.len()) {
            Ok(l) => break l,
            Err(e) => {
                if !said {
                    tracing::warn!(%addr, error = %e, "ingress listener cannot bind yet (ports below 1024 need root; see --ingress-http-port, --ingress-https-port); retrying");
                    said = true;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    };
    tracing::info!(%addr, https, workers = workers.len(), "ingress listening");
    for (w, l) in workers.iter().zip(listeners) {
        let _ = w.send((l, https)).await;
    }
}

/// `n` sockets listening on `addr`. With more than one they share the port with
/// `SO_REUSEPORT`, so the kernel spreads new connections over the workers (one socket that
/// every worker accepts from gives nearly all of them to whichever worker is awake, as the
/// wrk benchmark showed); only sockets of the same user can join such a group.
fn listening_sockets(addr: SocketAddr, n: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    if n > 1 {
        // `SO_REUSEPORT` would let the group join another process's group on the same port
        // (a second node of the same user): a plain bind first, so that a port in use is
        // refused ("address in use") as with one socket.
        let probe = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        probe.set_reuseaddr(true)?;
        probe.bind(addr)?;
        drop(probe);
    }
    (0..n.max(1))
        .map(|_| {
            let s = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            // As `TcpListener::bind`: a restart binds while old connections linger.
            s.set_reuseaddr(true)?;
            if n > 1 {
                s.set_reuseport(true)?;
            }
            s.bind(addr)?;
            s.listen(1024)?.into_std()
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
struct ConnInfo {
    peer: SocketAddr,
    local_port: u16,
    https: bool,
}

fn local(status: StatusCode, text: &'static str) -> Response<ClientBody> {
    let body = http_body_util::Full::new(Bytes::from_static(text.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The request's authority as the client gave it: HTTP/2's `:authority` (or a `Host`
/// header), HTTP/1's absolute-form target or `Host`. Two `Host` headers are an error.
fn authority(req: &Request<Incoming>) -> Result<Option<String>, ()> {
    if let Some(a) = req.uri().authority() {
        return Ok(Some(a.as_str().to_string()));
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(());
    }
    match first {
        Some(v) => v.to_str().map(|s| Some(s.to_string())).map_err(|_| ()),
        None => Ok(None),
    }
}

/// Routes and forwards one request.
async fn handle(shared: &Shared, ctx: ConnInfo, req: Request<Incoming>) -> Response<ClientBody> {
    // CONNECT asks for a tunnel, which no Ingress rule describes (nginx: 405).
    if req.method() == Method::CONNECT {
        return local(StatusCode::METHOD_NOT_ALLOWED, "405 Not Allowed\n");
    }
    let Ok(authority) = authority(&req) else {
        return local(StatusCode::BAD_REQUEST, "400 Bad Request\n");
    };
    let host = match &authority {
        Some(a) => match normalize_host(a) {
            Ok(h) => Some(h),
            Err(_) => return local(StatusCode::BAD_REQUEST, "400 Bad Request\n"),
        },
        // HTTP/1.1 requires Host (RFC 9112 3.2); HTTP/1.0 goes to the catch-all server.
        None if req.version() == Version::HTTP_10 => None,
        None => return local(StatusCode::BAD_REQUEST, "400 Bad Request\n"),
    };
    let table = shared.router.table();
    match table.route(host.as_deref(), req.uri().path()) {
        Decision::NotFound => local(StatusCode::NOT_FOUND, "default backend - 404\n"),
        Decision::Backend(b) => forward(shared, ctx, req, &b, authority.as_deref()).await,
    }
}

/// Hop-by-hop headers (RFC 9110 7.6.1), never forwarded.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes the hop-by-hop headers and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for h in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(h);
    }
}

/// The protocol an HTTP/1.1 request asks to upgrade to (`Connection: upgrade` with
/// `Upgrade: x`).
fn upgrade_of(headers: &HeaderMap, version: Version) -> Option<HeaderValue> {
    if version != Version::HTTP_11 {
        return None;
    }
    let wants = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !wants {
        return None;
    }
    headers.get(header::UPGRADE).cloned()
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The headers sent upstream.
fn upstream_headers(
    mut headers: HeaderMap,
    version: Version,
    ctx: ConnInfo,
    authority: Option<&str>,
    upgrade: Option<&HeaderValue>,
) -> HeaderMap {
    strip_hop_by_hop(&mut headers);
    // HTTP/2 may split cookies over several fields; HTTP/1.1 wants one (RFC 9113 8.2.3).
    if version == Version::HTTP_2 && headers.get_all(header::COOKIE).iter().count() > 1 {
        let joined: Vec<&str> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if let Ok(v) = HeaderValue::from_str(&joined.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
    if let Some(a) = authority.and_then(|a| HeaderValue::from_str(a).ok()) {
        headers.insert(header::HOST, a.clone());
        headers.insert(HeaderName::from_static("x-forwarded-host"), a);
    }
    let ip = HeaderValue::from_str(&ctx.peer.ip().to_string()).ok();
    if let Some(ip) = ip {
        headers.insert(HeaderName::from_static("x-forwarded-for"), ip.clone());
        headers.insert(HeaderName::from_static("x-real-ip"), ip);
    }
    let proto = HeaderValue::from_static(if ctx.https { "https" } else { "http" });
    headers.insert(HeaderName::from_static("x-forwarded-proto"), proto.clone());
    headers.insert(HeaderName::from_static("x-forwarded-scheme"), proto);
    headers.insert(
        HeaderName::from_static("x-forwarded-port"),
        HeaderValue::from(ctx.local_port),
    );
    if let Some(u) = upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, u.clone());
    }
    headers
}

async fn forward(
    shared: &Shared,
    ctx: ConnInfo,
    mut req: Request<Incoming>,
    backend: &Backend,
    authority: Option<&str>,
) -> Response<ClientBody> {
    if backend.target.is_err() {
        tracing::debug!(backend = %backend.name, why = ?backend.target, "ingress backend unavailable");
        return local(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 Service Temporarily Unavailable\n",
        );
    }
    let upgrade = upgrade_of(req.headers(), req.version());
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (parts, body) = req.into_parts();
    let headers = upstream_headers(
        parts.headers,
        parts.version,
        ctx,
        authority,
        upgrade.as_ref(),
    );
    // Origin-form: the endpoint is the server, not a proxy.
    let target = parts
        .uri
        .path_and_query()
        .cloned()
        .map_or_else(|| http::Uri::from_static("/"), http::Uri::from);
    let retry_once = idempotent(&parts.method);
    let body = Reclaim::new(body);
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut resets_left = 1;
    // A parked connection whose endpoint closed it just as it was taken hands the request
    // back unsent: a new connection to the same endpoint takes it (once).
    let mut stale_left = 1;
    let mut again: Option<SocketAddr> = None;
    loop {
        let (ep, parked) = match again.take() {
            Some(ep) => (ep, None),
            None => {
                let Some(ep) = backend.pick(&tried) else {
                    return if tried.is_empty() {
                        local(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "503 Service Temporarily Unavailable\n",
                        )
                    } else {
                        local(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n")
                    };
                };
                tried.push(ep);
                // An upgrade takes a connection of its own.
                let parked = client_upgrade
                    .is_none()
                    .then(|| shared.pool.take(ep))
                    .flatten();
                (ep, parked)
            }
        };
        let reused = parked.is_some();
        let conn = match parked {
            Some(u) => u,
            None => match Upstream::connect(ep, shared.config.connect_timeout).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(backend = %backend.name, endpoint = %ep, error = %e, "ingress connect failed; next endpoint");
                    continue;
                }
            },
        };
        let mut up = Request::new(body.handle());
        *up.method_mut() = parts.method.clone();
        *up.uri_mut() = target.clone();
        *up.version_mut() = Version::HTTP_11;
        *up.headers_mut() = headers.clone();
        if !up.headers().contains_key(header::HOST)
            && let Ok(h) = HeaderValue::from_str(&ep.to_string())
        {
            // HTTP/1.1 needs one; an HTTP/1.0 client without `Host` named none.
            up.headers_mut().insert(header::HOST, h);
        }
        let timeout = shared.config.response_header_timeout;
        // Boxed: the exchange's state is large, and the request's future is moved (by hyper,
        // the accept loop) before it first runs; a box is cheaper than copying it each time.
        let sent = if client_upgrade.is_some() {
            Box::pin(await_answer(conn.upgrade(up), &body, timeout))
                .await
                .map(|r| r.map(|resp| resp.map(BodyExt::boxed_unsync)))
        } else {
            Box::pin(await_answer(
                conn.exchange(up, &shared.pool),
                &body,
                timeout,
            ))
            .await
            .map(|r| r.map(|resp| resp.map(BodyExt::boxed_unsync)))
        };
        match sent {
            Err(_) => {
                tracing::debug!(backend = %backend.name, endpoint = %ep, "ingress upstream timed out");
                return local(StatusCode::GATEWAY_TIMEOUT, "504 Gateway Time-out\n");
            }
            Ok(Ok(resp)) => return respond(resp, client_upgrade),
            Ok(Err(ExchangeError::Connect(e))) => {
                tracing::debug!(backend = %backend.name, endpoint = %ep, error = %e, "ingress connect failed; next endpoint");
            }
            Ok(Err(error @ (ExchangeError::Request { .. } | ExchangeError::Closed))) => {
                let unsent = matches!(error, ExchangeError::Request { unsent: true, .. });
                let started = body.started();
                if reused && unsent && !started && stale_left > 0 {
                    stale_left -= 1;
                    again = Some(ep);
                    tracing::debug!(backend = %backend.name, endpoint = %ep, error = %error, "ingress idle upstream connection closed; reconnecting");
                    continue;
                }
                if retry_once && !started && resets_left > 0 {
                    resets_left -= 1;
                    tracing::debug!(backend = %backend.name, endpoint = %ep, error = %error, "ingress upstream failed before answering; retrying once");
                    continue;
                }
                tracing::debug!(backend = %backend.name, endpoint = %ep, error = %error, "ingress upstream failed");
                return local(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n");
            }
        }
    }
}

/// Waits for the upstream's answer to a request whose body is `body`: `Err` once `timeout`
/// has passed with neither an answer nor any of the body sent (as nginx's
/// `proxy_send_timeout`/`proxy_read_timeout`, counted between operations, so a slow upload
/// that keeps moving is not cut).
async fn await_answer<F: std::future::Future>(
    answer: F,
    body: &Reclaim,
    timeout: Duration,
) -> Result<F::Output, ()> {
    tokio::pin!(answer);
    let mut deadline = Instant::now() + timeout;
    loop {
        tokio::select! {
            r = &mut answer => return Ok(r),
            _ = tokio::time::sleep_until(deadline) => {
                let next = *body.progress.lock() + timeout;
                if next <= Instant::now() {
                    return Err(());
                }
                deadline = next;
            }
        }
    }
}

/// The upstream's response for the client: hop-by-hop headers removed; a `101` splices the
/// two upgraded connections.
fn respond(
    mut resp: Response<ClientBody>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ClientBody> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            // A 101 to a request that asked for no upgrade.
            return local(StatusCode::BAD_GATEWAY, "502 Bad Gateway\n");
        };
        let upstream_upgrade = hyper::upgrade::on(&mut resp);
        tokio::spawn(async move {
            let (c, u) = tokio::join!(client_upgrade, upstream_upgrade);
            match (c, u) {
                (Ok(c), Ok(u)) => {
                    let mut c = TokioIo::new(c);
                    let mut u = TokioIo::new(u);
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
                }
                (c, u) => {
                    tracing::debug!(client = ?c.err(), upstream = ?u.err(), "ingress upgrade failed");
                }
            }
        });
        let upgrade = resp.headers().get(header::UPGRADE).cloned();
        let (mut parts, _) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        if let Some(u) = upgrade {
            parts.headers.insert(header::UPGRADE, u);
        }
        return Response::from_parts(
            parts,
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
    }
    strip_hop_by_hop(resp.headers_mut());
    resp
}

/// The client's request body, lent to one upstream attempt at a time: an attempt that failed
/// before reading any of it gives it back for the next.
struct Reclaim {
    slot: Arc<Mutex<Incoming>>,
    started: Arc<AtomicBool>,
    /// When a frame of it was last sent.
    progress: Arc<Mutex<Instant>>,
}

impl Reclaim {
    fn new(body: Incoming) -> Reclaim {
        Reclaim {
            slot: Arc::new(Mutex::new(body)),
            started: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Mutex::new(Instant::now())),
        }
    }

    fn handle(&self) -> ReclaimBody {
        ReclaimBody {
            slot: self.slot.clone(),
            started: self.started.clone(),
            progress: self.progress.clone(),
        }
    }

    /// Whether an attempt has taken any of the body (an empty body never counts).
    fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }
}

/// One attempt's view of the request body ([`Reclaim`]).
#[derive(Debug)]
pub struct ReclaimBody {
    slot: Arc<Mutex<Incoming>>,
    started: Arc<AtomicBool>,
    progress: Arc<Mutex<Instant>>,
}

impl Body for ReclaimBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut inner = self.slot.lock();
        let r = Pin::new(&mut *inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r
            && f.data_ref().is_none_or(|d| !d.is_empty())
        {
            self.started.store(true, Ordering::SeqCst);
            *self.progress.lock() = Instant::now();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.slot.lock().is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.slot.lock().size_hint()
    }
}

#[cfg(test)]
mod tests;
