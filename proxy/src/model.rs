//! What the proxy knows about services and endpoints, independent of where it came from:
//! [`ServiceInfo`] from a Service, [`EndpointInfo`] from EndpointSlice endpoints (kube-proxy's
//! conversion in `pkg/proxy/endpointslicecache.go`: `ready` and `serving` default to true,
//! `terminating` to false).

use std::net::IpAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// Upstream `DefaultClientIPServiceAffinitySeconds` (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10800);

/// A transport protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (the default).
    Tcp,
    /// UDP.
    Udp,
    /// SCTP: accepted in manifests, not proxied.
    Sctp,
}

impl Protocol {
    /// Parses a Kubernetes protocol name (`TCP` when absent).
    pub fn parse(s: Option<&str>) -> Protocol {
        match s {
            Some("UDP") => Protocol::Udp,
            Some("SCTP") => Protocol::Sctp,
            _ => Protocol::Tcp,
        }
    }
}

/// One port of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    /// `name` (matched against the EndpointSlice port names).
    pub name: String,
    /// `port`: where ClusterIP, LoadBalancer and external IP traffic arrives.
    pub port: u16,
    /// `nodePort`, when allocated.
    pub node_port: Option<u16>,
    /// `protocol`.
    pub protocol: Protocol,
}

/// The parts of a Service the proxy acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.type`.
    pub type_: String,
    /// `spec.clusterIPs` (empty for headless services).
    pub cluster_ips: Vec<IpAddr>,
    /// `spec.externalIPs`.
    pub external_ips: Vec<IpAddr>,
    /// `spec.ports`.
    pub ports: Vec<PortInfo>,
    /// ClientIP session affinity and its timeout, when set.
    pub affinity: Option<Duration>,
    /// `internalTrafficPolicy: Local`.
    pub internal_local: bool,
    /// `externalTrafficPolicy: Local`.
    pub external_local: bool,
}

impl ServiceInfo {
    /// Reads a Service; `None` for ExternalName services (nothing to proxy).
    pub fn from_service(svc: &Service) -> Option<ServiceInfo> {
        let spec = svc.spec.as_ref()?;
        let type_ = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        if type_ == "ExternalName" {
            return None;
        }
        let parse_ips = |v: Option<&Vec<String>>| -> Vec<IpAddr> {
            v.into_iter()
                .flatten()
                .filter_map(|s| s.parse().ok())
                .collect()
        };
        let mut cluster_ips = parse_ips(spec.cluster_ips.as_ref());
        if cluster_ips.is_empty()
            && let Some(ip) = spec.cluster_ip.as_deref().and_then(|s| s.parse().ok())
        {
            cluster_ips.push(ip);
        }
        let ports = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some(PortInfo {
                    name: p.name.clone().unwrap_or_default(),
                    port: u16::try_from(p.port).ok()?,
                    node_port: p.node_port.and_then(|n| u16::try_from(n).ok()),
                    protocol: Protocol::parse(p.protocol.as_deref()),
                })
            })
            .collect();
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(DEFAULT_AFFINITY_TIMEOUT, Duration::from_secs)
        });
        Some(ServiceInfo {
            namespace: svc.metadata.namespace.clone().unwrap_or_default(),
            name: svc.metadata.name.clone().unwrap_or_default(),
            type_,
            cluster_ips,
            external_ips: parse_ips(spec.external_ips.as_ref()),
            ports,
            affinity,
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            external_local: spec.external_traffic_policy.as_deref() == Some("Local"),
        })
    }
}

/// `spec.healthCheckNodePort` of a LoadBalancer with `externalTrafficPolicy: Local` (upstream
/// `NeedsHealthCheck`), the port kube-proxy serves its health check on.
pub fn health_check_node_port(svc: &Service) -> Option<u16> {
    let spec = svc.spec.as_ref()?;
    let needs = spec.type_.as_deref() == Some("LoadBalancer")
        && spec.external_traffic_policy.as_deref() == Some("Local");
    needs
        .then_some(spec.health_check_node_port?)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

/// One endpoint of a service, with the ports it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint's address.
    pub ip: IpAddr,
    /// (port name, protocol, port number) of its slice.
    pub ports: Vec<(String, Protocol, u16)>,
    /// `conditions.ready`.
    pub ready: bool,
    /// `conditions.serving`.
    pub serving: bool,
    /// `conditions.terminating`.
    pub terminating: bool,
    /// `nodeName`.
    pub node_name: Option<String>,
    /// `targetRef.uid` when the endpoint is a pod.
    pub pod_uid: Option<String>,
}

impl EndpointInfo {
    /// The endpoints of one slice (kube-proxy's defaults for absent conditions).
    pub fn from_slice(slice: &EndpointSlice) -> Vec<EndpointInfo> {
        let ports: Vec<(String, Protocol, u16)> = slice
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p.name.clone().unwrap_or_default(),
                    Protocol::parse(p.protocol.as_deref()),
                    u16::try_from(p.port?).ok()?,
                ))
            })
            .collect();
        slice
            .endpoints
            .iter()
            .flatten()
            .filter_map(|e| {
                let ip: IpAddr = e.addresses.first()?.parse().ok()?;
                let c = e.conditions.as_ref();
                Some(EndpointInfo {
                    ip,
                    ports: ports.clone(),
                    ready: c.and_then(|c| c.ready).unwrap_or(true),
                    serving: c.and_then(|c| c.serving).unwrap_or(true),
                    terminating: c.and_then(|c| c.terminating).unwrap_or(false),
                    node_name: e.node_name.clone(),
                    pod_uid: e
                        .target_ref
                        .as_ref()
                        .filter(|r| r.kind.as_deref() == Some("Pod"))
                        .and_then(|r| r.uid.clone()),
                })
            })
            .collect()
    }

    /// The endpoint's port for the service port `name`/`protocol`.
    pub fn port(&self, name: &str, protocol: Protocol) -> Option<u16> {
        self.ports
            .iter()
            .find(|(n, p, _)| n == name && *p == protocol)
            .map(|(_, _, port)| *port)
    }
}
