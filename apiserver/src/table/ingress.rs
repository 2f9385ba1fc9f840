//! `ingresses` and `ingressclasses` (networking.k8s.io/v1): upstream `printIngress` and
//! `printIngressClass`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, items, name, s};

pub(super) const INGRESS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

pub(super) const CLASS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

/// Upstream `printIngress`: the class (`<none>` when unset), the hosts, the load-balancer
/// addresses and the ports (`80, 443` once there is TLS).
pub(super) fn ingress_row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let class = spec["ingressClassName"].as_str().unwrap_or("<none>");
    let ports = if items(&spec["tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj).into(),
        class.into(),
        hosts(items(&spec["rules"])).into(),
        addresses(&obj["status"]["loadBalancer"]).into(),
        ports.into(),
        p.age(obj).into(),
    ]
}

/// Upstream `formatHosts`: the first three rule hosts, `*` when none, and `+ N more...`
/// (N counting rules, not hosts, as upstream does) once a fourth rule follows.
fn hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = s(&rule["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

/// Upstream `ingressLoadBalancerStatusStringer` with `wide` (the API server prints wide
/// tables): each point's IP, else its hostname, sorted and unique, comma-joined.
fn addresses(lb: &Value) -> String {
    let set: BTreeSet<&str> = items(&lb["ingress"])
        .iter()
        .filter_map(|i| {
            let ip = s(&i["ip"]);
            let host = s(&i["hostname"]);
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

/// Upstream `printIngressClass`: the controller and `Kind[.apiGroup]/name` of the
/// parameters (`<none>` without).
pub(super) fn class_row(p: &Rows, obj: &Value) -> Vec<Value> {
    let spec = &obj["spec"];
    let params = &spec["parameters"];
    let parameters = if params.is_object() {
        let mut out = s(&params["kind"]).to_string();
        if let Some(group) = params["apiGroup"].as_str() {
            out.push('.');
            out.push_str(group);
        }
        out.push('/');
        out.push_str(s(&params["name"]));
        out
    } else {
        "<none>".to_string()
    };
    p.named(obj, [s(&spec["controller"]).into(), parameters.into()])
}
