//! [`Records`]: what the DNS server knows about the cluster, fed by calls (from the API watch and
//! from the node agent's readiness fast path). Every change rebuilds an immutable [`Snapshot`]
//! and swaps it in, so a query never waits for an update and sees one consistent view.
//!
//! What is kept follows CoreDNS's kubernetes plugin (`plugin/kubernetes/object`): a Service's
//! type, cluster IPs, ports and ExternalName; of each EndpointSlice only the endpoints CoreDNS
//! turns into addresses (`conditions.ready` absent or true: the EndpointSlice controller
//! already marks every endpoint of a `publishNotReadyAddresses` service ready), with their
//! `hostname`. The agent can override an endpoint's readiness before the API has the news
//! ([`Records::set_endpoint_ready`]); a `publishNotReadyAddresses` service ignores it, as its
//! slices do.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use parking_lot::Mutex;

use crate::Error;

/// The label an EndpointSlice names its Service with.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// (namespace, name).
pub(crate) type Key = (String, String);

/// Which endpoints a readiness override from the agent applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EndpointKey {
    /// Every endpoint with this address.
    Ip(IpAddr),
    /// The endpoints whose `targetRef` is the pod with this uid (host-network pods share the
    /// node's address).
    Pod(String),
}

/// One port of a Service or an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Port {
    /// `name` (may be empty).
    pub(crate) name: String,
    /// `protocol` (`TCP` when absent), as written.
    pub(crate) protocol: String,
    /// The number.
    pub(crate) port: u16,
}

/// How a service's name resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A ClusterIP (or NodePort, LoadBalancer) service: its cluster IPs.
    ClusterIp(Vec<IpAddr>),
    /// `clusterIP: None`: its endpoints' addresses.
    Headless,
    /// `type: ExternalName`: a CNAME to this name.
    External(Name),
}

#[derive(Debug, Clone)]
struct ServiceSpec {
    kind: Kind,
    ports: Vec<Port>,
    publish_not_ready: bool,
}

#[derive(Debug, Clone)]
struct EndpointSpec {
    addresses: Vec<IpAddr>,
    hostname: Option<String>,
    ready: bool,
    pod_uid: Option<String>,
}

#[derive(Debug, Clone)]
struct SliceSpec {
    service: Key,
    ports: Vec<Port>,
    endpoints: Vec<EndpointSpec>,
}

#[derive(Debug, Default)]
struct Model {
    services: HashMap<Key, ServiceSpec>,
    slices: HashMap<Key, SliceSpec>,
    overrides: HashMap<EndpointKey, bool>,
    namespaces: HashSet<String>,
}

/// An endpoint address as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The address.
    pub(crate) ip: IpAddr,
    /// Its label under the service name: `hostname`, else the address with `.`/`:` as `-`
    /// (CoreDNS `endpointHostname`).
    pub(crate) host: String,
    /// The ports of its slice.
    pub(crate) ports: Vec<Port>,
}

/// A service as DNS sees it.
#[derive(Debug, Clone)]
pub(crate) struct ServiceView {
    pub(crate) kind: Kind,
    pub(crate) ports: Vec<Port>,
    /// Its endpoints that resolve (ready, after agent overrides).
    pub(crate) endpoints: Vec<Endpoint>,
}

/// One consistent view of the records, swapped in whole on every change.
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The cluster domain, lower case, fully qualified.
    pub(crate) zone: Name,
    pub(crate) services: HashMap<Key, ServiceView>,
    /// Namespaces known to exist (fed, or holding a service).
    pub(crate) namespaces: HashSet<String>,
    /// Address → PTR targets: a service's name when the address is its cluster IP, otherwise
    /// the names of every endpoint with that address (CoreDNS `serviceRecordForIP`).
    pub(crate) reverse: HashMap<IpAddr, Vec<Name>>,
    /// The SOA serial: the time of the last change (CoreDNS `Serial`: `Modified`).
    pub(crate) serial: u32,
}

/// The records the server answers from (see the module docs).
#[derive(Debug)]
pub struct Records {
    zone: Name,
    model: Mutex<Model>,
    snapshot: ArcSwap<Snapshot>,
}

impl Records {
    /// An empty table for the cluster domain `zone` (`cluster.local`).
    pub fn new(zone: &str) -> Result<Records, Error> {
        let zone = parse_zone(zone)?;
        let model = Model::default();
        let snapshot = build(&zone, &model);
        Ok(Records {
            zone,
            model: Mutex::new(model),
            snapshot: ArcSwap::from_pointee(snapshot),
        })
    }

    /// The cluster domain, fully qualified.
    pub fn zone(&self) -> &Name {
        &self.zone
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    fn change(&self, f: impl FnOnce(&mut Model)) {
        let mut model = self.model.lock();
        f(&mut model);
        self.snapshot.store(Arc::new(build(&self.zone, &model)));
    }

    /// Adds or replaces a Service.
    pub fn update_service(&self, svc: &Service) {
        let Some(key) = key_of(&svc.metadata) else {
            return;
        };
        let spec = service_spec(svc);
        self.change(|m| match spec {
            Some(spec) => {
                m.services.insert(key, spec);
            }
            None => {
                m.services.remove(&key);
            }
        });
    }

    /// Forgets a Service.
    pub fn remove_service(&self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        self.change(|m| {
            m.services.remove(&key);
        });
    }

    /// Adds or replaces an EndpointSlice (one without the `kubernetes.io/service-name` label
    /// belongs to no service and is dropped).
    pub fn set_endpoint_slice(&self, slice: &EndpointSlice) {
        let Some(key) = key_of(&slice.metadata) else {
            return;
        };
        let spec = slice_spec(&key.0, slice);
        self.change(|m| match spec {
            Some(spec) => {
                m.slices.insert(key, spec);
            }
            None => {
                m.slices.remove(&key);
            }
        });
    }

    /// Forgets an EndpointSlice.
    pub fn remove_endpoint_slice(&self, namespace: &str, name: &str) {
        let key = (namespace.to_owned(), name.to_owned());
        self.change(|m| {
            m.slices.remove(&key);
        });
    }

    /// The agent's view of an endpoint's readiness, ahead of the EndpointSlice; a headless
    /// service's answer changes at once.
    pub fn set_endpoint_ready(&self, key: EndpointKey, ready: bool) {
        self.change(|m| {
            m.overrides.insert(key, ready);
        });
    }

    /// Drops an override: the EndpointSlice is right again (or the pod is gone).
    pub fn clear_endpoint_ready(&self, key: &EndpointKey) {
        self.change(|m| {
            m.overrides.remove(key);
        });
    }

    /// Records that a namespace exists or not: `<ns>.svc.<zone>` is NODATA rather than
    /// NXDOMAIN, and pod names in it resolve (a namespace holding a service exists anyway).
    pub fn set_namespace(&self, namespace: &str, exists: bool) {
        self.change(|m| {
            if exists {
                m.namespaces.insert(namespace.to_owned());
            } else {
                m.namespaces.remove(namespace);
            }
        });
    }
}

fn parse_zone(zone: &str) -> Result<Name, Error> {
    let bad = |reason: String| Error::Zone {
        zone: zone.to_owned(),
        reason,
    };
    let trimmed = zone.trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(bad("empty".into()));
    }
    let mut name = Name::from_ascii(trimmed).map_err(|e| bad(e.to_string()))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<Key> {
    Some((meta.namespace.clone()?, meta.name.clone()?))
}

fn service_spec(svc: &Service) -> Option<ServiceSpec> {
    let spec = svc.spec.as_ref()?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: u16::try_from(p.port).ok()?,
            })
        })
        .collect();
    let kind = if spec.type_.as_deref() == Some("ExternalName") {
        let target = spec.external_name.as_deref()?.trim_end_matches('.');
        // CoreDNS answers a CNAME only when the target is a name, not an address.
        if target.is_empty() || target.parse::<IpAddr>().is_ok() {
            return None;
        }
        let mut name = Name::from_ascii(target).ok()?;
        name.set_fqdn(true);
        Kind::External(name)
    } else {
        let mut ips: Vec<&String> = spec.cluster_ips.iter().flatten().collect();
        if ips.is_empty() {
            ips.extend(spec.cluster_ip.as_ref());
        }
        if ips.iter().any(|ip| *ip == "None") {
            Kind::Headless
        } else {
            let ips: Vec<IpAddr> = ips.iter().filter_map(|ip| ip.parse().ok()).collect();
            if ips.is_empty() {
                // Not allocated yet: nothing to answer.
                return None;
            }
            Kind::ClusterIp(ips)
        }
    };
    Some(ServiceSpec {
        kind,
        ports,
        publish_not_ready: spec.publish_not_ready_addresses.unwrap_or(false),
    })
}

fn slice_spec(namespace: &str, slice: &EndpointSlice) -> Option<SliceSpec> {
    let service = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    let ports = slice
        .ports
        .iter()
        .flatten()
        .filter_map(|p| {
            Some(Port {
                name: p.name.clone().unwrap_or_default(),
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port: u16::try_from(p.port?).ok()?,
            })
        })
        .collect();
    // FQDN slices carry names, not addresses: nothing DNS can serve as A/AAAA.
    let endpoints = if slice.address_type == "FQDN" {
        Vec::new()
    } else {
        slice
            .endpoints
            .iter()
            .flatten()
            .map(|e| EndpointSpec {
                addresses: e.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                hostname: e.hostname.clone().filter(|h| !h.is_empty()),
                ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                pod_uid: e
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| r.uid.clone()),
            })
            .collect()
    };
    Some(SliceSpec {
        service: (namespace.to_owned(), service.clone()),
        ports,
        endpoints,
    })
}

/// CoreDNS `endpointHostname`: the endpoint's `hostname`, else its address with the
/// separators as dashes.
fn endpoint_host(hostname: Option<&str>, ip: IpAddr) -> String {
    match hostname {
        Some(h) => h.to_ascii_lowercase(),
        None => ip.to_string().replace(['.', ':'], "-"),
    }
}

/// `a.b.c` under `base`, or `None` when a label is not a valid DNS label.
pub(crate) fn name_under(labels: &[&str], base: &Name) -> Option<Name> {
    let mut name = Name::from_labels(labels.iter().map(|l| l.as_bytes())).ok()?;
    name.set_fqdn(false);
    name.append_domain(base).ok()
}

/// `<svc>.<ns>.svc.<zone>`.
pub(crate) fn service_name(zone: &Name, key: &Key) -> Option<Name> {
    name_under(&[key.1.as_str(), key.0.as_str(), "svc"], zone)
}

fn build(zone: &Name, model: &Model) -> Snapshot {
    let mut services: HashMap<Key, ServiceView> = model
        .services
        .iter()
        .map(|(k, s)| {
            (
                k.clone(),
                ServiceView {
                    kind: s.kind.clone(),
                    ports: s.ports.clone(),
                    endpoints: Vec::new(),
                },
            )
        })
        .collect();
    // Slices in a stable order, so answers do not reorder between snapshots.
    let mut slices: Vec<(&Key, &SliceSpec)> = model.slices.iter().collect();
    slices.sort_by(|a, b| a.0.cmp(b.0));
    for (_, slice) in slices {
        let Some(spec) = model.services.get(&slice.service) else {
            continue;
        };
        let Some(view) = services.get_mut(&slice.service) else {
            continue;
        };
        for ep in &slice.endpoints {
            let overridden = ep
                .pod_uid
                .as_ref()
                .and_then(|uid| model.overrides.get(&EndpointKey::Pod(uid.clone())))
                .copied();
            for ip in &ep.addresses {
                let ready = overridden
                    .or_else(|| model.overrides.get(&EndpointKey::Ip(*ip)).copied())
                    .unwrap_or(ep.ready);
                if !(ready || spec.publish_not_ready) {
                    continue;
                }
                view.endpoints.push(Endpoint {
                    ip: *ip,
                    host: endpoint_host(ep.hostname.as_deref(), *ip),
                    ports: slice.ports.clone(),
                });
            }
        }
    }
    let mut reverse: HashMap<IpAddr, Vec<Name>> = HashMap::new();
    let mut keys: Vec<&Key> = services.keys().collect();
    keys.sort();
    let mut cluster_ips: HashSet<IpAddr> = HashSet::new();
    for key in &keys {
        if let Some(ServiceView {
            kind: Kind::ClusterIp(ips),
            ..
        }) = services.get(*key)
            && let Some(name) = service_name(zone, key)
        {
            for ip in ips {
                if cluster_ips.insert(*ip) {
                    reverse.insert(*ip, vec![name.clone()]);
                }
            }
        }
    }
    for key in &keys {
        let Some(view) = services.get(*key) else {
            continue;
        };
        let Some(svc) = service_name(zone, key) else {
            continue;
        };
        for ep in &view.endpoints {
            if cluster_ips.contains(&ep.ip) {
                continue;
            }
            if let Some(name) = name_under(&[ep.host.as_str()], &svc) {
                let names = reverse.entry(ep.ip).or_default();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    let mut namespaces = model.namespaces.clone();
    namespaces.extend(model.services.keys().map(|(ns, _)| ns.clone()));
    let serial = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0);
    Snapshot {
        zone: zone.clone(),
        services,
        namespaces,
        reverse,
        serial,
    }
}
