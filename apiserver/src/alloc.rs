//! Service address allocation, done by the API server at create time as upstream's service
//! REST does (`registry/core/service/storage` + `ipallocator`/`portallocator`): a ClusterIP
//! from the service CIDR (10.96.0.0/16) and NodePorts from 30000-32767, random among free
//! ones, honouring and checking requested values. On update, allocated values the request
//! left out are carried over (upstream `patchAllocatedValues`). What is in use is read from
//! the stored services; the caller serializes allocations.

use std::collections::HashSet;
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

fn in_cidr(ip: Ipv4Addr) -> bool {
    (u32::from(ip) >> (32 - CIDR_PREFIX)) == (CIDR_BASE >> (32 - CIDR_PREFIX))
}

/// ClusterIPs and NodePorts held by stored services other than `except` (namespace, name).
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
        for p in svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = p.get("nodePort").and_then(Value::as_i64) {
                ports.insert(n);
            }
        }
    }
    (ips, ports)
}

fn invalid(info: &ResourceInfo, name: &str, field: &str, value: Value, detail: String) -> ApiError {
    ApiError::invalid(info, name, vec![FieldError::invalid(field, value, detail)])
}

/// Allocates (or checks) the ClusterIP and NodePorts of a service being created.
pub fn allocate(store: &Store, info: &ResourceInfo, svc: &mut Value) -> Result<(), ApiError> {
    let name = meta_str(svc, "name").to_string();
    let ns = meta_str(svc, "namespace").to_string();
    let ty = svc
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    if ty == "ExternalName" {
        return Ok(());
    }
    let (ips, ports) = in_use(store, (&ns, &name));
    let requested = svc
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            svc.pointer("/spec/clusterIPs/0")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .map(str::to_string);
    let ip = match requested {
        Some(ip) if ip == "None" => ip,
        Some(ip) => {
            let parsed: Ipv4Addr = ip.parse().map_err(|_| {
                invalid(
                    info,
                    &name,
                    "spec.clusterIPs[0]",
                    json!(ip),
                    "must be a valid IP address".into(),
                )
            })?;
            if !in_cidr(parsed) {
                // Upstream's allocator names the whole list (`storage/alloc.go`).
                return Err(invalid(
                    info,
                    &name,
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
                    &name,
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

    let wants_node_ports = ty == "NodePort"
        || (ty == "LoadBalancer"
            && svc
                .pointer("/spec/allocateLoadBalancerNodePorts")
                .and_then(Value::as_bool)
                .unwrap_or(true));
    if !wants_node_ports {
        return Ok(());
    }
    let mut taken = ports;
    let mut rng = rand::rng();
    let n = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    for i in 0..n {
        let field = format!("spec.ports[{i}].nodePort");
        let port = match svc["spec"]["ports"][i]
            .get("nodePort")
            .and_then(Value::as_i64)
        {
            Some(p) if p != 0 => {
                if !NODE_PORTS.contains(&p) {
                    return Err(invalid(
                        info,
                        &name,
                        &field,
                        json!(p),
                        "provided port is not in the valid range. The range of valid ports is 30000-32767".into(),
                    ));
                }
                if taken.contains(&p) {
                    return Err(invalid(
                        info,
                        &name,
                        &field,
                        json!(p),
                        "provided port is already allocated".into(),
                    ));
                }
                p
            }
            _ => (0..10_000)
                .map(|_| rng.random_range(NODE_PORTS))
                .find(|p| !taken.contains(p))
                .ok_or_else(|| {
                    ApiError::internal("failed to allocate a nodePort: range is full")
                })?,
        };
        taken.insert(port);
        svc["spec"]["ports"][i]["nodePort"] = json!(port);
    }
    Ok(())
}

/// On update, carries over allocated values the request left unset (upstream
/// `patchAllocatedValues`): ClusterIP(s) and, per port number, NodePorts.
pub fn keep_allocated(old: &Value, new: &mut Value) {
    let ty = new
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_string();
    let old_ty = old
        .pointer("/spec/type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    if ty == "ExternalName" || old_ty == "ExternalName" {
        return;
    }
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
    if !matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
        return;
    }
    let old_ports: Vec<Value> = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports {
            if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o.get("port") == p.get("port")
                    && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                        == p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
            });
            if let Some(np) = same.and_then(|o| o.get("nodePort")).cloned() {
                p["nodePort"] = np;
            }
        }
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
}
