//! The routing table: for every host our Ingresses name, the paths and their backends, the
//! catch-all server (rules without a host and the default backend), and the certificates by
//! TLS host. A table is built whole from the sources ([`Sources`]: Ingresses, IngressClasses,
//! Services, EndpointSlices, TLS Secrets and the node agent's readiness overrides) by
//! [`build`] and swapped in atomically by [`crate::Router`]; the data path only reads it.
//!
//! Precedence follows ingress-nginx, which merges every Ingress into one server per host:
//! a request goes to the server of its exact host, else of the one-label wildcard covering
//! it, else to the catch-all server; within a server the longest matching path wins, `Exact`
//! before `Prefix` at equal length, and among identical paths the oldest Ingress (creation
//! time, then namespace/name). A server without a matching path answers with the
//! `defaultBackend` of the oldest Ingress naming that host that has one, else the cluster's
//! (the oldest Ingress's `defaultBackend`), else 404. A backend is its Service's port (by
//! number or name) resolved to the EndpointSlice port of the same name on the endpoints
//! that are ready; a Service missing or without ready endpoints answers 503.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};
use proxy::{EndpointInfo, Protocol, ServiceInfo};
use rustls::sign::CertifiedKey;

use crate::matching::{HostRule, PathKind, PathRule};

/// `namespace`, `name`.
pub type Key = (String, String);

/// The `spec.controller` of IngressClasses this controller serves.
pub const CONTROLLER: &str = api::PADDOCK_INGRESS_CONTROLLER;
/// The IngressClass created for it.
pub const CLASS: &str = api::PADDOCK_INGRESS_CLASS;
/// The legacy class annotation (before `spec.ingressClassName`).
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Marks the default IngressClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// What the table is built from.
#[derive(Debug, Default)]
pub struct Sources {
    /// Every Ingress (ours or not: a class can change).
    pub ingresses: BTreeMap<Key, Ingress>,
    /// IngressClass name → (controller, is default).
    pub classes: BTreeMap<String, (String, bool)>,
    /// Services (not ExternalName ones).
    pub services: HashMap<Key, ServiceInfo>,
    /// EndpointSlice key → (its service, its endpoints).
    pub slices: HashMap<Key, (Key, Vec<EndpointInfo>)>,
    /// TLS Secrets: the parsed key pair or why it is unusable.
    pub secrets: HashMap<Key, Result<Arc<CertifiedKey>, String>>,
    /// The node agent's view of pod readiness (pod uid → ready), ahead of the API.
    pub overrides: HashMap<String, bool>,
}

/// Why a backend cannot take a request (503).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The Service does not exist.
    NoService,
    /// The Service has no such port.
    NoPort,
    /// No endpoint is ready.
    NoEndpoints,
    /// A `resource` backend (not supported).
    Resource,
}

/// Where one path (or default) sends requests.
#[derive(Debug)]
pub struct Backend {
    /// `namespace/service:port` for logs.
    pub name: String,
    /// The ready endpoints, or why there are none.
    pub target: Result<Vec<SocketAddr>, Unavailable>,
    next: AtomicUsize,
}

impl Backend {
    /// The next endpoint round-robin, skipping `tried`; `None` when none is left.
    pub fn pick(&self, tried: &[SocketAddr]) -> Option<SocketAddr> {
        let eps = self.target.as_ref().ok()?;
        let n = eps.len();
        for _ in 0..n {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % n;
            if !tried.contains(&eps[i]) {
                return Some(eps[i]);
            }
        }
        None
    }
}

/// One path of a server.
#[derive(Debug)]
struct PathEntry {
    rule: PathRule,
    backend: Arc<Backend>,
}

/// The routes of one host (or of the catch-all server).
#[derive(Debug, Default)]
struct Server {
    /// Best first: longer paths, `Exact` before `Prefix`, older Ingresses.
    paths: Vec<PathEntry>,
    default: Option<Arc<Backend>>,
}

impl Server {
    fn add(&mut self, rule: PathRule, backend: Arc<Backend>) {
        // The first (oldest) Ingress keeps an identical path.
        if !self.paths.iter().any(|p| p.rule == rule) {
            self.paths.push(PathEntry { rule, backend });
        }
    }

    fn sort(&mut self) {
        // Stable: among equals the oldest Ingress stays first.
        self.paths.sort_by(|a, b| {
            b.rule
                .rank_len()
                .cmp(&a.rule.rank_len())
                .then((a.rule.kind == PathKind::Prefix).cmp(&(b.rule.kind == PathKind::Prefix)))
        });
    }

    fn route(&self, path: &str) -> Option<&Arc<Backend>> {
        self.paths
            .iter()
            .find(|p| p.rule.matches(path))
            .map(|p| &p.backend)
            .or(self.default.as_ref())
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum Decision {
    /// To this backend.
    Backend(Arc<Backend>),
    /// Nothing matches and there is no default backend: 404.
    NotFound,
}

/// A problem with one of our Ingresses, told as a Warning event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Problem {
    /// The Ingress.
    pub ingress: Key,
    /// The event's reason.
    pub reason: &'static str,
    /// The event's message.
    pub message: String,
}

/// Event reason: a backend Service does not exist.
pub const REASON_NO_SERVICE: &str = "ServiceNotFound";
/// Event reason: a TLS Secret is missing or unusable.
pub const REASON_BAD_TLS: &str = "InvalidTLSSecret";

/// The routing table.
#[derive(Debug, Default)]
pub struct Table {
    exact: HashMap<String, Server>,
    wildcard: HashMap<String, Server>,
    catch_all: Server,
    /// Certificates by exact TLS host and by wildcard suffix.
    certs_exact: HashMap<String, Arc<CertifiedKey>>,
    certs_wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// Our Ingresses (for their status).
    pub ours: Vec<Key>,
    /// Problems of our Ingresses.
    pub problems: Vec<Problem>,
}

impl Table {
    /// Where a request for `host` (normalized, `None` when the request named none) and
    /// `path` goes.
    pub fn route(&self, host: Option<&str>, path: &str) -> Decision {
        let server = host
            .and_then(|h| {
                self.exact.get(h).or_else(|| {
                    let (_, suffix) = h.split_once('.')?;
                    self.wildcard.get(suffix)
                })
            })
            .unwrap_or(&self.catch_all);
        match server.route(path).or(self.catch_all.default.as_ref()) {
            Some(b) => Decision::Backend(b.clone()),
            None => Decision::NotFound,
        }
    }

    /// The certificate for the TLS server name `sni` (normalized), if an Ingress has one.
    pub fn cert(&self, sni: &str) -> Option<Arc<CertifiedKey>> {
        self.certs_exact
            .get(sni)
            .or_else(|| {
                let (label, suffix) = sni.split_once('.')?;
                (!label.is_empty())
                    .then(|| self.certs_wildcard.get(suffix))
                    .flatten()
            })
            .cloned()
    }
}

/// Whether `ing` is ours: its class (`spec.ingressClassName`, else the legacy annotation) is
/// an IngressClass whose controller is ours, or `paddock` while no IngressClass of that name
/// says otherwise; an Ingress without a class is ours when the default IngressClass is.
pub fn is_ours(ing: &Ingress, classes: &BTreeMap<String, (String, bool)>) -> bool {
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLASS_ANNOTATION).cloned())
        });
    match class {
        // The IngressClass decides; `paddock` is ours also before (or without) its object.
        Some(c) => match classes.get(&c) {
            Some((controller, _)) => controller == CONTROLLER,
            None => c == CLASS,
        },
        None => classes
            .values()
            .any(|(controller, default)| *default && controller == CONTROLLER),
    }
}

/// An IngressClass's (controller, is default).
pub fn class_info(class: &IngressClass) -> (String, bool) {
    let controller = class
        .spec
        .as_ref()
        .and_then(|s| s.controller.clone())
        .unwrap_or_default();
    let default = class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true");
    (controller, default)
}

fn ready(ep: &EndpointInfo, overrides: &HashMap<String, bool>) -> bool {
    ep.pod_uid
        .as_ref()
        .and_then(|u| overrides.get(u))
        .copied()
        .unwrap_or(ep.ready)
}

/// Resolves `backend` of an Ingress in `namespace`.
fn resolve(
    s: &Sources,
    namespace: &str,
    backend: &IngressBackend,
    cache: &mut HashMap<String, Arc<Backend>>,
) -> Arc<Backend> {
    let Some(svc) = &backend.service else {
        let name = format!("{namespace}/<resource>");
        return cache
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Backend {
                    name,
                    target: Err(Unavailable::Resource),
                    next: AtomicUsize::new(0),
                })
            })
            .clone();
    };
    let port = svc.port.as_ref();
    let port_text = match port {
        Some(p) => match (&p.name, p.number) {
            (Some(n), _) if !n.is_empty() => n.clone(),
            (_, Some(n)) => n.to_string(),
            _ => String::new(),
        },
        None => String::new(),
    };
    let name = format!("{namespace}/{}:{port_text}", svc.name);
    if let Some(b) = cache.get(&name) {
        return b.clone();
    }
    let target = (|| {
        let info = s
            .services
            .get(&(namespace.to_string(), svc.name.clone()))
            .ok_or(Unavailable::NoService)?;
        let sp = info
            .ports
            .iter()
            .filter(|p| p.protocol == Protocol::Tcp)
            .find(|p| match port {
                Some(bp) => match (&bp.name, bp.number) {
                    (Some(n), _) if !n.is_empty() => p.name == *n,
                    (_, Some(n)) => i32::from(p.port) == n,
                    _ => false,
                },
                None => false,
            })
            .ok_or(Unavailable::NoPort)?;
        let key = (namespace.to_string(), svc.name.clone());
        let mut eps: Vec<SocketAddr> = s
            .slices
            .values()
            .filter(|(k, _)| *k == key)
            .flat_map(|(_, e)| e.iter())
            .filter(|e| ready(e, &s.overrides))
            .filter_map(|e| Some(SocketAddr::new(e.ip, e.port(&sp.name, Protocol::Tcp)?)))
            .collect();
        eps.sort();
        eps.dedup();
        if eps.is_empty() {
            return Err(Unavailable::NoEndpoints);
        }
        Ok(eps)
    })();
    let b = Arc::new(Backend {
        name: name.clone(),
        target,
        next: AtomicUsize::new(0),
    });
    cache.insert(name, b.clone());
    b
}

/// Builds the table. Backends of the previous table keep their round-robin position when
/// their endpoints did not change.
pub fn build(s: &Sources, previous: &Table) -> Table {
    let mut ours: Vec<&Ingress> = s
        .ingresses
        .values()
        .filter(|i| is_ours(i, &s.classes))
        .collect();
    // Oldest first; then namespace/name.
    ours.sort_by_key(|i| {
        (
            i.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            i.metadata.namespace.clone(),
            i.metadata.name.clone(),
        )
    });
    let mut t = Table::default();
    let mut cache: HashMap<String, Arc<Backend>> = HashMap::new();
    let mut problems: HashSet<Problem> = HashSet::new();
    for ing in ours {
        let ns = ing.metadata.namespace.clone().unwrap_or_default();
        let key = (ns.clone(), ing.metadata.name.clone().unwrap_or_default());
        t.ours.push(key.clone());
        let Some(spec) = &ing.spec else { continue };
        let mut note = |b: &Arc<Backend>, svc: Option<&str>| {
            if b.target == Err(Unavailable::NoService) {
                problems.insert(Problem {
                    ingress: key.clone(),
                    reason: REASON_NO_SERVICE,
                    message: format!(
                        "Service \"{}\" not found",
                        svc.map_or(b.name.clone(), |n| format!("{ns}/{n}"))
                    ),
                });
            }
        };
        let default = spec.default_backend.as_ref().map(|b| {
            let r = resolve(s, &ns, b, &mut cache);
            note(&r, b.service.as_ref().map(|s| s.name.as_str()));
            r
        });
        if t.catch_all.default.is_none() {
            t.catch_all.default = default.clone();
        }
        for rule in spec.rules.iter().flatten() {
            let host = rule.host.as_deref().and_then(HostRule::parse);
            let server = match &host {
                None => &mut t.catch_all,
                Some(HostRule::Exact(h)) => t.exact.entry(h.clone()).or_default(),
                Some(HostRule::Wildcard(h)) => t.wildcard.entry(h.clone()).or_default(),
            };
            if server.default.is_none() && host.is_some() {
                server.default = default.clone();
            }
            for p in rule.http.iter().flat_map(|h| h.paths.iter()) {
                let b = resolve(s, &ns, &p.backend, &mut cache);
                note(&b, p.backend.service.as_ref().map(|s| s.name.as_str()));
                server.add(
                    PathRule::new(PathKind::parse(&p.path_type), p.path.as_deref()),
                    b,
                );
            }
        }
        // Certificates: each TLS entry's hosts (or, without hosts, the Ingress's rule hosts).
        for tls in spec.tls.iter().flatten() {
            let Some(secret) = tls.secret_name.as_deref().filter(|n| !n.is_empty()) else {
                continue;
            };
            let cert = match s.secrets.get(&(ns.clone(), secret.to_string())) {
                Some(Ok(c)) => c.clone(),
                Some(Err(why)) => {
                    problems.insert(Problem {
                        ingress: key.clone(),
                        reason: REASON_BAD_TLS,
                        message: format!("TLS Secret \"{ns}/{secret}\" is invalid: {why}"),
                    });
                    continue;
                }
                None => {
                    problems.insert(Problem {
                        ingress: key.clone(),
                        reason: REASON_BAD_TLS,
                        message: format!(
                            "TLS Secret \"{ns}/{secret}\" not found (or not of type kubernetes.io/tls)"
                        ),
                    });
                    continue;
                }
            };
            let hosts: Vec<String> = match &tls.hosts {
                Some(h) if !h.is_empty() => h.clone(),
                _ => spec
                    .rules
                    .iter()
                    .flatten()
                    .filter_map(|r| r.host.clone())
                    .collect(),
            };
            for h in hosts {
                match HostRule::parse(&h) {
                    Some(HostRule::Exact(h)) => {
                        t.certs_exact.entry(h).or_insert_with(|| cert.clone());
                    }
                    Some(HostRule::Wildcard(h)) => {
                        t.certs_wildcard.entry(h).or_insert_with(|| cert.clone());
                    }
                    None => {}
                }
            }
        }
    }
    let old: HashMap<&str, &Arc<Backend>> = previous
        .exact
        .values()
        .chain(previous.wildcard.values())
        .chain(std::iter::once(&previous.catch_all))
        .flat_map(|s| s.paths.iter().map(|p| &p.backend).chain(s.default.iter()))
        .map(|b| (b.name.as_str(), b))
        .collect();
    for b in cache.values() {
        keep_position(b, &old);
    }
    for server in t
        .exact
        .values_mut()
        .chain(t.wildcard.values_mut())
        .chain(std::iter::once(&mut t.catch_all))
    {
        server.sort();
    }
    let mut problems: Vec<Problem> = problems.into_iter().collect();
    problems.sort();
    t.problems = problems;
    t
}

/// Carries a backend's round-robin position over from the previous table when its
/// endpoints are the same, so a rebuild does not send the next request to the first one.
fn keep_position(b: &Backend, old: &HashMap<&str, &Arc<Backend>>) {
    if let Some(o) = old.get(b.name.as_str())
        && o.target == b.target
    {
        b.next
            .store(o.next.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}
