//! Service address allocation, done by the API server before validation as upstream's
//! service REST does (`registry/core/service/storage/alloc.go` + `ipallocator`/
//! `portallocator`): a ClusterIP from the service CIDR (10.96.0.0/16), NodePorts and the
//! `healthCheckNodePort` of a LoadBalancer with `externalTrafficPolicy: Local` from
//! 30000-32767 (one pool), random among free ones, honouring and checking requested values.
//! On update, allocated values the request left out are carried over ([`keep_allocated`],
//! upstream `patchAllocatedValues`), and only what the update newly needs is allocated
//! (`allocateUpdate`); values a type change no longer needs are wiped by the strategy
//! (`dropTypeDependentFields`, in [`crate::strategy`]). What is in use is read from the
//! stored services, so a deleted service or a dropped value is free again once stored (the
//! release); the caller serializes allocations.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use api::registry::ResourceInfo;
use api::status::{ApiError, FieldError};
use rand::Rng;
use serde_json::{Value, json};
use store::{ListOptions, Store};

use crate::meta::meta_str;

/// The service CIDR.
const CIDR_BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
/// Its prefix length.
const CIDR_PREFIX: u32 = 16;
/// The NodePort range.
const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;
/// Upstream `portallocator.ErrAllocated`.
const PORT_ALLOCATED: &str = "provided port is already allocated";

fn in_cidr(ip: Ipv4Addr) -> bool {
    (u32::from(ip) >> (32 - CIDR_PREFIX)) == (CIDR_BASE >> (32 - CIDR_PREFIX))
}

/// Upstream `portallocator.ErrNotInRange`.
fn port_not_in_range() -> String {
    format!(
        "provided port is not in the valid range. The range of valid ports is {}-{}",
        NODE_PORTS.start(),
        NODE_PORTS.end()
    )
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `spec.type`, `ClusterIP` when absent.
pub(crate) fn service_type(svc: &Value) -> &str {
    match str_at(svc, "/spec/type") {
        "" => "ClusterIP",
        t => t,
    }
}

/// Upstream `needsNodePort`.
pub(crate) fn needs_node_port(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// Upstream `NeedsHealthCheck` / `needsHCNodePort`: a LoadBalancer with
/// `externalTrafficPolicy: Local`.
pub fn needs_health_check_port(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer" && str_at(svc, "/spec/externalTrafficPolicy") == "Local"
}

fn health_check_port(svc: &Value) -> i64 {
    svc.pointer("/spec/healthCheckNodePort")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

/// The non-zero `nodePort`s of a service (upstream `collectServiceNodePorts`).
pub(crate) fn node_ports(svc: &Value) -> Vec<i64> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .filter(|n| *n != 0)
        .collect()
}

/// ClusterIPs and node ports (NodePorts and health check ports share one pool) held by
/// stored services other than `except` (namespace, name).
fn in_use(store: &Store, except: (&str, &str)) -> (HashSet<String>, HashSet<i64>) {
    let mut ips = HashSet::new();
    let mut ports = HashSet::new();
    let items = store
        .list("services", None, &ListOptions::default())
        .map(|l| l.items)
        .unwrap_or_default();
    for svc in items {
        if (meta_str(&svc, "namespace"), meta_str(&svc, "name")) == except {
            continue;
        }
        for ip in svc
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            ips.insert(ip.to_string());
        }
        ports.extend(node_ports(&svc));
        if health_check_port(&svc) != 0 {
            ports.insert(health_check_port(&svc));
        }
    }
    (ips, ports)
}

fn invalid(info: &ResourceInfo, name: &str, field: &str, value: Value, detail: String) -> ApiError {
    ApiError::invalid(info, name, vec![FieldError::invalid(field, value, detail)])
}

/// A free port of the range (upstream `AllocateNext`), `None` when the range is full.
fn next_free_port(taken: &HashSet<i64>) -> Option<i64> {
    let mut rng = rand::rng();
    (0..10_000)
        .map(|_| rng.random_range(NODE_PORTS))
        .find(|p| !taken.contains(p))
        .or_else(|| NODE_PORTS.clone().find(|p| !taken.contains(p)))
}

/// Upstream `Allocate` of a requested port: the error text of `portallocator`.
fn check_requested_port(port: i64, taken: &HashSet<i64>) -> Result<(), String> {
    if !NODE_PORTS.contains(&port) {
        Err(port_not_in_range())
    } else if taken.contains(&port) {
        Err(PORT_ALLOCATED.to_string())
    } else {
        Ok(())
    }
}

/// Allocates (or checks) what a service needs before it is validated and stored: on create
/// (`old` = `None`) its ClusterIP, NodePorts and health check port; on update only what the
/// change newly needs (a ClusterIP when leaving ExternalName, NodePorts not held before, a
/// health check port when it starts to need one), as upstream's `allocateUpdate`.
pub fn allocate(
    store: &Store,
    info: &ResourceInfo,
    svc: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    normalize_cluster_ips(svc, old);
    let name = meta_str(svc, "name").to_string();
    let ns = meta_str(svc, "namespace").to_string();
    if service_type(svc) == "ExternalName" {
        return Ok(());
    }
    init_ip_family_fields(info, &name, svc, old)?;
    let (ips, others) = in_use(store, (&ns, &name));
    if old.is_none_or(|o| service_type(o) == "ExternalName") {
        allocate_cluster_ip(info, &name, svc, &ips)?;
    }
    // Ports the old object holds stay held until the update is stored (upstream releases
    // them deferred, at commit).
    let old_ports: Vec<i64> = old.map(node_ports).unwrap_or_default();
    let old_hc = old
        .filter(|o| needs_health_check_port(o))
        .map_or(0, health_check_port);
    let mut taken = others;
    if old_hc != 0 {
        taken.insert(old_hc);
    }
    if needs_node_port(svc) {
        allocate_node_ports(
            info,
            &name,
            svc,
            &mut taken,
            old.map(|_| old_ports.as_slice()),
        )?;
    }
    let newly_needs_hc = needs_health_check_port(svc) && !old.is_some_and(needs_health_check_port);
    if newly_needs_hc {
        taken.extend(&old_ports);
        let requested = health_check_port(svc);
        let port = if requested != 0 {
            check_requested_port(requested, &taken).map_err(|e| {
                ApiError::internal(format!(
                    "failed to allocate requested HealthCheck NodePort {requested}: {e}"
                ))
            })?;
            requested
        } else {
            next_free_port(&taken).ok_or_else(|| {
                ApiError::internal(
                    "failed to allocate a HealthCheck NodePort 0: range is full".to_string(),
                )
            })?
        };
        svc["spec"]["healthCheckNodePort"] = json!(port);
    }
    Ok(())
}

fn cluster_ips_of(svc: &Value) -> Vec<Value> {
    svc.pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Upstream `normalizeClusterIPs`: keeps `clusterIPs` in step with `clusterIP` for clients
/// that only know the singular field (create: fill the plural; update: keep, clear or
/// replace the plural when only the singular was left out, cleared or changed).
pub fn normalize_cluster_ips(svc: &mut Value, old: Option<&Value>) {
    let ip = str_at(svc, "/spec/clusterIP").to_string();
    let ips = cluster_ips_of(svc);
    let set_ips = |svc: &mut Value, ips: Option<Vec<Value>>| match ips {
        Some(ips) => svc["spec"]["clusterIPs"] = Value::Array(ips),
        None => {
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("clusterIPs");
            }
        }
    };
    let Some(old) = old else {
        if !ip.is_empty() && ips.is_empty() {
            set_ips(svc, Some(vec![json!(ip)]));
        }
        return;
    };
    let old_ip = str_at(old, "/spec/clusterIP");
    let old_ips = cluster_ips_of(old);
    let mut ips = ips;
    if !old_ips.is_empty() && ips.is_empty() && old_ip == ip {
        ips = old_ips.clone();
        set_ips(svc, Some(ips.clone()));
    }
    if old_ip != ip && ips == old_ips {
        if !old_ip.is_empty() && ip.is_empty() {
            set_ips(svc, None);
        } else {
            set_ips(svc, Some(vec![json!(ip)]));
        }
    }
}

fn strings_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// Upstream `initIPFamilyFields` on this single-stack IPv4 cluster: `ipFamilyPolicy`
/// defaults to the old object's, else RequireDualStack for a headless service without a
/// selector, else SingleStack; the clusterIP fields are pre-validated; families follow the
/// requested addresses; and what needs IPv6 or two families is refused as "not configured
/// on this cluster" (a headless selectorless service alone may list both families).
fn init_ip_family_fields(
    info: &ResourceInfo,
    name: &str,
    svc: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let policy_of = |v: &Value| str_at(v, "/spec/ipFamilyPolicy").to_string();
    let ips = strings_at(svc, "/spec/clusterIPs");
    let families = strings_at(svc, "/spec/ipFamilies");
    let has_policy = svc
        .pointer("/spec/ipFamilyPolicy")
        .is_some_and(|p| !p.is_null());
    // isMatchingPreferDualStackClusterIPFields: nothing to do.
    if let Some(o) = old
        && has_policy
        && service_type(o) == service_type(svc)
        && policy_of(svc) == "PreferDualStack"
        && policy_of(o) == "PreferDualStack"
        && strings_at(o, "/spec/clusterIPs") == ips
        && strings_at(o, "/spec/ipFamilies") == families
    {
        return Ok(());
    }
    let headless_selectorless = str_at(svc, "/spec/clusterIP") == "None"
        && svc
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .is_none_or(serde_json::Map::is_empty);
    if !has_policy {
        let policy = match old.map(policy_of).filter(|p| !p.is_empty()) {
            Some(p) => p,
            None if headless_selectorless => "RequireDualStack".to_string(),
            None => "SingleStack".to_string(),
        };
        svc["spec"]["ipFamilyPolicy"] = json!(policy);
    }
    let errs = api::validation::service::validate_cluster_ips_related_fields(svc)?;
    if !errs.is_empty() {
        return Err(ApiError::invalid(info, name, errs));
    }
    let policy = policy_of(svc);
    let policy_path = "spec.ipFamilyPolicy";
    let mut errs = Vec::new();
    let mut ips = ips;
    let mut families = families;
    if let Some(o) = old {
        let (old_ips, old_families) = (
            strings_at(o, "/spec/clusterIPs"),
            strings_at(o, "/spec/ipFamilies"),
        );
        if policy == "SingleStack" {
            // Single-stack with unchanged fields is clear intent: keep the primary.
            if old_ips == ips && ips.len() > 1 {
                ips.truncate(1);
                svc["spec"]["clusterIPs"] = json!(ips);
            }
            if old_families == families && families.len() > 1 {
                families.truncate(1);
                svc["spec"]["ipFamilies"] = json!(families);
            }
        } else {
            if !ips.is_empty() && ips.len() < old_ips.len() {
                errs.push(FieldError::invalid(
                    policy_path,
                    json!(policy),
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            if !families.is_empty() && families.len() < old_families.len() {
                errs.push(FieldError::invalid(
                    policy_path,
                    json!(policy),
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }
    if policy == "SingleStack" {
        if ips.len() == 2 {
            errs.push(FieldError::invalid(
                policy_path,
                json!(policy),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if families.len() == 2 {
            errs.push(FieldError::invalid(
                policy_path,
                json!(policy),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    // Families follow the requested addresses; only IPv4 is configured here.
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            if ip.parse::<Ipv4Addr>().is_ok() {
                families.push("IPv4".to_string());
            } else {
                errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    json!(ips),
                    "IPv6 is not configured on this cluster",
                ));
            }
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(info, name, errs));
    }
    if headless_selectorless {
        if families.is_empty() {
            families.push("IPv4".to_string());
        }
        if families.len() < 2 && policy != "SingleStack" {
            let other = if families[0] == "IPv4" {
                "IPv6"
            } else {
                "IPv4"
            };
            families.push(other.to_string());
        }
        svc["spec"]["ipFamilies"] = json!(families);
        return Ok(());
    }
    if policy == "RequireDualStack" {
        errs.push(FieldError::invalid(
            policy_path,
            json!(policy),
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in families.iter().enumerate() {
        if family != "IPv4" {
            errs.push(FieldError::invalid(
                format!("spec.ipFamilies[{i}]"),
                json!(family),
                "not configured on this cluster",
            ));
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid(info, name, errs));
    }
    if families.is_empty() {
        families.push("IPv4".to_string());
    }
    svc["spec"]["ipFamilies"] = json!(families);
    Ok(())
}

/// Upstream `allocClusterIP` (single-stack IPv4): the requested address, checked, or a
/// random free one.
fn allocate_cluster_ip(
    info: &ResourceInfo,
    name: &str,
    svc: &mut Value,
    ips: &HashSet<String>,
) -> Result<(), ApiError> {
    let requested = [
        str_at(svc, "/spec/clusterIP"),
        str_at(svc, "/spec/clusterIPs/0"),
    ]
    .into_iter()
    .find(|s| !s.is_empty())
    .map(str::to_string);
    let ip = match requested {
        Some(ip) if ip == "None" => ip,
        Some(ip) => {
            let parsed: Ipv4Addr = ip.parse().map_err(|_| {
                invalid(
                    info,
                    name,
                    "spec.clusterIPs[0]",
                    json!(ip),
                    "must be a valid IP address".into(),
                )
            })?;
            if !in_cidr(parsed) {
                // Upstream's allocator names the whole list (`storage/alloc.go`).
                return Err(invalid(
                    info,
                    name,
                    "spec.clusterIPs",
                    json!([ip]),
                    format!(
                        "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
                    ),
                ));
            }
            if ips.contains(&ip) {
                return Err(invalid(
                    info,
                    name,
                    "spec.clusterIPs",
                    json!([ip]),
                    format!("failed to allocate IP {ip}: provided IP is already allocated"),
                ));
            }
            ip
        }
        None => {
            let mut rng = rand::rng();
            let size = 1u32 << (32 - CIDR_PREFIX);
            // Skip the network address, .1 (the `kubernetes` service upstream) and broadcast.
            (0..size * 2)
                .map(|_| Ipv4Addr::from(CIDR_BASE + rng.random_range(2..size - 1)).to_string())
                .find(|ip| !ips.contains(ip))
                .ok_or_else(|| {
                    ApiError::internal("failed to allocate a serviceIP: range is full")
                })?
        }
    };
    svc["spec"]["clusterIP"] = json!(ip);
    svc["spec"]["clusterIPs"] = json!([ip]);
    Ok(())
}

/// Upstream `initNodePorts` (create, `old_ports` = `None`) and `updateNodePorts`: requested
/// ports are checked (on update, a port the service already held or this update already
/// took needs no check), missing ones allocated unless a LoadBalancer says
/// `allocateLoadBalancerNodePorts: false`; on create, entries with the same port number
/// share one NodePort (a requested one if any entry names it).
fn allocate_node_ports(
    info: &ResourceInfo,
    name: &str,
    svc: &mut Value,
    taken: &mut HashSet<i64>,
    old_ports: Option<&[i64]>,
) -> Result<(), ApiError> {
    let should_allocate = service_type(svc) == "NodePort"
        || svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true);
    let entries: Vec<(i64, i64)> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let get = |k: &str| p.get(k).and_then(Value::as_i64).unwrap_or(0);
            (get("port"), get("nodePort"))
        })
        .collect();
    let mut by_port: HashMap<i64, i64> = HashMap::new();
    let mut this_update: HashSet<i64> = HashSet::new();
    for (i, &(port_num, requested)) in entries.iter().enumerate() {
        if requested == 0 && !should_allocate {
            continue;
        }
        let claim = |taken: &mut HashSet<i64>, port: i64| {
            check_requested_port(port, taken).map_err(|e| {
                invalid(
                    info,
                    name,
                    &format!("spec.ports[{i}].nodePort"),
                    json!(port),
                    e,
                )
            })
        };
        let port = match old_ports {
            None => match by_port.get(&port_num).copied() {
                Some(np) if requested == 0 || requested == np => np,
                Some(_) => {
                    claim(taken, requested)?;
                    requested
                }
                None => {
                    // upstream `findRequestedNodePort`: any entry of this port number.
                    let wanted = entries
                        .iter()
                        .find(|(p, np)| *p == port_num && *np != 0)
                        .map_or(0, |(_, np)| *np);
                    if wanted != 0 {
                        claim(taken, wanted)?;
                        wanted
                    } else {
                        next_free_port(taken).ok_or_else(|| {
                            ApiError::internal("failed to allocate a nodePort: range is full")
                        })?
                    }
                }
            },
            Some(old) => {
                if requested == 0 {
                    next_free_port(taken).ok_or_else(|| {
                        ApiError::internal("failed to allocate a nodePort: range is full")
                    })?
                } else {
                    if !old.contains(&requested) && !this_update.contains(&requested) {
                        claim(taken, requested)?;
                    }
                    requested
                }
            }
        };
        taken.insert(port);
        this_update.insert(port);
        by_port.entry(port_num).or_insert(port);
        svc["spec"]["ports"][i]["nodePort"] = json!(port);
    }
    Ok(())
}

/// On update, carries over allocated values the request left unset (upstream
/// `patchAllocatedValues`): ClusterIP(s) when neither side is ExternalName; NodePorts by
/// port name when both sides need them and the value is not used by another port of the
/// request; the health check port when both sides need one.
pub fn keep_allocated(old: &Value, new: &mut Value) {
    let external_name = |v: &Value| service_type(v) == "ExternalName";
    if !external_name(old) && !external_name(new) {
        let unset = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if unset(new.pointer("/spec/clusterIP"))
            && let Some(ip) = old.pointer("/spec/clusterIP").cloned()
        {
            new["spec"]["clusterIP"] = ip;
        }
        if new
            .pointer("/spec/clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
            && let Some(ips) = old.pointer("/spec/clusterIPs").cloned()
        {
            new["spec"]["clusterIPs"] = ips;
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let new_ports: HashSet<i64> = node_ports(new).into_iter().collect();
        let used: HashSet<i64> = node_ports(old)
            .into_iter()
            .filter(|p| new_ports.contains(p))
            .collect();
        let by_name: HashMap<&str, i64> = old
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    p.get("name").and_then(Value::as_str).unwrap_or(""),
                    p.get("nodePort").and_then(Value::as_i64).unwrap_or(0),
                )
            })
            .collect();
        if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                    continue;
                }
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                if let Some(np) = by_name.get(name).copied()
                    && np != 0
                    && !used.contains(&np)
                {
                    p["nodePort"] = json!(np);
                }
            }
        }
    }
    if needs_health_check_port(old) && needs_health_check_port(new) && health_check_port(new) == 0 {
        new["spec"]["healthCheckNodePort"] = json!(health_check_port(old));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership() {
        assert!(in_cidr(Ipv4Addr::new(10, 96, 3, 4)));
        assert!(!in_cidr(Ipv4Addr::new(10, 97, 0, 1)));
    }

    #[test]
    fn keeps_allocated_values_on_update() {
        let old = json!({"spec": {"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}});
        let mut new =
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}});
        keep_allocated(&old, &mut new);
        assert_eq!(new["spec"]["clusterIP"], "10.96.0.9");
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.9"]));
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }

    #[test]
    fn keeps_node_ports_by_name_and_the_health_check_port() {
        let old = json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "healthCheckNodePort": 31000, "ports": [
                {"name": "http", "port": 80, "nodePort": 30080},
                {"name": "https", "port": 443, "nodePort": 30443}]}});
        // The port number changed but the name did not: the NodePort follows the name. A
        // value another port of the request already uses is not patched in twice.
        let mut new = json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "ports": [
                {"name": "http", "port": 8080},
                {"name": "https", "port": 443},
                {"name": "extra", "port": 9000, "nodePort": 30443}]}});
        keep_allocated(&old, &mut new);
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
        assert!(new["spec"]["ports"][1].get("nodePort").is_none());
        assert_eq!(new["spec"]["healthCheckNodePort"], 31000);
        // Not carried over when the new object no longer needs it.
        let mut cluster = json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Cluster",
            "ports": [{"name": "http", "port": 80}]}});
        keep_allocated(&old, &mut cluster);
        assert!(cluster["spec"].get("healthCheckNodePort").is_none());
    }

    #[test]
    fn entries_of_one_port_share_a_node_port_on_create() {
        let store = Store::memory();
        let info = api::registry::by_kind("v1", "Service").unwrap();
        let mut svc = json!({"metadata": {"name": "s", "namespace": "d"},
            "spec": {"type": "NodePort", "ports": [
                {"name": "tcp", "port": 53, "protocol": "TCP"},
                {"name": "udp", "port": 53, "protocol": "UDP", "nodePort": 30053},
                {"name": "other", "port": 54}]}});
        allocate(&store, info, &mut svc, None).unwrap();
        let ports = &svc["spec"]["ports"];
        assert_eq!(ports[0]["nodePort"], 30053);
        assert_eq!(ports[1]["nodePort"], 30053);
        assert_ne!(ports[2]["nodePort"], 30053);
        assert!(svc["spec"].get("healthCheckNodePort").is_none());
    }

    #[test]
    fn cluster_ips_follow_the_singular_field() {
        let svc = |ip: Option<&str>, ips: Option<Value>| {
            let mut v = json!({"spec": {"type": "ClusterIP"}});
            if let Some(ip) = ip {
                v["spec"]["clusterIP"] = json!(ip);
            }
            if let Some(ips) = ips {
                v["spec"]["clusterIPs"] = ips;
            }
            v
        };
        let mut created = svc(Some("10.96.0.5"), None);
        normalize_cluster_ips(&mut created, None);
        assert_eq!(created["spec"]["clusterIPs"], json!(["10.96.0.5"]));
        let old = svc(Some("10.96.0.5"), Some(json!(["10.96.0.5"])));
        // Changed singular, plural as before (or carried over): the plural follows, so
        // validation reports the change on clusterIPs[0].
        let mut changed = svc(Some("10.96.0.6"), Some(json!(["10.96.0.5"])));
        normalize_cluster_ips(&mut changed, Some(&old));
        assert_eq!(changed["spec"]["clusterIPs"], json!(["10.96.0.6"]));
        // Cleared singular, plural as before: both cleared.
        let mut cleared = svc(Some(""), Some(json!(["10.96.0.5"])));
        normalize_cluster_ips(&mut cleared, Some(&old));
        assert!(cleared["spec"].get("clusterIPs").is_none());
        // Plural left out by an old client, singular unchanged: kept.
        let mut kept = svc(Some("10.96.0.5"), None);
        normalize_cluster_ips(&mut kept, Some(&old));
        assert_eq!(kept["spec"]["clusterIPs"], json!(["10.96.0.5"]));
    }
}
