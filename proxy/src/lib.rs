//! The service proxy that runs on every node: it accepts on each Service's ClusterIP:port
//! (TCP and UDP), on NodePorts and LoadBalancer ports of the node's addresses and on
//! `externalIPs`, and sends each new connection (or UDP flow) to one of the service's
//! endpoints, chosen as kube-proxy does (see [`table`]).
//!
//! Start at [`Proxy`]: it is told services and endpoints ([`Proxy::update_service`],
//! [`Proxy::set_endpoints`], fed from the API by [`feed::run_from_api`]) and the node agent's
//! faster view of endpoint readiness ([`Proxy::set_endpoint_state`]); every change rebuilds
//! the routing [`table::Table`] and swaps it in atomically, so the data path in [`listen`]
//! never takes a lock (except the ClientIP affinity map of services that ask for it).
//! [`Proxy::run`] keeps one listener per table entry that has an endpoint, and the health
//! check node ports of `externalTrafficPolicy: Local` LoadBalancers ([`healthcheck`]).
//!
//! Beyond kube-proxy: a connect refused by an endpoint is retried on another candidate before
//! the client sees a failure, one left unanswered (an endpoint on a dead node) has another
//! candidate raced against it after a short delay (`listen::CONNECT_RACE_DELAY`), and so is a connection the endpoint drops before answering a
//! single byte (a crashed process; see `listen::first_exchange`); a service without endpoints
//! has no listener, so a connect is refused at once, never hangs; readiness known to the local
//! agent reaches routing without the API round trip.

pub mod feed;
pub mod healthcheck;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod svcip;
pub mod table;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use model::{EndpointInfo, PortInfo, Protocol, ServiceInfo};
pub use table::{EndpointId, EndpointState, Listen, NodeConfig, Route, Table};

/// Why the proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The `ip` command could not add a service address.
    #[error("adding {ip} to {interface}: {message}")]
    ServiceIp {
        /// The address.
        ip: IpAddr,
        /// The interface.
        interface: String,
        /// What `ip` said.
        message: String,
    },
    /// The `ip` command could not remove a service address (or its interface).
    #[error("removing {ip} from {interface}: {message}")]
    ServiceIpRemove {
        /// The address.
        ip: IpAddr,
        /// The interface.
        interface: String,
        /// What `ip` said.
        message: String,
    },
}

/// Whether the API's endpoints already say what the agent's override `st` of `id` says, so the
/// override can go. Readiness is compared on `serving` (the pod's Ready condition) rather than
/// `ready` (which `publishNotReadyAddresses` forces true); a draining endpoint agrees once no
/// slice lists it.
fn api_agrees(s: &table::Sources, id: &EndpointId, st: EndpointState) -> bool {
    let mut api = s.endpoints.values().flatten().filter(|e| id.matches(e));
    match st {
        EndpointState::Ready => api.any(|e| e.serving),
        EndpointState::NotReady => api.any(|e| !e.serving),
        EndpointState::Draining => api.next().is_none(),
    }
}

/// The service proxy of one node. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Proxy {
    node: NodeConfig,
    table: ArcSwap<Table>,
    sources: Mutex<table::Sources>,
    /// Bumped on every table swap; the listener reconciler waits on it.
    generation: watch::Sender<u64>,
    /// Whether ClusterIPs and external IPs are added to the `paddock-svc` interface.
    manage_service_ips: bool,
    /// Where the service addresses this proxy adds are recorded ([`svcip`]).
    service_ip_record: Option<std::path::PathBuf>,
    /// `spec.healthCheckNodePort` per service that has one ([`healthcheck`]).
    health_checks: Mutex<std::collections::HashMap<(String, String), u16>>,
    /// Table swaps and programming latency ([`metrics`]).
    metrics: metrics::Metrics,
}

impl Proxy {
    /// A proxy for `node` with an empty table. `manage_service_ips` adds ClusterIPs and
    /// external IPs to the [`svcip::INTERFACE`] dummy interface before binding them (needs
    /// root); loopback addresses never need it.
    pub fn new(node: NodeConfig, manage_service_ips: bool) -> Arc<Proxy> {
        Self::build(node, manage_service_ips, None)
    }

    /// A proxy that adds service addresses to the node (as `new(node, true)`) and records the
    /// ones it added in `record`, so the next proxy on that record removes those a killed one
    /// left behind ([`svcip::Held::adopt_leftovers`]).
    pub fn with_service_ip_record(node: NodeConfig, record: std::path::PathBuf) -> Arc<Proxy> {
        Self::build(node, true, Some(record))
    }

    fn build(
        node: NodeConfig,
        manage_service_ips: bool,
        service_ip_record: Option<std::path::PathBuf>,
    ) -> Arc<Proxy> {
        Arc::new(Proxy {
            node,
            table: ArcSwap::from_pointee(Table::default()),
            sources: Mutex::new(table::Sources::default()),
            generation: watch::Sender::new(0),
            manage_service_ips,
            service_ip_record,
            health_checks: Mutex::default(),
            metrics: metrics::Metrics::default(),
        })
    }

    /// The proxy's metrics (the node agent serves them).
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.metrics
    }

    /// The node this proxy serves.
    pub fn node(&self) -> &NodeConfig {
        &self.node
    }

    /// The current routing table.
    pub fn table(&self) -> Arc<Table> {
        self.table.load_full()
    }

    /// The endpoint a new connection from `client` to `listen` would go to now.
    pub fn pick(&self, listen: Listen, client: IpAddr) -> Option<SocketAddr> {
        self.table.load().routes.get(&listen)?.pick(client, &[])
    }

    /// Adds or replaces a service.
    pub fn update_service(&self, svc: ServiceInfo) {
        self.edit(|s| {
            let key = (svc.namespace.clone(), svc.name.clone());
            if s.services.get(&key) == Some(&svc) {
                return false;
            }
            s.services.insert(key, svc);
            true
        });
    }

    /// Sets (or, with `None`, clears) the health check node port of a service
    /// ([`model::health_check_node_port`]); [`Proxy::run`] serves it.
    pub fn set_health_check_port(&self, namespace: &str, name: &str, port: Option<u16>) {
        let key = (namespace.to_string(), name.to_string());
        let changed = {
            let mut checks = self.health_checks.lock();
            match port {
                Some(p) => checks.insert(key, p) != Some(p),
                None => checks.remove(&key).is_some(),
            }
        };
        if changed {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// Removes a service (and its health check port).
    pub fn remove_service(&self, namespace: &str, name: &str) {
        self.set_health_check_port(namespace, name, None);
        self.edit(|s| {
            s.services
                .remove(&(namespace.to_string(), name.to_string()))
                .is_some()
        });
    }

    /// Replaces all endpoints of a service (every slice of it, merged).
    pub fn set_endpoints(&self, namespace: &str, name: &str, endpoints: Vec<EndpointInfo>) {
        self.edit(|s| {
            let key = (namespace.to_string(), name.to_string());
            if s.endpoints.get(&key) == Some(&endpoints) {
                return false;
            }
            if endpoints.is_empty() {
                s.endpoints.remove(&key);
            } else {
                s.endpoints.insert(key, endpoints);
            }
            // Overrides the API has caught up with are dropped.
            let keep: Vec<EndpointId> = s
                .overrides
                .iter()
                .filter(|(id, st)| !api_agrees(s, id, **st))
                .map(|(id, _)| id.clone())
                .collect();
            s.overrides.retain(|id, _| keep.contains(id));
            true
        });
    }

    /// The node agent's fast path: the endpoint at `ip` is ready, not ready or draining
    /// right now, whatever its EndpointSlice still says. Applies to every service it backs
    /// and stays until the API agrees (or [`Proxy::clear_endpoint_state`]). Returns once the
    /// new table is in place, so a caller can signal a draining process right after.
    /// `id` is an address ([`EndpointId::Ip`], or an `IpAddr`) or a pod uid
    /// ([`EndpointId::Pod`], needed for host-network pods that share the node's address); a
    /// pod override wins over an address one.
    pub fn set_endpoint_state(&self, id: impl Into<EndpointId>, state: EndpointState) {
        let id = id.into();
        self.edit_override(&id, |s| {
            // Readiness the API already reports needs no override (and must not outlive it:
            // with `publishNotReadyAddresses` a not-ready pod stays routable).
            if state != EndpointState::Draining && api_agrees(s, &id, state) {
                return s.overrides.remove(&id).is_some();
            }
            s.overrides.insert(id.clone(), state) != Some(state)
        });
    }

    /// Forgets the agent's view of `id`.
    pub fn clear_endpoint_state(&self, id: impl Into<EndpointId>) {
        let id = id.into();
        self.edit_override(&id, |s| s.overrides.remove(&id).is_some());
    }

    /// The agent is done with `id` (its pod is gone from the node): its override is dropped
    /// now if the API lists no endpoint of it, else when the API stops listing it (as
    /// [`Proxy::set_endpoints`] drops a draining override), so a pod whose slices still say
    /// ready never becomes routable again after its process is gone.
    pub fn release_endpoint_state(&self, id: impl Into<EndpointId>) {
        let id = id.into();
        self.edit_override(&id, |s| {
            let listed = s.endpoints.values().flatten().any(|e| id.matches(e));
            if listed {
                // Kept until the API catches up; draining is the only safe view meanwhile.
                s.overrides.insert(id.clone(), EndpointState::Draining)
                    != Some(EndpointState::Draining)
            } else {
                s.overrides.remove(&id).is_some()
            }
        });
    }

    /// Connections the proxy holds open to endpoints at `ip` (any port): after
    /// [`EndpointState::Draining`] the agent can wait for this to reach zero (or the pod's
    /// grace period) before stopping the process.
    pub fn active_connections(&self, ip: IpAddr) -> usize {
        self.sources
            .lock()
            .conns
            .iter()
            .filter(|(a, _)| a.ip() == ip)
            .map(|(_, c)| c.open.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    }

    /// Connections the proxy holds open to the endpoints of pod `uid` (by its slices'
    /// addresses and ports).
    pub fn active_pod_connections(&self, uid: &str) -> usize {
        let s = self.sources.lock();
        let id = EndpointId::Pod(uid.to_string());
        let addrs: std::collections::HashSet<SocketAddr> = s
            .endpoints
            .values()
            .flatten()
            .filter(|e| id.matches(e))
            .flat_map(|e| e.ports.iter().map(|(_, _, p)| SocketAddr::new(e.ip, *p)))
            .collect();
        s.conns
            .iter()
            .filter(|(a, _)| addrs.contains(*a))
            .map(|(_, c)| c.open.load(std::sync::atomic::Ordering::SeqCst))
            .sum()
    }

    /// Where LoadBalancer services are reachable (`status.loadBalancer.ingress`).
    pub fn load_balancer_ingress(&self) -> Vec<IpAddr> {
        self.node.external_ips()
    }

    /// Edits the sources and, when `f` says something changed, swaps in a new table.
    fn edit(&self, f: impl FnOnce(&mut table::Sources) -> bool) {
        let mut sources = self.sources.lock();
        if !f(&mut sources) {
            return;
        }
        let began = tokio::time::Instant::now();
        let table = table::build(&self.node, &mut sources);
        self.table.store(Arc::new(table));
        drop(sources);
        self.metrics.synced(began.elapsed());
        self.generation.send_modify(|g| *g += 1);
    }

    /// [`Proxy::edit`] for a change of the agent's override of `id` alone: only the routes
    /// of the services `id` backs are rebuilt ([`table::rebuild_for`]), so the agent's fast
    /// path does not slow down with the number of services. The listener reconciler is woken
    /// only when a route gained its first endpoint or lost its last (a listener is open only
    /// while its route has an endpoint, see [`listen::reconcile`]).
    fn edit_override(&self, id: &EndpointId, f: impl FnOnce(&mut table::Sources) -> bool) {
        let mut sources = self.sources.lock();
        if !f(&mut sources) {
            return;
        }
        let began = tokio::time::Instant::now();
        let (table, listeners_change) =
            table::rebuild_for(&self.node, &mut sources, &self.table.load(), id);
        self.table.store(Arc::new(table));
        drop(sources);
        self.metrics.synced(began.elapsed());
        if listeners_change {
            self.generation.send_modify(|g| *g += 1);
        }
    }

    /// Keeps one listener per table entry that has an endpoint, and the health check
    /// node ports, until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        tokio::join!(
            listen::reconcile(self.clone(), shutdown.clone()),
            healthcheck::serve(self, shutdown)
        );
    }
}
