//! The pod network between nodes, as flannel's `host-gw` backend builds it: every node routes
//! each other node's pod CIDR (`spec.podCIDR`, given by the server's node IPAM) via that
//! node's `InternalIP`, which works when the nodes share one L2 segment (the peer is on a
//! directly connected subnet). A peer that is not directly reachable gets no route: this node
//! says so in a log line and in its `NetworkUnavailable` condition. Pod traffic leaving the
//! cluster CIDR is masqueraded (flannel's `--ip-masq` rules, in an nftables table `ip paddock`
//! owned by this node); traffic between pods keeps its pod addresses.
//!
//! Start at [`run`]: it watches the Nodes and re-syncs on every change and every
//! [`PodNetworkConfig::resync`] (someone deleting a route or the table gets it back).
//! [`cleanup`] removes the routes and the table when the node stops.
//!
//! Routes are programmed with iproute2's `ip` (as the pod bridge and veths are, in
//! [`crate::runtime::net`]) and tagged with protocol [`ROUTE_PROTO`], so that the routes of
//! this node are told apart from everything else in the routing table: a node gone from the
//! API (or whose pod CIDR or address changed) has its route removed or replaced.
//!
//! The `NetworkUnavailable` condition is the one upstream's route controller
//! (`pkg/controller/route`) writes: `False`, reason `RouteCreated`, "RouteController created
//! a route" once every peer is routed; `True`, reason `NoRouteCreated`, when a route could
//! not be made — with the message naming the peers and why, where upstream only says
//! "RouteController failed to create a route". Upstream's controller runs once for the cluster
//! and tells about the route *to* each node; here each node routes its own traffic, so the
//! condition tells about the routes *from* this node.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// The routing protocol number this node's pod routes carry (`ip route … proto 77`): not one
/// of iproute2's `rt_protos`, so no routing daemon claims them.
pub const ROUTE_PROTO: &str = "77";

/// The nftables table (family `ip`) holding this node's masquerade rules.
pub const NFT_TABLE: &str = "paddock";

/// The most Nodes kept in the watch cache (upstream's supported cluster size).
const MAX_NODES: usize = 5000;

/// The most peer problems spelled out in the condition's message.
const MAX_PROBLEMS_SHOWN: usize = 5;

/// Upstream's condition type, reasons and messages [pkg/controller/route/route_controller.go].
pub const NETWORK_UNAVAILABLE: &str = "NetworkUnavailable";
/// Reason when the routes are in place.
pub const ROUTE_CREATED: &str = "RouteCreated";
/// Message when the routes are in place.
pub const ROUTE_CREATED_MESSAGE: &str = "RouteController created a route";
/// Reason when a route could not be made.
pub const NO_ROUTE_CREATED: &str = "NoRouteCreated";
/// Message (prefix) when a route could not be made.
pub const NO_ROUTE_CREATED_MESSAGE: &str = "RouteController failed to create a route";

/// Why the pod network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PodNetworkError {
    /// A CIDR that does not parse or does not fit.
    #[error("{0}")]
    Config(String),
    /// A command (`ip`, `nft`) or sysctl failed.
    #[error("{0}")]
    Command(String),
}

/// An IPv4 network `a.b.c.d/n` (`n` 0..=32, host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cidr {
    /// The network address.
    pub network: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n`; host bits must be zero.
    pub fn parse(s: &str) -> Result<Self, PodNetworkError> {
        let bad = || PodNetworkError::Config(format!("invalid IPv4 CIDR {s:?}"));
        let (addr, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let network: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let cidr = Self { network, prefix };
        if u32::from(network) & !cidr.mask() != 0 {
            return Err(PodNetworkError::Config(format!(
                "IPv4 CIDR {s:?} has host bits set"
            )));
        }
        Ok(cidr)
    }

    fn mask(&self) -> u32 {
        u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0)
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Whether `other` lies entirely inside this network.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.network)
    }

    /// Whether the two networks share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// How this node takes part in the pod network.
#[derive(Debug, Clone)]
pub struct PodNetworkConfig {
    /// This node's name (its own Node is not routed to).
    pub node_name: String,
    /// This node's pod CIDR.
    pub pod_cidr: Cidr,
    /// The cluster's pod network (the server's `--cluster-cidr`): traffic from it to
    /// anywhere outside it is masqueraded.
    pub cluster_cidr: Cidr,
    /// How often routes and rules are re-checked without a Node change (flannel: 10 s).
    pub resync: Duration,
}

impl PodNetworkConfig {
    /// With flannel's 10 s re-sync; the pod CIDR must lie inside the cluster CIDR.
    pub fn new(
        node_name: &str,
        pod_cidr: Cidr,
        cluster_cidr: Cidr,
    ) -> Result<Self, PodNetworkError> {
        if !cluster_cidr.covers(&pod_cidr) {
            return Err(PodNetworkError::Config(format!(
                "the node's pod CIDR {pod_cidr} is not inside the cluster CIDR {cluster_cidr} (--cluster-cidr must be the server's)"
            )));
        }
        Ok(Self {
            node_name: node_name.to_string(),
            pod_cidr,
            cluster_cidr,
            resync: Duration::from_secs(10),
        })
    }
}

/// flannel's masquerade rules [pkg/trafficmngr/iptables: `masqRules`] as one nftables script
/// that replaces the table atomically: traffic within the cluster CIDR keeps its addresses,
/// pod traffic to anywhere else (but multicast) is masqueraded, and so is traffic from outside
/// the cluster CIDR (the node itself) to pods.
pub fn masquerade_rules(pod_cidr: Cidr, cluster_cidr: Cidr) -> String {
    format!(
        "table ip {NFT_TABLE} {{}}
delete table ip {NFT_TABLE}
table ip {NFT_TABLE} {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {pod_cidr} ip daddr {cluster_cidr} return
    ip saddr {cluster_cidr} ip daddr {pod_cidr} return
    ip saddr {cluster_cidr} ip daddr != 224.0.0.0/4 masquerade fully-random
    ip saddr != {cluster_cidr} ip daddr {cluster_cidr} masquerade fully-random
  }}
}}
"
    )
}

/// What the API says about one Node, as far as routing goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct NodeFacts {
    /// `spec.podCIDR`.
    pub(crate) pod_cidr: Option<String>,
    /// The first `InternalIP` of `status.addresses`.
    pub(crate) internal_ip: Option<String>,
    /// The `NetworkUnavailable` condition (status, reason, message).
    pub(crate) condition: Option<(String, String, String)>,
}

impl NodeFacts {
    fn of(node: &Node) -> Self {
        let status = node.status.as_ref();
        Self {
            pod_cidr: node
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.clone())
                .filter(|c| !c.is_empty()),
            internal_ip: status
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                .map(|a| a.address.clone()),
            condition: status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == NETWORK_UNAVAILABLE))
                .map(|c| {
                    (
                        c.status.clone(),
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    )
                }),
        }
    }
}

/// A peer this node should route to, before the kernel is asked whether it is reachable.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) name: String,
    pub(crate) pod_cidr: Cidr,
    pub(crate) ip: Ipv4Addr,
}

/// The peers to route to, and what is wrong with the others. A Node without a pod CIDR yet is
/// left out quietly (the server's node IPAM has not got to it).
pub(crate) fn candidates(
    config: &PodNetworkConfig,
    nodes: &BTreeMap<String, NodeFacts>,
) -> (Vec<Candidate>, Vec<String>) {
    let mut routes = Vec::new();
    let mut problems = Vec::new();
    for (name, facts) in nodes {
        if *name == config.node_name {
            continue;
        }
        let Some(cidr) = &facts.pod_cidr else {
            continue;
        };
        let pod_cidr = match Cidr::parse(cidr) {
            Ok(c) => c,
            Err(_) => {
                problems.push(format!(
                    "node {name}'s pod CIDR {cidr:?} is not an IPv4 CIDR"
                ));
                continue;
            }
        };
        if pod_cidr.overlaps(&config.pod_cidr) {
            problems.push(format!(
                "node {name}'s pod CIDR {pod_cidr} overlaps this node's {}: give each node its own (start agents without --pod-cidr to have the server allocate one)",
                config.pod_cidr
            ));
            continue;
        }
        let ip = match facts.internal_ip.as_deref().map(str::parse::<Ipv4Addr>) {
            Some(Ok(ip)) => ip,
            Some(Err(_)) => {
                problems.push(format!(
                    "node {name} has no IPv4 InternalIP ({:?}): no route to its pod CIDR {pod_cidr}",
                    facts.internal_ip.as_deref().unwrap_or_default()
                ));
                continue;
            }
            None => {
                problems.push(format!(
                    "node {name} has no InternalIP: no route to its pod CIDR {pod_cidr}"
                ));
                continue;
            }
        };
        if ip.is_loopback() || ip.is_unspecified() {
            problems.push(format!(
                "node {name}'s InternalIP {ip} is not reachable from another node (start its agent with --node-ip): no route to its pod CIDR {pod_cidr}"
            ));
            continue;
        }
        routes.push(Candidate {
            name: name.clone(),
            pod_cidr,
            ip,
        });
    }
    (routes, problems)
}

/// How the kernel reaches a peer's address (`ip -4 -o route get ADDR`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reach {
    /// On a directly connected subnet, through this device.
    Direct,
    /// Through a gateway: not on one L2 segment with this node.
    Via(String),
    /// An address of this node.
    Local,
}

/// Parses the first line of `ip -4 -o route get ADDR`.
pub(crate) fn parse_route_get(out: &str) -> Reach {
    let words: Vec<&str> = out.split_whitespace().collect();
    if words.first() == Some(&"local") {
        return Reach::Local;
    }
    match words.iter().position(|w| *w == "via") {
        Some(i) => Reach::Via(words.get(i + 1).map_or("?", |w| w).to_string()),
        None => Reach::Direct,
    }
}

/// This node's pod routes (`ip -4 -o route show proto 77`): destination → gateway.
pub(crate) fn parse_routes(out: &str) -> BTreeMap<Cidr, Ipv4Addr> {
    out.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let dst = Cidr::parse(words.first()?).ok()?;
            let i = words.iter().position(|w| *w == "via")?;
            let via: Ipv4Addr = words.get(i + 1)?.parse().ok()?;
            Some((dst, via))
        })
        .collect()
}

/// The `NetworkUnavailable` condition for this node's problems (none: routes created).
pub(crate) fn condition_for(problems: &[String]) -> (String, String, String) {
    if problems.is_empty() {
        return (
            "False".into(),
            ROUTE_CREATED.into(),
            ROUTE_CREATED_MESSAGE.into(),
        );
    }
    let mut message = format!(
        "{NO_ROUTE_CREATED_MESSAGE}: {}",
        problems
            .iter()
            .take(MAX_PROBLEMS_SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if problems.len() > MAX_PROBLEMS_SHOWN {
        message.push_str(&format!(
            "; and {} more",
            problems.len() - MAX_PROBLEMS_SHOWN
        ));
    }
    ("True".into(), NO_ROUTE_CREATED.into(), message)
}

/// Runs `nft -f -` with `script`.
async fn nft(script: String) -> Result<(), PodNetworkError> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            PodNetworkError::Command(format!(
                "cannot run nft (install the nftables package; it masquerades pod traffic leaving the cluster): {e}"
            ))
        })?;
    if let Some(mut w) = child.stdin.take() {
        w.write_all(script.as_bytes())
            .await
            .map_err(|e| PodNetworkError::Command(format!("nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| PodNetworkError::Command(format!("nft: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(PodNetworkError::Command(format!(
            "nft: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

async fn ip(args: &[&str]) -> Result<String, PodNetworkError> {
    crate::runtime::net::ip(args, None, None)
        .await
        .map_err(|e| PodNetworkError::Command(e.to_string()))
}

/// Turns IPv4 forwarding on in this node's network namespace (the node routes its pods'
/// traffic to other nodes, and theirs to its pods).
async fn enable_forwarding() -> Result<(), PodNetworkError> {
    tokio::fs::write("/proc/sys/net/ipv4/ip_forward", b"1")
        .await
        .map_err(|e| PodNetworkError::Command(format!("enable IPv4 forwarding: {e}")))
}

/// One pass: forwarding, the masquerade rules, the routes. Returns what keeps a peer from
/// being routed (empty: all routed).
async fn sync(config: &PodNetworkConfig, nodes: &BTreeMap<String, NodeFacts>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = enable_forwarding().await {
        problems.push(e.to_string());
    }
    if let Err(e) = nft(masquerade_rules(config.pod_cidr, config.cluster_cidr)).await {
        tracing::warn!(error = %e, "cannot set up the masquerade rules for pod traffic leaving the cluster");
    }
    let (candidates, mut unroutable) = candidates(config, nodes);
    problems.append(&mut unroutable);
    let mut want: BTreeMap<Cidr, (Ipv4Addr, String)> = BTreeMap::new();
    for c in candidates {
        let ip = c.ip.to_string();
        match ip_route_get(&ip).await {
            Ok(Reach::Direct) => {
                want.insert(c.pod_cidr, (c.ip, c.name));
            }
            Ok(Reach::Via(gw)) => problems.push(format!(
                "node {}'s InternalIP {ip} is not on a directly connected subnet (this node reaches it via {gw}): no route to its pod CIDR {}; host-gw routing needs every node on one L2 segment",
                c.name, c.pod_cidr
            )),
            Ok(Reach::Local) => problems.push(format!(
                "node {}'s InternalIP {ip} is an address of this node: no route to its pod CIDR {}",
                c.name, c.pod_cidr
            )),
            Err(e) => problems.push(format!(
                "node {}'s InternalIP {ip} is unreachable from this node ({e}): no route to its pod CIDR {}",
                c.name, c.pod_cidr
            )),
        }
    }
    let have = match ip(&["-4", "-o", "route", "show", "proto", ROUTE_PROTO]).await {
        Ok(out) => parse_routes(&out),
        Err(e) => {
            problems.push(format!("cannot list this node's pod routes: {e}"));
            return problems;
        }
    };
    for (dst, (via, name)) in &want {
        if have.get(dst) == Some(via) {
            continue;
        }
        let (dst_s, via_s) = (dst.to_string(), via.to_string());
        match ip(&[
            "-4",
            "route",
            "replace",
            &dst_s,
            "via",
            &via_s,
            "proto",
            ROUTE_PROTO,
        ])
        .await
        {
            Ok(_) => {
                tracing::info!(node = %name, pod_cidr = %dst, via = %via, "route to a node's pods")
            }
            Err(e) => problems.push(format!(
                "cannot route node {name}'s pod CIDR {dst} via {via}: {e}"
            )),
        }
    }
    for (dst, via) in &have {
        if want.contains_key(dst) {
            continue;
        }
        let dst_s = dst.to_string();
        match ip(&["-4", "route", "del", &dst_s, "proto", ROUTE_PROTO]).await {
            Ok(_) => tracing::info!(pod_cidr = %dst, via = %via,
                "removed the route to pods of a node that is gone or changed"),
            Err(e) => {
                tracing::warn!(pod_cidr = %dst, error = %e, "cannot remove a stale pod route")
            }
        }
    }
    problems
}

async fn ip_route_get(addr: &str) -> Result<Reach, PodNetworkError> {
    let out = ip(&["-4", "-o", "route", "get", addr]).await?;
    Ok(parse_route_get(out.lines().next().unwrap_or_default()))
}

/// Posts this node's `NetworkUnavailable` condition (a strategic merge patch of one
/// condition, as upstream's `SetNodeCondition`).
async fn set_condition(
    nodes: &Api<Node>,
    node: &str,
    (status, reason, message): &(String, String, String),
) -> Result<(), kube::Error> {
    let now = Time(Timestamp::now());
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": NETWORK_UNAVAILABLE,
        "status": status,
        "reason": reason,
        "message": message,
        "lastHeartbeatTime": now,
        "lastTransitionTime": now,
    }]}});
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map(|_| ())
}

/// Watches the Nodes and keeps this node's routes, masquerade rules and `NetworkUnavailable`
/// condition in line with them until `stop`.
pub async fn run(client: kube::Client, config: PodNetworkConfig, stop: CancellationToken) {
    let nodes_api: Api<Node> = Api::all(client);
    let mut stream = watcher(nodes_api.clone(), watcher::Config::default()).boxed();
    let mut nodes: BTreeMap<String, NodeFacts> = BTreeMap::new();
    let mut listing: Option<BTreeMap<String, NodeFacts>> = None;
    let mut synced_once = false;
    let mut tick = tokio::time::interval(config.resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_problems: Option<Vec<String>> = None;
    let mut full_warned = false;
    loop {
        let changed = tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => true,
            ev = stream.next() => {
                let mut insert = |map: &mut BTreeMap<String, NodeFacts>, n: &Node| {
                    let Some(name) = n.metadata.name.clone() else { return false };
                    if map.len() >= MAX_NODES && !map.contains_key(&name) {
                        if !full_warned {
                            tracing::warn!(max = MAX_NODES, "too many Nodes: the pod network ignores the rest");
                            full_warned = true;
                        }
                        return false;
                    }
                    let facts = NodeFacts::of(n);
                    map.insert(name, facts.clone()) != Some(facts)
                };
                match ev {
                    Some(Ok(watcher::Event::Init)) => {
                        listing = Some(BTreeMap::new());
                        false
                    }
                    Some(Ok(watcher::Event::InitApply(n))) => {
                        if let Some(l) = listing.as_mut() {
                            insert(l, &n);
                        }
                        false
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(l) = listing.take() {
                            nodes = l;
                        }
                        true
                    }
                    Some(Ok(watcher::Event::Apply(n))) => insert(&mut nodes, &n),
                    Some(Ok(watcher::Event::Delete(n))) => {
                        n.metadata.name.as_ref().is_some_and(|name| nodes.remove(name).is_some())
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watching Nodes for the pod network");
                        // The watcher retries; do not spin.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        false
                    }
                    None => return,
                }
            }
        };
        // Nothing to do before the first complete listing (stale routes would be removed
        // for Nodes not seen yet).
        if !changed || (!synced_once && listing.is_some()) || nodes.is_empty() {
            continue;
        }
        synced_once = true;
        let problems = sync(&config, &nodes).await;
        if last_problems.as_ref() != Some(&problems) {
            if problems.is_empty() {
                let peers = nodes.len().saturating_sub(1);
                tracing::info!(peers, "pod network: every other node's pod CIDR is routed");
            } else {
                for p in &problems {
                    tracing::warn!("pod network: {p}");
                }
            }
            last_problems = Some(problems.clone());
        }
        let want = condition_for(&problems);
        let current = nodes
            .get(&config.node_name)
            .and_then(|n| n.condition.clone());
        // As upstream: an unchanged condition is not written again.
        if current.as_ref() != Some(&want) {
            match set_condition(&nodes_api, &config.node_name, &want).await {
                Ok(()) => {
                    if let Some(n) = nodes.get_mut(&config.node_name) {
                        n.condition = Some(want);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot post the NetworkUnavailable condition")
                }
            }
        }
    }
}

/// Removes this node's pod routes and its masquerade table (the node stops).
pub async fn cleanup() {
    match ip(&["-4", "-o", "route", "show", "proto", ROUTE_PROTO]).await {
        Ok(out) => {
            for dst in parse_routes(&out).keys() {
                let dst = dst.to_string();
                if let Err(e) = ip(&["-4", "route", "del", &dst, "proto", ROUTE_PROTO]).await {
                    tracing::warn!(pod_cidr = %dst, error = %e, "cannot remove a pod route");
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list the pod routes"),
    }
    if let Err(e) = nft(format!(
        "table ip {NFT_TABLE} {{}}\ndelete table ip {NFT_TABLE}\n"
    ))
    .await
    {
        tracing::warn!(error = %e, "cannot remove the masquerade table");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        Cidr::parse(s).expect("cidr")
    }

    fn facts(cidr: Option<&str>, ip: Option<&str>) -> NodeFacts {
        NodeFacts {
            pod_cidr: cidr.map(str::to_string),
            internal_ip: ip.map(str::to_string),
            condition: None,
        }
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let c = cidr("10.244.0.0/16");
        assert!(c.contains("10.244.3.4".parse().expect("ip")));
        assert!(!c.contains("10.245.0.1".parse().expect("ip")));
        assert!(c.covers(&cidr("10.244.1.0/24")));
        assert!(!cidr("10.244.1.0/24").covers(&c));
        assert!(cidr("10.244.1.0/24").overlaps(&c));
        assert!(!cidr("10.244.1.0/24").overlaps(&cidr("10.244.2.0/24")));
        assert!(cidr("0.0.0.0/0").contains("1.2.3.4".parse().expect("ip")));
        for bad in [
            "10.244.0.1/16",
            "10.244.0.0",
            "10.244.0.0/33",
            "x/8",
            "::/0",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_pod_cidr_must_lie_in_the_cluster_cidr() {
        let err = PodNetworkConfig::new("a", cidr("10.1.0.0/24"), cidr("10.244.0.0/16"))
            .expect_err("outside");
        assert!(
            err.to_string()
                .contains("10.1.0.0/24 is not inside the cluster CIDR 10.244.0.0/16"),
            "{err}"
        );
    }

    #[test]
    fn peers_are_routed_and_the_others_are_named_with_why() {
        let config =
            PodNetworkConfig::new("a", cidr("10.244.0.0/24"), cidr("10.244.0.0/16")).expect("ok");
        let mut nodes = BTreeMap::new();
        nodes.insert("a".into(), facts(Some("10.244.0.0/24"), Some("10.0.0.1")));
        nodes.insert("b".into(), facts(Some("10.244.1.0/24"), Some("10.0.0.2")));
        nodes.insert("c".into(), facts(None, Some("10.0.0.3")));
        nodes.insert("d".into(), facts(Some("10.244.0.0/24"), Some("10.0.0.4")));
        nodes.insert("e".into(), facts(Some("10.244.5.0/24"), None));
        nodes.insert("f".into(), facts(Some("10.244.6.0/24"), Some("127.0.0.1")));
        nodes.insert("g".into(), facts(Some("fd00::/64"), Some("10.0.0.7")));
        let (routes, problems) = candidates(&config, &nodes);
        assert_eq!(
            routes,
            vec![Candidate {
                name: "b".into(),
                pod_cidr: cidr("10.244.1.0/24"),
                ip: "10.0.0.2".parse().expect("ip"),
            }]
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("node d's pod CIDR 10.244.0.0/24 overlaps"));
        assert!(problems[1].starts_with("node e has no InternalIP"));
        assert!(problems[2].contains("--node-ip"));
        assert!(problems[3].contains("not an IPv4 CIDR"));
    }

    #[test]
    fn route_get_output_tells_direct_from_gatewayed_and_local() {
        assert_eq!(
            parse_route_get("10.99.0.3 dev lab0 src 10.99.0.2 uid 0 \\    cache "),
            Reach::Direct
        );
        assert_eq!(
            parse_route_get("8.8.8.8 via 192.168.1.1 dev eth0 src 192.168.1.5 uid 0"),
            Reach::Via("192.168.1.1".into())
        );
        assert_eq!(
            parse_route_get("local 10.99.0.2 dev lo table local src 10.99.0.2 uid 0"),
            Reach::Local
        );
    }

    #[test]
    fn own_routes_parse_from_ip_route_show() {
        let routes = parse_routes(
            "10.244.1.0/24 via 10.99.0.3 dev lab0 \n10.244.2.0/24 via 10.99.0.4 dev lab0 onlink \ngarbage\n",
        );
        assert_eq!(routes.len(), 2);
        assert_eq!(
            routes[&cidr("10.244.1.0/24")],
            "10.99.0.3".parse::<Ipv4Addr>().expect("ip")
        );
    }

    #[test]
    fn the_condition_says_route_created_or_names_the_problems() {
        assert_eq!(
            condition_for(&[]),
            (
                "False".to_string(),
                "RouteCreated".to_string(),
                "RouteController created a route".to_string()
            )
        );
        let many: Vec<String> = (0..7).map(|i| format!("p{i}")).collect();
        let (status, reason, message) = condition_for(&many);
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "NoRouteCreated")
        );
        assert_eq!(
            message,
            "RouteController failed to create a route: p0; p1; p2; p3; p4; and 2 more"
        );
    }

    #[test]
    fn the_masquerade_rules_keep_pod_to_pod_addresses() {
        let rules = masquerade_rules(cidr("10.244.1.0/24"), cidr("10.244.0.0/16"));
        let lines: Vec<&str> = rules.lines().map(str::trim).collect();
        let ret = lines
            .iter()
            .position(|l| *l == "ip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return")
            .expect("pod-to-pod return");
        let masq = lines
            .iter()
            .position(|l| {
                *l == "ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random"
            })
            .expect("outbound masquerade");
        assert!(ret < masq);
        // The table is replaced in one transaction: created if missing, then deleted.
        assert!(rules.starts_with("table ip paddock {}\ndelete table ip paddock\n"));
    }
}
