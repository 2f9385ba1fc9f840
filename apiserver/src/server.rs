//! The listener: the API server's router on [`accept::serve`] (TLS with h2 and http/1.1 by
//! ALPN, connection cap, handshake/header/idle timeouts, graceful drain), stopped by the
//! shared shutdown signal that also ends watches.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

/// Default cap on open connections (`--max-connections`), further bounded by a quarter of the
/// descriptor limit ([`accept::fd_share`]). Clients hold few: kubectl one HTTP/2 connection
/// per command, an agent one or two, the Python client one per concurrent request or watch;
/// at the cap the idlest connection makes room, so the cap bounds memory (an open TLS
/// connection costs tens of KiB) rather than who gets served.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Serves `router` until `shutdown` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
    max_connections: Option<usize>,
) {
    let max = max_connections.unwrap_or_else(|| accept::fd_share(DEFAULT_MAX_CONNECTIONS));
    let stop = async move {
        let _ = shutdown.wait_for(|stopping| *stopping).await;
    };
    accept::serve(listener, Some(tls), router, accept::Limits::new(max), stop).await;
}
