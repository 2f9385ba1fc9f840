//! Accepting connections safely: the one accept loop every paddock server uses (the API
//! server, the agent API, the proxy's health check node ports).
//!
//! A server that starts processes as root must not be held open by clients that never finish
//! a request, and one descriptor-hungry client must not starve the others. So every server
//! here gets:
//!
//! - a **cap on open connections** ([`Limits::max_connections`]). At the cap a new connection
//!   closes the connection that has been idle longest (no request in flight: still in its TLS
//!   handshake, waiting for a first request, or between keep-alive requests); when every
//!   connection is busy, new ones wait in the kernel's backlog. Requests in progress, watches
//!   and upgraded streams (exec, attach, port-forward) are never cut.
//! - **back-off on accept errors** as Go's `http.Server` does (5 ms doubling to 1 s), and on
//!   `EMFILE`/`ENFILE` the idlest connection is closed to free a descriptor; one warning per
//!   streak of failures instead of one per attempt.
//! - a **TLS handshake timeout**, a **request-head timeout** for HTTP/1.1 (hyper's
//!   `header_read_timeout`, which also bounds the wait for the next keep-alive request) and
//!   for the first request of any connection, and an **idle timeout** that closes a
//!   connection gracefully once nothing is in flight (kube-apiserver: `ReadHeaderTimeout`
//!   32 s, `IdleTimeout` 90 s, which Go applies to idle keep-alive connections and idle
//!   HTTP/2 connections, never to a request in progress).
//! - HTTP/2 limits: 100 concurrent streams (kube-apiserver's), and the same 64 KiB bound on
//!   the request head as HTTP/1.1, so an oversized head gets the same `431` on both.
//! - **lingering close**: a connection the server ends while its client is still sending (a
//!   431 after 64 KiB of a longer head) keeps reading and discarding for up to 5 s before the
//!   socket closes, so the kernel does not answer the client with a reset that would lose the
//!   answer (nginx's `lingering_close`).
//! - **graceful drain** at shutdown: stop accepting, let in-flight requests finish (HTTP/2
//!   `GOAWAY`), drop what is left after [`Limits::drain_timeout`].
//!
//! Start at [`serve`] (HTTP/1.1 and HTTP/2 over TLS or plain TCP for a tower service such as
//! an axum `Router`); [`Acceptor`] is the bare bounded accept loop for a server that speaks
//! its own protocol. [`raise_nofile_limit`] lifts the soft descriptor limit to the hard one
//! at process start (as Go's runtime does) and remembers the original for child processes.

mod listener;
mod rlimit;
mod server;
mod slots;

use std::time::Duration;

pub use listener::Acceptor;
pub use rlimit::{nofile_soft_limit, original_nofile_soft, raise_nofile_limit};
pub use server::{ConnInfo, HttpService, serve};
pub use slots::Tracked;

/// The limits and timeouts of one server. [`Limits::new`] gives paddock's defaults for a
/// server with the given connection cap.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most connections open at once (each holds a descriptor). At the cap a new connection
    /// closes the idlest one; with none idle it waits in the kernel's backlog.
    pub max_connections: usize,
    /// How long a client may take for its TLS handshake (10 s).
    pub handshake_timeout: Duration,
    /// HTTP/1.1: how long a client may take for a request head, counted from the end of the
    /// previous response (so it also closes idle keep-alive connections); any protocol: how
    /// long a new connection may take for its first request (32 s, kube-apiserver's
    /// `ReadHeaderTimeout`).
    pub header_read_timeout: Duration,
    /// A connection with nothing in flight for this long is closed gracefully (90 s,
    /// kube-apiserver's `IdleTimeout`).
    pub idle_timeout: Duration,
    /// Largest request head (HTTP/1.1 request line and headers; HTTP/2 header list):
    /// larger gets `431 Request Header Fields Too Large` (64 KiB: the `http` crate cannot
    /// represent a URI longer than that, so a larger limit would answer a long URL with `414`
    /// over HTTP/1.1 and a stream reset over HTTP/2).
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection (100, kube-apiserver's).
    pub max_concurrent_streams: u32,
    /// At shutdown, how long open connections may finish before they are dropped (5 s).
    pub drain_timeout: Duration,
}

/// kube-apiserver's `ReadHeaderTimeout`.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(32);
/// kube-apiserver's `IdleTimeout` (that of Go's `http.DefaultTransport` keep-alives).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// See [`Limits::max_header_bytes`].
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

impl Limits {
    /// paddock's defaults with a cap of `max_connections`.
    pub fn new(max_connections: usize) -> Limits {
        Limits {
            max_connections: max_connections.max(1),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: HEADER_READ_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_header_bytes: MAX_HEADER_BYTES,
            max_concurrent_streams: 100,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// A default connection cap that fits the process's descriptor limit: `wanted`, but at most
/// a quarter of the soft `RLIMIT_NOFILE` (the servers, proxied connections, container logs
/// and the store share the process's descriptors) and at least 16.
pub fn fd_share(wanted: usize) -> usize {
    let quarter = nofile_soft_limit()
        .map(|n| usize::try_from(n / 4).unwrap_or(usize::MAX))
        .unwrap_or(wanted);
    wanted.min(quarter).max(16)
}

#[cfg(test)]
mod tests;
