//! The routing table: which (address, port, protocol) the proxy accepts on, and for each the
//! endpoints a new connection may go to. A table is built whole from the services, their
//! endpoints and the node agent's overrides ([`build`]) and swapped in atomically; the data
//! path only reads it.
//!
//! Endpoint choice follows kube-proxy's `CategorizeEndpoints` (`pkg/proxy/topology.go`): the
//! ready endpoints; when none is ready, the serving and terminating ones; never the others.
//! With a `Local` traffic policy only endpoints on this node count. Among the candidates
//! connections are spread round-robin ([`Route::pick`]); with `sessionAffinity: ClientIP` a
//! client goes back to its endpoint while it has been seen within the timeout (as the
//! iptables `recent` match does: every new connection refreshes it).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::model::{EndpointInfo, PortInfo, Protocol, ServiceInfo};

/// Where the proxy accepts: an address and a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Listen {
    /// Address and port.
    pub addr: SocketAddr,
    /// Protocol.
    pub protocol: Protocol,
}

/// How the node agent sees an endpoint right now, ahead of the API (see
/// [`crate::Proxy::set_endpoint_state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointState {
    /// Ready: routable as if its slice said `ready: true`.
    Ready,
    /// Not ready: no new connections (as `ready: false, serving: false`).
    NotReady,
    /// Being stopped: no new connections while any endpoint is ready; existing ones finish.
    /// Like a terminating endpoint in kube-proxy, it stays a fallback while the API says it is
    /// serving and nothing else is ready (one replica being deleted keeps answering until its
    /// process stops, as in Kubernetes).
    Draining,
}

/// Which endpoints an agent override applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EndpointId {
    /// Every endpoint with this address (isolated pods have an address of their own).
    Ip(IpAddr),
    /// The endpoints whose `targetRef` is the pod with this uid (host-network pods share the
    /// node's address, so the pod is the only precise key).
    Pod(String),
}

impl EndpointId {
    /// Whether `ep` is one of the endpoints meant.
    pub fn matches(&self, ep: &EndpointInfo) -> bool {
        match self {
            EndpointId::Ip(ip) => ep.ip == *ip,
            EndpointId::Pod(uid) => ep.pod_uid.as_deref() == Some(uid.as_str()),
        }
    }
}

impl From<IpAddr> for EndpointId {
    fn from(ip: IpAddr) -> EndpointId {
        EndpointId::Ip(ip)
    }
}

/// The last endpoint of each client address, for ClientIP affinity; kept across tables.
#[derive(Debug, Default)]
pub(crate) struct Affinity {
    clients: Mutex<HashMap<IpAddr, (SocketAddr, Instant)>>,
}

/// The proxy's open connections to one endpoint address, kept across tables.
#[derive(Debug, Default)]
pub struct Conns {
    /// How many are open.
    pub(crate) open: AtomicUsize,
    /// Cancelled when the endpoint is gone from every service (its pod was deleted): the
    /// connections still open to it are closed rather than left hanging.
    pub(crate) gone: tokio_util::sync::CancellationToken,
}

/// What one listener routes to.
#[derive(Debug)]
pub struct Route {
    /// `namespace/name:port` for logs.
    pub service: String,
    /// The candidates for new connections.
    pub endpoints: Vec<SocketAddr>,
    /// Open connections per endpoint (parallel to `endpoints`).
    counters: Vec<Arc<Conns>>,
    next: AtomicUsize,
    affinity: Option<(Arc<Affinity>, Duration)>,
}

impl Route {
    /// The endpoint for a new connection from `client`, skipping `tried` ones; `None` when no
    /// candidate is left (the connection is refused).
    pub fn pick(&self, client: IpAddr, tried: &[SocketAddr]) -> Option<SocketAddr> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let usable = |ep: &SocketAddr| !tried.contains(ep);
        if let Some((aff, timeout)) = &self.affinity {
            let now = Instant::now();
            let mut clients = aff.clients.lock();
            if let Some((ep, seen)) = clients.get(&client).copied()
                && now.duration_since(seen) <= *timeout
                && self.endpoints.contains(&ep)
                && usable(&ep)
            {
                clients.insert(client, (ep, now));
                return Some(ep);
            }
            let ep = self.round_robin(usable)?;
            clients.insert(client, (ep, now));
            if clients.len() > 4096 {
                clients.retain(|_, (_, seen)| now.duration_since(*seen) <= *timeout);
            }
            return Some(ep);
        }
        self.round_robin(usable)
    }

    /// The open-connection counter of `ep`.
    pub(crate) fn counter(&self, ep: SocketAddr) -> Option<&Arc<Conns>> {
        let i = self.endpoints.iter().position(|e| *e == ep)?;
        self.counters.get(i)
    }

    fn round_robin(&self, usable: impl Fn(&SocketAddr) -> bool) -> Option<SocketAddr> {
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| self.endpoints[(start + i) % n])
            .find(|ep| usable(ep))
    }
}

/// The routing table.
#[derive(Debug, Default)]
pub struct Table {
    /// Routes by listener.
    pub routes: HashMap<Listen, Arc<Route>>,
}

/// What the proxy is told, from which tables are built.
#[derive(Debug, Default)]
pub(crate) struct Sources {
    pub(crate) services: Services,
    pub(crate) endpoints: Endpoints,
    pub(crate) overrides: HashMap<EndpointId, EndpointState>,
    pub(crate) affinity: HashMap<String, Arc<Affinity>>,
    /// Open connections per endpoint address.
    pub(crate) conns: HashMap<SocketAddr, Arc<Conns>>,
}

/// The node the proxy runs on.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    /// The node's name (for `Local` traffic policies).
    pub node_name: String,
    /// The node's addresses: NodePorts and LoadBalancer ports listen there.
    pub node_ips: Vec<IpAddr>,
    /// Also listen on 127.0.0.1 for NodePort and LoadBalancer ports, listed first in
    /// `status.loadBalancer.ingress` (`paddock up`).
    pub loopback: bool,
}

impl NodeConfig {
    /// The addresses NodePort and LoadBalancer ports listen on, 127.0.0.1 first when
    /// `loopback`.
    pub fn external_ips(&self) -> Vec<IpAddr> {
        let mut ips = Vec::new();
        if self.loopback {
            ips.push(IpAddr::from([127, 0, 0, 1]));
        }
        for ip in &self.node_ips {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        ips
    }
}

/// Applies the agent's overrides to an endpoint's API conditions.
fn effective(
    ep: &EndpointInfo,
    overrides: &HashMap<EndpointId, EndpointState>,
) -> (bool, bool, bool) {
    let by_pod = ep
        .pod_uid
        .as_ref()
        .and_then(|uid| overrides.get(&EndpointId::Pod(uid.clone())));
    match by_pod.or_else(|| overrides.get(&EndpointId::Ip(ep.ip))) {
        None => (ep.ready, ep.serving, ep.terminating),
        Some(EndpointState::Ready) => (true, true, ep.terminating),
        Some(EndpointState::NotReady) => (false, false, ep.terminating),
        Some(EndpointState::Draining) => (false, ep.serving, true),
    }
}

/// kube-proxy's candidate endpoints for one service port.
fn candidates(
    eps: &[EndpointInfo],
    port: &PortInfo,
    local: Option<&str>,
    overrides: &HashMap<EndpointId, EndpointState>,
) -> Vec<SocketAddr> {
    let mut ready = Vec::new();
    let mut fallback = Vec::new();
    for ep in eps {
        if local.is_some_and(|node| ep.node_name.as_deref() != Some(node)) {
            continue;
        }
        let Some(target) = ep.port(&port.name, port.protocol) else {
            continue;
        };
        let addr = SocketAddr::new(ep.ip, target);
        let (r, serving, terminating) = effective(ep, overrides);
        if r {
            if !ready.contains(&addr) {
                ready.push(addr);
            }
        } else if serving && terminating && !fallback.contains(&addr) {
            fallback.push(addr);
        }
    }
    if ready.is_empty() { fallback } else { ready }
}

/// Services by (namespace, name).
type Services = BTreeMap<(String, String), ServiceInfo>;
/// Endpoints of each service by (namespace, name).
type Endpoints = HashMap<(String, String), Vec<EndpointInfo>>;

/// What building routes reads and updates, besides the services and endpoints themselves.
struct Builder<'a> {
    node: &'a NodeConfig,
    external_ips: Vec<IpAddr>,
    overrides: &'a HashMap<EndpointId, EndpointState>,
    affinity: &'a mut HashMap<String, Arc<Affinity>>,
    conns: &'a mut HashMap<SocketAddr, Arc<Conns>>,
    /// Affinity labels of the services built so far.
    used_affinity: Vec<String>,
}

impl<'a> Builder<'a> {
    /// A builder over `src`'s overrides, affinity and connection counters, with its services
    /// and endpoints to build from.
    fn new(
        node: &'a NodeConfig,
        src: &'a mut Sources,
    ) -> (Builder<'a>, &'a Services, &'a Endpoints) {
        let Sources {
            services,
            endpoints,
            overrides,
            affinity,
            conns,
        } = src;
        let b = Builder {
            node,
            external_ips: node.external_ips(),
            overrides,
            affinity,
            conns,
            used_affinity: Vec::new(),
        };
        (b, services, endpoints)
    }

    /// The routes of one service, in the order [`build`] claims their listeners.
    fn service_routes(
        &mut self,
        svc: &ServiceInfo,
        eps: &[EndpointInfo],
    ) -> Vec<(Listen, Arc<Route>)> {
        let Builder {
            node,
            external_ips,
            overrides,
            affinity,
            conns,
            used_affinity,
        } = self;
        let mut out = Vec::new();
        for port in &svc.ports {
            if port.protocol == Protocol::Sctp {
                continue;
            }
            let label = format!("{}/{}:{}", svc.namespace, svc.name, port.name);
            let aff = svc.affinity.map(|t| {
                used_affinity.push(label.clone());
                (affinity.entry(label.clone()).or_default().clone(), t)
            });
            let mut route = |local: bool| {
                let local = local.then_some(node.node_name.as_str());
                let endpoints = candidates(eps, port, local, overrides);
                let counters = endpoints
                    .iter()
                    .map(|e| conns.entry(*e).or_default().clone())
                    .collect();
                Arc::new(Route {
                    service: label.clone(),
                    endpoints,
                    counters,
                    next: AtomicUsize::new(0),
                    affinity: aff.clone(),
                })
            };
            let internal = route(svc.internal_local);
            let external = route(svc.external_local);
            let mut add = |ip: IpAddr, p: u16, r: &Arc<Route>| {
                let key = Listen {
                    addr: SocketAddr::new(ip, p),
                    protocol: port.protocol,
                };
                out.push((key, r.clone()));
            };
            for ip in &svc.cluster_ips {
                add(*ip, port.port, &internal);
            }
            for ip in &svc.external_ips {
                add(*ip, port.port, &external);
            }
            if let Some(np) = port.node_port
                && (svc.type_ == "NodePort" || svc.type_ == "LoadBalancer")
            {
                for ip in external_ips.iter() {
                    add(*ip, np, &external);
                }
            }
            if svc.type_ == "LoadBalancer" {
                for ip in external_ips.iter() {
                    add(*ip, port.port, &external);
                }
            }
        }
        out
    }
}

/// Builds the table for `node` from `src`.
pub(crate) fn build(node: &NodeConfig, src: &mut Sources) -> Table {
    let mut routes: HashMap<Listen, Arc<Route>> = HashMap::new();
    let empty = Vec::new();
    let (mut b, services, endpoints) = Builder::new(node, src);
    for ((ns, name), svc) in services.iter() {
        let eps = endpoints.get(&(ns.clone(), name.clone())).unwrap_or(&empty);
        for (key, route) in b.service_routes(svc, eps) {
            if let Some(other) = routes.get(&key) {
                tracing::warn!(listen = %key.addr, service = %route.service, other = %other.service,
                    "address and port already taken by another service");
                continue;
            }
            routes.insert(key, route);
        }
    }
    let Builder {
        affinity,
        conns,
        used_affinity,
        ..
    } = b;
    affinity.retain(|k, _| used_affinity.contains(k));
    let in_use: std::collections::HashSet<SocketAddr> = routes
        .values()
        .flat_map(|r| r.endpoints.iter().copied())
        .collect();
    // Connections to an endpoint that no service lists any more (its pod is gone) are closed;
    // ones to an endpoint that is only not ready (or terminating) keep flowing.
    let listed: std::collections::HashSet<SocketAddr> = endpoints
        .values()
        .flatten()
        .flat_map(|e| e.ports.iter().map(|(_, _, p)| SocketAddr::new(e.ip, *p)))
        .collect();
    conns.retain(|addr, c| {
        if listed.contains(addr) {
            return true;
        }
        c.gone.cancel();
        in_use.contains(addr)
    });
    Table { routes }
}

/// The table after a change of the node agent's override of `id` alone: the routes of the
/// services with an endpoint matching `id` are rebuilt, every other route is reused from `old`.
/// The result is what [`build`] would make, at a cost that does not grow with the number of
/// services, so readiness reaches routing as fast with a thousand services as with one. Also
/// says whether a route gained its first endpoint or lost its last: its listener opens or
/// closes then (see `listen::reconcile`).
pub(crate) fn rebuild_for(
    node: &NodeConfig,
    src: &mut Sources,
    old: &Table,
    id: &EndpointId,
) -> (Table, bool) {
    let mut routes = old.routes.clone();
    let mut listeners_change = false;
    let (mut b, services, endpoints) = Builder::new(node, src);
    for (key, eps) in endpoints.iter() {
        if !eps.iter().any(|e| id.matches(e)) {
            continue;
        }
        let Some(svc) = services.get(key) else {
            continue;
        };
        for (listen, route) in b.service_routes(svc, eps) {
            // Only where this service won the listener (see `build`).
            if let Some(slot) = routes.get_mut(&listen)
                && slot.service == route.service
            {
                listeners_change |= slot.endpoints.is_empty() != route.endpoints.is_empty();
                *slot = route;
            }
        }
    }
    (Table { routes }, listeners_change)
}

#[cfg(test)]
mod tests;
