//! Connections to endpoints without a connection task: each HTTP/1.1 connection (hyper's
//! `client::conn::http1`) is driven by the task serving the client request that uses it —
//! while waiting for the response head ([`Upstream::exchange`]) and then by the response
//! body as the client side reads it ([`Relay`]) — and parked idle in the worker's [`Pool`]
//! when the response is complete, as nginx's upstream keep-alive cache does. So a proxied
//! request wakes no other task and crosses no channel between tasks.
//!
//! An idle connection is polled (without a waker: nothing waits on it) when it is taken, so
//! one its endpoint closed meanwhile is dropped instead of used; idle connections are dropped
//! after [`IDLE_TIMEOUT`], beyond [`MAX_IDLE_PER_ENDPOINT`] per endpoint and [`MAX_IDLE`] in
//! all. Upgrades (`101`) take a connection of their own, driven by a task of its own with
//! hyper's upgrade support.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::ReclaimBody;

/// An idle connection unused this long is closed (the legacy client's and Go's
/// `IdleConnTimeout`: 90 s).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Most idle connections kept per endpoint (what the pooled client kept).
pub const MAX_IDLE_PER_ENDPOINT: usize = 64;
/// Most idle connections kept in all, per pool.
pub const MAX_IDLE: usize = 1024;

type Conn = http1::Connection<TokioIo<TcpStream>, ReclaimBody>;

/// One HTTP/1.1 connection to an endpoint.
pub struct Upstream {
    endpoint: SocketAddr,
    send: http1::SendRequest<ReclaimBody>,
    conn: Conn,
    /// The connection future has resolved: closed.
    ended: bool,
    /// When it was last parked.
    since: Instant,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// Connecting failed or timed out.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The request failed; `unsent` when hyper gave it back without writing any of it.
    #[error("{error}")]
    Request {
        /// hyper's error.
        error: hyper::Error,
        /// No byte of the request was written.
        unsent: bool,
    },
    /// The connection ended and hyper did not answer the request.
    #[error("the connection closed before answering")]
    Closed,
}

impl Upstream {
    /// A new connection to `endpoint` (boxed: hyper's connection state is large, and it moves
    /// from the pool to the request to the response body).
    pub async fn connect(
        endpoint: SocketAddr,
        timeout: Duration,
    ) -> Result<Box<Upstream>, ExchangeError> {
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(endpoint)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return Err(ExchangeError::Connect(e)),
            Err(_) => {
                return Err(ExchangeError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                )));
            }
        };
        let _ = tcp.set_nodelay(true);
        let (send, conn) = http1::Builder::new()
            .handshake(TokioIo::new(tcp))
            .await
            .map_err(|error| ExchangeError::Request {
                error,
                unsent: true,
            })?;
        Ok(Box::new(Upstream {
            endpoint,
            send,
            conn,
            ended: false,
            since: Instant::now(),
        }))
    }

    /// The endpoint.
    pub fn endpoint(&self) -> SocketAddr {
        self.endpoint
    }

    /// Drives the connection once; true while it can take a request.
    fn refresh(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.ended && Pin::new(&mut self.conn).poll(cx).is_ready() {
            self.ended = true;
        }
        !self.ended && self.send.is_ready()
    }

    /// Sends `req` and drives the connection until the response head arrives; the
    /// connection then goes with the response body ([`Relay`]).
    pub async fn exchange(
        mut self: Box<Self>,
        req: Request<ReclaimBody>,
        pool: &Arc<Pool>,
    ) -> Result<Response<Relay>, ExchangeError> {
        let answer = self.send.try_send_request(req);
        tokio::pin!(answer);
        let r = std::future::poll_fn(|cx| {
            if let Poll::Ready(r) = answer.as_mut().poll(cx) {
                return Poll::Ready(r.map_err(Some));
            }
            if !self.ended && Pin::new(&mut self.conn).poll(cx).is_ready() {
                self.ended = true;
                // hyper answers every request it holds when the connection ends; should it
                // not, nothing would drive this one any more.
                return match answer.as_mut().poll(cx) {
                    Poll::Ready(r) => Poll::Ready(r.map_err(Some)),
                    Poll::Pending => Poll::Ready(Err(None)),
                };
            }
            Poll::Pending
        })
        .await;
        let r = match r {
            Ok(resp) => Ok(resp),
            Err(Some(e)) => Err(e),
            Err(None) => return Err(ExchangeError::Closed),
        };
        match r {
            Ok(resp) => Ok(resp.map(|body| Relay {
                body,
                upstream: Some(self),
                pool: pool.clone(),
                done: false,
            })),
            Err(mut e) => {
                let unsent = e.take_message().is_some();
                Err(ExchangeError::Request {
                    error: e.into_error(),
                    unsent,
                })
            }
        }
    }

    /// Sends an upgrade request on this (new) connection, driven by a task of its own so the
    /// upgraded stream can be taken from it.
    pub async fn upgrade(
        self,
        req: Request<ReclaimBody>,
    ) -> Result<Response<Incoming>, ExchangeError> {
        let Upstream { mut send, conn, .. } = self;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "ingress upgrade connection ended");
            }
        });
        send.send_request(req)
            .await
            .map_err(|error| ExchangeError::Request {
                error,
                unsent: false,
            })
    }
}

/// Idle connections to endpoints, most recently parked last.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<VecDeque<Box<Upstream>>>,
}

impl Pool {
    /// An idle connection to `endpoint` that can take a request, if one is parked.
    pub fn take(&self, endpoint: SocketAddr) -> Option<Box<Upstream>> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut idle = self.idle.lock();
        let now = Instant::now();
        while let Some(i) = idle.iter().rposition(|u| u.endpoint == endpoint) {
            let Some(mut u) = idle.remove(i) else { break };
            if now.duration_since(u.since) < IDLE_TIMEOUT && u.refresh(&mut cx) {
                return Some(u);
            }
        }
        None
    }

    /// Parks `u` for the next request to its endpoint.
    fn park(&self, mut u: Box<Upstream>) {
        let mut cx = Context::from_waker(Waker::noop());
        // Lets hyper finish the exchange (keep-alive state, ready for the next request).
        if !u.refresh(&mut cx) {
            return;
        }
        u.since = Instant::now();
        let mut idle = self.idle.lock();
        let same = idle.iter().filter(|o| o.endpoint == u.endpoint).count();
        if same >= MAX_IDLE_PER_ENDPOINT {
            if let Some(i) = idle.iter().position(|o| o.endpoint == u.endpoint) {
                idle.remove(i);
            }
        } else if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(u);
    }

    /// Drops the idle connections that expired or whose endpoint closed them.
    pub fn sweep(&self) {
        let mut cx = Context::from_waker(Waker::noop());
        let now = Instant::now();
        self.idle
            .lock()
            .retain_mut(|u| now.duration_since(u.since) < IDLE_TIMEOUT && u.refresh(&mut cx));
    }
}

/// A response body from an endpoint: reading it drives the connection it arrives on, which
/// is parked in the pool once the body is complete.
pub struct Relay {
    body: Incoming,
    upstream: Option<Box<Upstream>>,
    pool: Arc<Pool>,
    /// The body's end was read.
    done: bool,
}

impl Body for Relay {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        loop {
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    this.upstream = None;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(f))) => return Poll::Ready(Some(Ok(f))),
                Poll::Pending => {}
            }
            // The body comes from the connection: drive it.
            let Some(u) = this.upstream.as_mut().filter(|u| !u.ended) else {
                return Poll::Pending;
            };
            match Pin::new(&mut u.conn).poll(cx) {
                Poll::Pending => {
                    // It may have handed the body something before it waited.
                    return match Pin::new(&mut this.body).poll_frame(cx) {
                        Poll::Ready(None) => {
                            this.done = true;
                            Poll::Ready(None)
                        }
                        other => other,
                    };
                }
                // Ended: the body has what it will get (or an error); read it out.
                Poll::Ready(_) => u.ended = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Only a connection whose response was read whole can take another request.
        if (self.done || self.body.is_end_stream())
            && let Some(u) = self.upstream.take()
        {
            self.pool.park(u);
        }
    }
}
