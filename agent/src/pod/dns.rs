//! A pod's resolver configuration as the kubelet forms it (`pkg/kubelet/network/dns/dns.go`
//! `GetPodDNS`): `dnsPolicy` picks the base (the cluster DNS for `ClusterFirst` and
//! `ClusterFirstWithHostNet`, the node's `resolv.conf` for `Default` and for `ClusterFirst` in
//! the host's network, nothing for `None`), `dnsConfig` is appended (duplicates dropped,
//! options merged by name), and the result is cut to the resolver's limits (3 nameservers,
//! 32 search domains of at most 253 characters, 2048 characters in all) with a
//! `DNSConfigForming` warning.
//!
//! A node without a cluster DNS address (a node that runs pods in the host's network, where
//! no DNS server is reachable at the cluster address) gives `ClusterFirst` pods the node's
//! resolver, as the kubelet without `--cluster-dns` does, without its `MissingClusterDNS`
//! event on every pod.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::PodSpec;

use crate::runtime::DnsConfig;

/// The kubelet's `defaultDNSOptions`.
const DEFAULT_OPTIONS: &str = "ndots:5";
/// `validation.MaxDNSNameservers`.
const MAX_NAMESERVERS: usize = 3;
/// `MaxDNSSearchPathsExpanded` (`ExpandedDNSConfig` is GA).
const MAX_SEARCH_PATHS: usize = 32;
/// `MaxDNSSearchListCharsExpanded`.
const MAX_SEARCH_CHARS: usize = 2048;
/// `DNS1123SubdomainMaxLength`: longer search paths crash some resolvers (glibc 2.28).
const MAX_SEARCH_PATH_LEN: usize = 253;
/// The kubelet reads at most this much of `resolv.conf` (`maxResolveConfLength`).
pub const MAX_RESOLV_CONF: usize = 10 << 20;

/// The node's cluster DNS settings (the kubelet's `--cluster-dns` and `--cluster-domain`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterDns {
    /// `--cluster-dns`: the nameservers of `ClusterFirst` pods (empty: none on this node).
    pub servers: Vec<IpAddr>,
    /// `--cluster-domain` (`cluster.local`).
    pub domain: String,
}

/// `nameserver`, `search` and `options` of a `resolv.conf` (the kubelet's `parseResolvConf`:
/// nameservers accumulate, the last `search` and `options` lines win, search domains lose a
/// trailing dot).
pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut out = DnsConfig::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        match fields.next() {
            Some("nameserver") => out.nameservers.extend(fields.next().map(str::to_owned)),
            Some("search") => {
                out.searches = fields
                    .map(|s| s.strip_suffix('.').unwrap_or(s).to_owned())
                    .collect();
            }
            Some("options") => out.options = fields.map(str::to_owned).collect(),
            _ => {}
        }
    }
    out
}

fn omit_duplicates(items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The pod's resolver configuration and the `DNSConfigForming` warnings, from its spec, its
/// namespace, the node's settings and the node's `resolv.conf` text.
pub fn pod_dns(
    spec: &PodSpec,
    namespace: &str,
    cluster: &ClusterDns,
    host_resolv_conf: &str,
) -> (DnsConfig, Vec<String>) {
    let host_network = spec.host_network == Some(true);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "None" => None,
        "ClusterFirstWithHostNet" => Some(true),
        "Default" => Some(false),
        "ClusterFirst" => Some(!host_network),
        // The API server rejects anything else; the kubelet falls back to ClusterFirst.
        _ => Some(true),
    };
    let mut config = match cluster_first {
        None => DnsConfig::default(),
        Some(true) if !cluster.servers.is_empty() => {
            let host = parse_resolv_conf(host_resolv_conf);
            let mut searches = Vec::new();
            if !cluster.domain.is_empty() {
                searches.push(format!("{namespace}.svc.{}", cluster.domain));
                searches.push(format!("svc.{}", cluster.domain));
                searches.push(cluster.domain.clone());
            }
            searches.extend(host.searches);
            DnsConfig {
                nameservers: cluster.servers.iter().map(ToString::to_string).collect(),
                searches: omit_duplicates(searches),
                options: vec![DEFAULT_OPTIONS.to_owned()],
            }
        }
        Some(_) => parse_resolv_conf(host_resolv_conf),
    };
    if let Some(extra) = &spec.dns_config {
        let mut servers = std::mem::take(&mut config.nameservers);
        servers.extend(extra.nameservers.iter().flatten().cloned());
        config.nameservers = omit_duplicates(servers);
        let mut searches = std::mem::take(&mut config.searches);
        searches.extend(extra.searches.iter().flatten().cloned());
        config.searches = omit_duplicates(searches);
        // mergeDNSOptions: by name, the pod's value wins (kept in first-seen order here; the
        // kubelet's map gives a random one).
        let mut options: Vec<(String, Option<String>)> = config
            .options
            .iter()
            .map(|o| match o.split_once(':') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (o.clone(), None),
            })
            .collect();
        for o in extra.options.iter().flatten() {
            let name = o.name.clone().unwrap_or_default();
            let value = o.value.clone().filter(|v| !v.is_empty());
            match options.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => options.push((name, value)),
            }
        }
        config.options = options
            .into_iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{n}:{v}"),
                None => n,
            })
            .collect();
    }
    let warnings = fit_limits(&mut config);
    (config, warnings)
}

/// `formDNSConfigFitsLimits`.
fn fit_limits(config: &mut DnsConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    if config.nameservers.len() > MAX_NAMESERVERS {
        config.nameservers.truncate(MAX_NAMESERVERS);
        warnings.push(format!(
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
            config.nameservers.join(" ")
        ));
    }
    let mut exceeded = false;
    if config.searches.len() > MAX_SEARCH_PATHS {
        config.searches.truncate(MAX_SEARCH_PATHS);
        exceeded = true;
    }
    let before = config.searches.len();
    config.searches.retain(|s| s.len() <= MAX_SEARCH_PATH_LEN);
    exceeded |= config.searches.len() != before;
    let line_len = |s: &[String]| s.join(" ").len();
    if line_len(&config.searches) > MAX_SEARCH_CHARS {
        while line_len(&config.searches) > MAX_SEARCH_CHARS {
            config.searches.pop();
        }
        exceeded = true;
    }
    if exceeded {
        warnings.push(format!(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
            config.searches.join(" ")
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("pod spec")
    }

    fn cluster() -> ClusterDns {
        ClusterDns {
            servers: vec!["10.96.0.10".parse().expect("ip")],
            domain: "cluster.local".into(),
        }
    }

    const HOST: &str = "# host\nnameserver 192.0.2.53\nnameserver 192.0.2.54\nsearch corp.example. lab.example\noptions edns0 ndots:2\n";

    #[test]
    fn cluster_first_is_the_cluster_dns_with_the_namespace_searches_and_the_hosts() {
        let (c, w) = pod_dns(
            &spec(serde_json::json!({"containers": []})),
            "shop",
            &cluster(),
            HOST,
        );
        assert_eq!(c.nameservers, ["10.96.0.10"]);
        assert_eq!(
            c.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example"
            ]
        );
        assert_eq!(c.options, ["ndots:5"]);
        assert!(w.is_empty());
    }

    #[test]
    fn host_network_pods_use_the_node_resolver_unless_cluster_first_with_host_net() {
        let host_net = spec(serde_json::json!({"containers": [], "hostNetwork": true}));
        let (c, _) = pod_dns(&host_net, "shop", &cluster(), HOST);
        assert_eq!(c.nameservers, ["192.0.2.53", "192.0.2.54"]);
        assert_eq!(c.options, ["edns0", "ndots:2"]);
        let with = spec(
            serde_json::json!({"containers": [], "hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}),
        );
        let (c, _) = pod_dns(&with, "shop", &cluster(), HOST);
        assert_eq!(c.nameservers, ["10.96.0.10"]);
        let default = spec(serde_json::json!({"containers": [], "dnsPolicy": "Default"}));
        let (c, _) = pod_dns(&default, "shop", &cluster(), HOST);
        assert_eq!(c.searches, ["corp.example", "lab.example"]);
        // A node without cluster DNS: ClusterFirst falls back to the node's resolver.
        let (c, _) = pod_dns(
            &spec(serde_json::json!({"containers": []})),
            "shop",
            &ClusterDns::default(),
            HOST,
        );
        assert_eq!(c.nameservers, ["192.0.2.53", "192.0.2.54"]);
    }

    #[test]
    fn none_takes_the_dns_config_and_others_merge_it() {
        let none = spec(
            serde_json::json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.1.1.1"], "searches": ["a.example"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}),
        );
        let (c, _) = pod_dns(&none, "shop", &cluster(), HOST);
        assert_eq!(c.nameservers, ["1.1.1.1"]);
        assert_eq!(c.searches, ["a.example"]);
        assert_eq!(c.options, ["ndots:2", "edns0"]);
        let merged = spec(serde_json::json!({"containers": [], "dnsConfig": {
            "nameservers": ["10.96.0.10", "1.1.1.1"], "searches": ["cluster.local", "b.example"],
            "options": [{"name": "ndots", "value": "1"}, {"name": "single-request-reopen"}]}}));
        let (c, _) = pod_dns(&merged, "shop", &cluster(), HOST);
        assert_eq!(c.nameservers, ["10.96.0.10", "1.1.1.1"]);
        assert_eq!(
            c.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example",
                "lab.example",
                "b.example"
            ]
        );
        assert_eq!(c.options, ["ndots:1", "single-request-reopen"]);
    }

    #[test]
    fn limits_cut_with_a_warning() {
        let many = spec(serde_json::json!({"containers": [], "dnsConfig": {
            "nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3"],
            "searches": (0..40).map(|i| format!("d{i}.example")).collect::<Vec<_>>()}}));
        let (c, w) = pod_dns(&many, "shop", &cluster(), "");
        assert_eq!(c.nameservers, ["10.96.0.10", "1.1.1.1", "1.1.1.2"]);
        assert_eq!(c.searches.len(), 32);
        assert_eq!(w.len(), 2);
        assert!(w[0].starts_with("Nameserver limits were exceeded"), "{w:?}");
        assert!(
            w[1].starts_with("Search Line limits were exceeded"),
            "{w:?}"
        );
    }
}
