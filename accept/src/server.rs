//! [`serve`]: HTTP/1.1 and HTTP/2 (TLS with ALPN, or plain with prior-knowledge detection)
//! for a tower service, on the bounded [`Acceptor`]. Each connection runs in a task that
//! owns the TLS handshake (with its timeout), the hyper connection (with the head limits and
//! the HTTP/1.1 header-read timeout) and the idle timer, and closes gracefully when evicted,
//! idle or at shutdown. A socket closed while its client may still be sending lingers
//! ([`Lingering`]) so the client can read the answer.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::Limits;
use crate::listener::Acceptor;
use crate::slots::{Busy, ConnState, Tracked};

/// What the connection a request arrived on knows about its client; every request carries
/// one in its extensions.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The certificate chain the client presented in the TLS handshake (leaf first), if any.
    pub peer_certificates: Option<Arc<[CertificateDer<'static>]>>,
}

/// What [`serve`] serves: a cloneable tower service answering hyper requests (an axum
/// `Router` is one).
pub trait HttpService: Clone + Send + 'static {
    /// The response body.
    type Body: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Unpin
        + Send
        + 'static;

    /// Answers one request.
    fn respond(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Self::Body>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Unpin
        + Send
        + 'static,
{
    type Body = B;

    fn respond(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<B>> + Send + 'static {
        let call = self.clone().oneshot(req);
        async move {
            match call.await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    }
}

/// The builders of one server, made once.
struct Protocols {
    limits: Limits,
    /// Plain TCP: HTTP/1.1, or HTTP/2 with prior knowledge.
    any: Builder<TokioExecutor>,
    /// TLS without ALPN `h2`.
    h1: Builder<TokioExecutor>,
    /// TLS with ALPN `h2`.
    h2: Builder<TokioExecutor>,
}

impl Protocols {
    fn new(limits: Limits) -> Protocols {
        let mut any = Builder::new(TokioExecutor::new());
        any.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // hyper's floor for its read buffer is 8 KiB.
            .max_buf_size(limits.max_header_bytes.max(8 * 1024));
        any.http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .max_concurrent_streams(limits.max_concurrent_streams);
        Protocols {
            h1: any.clone().http1_only(),
            h2: any.clone().http2_only(),
            any,
            limits,
        }
    }
}

/// Serves `service` on `listener` until `shutdown` resolves: TLS when `tls` is given (HTTP/2
/// when the client's ALPN offers `h2`, else HTTP/1.1), else plain HTTP/1.1 or HTTP/2 with
/// prior knowledge; upgrades (WebSocket, SPDY) work. Then drains (see [`Limits`]).
pub async fn serve<S: HttpService>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    service: S,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let drain = limits.drain_timeout;
    let mut acceptor = Acceptor::new(listener, limits.max_connections);
    let protocols = Arc::new(Protocols::new(limits));
    let tls = tls.map(TlsAcceptor::from);
    let stop = CancellationToken::new();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            c = acceptor.accept() => c,
            _ = &mut shutdown => break,
        };
        conns.spawn(connection(
            io,
            peer,
            tls.clone(),
            service.clone(),
            protocols.clone(),
            stop.clone(),
        ));
        // Reap finished connections so the set stays as large as what is open.
        while conns.try_join_next().is_some() {}
    }
    drop(acceptor);
    stop.cancel();
    let drained =
        tokio::time::timeout(drain, async { while conns.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "connections still open after {drain:?}; closing them"
        );
    }
}

async fn connection<S: HttpService>(
    io: Tracked<TcpStream>,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    service: S,
    protocols: Arc<Protocols>,
    stop: CancellationToken,
) {
    let state = io.state().clone();
    let io = Lingering { io: Some(io) };
    let limits = &protocols.limits;
    let (io, builder, peer_certificates) = match tls {
        None => (Either::Left(io), &protocols.any, None),
        Some(acceptor) => {
            let handshake = tokio::time::timeout(limits.handshake_timeout, acceptor.accept(io));
            let done = tokio::select! {
                r = handshake => r,
                _ = state.evict.cancelled() => return,
                _ = stop.cancelled() => return,
            };
            let stream = match done {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let session = stream.get_ref().1;
            let h2 = session.alpn_protocol() == Some(b"h2".as_slice());
            let certs = session.peer_certificates().map(|c| {
                c.iter()
                    .map(|c| c.clone().into_owned())
                    .collect::<Arc<[_]>>()
            });
            let builder = if h2 { &protocols.h2 } else { &protocols.h1 };
            (Either::Right(stream), builder, certs)
        }
    };
    let svc = Tracking {
        inner: service,
        conn: state.clone(),
        info: ConnInfo {
            peer,
            peer_certificates,
        },
    };
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let idle = idle_expired(&state, limits);
    tokio::pin!(idle);
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = state.evict.cancelled(), if !closing => {
                tracing::debug!(%peer, "closing the idlest connection: at the connection cap");
                if state.activity.lock().active == 0 {
                    // Nothing in flight, so nothing to finish; a graceful HTTP/1.1 shutdown
                    // would wait for a half-sent request head (a slowloris) to complete.
                    break;
                }
                // A request arrived since it was picked: let it finish.
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut idle, if !closing => {
                tracing::debug!(%peer, "closing an idle connection");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = stop.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    // If an upgrade took the socket it lives on, out of this server's hands.
    state.detach();
}

/// Resolves once the connection had nothing in flight for the idle timeout (before its first
/// request: for the header-read timeout). Nothing wakes it when requests start or end: it
/// looks at the connection when its deadline passes, and a connection busy then cannot fall
/// idle for long enough sooner than one more timeout later, so it looks again then.
async fn idle_expired(state: &ConnState, limits: &Limits) {
    loop {
        let a = *state.activity.lock();
        let after = if a.served {
            limits.idle_timeout
        } else {
            limits.header_read_timeout.min(limits.idle_timeout)
        };
        let now = tokio::time::Instant::now();
        let next = if a.active == 0 && !a.detached {
            let at = a.idle_since + after;
            if at <= now {
                return;
            }
            at
        } else {
            now + after
        };
        tokio::time::sleep_until(next).await;
    }
}

/// The service as hyper sees it: marks the connection busy from the request head until the
/// response body is done, and hands the handler the [`ConnInfo`].
#[derive(Clone)]
struct Tracking<S> {
    inner: S,
    conn: Arc<ConnState>,
    info: ConnInfo,
}

impl<S: HttpService> hyper::service::Service<Request<Incoming>> for Tracking<S> {
    type Response = Response<TrackedBody<S::Body>>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn Future<Output = Result<Response<TrackedBody<S::Body>>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let busy = self.conn.busy();
        req.extensions_mut().insert(self.info.clone());
        let call = self.inner.respond(req);
        Box::pin(async move {
            let resp = call.await;
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                // The socket goes to the upgraded stream once this response is out.
                busy.detach();
            }
            Ok(resp.map(|body| TrackedBody { body, _busy: busy }))
        })
    }
}

/// A response body that keeps its connection busy until it is done or dropped.
struct TrackedBody<B> {
    body: B,
    _busy: Busy,
}

impl<B: http_body::Body + Unpin> http_body::Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Longest a closed connection keeps reading what its client still sends (nginx's
/// `lingering_time` is 30 s, Go sleeps 500 ms; a client that has the answer closes at once).
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// The accepted socket under TLS and hyper. When the server ends a connection while the client
/// is still sending (a request head over the limit gets 431 after 64 KiB; a refused body is
/// not read), closing with input unread makes the kernel answer that input with a reset, and
/// a client that writes its whole request before reading (curl) fails on the write and never
/// reads the answer. So on drop such a socket lingers as nginx's lingering close does: write
/// side shut, input read and discarded until the client closes, for at most [`LINGER`], and
/// not at all once the server wants the descriptor back (evicted). It keeps its slot under the
/// connection cap meanwhile.
struct Lingering {
    /// `None` only once dropped.
    io: Option<Tracked<TcpStream>>,
}

impl Lingering {
    fn io(&mut self) -> std::io::Result<Pin<&mut Tracked<TcpStream>>> {
        match self.io.as_mut() {
            Some(io) => Ok(Pin::new(io)),
            None => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.io() {
            Ok(io) => io.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.io() {
            Ok(io) => io.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.io() {
            Ok(io) => io.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(io) = self.io.take() else { return };
        if io.state().evict.is_cancelled() {
            return;
        }
        // A client that closed first (end of input) or a broken socket: nothing to wait for.
        let mut probe = [0u8; 1];
        match io.get_ref().try_read(&mut probe) {
            Ok(0) => return,
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
            _ => {}
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(linger(io));
        }
    }
}

async fn linger(mut io: Tracked<TcpStream>) {
    let evicted = io.evicted();
    let drain = async {
        // The answer is complete: say so (TLS has sent its close_notify already, if any).
        let _ = io.get_mut().shutdown().await;
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = io.get_mut().read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = drain => {}
        _ = evicted => {}
        _ = tokio::time::sleep(LINGER) => {}
    }
}
