//! Listeners and the data path. [`reconcile`] diffs the table's listeners against the open
//! ones after every table swap (and retries failed binds every few seconds); each TCP
//! listener hands accepted connections to [`forward_tcp`], each UDP listener keeps a flow per
//! client address ([`serve_udp`]).
//!
//! The data path reads the current table once per new connection or flow (an atomic load);
//! connections already established keep flowing when their endpoint stops being a candidate
//! (not ready, terminating), as conntrack keeps them under kube-proxy, until no service lists
//! the endpoint at all (its pod is gone): then they are closed rather than left to hang on an
//! address that no longer answers.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod relay;

use crate::model::Protocol;
use crate::table::{Conns, Listen};
use crate::{Error, Proxy};

/// How long a connect to one endpoint may take before the next one is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A UDP flow without traffic for this long is forgotten (the kernel's default
/// `nf_conntrack_udp_timeout_stream` is 120 s, the plain one 30 s).
pub const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed binds are retried this often.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// Keeps one listener per table entry until `shutdown`.
pub(crate) async fn reconcile(proxy: Arc<Proxy>, shutdown: CancellationToken) {
    let mut changes = proxy.generation.subscribe();
    let mut open: HashMap<Listen, CancellationToken> = HashMap::new();
    // Listeners on addresses this node cannot hold (a ClusterIP without root): logged once,
    // not retried while they stay in the table.
    let mut skipped: HashSet<Listen> = HashSet::new();
    // Service addresses added to the node, given back when no listener needs them.
    let mut held = crate::svcip::Held::default();
    if proxy.manage_service_ips {
        held.adopt_leftovers().await;
    }
    loop {
        // Seen before the table is read: a swap while listeners are being opened (each needs
        // `ip` commands) wakes the next round instead of being lost.
        changes.mark_unchanged();
        let table = proxy.table();
        skipped.retain(|l| table.routes.contains_key(l));
        open.retain(|listen, token| {
            let keep = table.routes.contains_key(listen);
            if !keep {
                tracing::debug!(listen = %listen.addr, "closing listener");
                token.cancel();
            }
            keep
        });
        let needed: HashSet<IpAddr> = table.routes.keys().map(|l| l.addr.ip()).collect();
        held.release_unused(&needed).await;
        let mut failed = false;
        for listen in table.routes.keys() {
            if open.contains_key(listen) || skipped.contains(listen) {
                continue;
            }
            let token = shutdown.child_token();
            match start(&proxy, &mut held, *listen, token.clone()).await {
                Ok(()) => {
                    open.insert(*listen, token);
                }
                Err(e) if unavailable(&e) => {
                    tracing::warn!(listen = %listen.addr, protocol = ?listen.protocol, error = %e,
                        "address not held by this node; skipping this listener");
                    skipped.insert(*listen);
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(listen = %listen.addr, protocol = ?listen.protocol, error = %e,
                        "cannot listen; retrying");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = changes.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(BIND_RETRY), if failed => {}
        }
    }
    for token in open.values() {
        token.cancel();
    }
    held.release_all().await;
}

/// Whether a bind failed because the node does not (and cannot) hold the address.
fn unavailable(e: &Error) -> bool {
    match e {
        Error::ServiceIp { .. } => true,
        Error::ServiceIpRemove { .. } => false,
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::AddrNotAvailable,
    }
}

/// Binds one listener and spawns its accept loop.
async fn start(
    proxy: &Arc<Proxy>,
    held: &mut crate::svcip::Held,
    listen: Listen,
    token: CancellationToken,
) -> Result<(), Error> {
    let ip = listen.addr.ip();
    if proxy.manage_service_ips && !ip.is_loopback() && !proxy.node.node_ips.contains(&ip) {
        held.hold(ip).await?;
    }
    let io = |what: &str| {
        let what = format!("{what} {}", listen.addr);
        move |source| Error::Io { what, source }
    };
    match listen.protocol {
        Protocol::Tcp => {
            let listener = TcpListener::bind(listen.addr)
                .await
                .map_err(io("listen on"))?;
            tokio::spawn(accept_tcp(proxy.clone(), listen, listener, token));
        }
        Protocol::Udp => {
            let socket = UdpSocket::bind(listen.addr).await.map_err(io("bind udp"))?;
            tokio::spawn(serve_udp(proxy.clone(), listen, Arc::new(socket), token));
        }
        Protocol::Sctp => {}
    }
    tracing::debug!(listen = %listen.addr, protocol = ?listen.protocol, "listening");
    Ok(())
}

async fn accept_tcp(
    proxy: Arc<Proxy>,
    listen: Listen,
    listener: TcpListener,
    token: CancellationToken,
) {
    // One registration for the listener's lifetime, not one per accepted connection.
    let cancelled = token.cancelled();
    tokio::pin!(cancelled);
    loop {
        let accepted = tokio::select! {
            _ = &mut cancelled => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                tokio::spawn(forward_tcp(proxy.clone(), listen, client, peer));
            }
            Err(e) => {
                // Out of descriptors and the like: back off a little instead of spinning.
                tracing::warn!(listen = %listen.addr, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Sends one accepted connection to an endpoint: a refused (or timed out) connect is retried
/// on the next candidate; with none left the client is reset at once.
pub(crate) async fn forward_tcp(
    proxy: Arc<Proxy>,
    listen: Listen,
    client: TcpStream,
    peer: SocketAddr,
) {
    let route = proxy.table.load().routes.get(&listen).cloned();
    let Some(mut route) = route else {
        return reject(client);
    };
    let mut tried = Vec::new();
    let (upstream, chosen, open) = loop {
        let Some(ep) = route.pick(peer.ip(), &tried) else {
            tracing::debug!(service = %route.service, client = %peer, "no endpoint; refusing");
            return reject(client);
        };
        tried.push(ep);
        // Counted from the moment it is picked, then checked against the table again: the
        // agent drains a pod by swapping the table first and reading the counters after
        // (`Proxy::set_endpoint_state`, then `active_connections`), so either it sees this
        // connection or this connection sees the new table and picks again.
        let open = route.counter(ep).map(|c| Open::new(c.clone()));
        if let Some(now) = proxy.table.load().routes.get(&listen)
            && !Arc::ptr_eq(now, &route)
        {
            route = now.clone();
            if !route.endpoints.contains(&ep) {
                continue;
            }
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ep)).await {
            Ok(Ok(s)) => break (s, ep, open),
            Ok(Err(e)) => {
                tracing::debug!(service = %route.service, endpoint = %ep, error = %e, "connect failed; trying another endpoint");
            }
            Err(_) => {
                tracing::debug!(service = %route.service, endpoint = %ep, "connect timed out; trying another endpoint");
            }
        }
    };
    let gone = open.as_ref().map(|o| o.0.gone.clone()).unwrap_or_default();
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client, mut upstream) = (client, upstream);
    let copy = relay::copy_bidirectional(&mut client, &mut upstream);
    tokio::select! {
        r = copy => if let Err(e) = r {
            tracing::trace!(service = %route.service, error = %e, "connection ended");
        },
        _ = gone.cancelled() => {
            tracing::debug!(service = %route.service, endpoint = %chosen, "endpoint gone; closing connection");
            drop(open);
            reject(client);
        }
    }
}

/// Counts one open connection on its endpoint's counter while alive.
struct Open(Arc<Conns>);

impl Open {
    fn new(c: Arc<Conns>) -> Open {
        // SeqCst: paired with the table swap and the agent's read (see `forward_tcp`).
        c.open.fetch_add(1, Ordering::SeqCst);
        Open(c)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Closes a connection with a reset, so the client fails at once.
fn reject(client: TcpStream) {
    let _ = client.set_zero_linger();
    drop(client);
}

/// One client's UDP flow: a socket connected to its endpoint.
struct Flow {
    endpoint: SocketAddr,
    upstream: Arc<UdpSocket>,
    /// Milliseconds since `epoch` of the last packet either way.
    last: Arc<AtomicU64>,
    done: CancellationToken,
}

/// Relays datagrams between clients and endpoints, one flow per client address; a flow whose
/// endpoint left the table is replaced on the client's next datagram (kube-proxy flushes such
/// UDP conntrack entries).
async fn serve_udp(
    proxy: Arc<Proxy>,
    listen: Listen,
    socket: Arc<UdpSocket>,
    token: CancellationToken,
) {
    let epoch = Instant::now();
    let now_ms = move || u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let mut received: u64 = 0;
    loop {
        let (n, client) = tokio::select! {
            _ = token.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(listen = %listen.addr, error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        received = received.wrapping_add(1);
        if received.is_multiple_of(1024) {
            flows.retain(|_, f| !f.done.is_cancelled());
        }
        let route = proxy.table.load().routes.get(&listen).cloned();
        let Some(route) = route else { continue };
        let stale = flows
            .get(&client)
            .is_some_and(|f| f.done.is_cancelled() || !route.endpoints.contains(&f.endpoint));
        if stale && let Some(f) = flows.remove(&client) {
            f.done.cancel();
        }
        let flow = match flows.entry(client) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(slot) => {
                let Some(ep) = route.pick(client.ip(), &[]) else {
                    continue;
                };
                match open_flow(ep, client, &socket, now_ms, token.child_token()).await {
                    Ok(f) => slot.insert(f),
                    Err(e) => {
                        tracing::debug!(endpoint = %ep, error = %e, "udp flow failed");
                        continue;
                    }
                }
            }
        };
        flow.last.store(now_ms(), Ordering::Relaxed);
        if let Err(e) = flow.upstream.send(&buf[..n]).await {
            tracing::debug!(endpoint = %flow.endpoint, error = %e, "udp send failed");
        }
    }
    for f in flows.values() {
        f.done.cancel();
    }
}

async fn open_flow(
    ep: SocketAddr,
    client: SocketAddr,
    socket: &Arc<UdpSocket>,
    now_ms: impl Fn() -> u64 + Send + 'static,
    done: CancellationToken,
) -> std::io::Result<Flow> {
    let local: SocketAddr = match ep.ip() {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let upstream = Arc::new(UdpSocket::bind(local).await?);
    upstream.connect(ep).await?;
    let last = Arc::new(AtomicU64::new(now_ms()));
    let (up, down, seen, stop) = (upstream.clone(), socket.clone(), last.clone(), done.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let idle_ms = u64::try_from(UDP_IDLE_TIMEOUT.as_millis()).unwrap_or(u64::MAX);
        loop {
            let since = now_ms().saturating_sub(seen.load(Ordering::Relaxed));
            if since >= idle_ms {
                break;
            }
            let wait = Duration::from_millis(idle_ms - since);
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                r = up.recv(&mut buf) => match r {
                    Ok(n) => {
                        seen.store(now_ms(), Ordering::Relaxed);
                        let _ = down.send_to(&buf[..n], client).await;
                    }
                    // An ICMP unreachable from the endpoint: let the next datagram pick again.
                    Err(_) => break,
                },
            }
        }
        stop.cancel();
    });
    Ok(Flow {
        endpoint: ep,
        upstream,
        last,
        done,
    })
}
