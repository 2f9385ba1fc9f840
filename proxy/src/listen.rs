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

/// How long a connect to one endpoint may take before it is given up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a connect may go unanswered before a connect to another candidate is raced
/// against it (RFC 8305's recommended "Connection Attempt Delay"). An endpoint on a dead node
/// never answers a SYN: without the race each client sent there would wait
/// [`CONNECT_TIMEOUT`] until the control plane takes the endpoint out. The first connect stays
/// alive, so a slow but healthy endpoint still gets the connection if it answers first.
pub const CONNECT_RACE_DELAY: Duration = Duration::from_millis(250);
/// A UDP flow without traffic for this long is forgotten (the kernel's default
/// `nf_conntrack_udp_timeout_stream` is 120 s, the plain one 30 s).
pub const UDP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed binds are retried this often.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// Keeps one listener per table entry that has an endpoint until `shutdown`.
pub(crate) async fn reconcile(proxy: Arc<Proxy>, shutdown: CancellationToken) {
    let mut changes = proxy.generation.subscribe();
    let mut open: HashMap<Listen, CancellationToken> = HashMap::new();
    // Listeners on addresses this node cannot hold (a ClusterIP without root): logged once,
    // not retried while they stay in the table.
    let mut skipped: HashSet<Listen> = HashSet::new();
    // Service addresses added to the node, given back when no listener needs them.
    let mut held = crate::svcip::Held::new(proxy.service_ip_record.clone());
    if proxy.manage_service_ips {
        held.adopt_leftovers().await;
    }
    loop {
        // Seen before the table is read: a swap while listeners are being opened (each needs
        // `ip` commands) wakes the next round instead of being lost.
        changes.mark_unchanged();
        let table = proxy.table();
        // A listener only while its route has an endpoint: with none, a connect is refused by
        // the kernel at once (`ECONNREFUSED`, as kube-proxy's REJECT rule makes it) instead of
        // being accepted and reset. The service's address stays held either way.
        let wanted = |l: &Listen| table.routes.get(l).is_some_and(|r| !r.endpoints.is_empty());
        skipped.retain(|l| table.routes.contains_key(l));
        open.retain(|listen, token| {
            let keep = wanted(listen);
            if !keep {
                tracing::debug!(listen = %listen.addr, "closing listener");
                token.cancel();
            }
            keep
        });
        let needed: HashSet<IpAddr> = table.routes.keys().map(|l| l.addr.ip()).collect();
        held.release_unused(&needed).await;
        let mut failed = false;
        // Every service address is held, listener or not: a connect to a service without
        // endpoints must be refused by this node, not routed elsewhere or unreachable.
        if proxy.manage_service_ips {
            for ip in &needed {
                if !ip.is_loopback()
                    && !proxy.node.node_ips.contains(ip)
                    && let Err(e) = held.hold(*ip).await
                {
                    tracing::debug!(addr = %ip, error = %e, "cannot hold a service address yet");
                }
            }
        }
        for listen in table.routes.keys() {
            if !wanted(listen) || open.contains_key(listen) || skipped.contains(listen) {
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
/// on the next candidate, an unanswered one raced against it (see [`CONNECT_RACE_DELAY`]);
/// with none left the client is reset at once.
pub(crate) async fn forward_tcp(
    proxy: Arc<Proxy>,
    listen: Listen,
    client: TcpStream,
    peer: SocketAddr,
) {
    let route = proxy.table.load().routes.get(&listen).cloned();
    let Some(route) = route else {
        return reject(client);
    };
    let mut pick = Picker {
        proxy: &proxy,
        listen,
        route,
        peer,
        tried: Vec::new(),
    };
    let Some((upstream, chosen, open)) = pick.connect().await else {
        return reject(client);
    };
    let mut client = client;
    let _ = client.set_nodelay(true);
    let (mut upstream, chosen, open) =
        match first_exchange(&mut client, upstream, chosen, open, &mut pick).await {
            Exchange::Relay(upstream, chosen, open) => (upstream, chosen, open),
            Exchange::Done => return,
            Exchange::Failed => return reject(client),
        };
    let route = pick.route;
    let gone = open.as_ref().map(|o| o.0.gone.clone()).unwrap_or_default();
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

/// Chooses endpoints for one client connection, never the same one twice.
struct Picker<'a> {
    proxy: &'a Proxy,
    listen: Listen,
    route: Arc<crate::table::Route>,
    peer: SocketAddr,
    tried: Vec<SocketAddr>,
}

/// One connect in flight: its endpoint, its open-connection count, and its outcome (`None`:
/// timed out).
type Attempt = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = (SocketAddr, Option<Open>, Option<std::io::Result<TcpStream>>),
            > + Send,
    >,
>;

fn attempt(ep: SocketAddr, open: Option<Open>) -> Attempt {
    Box::pin(async move {
        let r = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(ep))
            .await
            .ok();
        (ep, open, r)
    })
}

impl Picker<'_> {
    /// The next candidate not tried yet, counted on its endpoint from the moment it is
    /// picked; `None` when every candidate was tried.
    fn next_candidate(&mut self) -> Option<(SocketAddr, Option<Open>)> {
        loop {
            let ep = self.route.pick(self.peer.ip(), &self.tried)?;
            self.tried.push(ep);
            // Counted from the moment it is picked, then checked against the table again: the
            // agent drains a pod by swapping the table first and reading the counters after
            // (`Proxy::set_endpoint_state`, then `active_connections`), so either it sees this
            // connection or this connection sees the new table and picks again.
            let open = self.route.counter(ep).map(|c| Open::new(c.clone()));
            if let Some(now) = self.proxy.table.load().routes.get(&self.listen)
                && !Arc::ptr_eq(now, &self.route)
            {
                self.route = now.clone();
                if !self.route.endpoints.contains(&ep) {
                    continue;
                }
            }
            return Some((ep, open));
        }
    }

    /// Connects to a candidate; `None` when every candidate failed. A refused connect moves on
    /// to the next candidate at once; one unanswered for [`CONNECT_RACE_DELAY`] gets the next
    /// candidate raced against it (happy-eyeballs style), and the first to connect wins.
    async fn connect(&mut self) -> Option<(TcpStream, SocketAddr, Option<Open>)> {
        use futures::StreamExt;
        let mut racing = futures::stream::FuturesUnordered::<Attempt>::new();
        let mut exhausted = false;
        // Each turn starts one more candidate: at first, after a failed connect, and when the
        // race delay passed without an answer.
        loop {
            if !exhausted {
                match self.next_candidate() {
                    Some((ep, open)) => racing.push(attempt(ep, open)),
                    None => exhausted = true,
                }
            }
            if racing.is_empty() {
                tracing::debug!(service = %self.route.service, client = %self.peer, "no endpoint; refusing");
                return None;
            }
            tokio::select! {
                Some((ep, open, r)) = racing.next() => match r {
                    Some(Ok(s)) => {
                        let _ = s.set_nodelay(true);
                        return Some((s, ep, open));
                    }
                    Some(Err(e)) => {
                        tracing::debug!(service = %self.route.service, endpoint = %ep, error = %e, "connect failed; trying another endpoint");
                    }
                    None => {
                        tracing::debug!(service = %self.route.service, endpoint = %ep, "connect timed out; trying another endpoint");
                    }
                },
                _ = tokio::time::sleep(CONNECT_RACE_DELAY), if !exhausted => {
                    tracing::debug!(service = %self.route.service, "connect unanswered; racing another endpoint");
                }
            }
        }
    }
}

/// How [`first_exchange`] ended.
enum Exchange {
    /// The endpoint answered: relay the rest of the connection to it.
    Relay(TcpStream, SocketAddr, Option<Open>),
    /// The whole connection was carried already.
    Done,
    /// No endpoint is left, or a socket failed: reset the client.
    Failed,
}

/// Most client bytes kept for a replay (see [`first_exchange`]).
pub const REPLAY_MAX: usize = 16 * 1024;

/// The connection's first exchange, until the endpoint answers its first byte. Until then the
/// client's bytes are kept (up to [`REPLAY_MAX`]); if the endpoint resets the connection, or
/// closes it while the client is still waiting, before answering anything — a process killed
/// with the connection in its accept queue, unread, or read but unanswered: the kernel
/// completes handshakes for a process that is already dying and closes what it leaves — the
/// same bytes go to another endpoint, so the client never sees that failure. This is what
/// makes a crashed replica cost no request; the price is that a request the dead process had
/// read and partly acted on runs again elsewhere (as a client's own retry would). A failure
/// after the endpoint answered, after the client finished sending and the endpoint then
/// closed, or after more than [`REPLAY_MAX`] bytes, reaches the client as usual.
async fn first_exchange(
    client: &mut TcpStream,
    mut upstream: TcpStream,
    mut chosen: SocketAddr,
    mut open: Option<Open>,
    pick: &mut Picker<'_>,
) -> Exchange {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sent: Vec<u8> = Vec::new();
    let mut replayable = true;
    let mut client_eof = false;
    let mut from_client: Vec<u8> = Vec::with_capacity(4096);
    let mut from_upstream: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let reset = tokio::select! {
            r = client.read_buf(&mut from_client), if !client_eof => match r {
                Ok(0) => {
                    client_eof = true;
                    upstream.shutdown().await.err()
                }
                Ok(_) => {
                    if replayable && sent.len() + from_client.len() <= REPLAY_MAX {
                        sent.extend_from_slice(&from_client);
                    } else {
                        replayable = false;
                        sent = Vec::new();
                    }
                    let w = upstream.write_all(&from_client).await;
                    from_client.clear();
                    w.err()
                }
                Err(_) => return Exchange::Failed,
            },
            r = upstream.read_buf(&mut from_upstream) => match r {
                // Closed without a word while the client still waits for an answer: a process
                // that died (its kernel closes what it had read) — replayed like a reset.
                Ok(0) if !client_eof && replayable => {
                    Some(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
                }
                // The endpoint answered (or closed its side): the exchange is under way.
                Ok(_) => {
                    if client.write_all(&from_upstream).await.is_err() {
                        return Exchange::Failed;
                    }
                    if client_eof {
                        // The client is done sending: only the answer is left to carry.
                        return match tokio::io::copy(&mut upstream, client).await {
                            Ok(_) => {
                                let _ = client.shutdown().await;
                                Exchange::Done
                            }
                            Err(_) => Exchange::Failed,
                        };
                    }
                    return Exchange::Relay(upstream, chosen, open);
                }
                Err(e) => Some(e),
            },
        };
        let Some(e) = reset else { continue };
        if !replayable || !is_reset(&e) {
            return Exchange::Failed;
        }
        tracing::debug!(service = %pick.route.service, endpoint = %chosen, "endpoint reset the connection before answering; replaying to another endpoint");
        drop(open);
        loop {
            let Some((next, ep, o)) = pick.connect().await else {
                return Exchange::Failed;
            };
            (upstream, chosen, open) = (next, ep, o);
            let mut w = upstream.write_all(&sent).await;
            if w.is_ok() && client_eof {
                w = upstream.shutdown().await;
            }
            match w {
                Ok(()) => break,
                Err(e) if is_reset(&e) => drop(open.take()),
                Err(_) => return Exchange::Failed,
            }
        }
    }
}

/// The endpoint dropped the connection (reset, or a write after its reset).
fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
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
