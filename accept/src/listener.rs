//! [`Acceptor`]: the bounded accept loop. Accepts, then takes a slot under the cap (closing
//! the idlest connection when there is none), sets `TCP_NODELAY` and TCP keep-alive, and
//! backs off on accept errors the way Go's `http.Server` does.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::time::Duration;

use crate::slots::{Slots, Tracked};

/// First back-off after a failed accept; doubles up to [`MAX_DELAY`] (Go's `http.Server`).
const FIRST_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_secs(1);
/// TCP keep-alive on accepted connections finds peers that vanished (kube-apiserver's
/// `tcpKeepAliveListener`: 3 minutes).
const TCP_KEEPALIVE: Duration = Duration::from_secs(180);

/// A listener whose connections are bounded by a cap (see the crate docs).
#[derive(Debug)]
pub struct Acceptor {
    listener: TcpListener,
    slots: Arc<Slots>,
    delay: Option<Duration>,
}

impl Acceptor {
    /// Accepts from `listener`, at most `max_connections` open at once.
    pub fn new(listener: TcpListener, max_connections: usize) -> Acceptor {
        Acceptor {
            listener,
            slots: Slots::new(max_connections),
            delay: None,
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection, holding its slot. Never fails: errors are logged and retried with
    /// back-off. Cancel-safe in the sense that dropping it loses at most one connection that
    /// was accepted but not yet returned (which is closed).
    pub async fn accept(&mut self) -> (Tracked<TcpStream>, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, peer)) => {
                    if let Some(d) = self.delay.take() {
                        tracing::info!(after = ?d, "accepting connections again");
                    }
                    let permit = self.slots.permit().await;
                    configure(&tcp);
                    return (self.slots.track(tcp, permit), peer);
                }
                Err(e) => self.failed(e).await,
            }
        }
    }

    async fn failed(&mut self, e: io::Error) {
        // A connection reset before it was accepted is the client's business.
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
        ) {
            return;
        }
        let out_of_descriptors = matches!(
            e.raw_os_error(),
            Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM)
        );
        if out_of_descriptors {
            // Free a descriptor: the idlest connection closes, the next accept can succeed.
            self.slots.evict_idlest();
        }
        let delay = match self.delay {
            None => {
                tracing::warn!(error = %e, "accept failed; backing off");
                FIRST_DELAY
            }
            Some(d) => {
                tracing::debug!(error = %e, "accept failed");
                (d * 2).min(MAX_DELAY)
            }
        };
        self.delay = Some(delay);
        tokio::time::sleep(delay).await;
    }

    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.slots.open()
    }
}

fn configure(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(TCP_KEEPALIVE)
        .with_interval(TCP_KEEPALIVE);
    if let Err(e) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(error = %e, "cannot set TCP keep-alive");
    }
}
