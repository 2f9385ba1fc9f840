//! Service validation (`ValidateService`, `validateServicePort`, `ValidateServiceUpdate` in
//! `pkg/apis/core/validation/validation.go`, plus the NodePort range check of the allocator).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::pod::{validate_port_num_or_name, validate_protocol};
use super::{
    Errors, child, index, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_ip,
    is_valid_port_num, typed, validate_labels,
};
use crate::status::{ApiError, FieldError};

/// Supported service types, sorted as upstream's `sets.List`.
const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
/// The default NodePort range (`--service-node-port-range`).
pub const NODE_PORT_RANGE: (i32, i32) = (30000, 32767);

/// Validates a Service's spec.
pub fn validate_service(obj: &Value) -> Result<Errors, ApiError> {
    let svc: Service = typed(obj)?;
    Ok(validate_service_spec(&svc.spec.unwrap_or_default(), "spec"))
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ip.as_deref() == Some("None")
}

/// Upstream `ValidateService` (spec part), in upstream's order, followed by the NodePort
/// range check the allocator makes when everything else is valid.
pub fn validate_service_spec(spec: &ServiceSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    let ty = spec.type_.as_deref().unwrap_or("");
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let ports_path = child(path, "ports");
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(FieldError::required(ports_path.clone(), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" if is_headless(spec) => {
            errs.push(FieldError::invalid(
                child(path, "clusterIPs[0]"),
                "None",
                format!("may not be set to 'None' for {ty} services"),
            ));
        }
        "ExternalName" => {
            let has_ips = spec.cluster_ip.as_deref().is_some_and(|c| !c.is_empty())
                || spec.cluster_ips.as_ref().is_some_and(|c| !c.is_empty());
            if has_ips {
                errs.push(FieldError::forbidden(
                    child(path, "clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    child(path, "ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    child(path, "ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = spec.external_name.as_deref().unwrap_or("");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required(child(path, "externalName"), ""));
            } else {
                for msg in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(child(path, "externalName"), cname, msg));
                }
            }
        }
        _ => {}
    }
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index(&ports_path, i);
        let name = p.name.as_deref().unwrap_or("");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(child(&ppath, "name"), ""));
        } else if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&ppath, "name"), name, msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&ppath, "name"), name));
            }
        }
        for msg in is_valid_port_num(i64::from(p.port)) {
            errs.push(FieldError::invalid(child(&ppath, "port"), p.port, msg));
        }
        errs.extend(validate_protocol(
            p.protocol.as_deref(),
            &child(&ppath, "protocol"),
        ));
        let target = p.target_port.clone().unwrap_or(IntOrString::Int(0));
        errs.extend(validate_port_num_or_name(
            &target,
            &child(&ppath, "targetPort"),
        ));
        if let Some(ap) = p.app_protocol.as_deref() {
            for msg in is_qualified_name(ap) {
                errs.push(FieldError::invalid(child(&ppath, "appProtocol"), ap, msg));
            }
        }
    }
    errs.extend(validate_labels(
        spec.selector.as_ref(),
        &child(path, "selector"),
    ));
    let affinity_path = child(path, "sessionAffinity");
    let config_path = child(path, "sessionAffinityConfig");
    match spec.session_affinity.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(affinity_path, "")),
        "ClientIP" => {
            let when = "when session affinity type is ClientIP";
            match spec.session_affinity_config.as_ref() {
                None => errs.push(FieldError::required(config_path, when)),
                Some(c) => match c.client_ip.as_ref() {
                    None => errs.push(FieldError::required(child(&config_path, "clientIP"), when)),
                    Some(ip) => match ip.timeout_seconds {
                        None => errs.push(FieldError::required(
                            child(&config_path, "clientIP.timeoutSeconds"),
                            when,
                        )),
                        Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                            child(&config_path, "clientIP.timeoutSeconds"),
                            t,
                            "must be greater than 0 and less than 86400",
                        )),
                        Some(_) => {}
                    },
                },
            }
        }
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.push(FieldError::forbidden(
                    config_path,
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            affinity_path,
            other,
            &["ClientIP", "None"],
        )),
    }
    let cluster_ips: Vec<String> = match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.clone(),
        (_, Some(ip)) if !ip.is_empty() => vec![ip.clone()],
        _ => Vec::new(),
    };
    if ty != "ExternalName" {
        for (i, ip) in cluster_ips.iter().enumerate() {
            if i == 0 && ip == "None" {
                continue;
            }
            for msg in is_valid_ip(ip) {
                errs.push(FieldError::invalid(
                    index(&child(path, "clusterIPs"), i),
                    ip.as_str(),
                    msg,
                ));
            }
        }
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        for msg in is_valid_ip(ip) {
            errs.push(FieldError::invalid(
                index(&child(path, "externalIPs"), i),
                ip.as_str(),
                msg,
            ));
        }
    }
    let type_path = child(path, "type");
    match ty {
        "" => errs.push(FieldError::required(type_path, "")),
        t if TYPES.contains(&t) => {}
        t => errs.push(FieldError::not_supported(type_path, t, TYPES)),
    }
    if ty == "ClusterIP" {
        for (i, p) in ports.iter().enumerate() {
            if p.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    child(&index(&ports_path, i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((p.protocol.clone(), np)) {
            errs.push(FieldError::duplicate(
                child(&index(&ports_path, i), "nodePort"),
                np,
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let protocol = p.protocol.clone().unwrap_or_default();
        if !seen.insert((protocol.clone(), p.port)) {
            errs.push(FieldError::duplicate(
                index(&ports_path, i),
                json!({"$go": format!(
                    "core.ServicePort{{Name:\"\", Protocol:\"{protocol}\", AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    p.port
                )}),
            ));
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            child(path, "allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|v| !v.is_empty()));
    let etp = spec.external_traffic_policy.as_deref().unwrap_or("");
    let etp_path = child(path, "externalTrafficPolicy");
    if !externally_accessible {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                etp_path,
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(etp_path, ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported(
            etp_path,
            etp,
            &["Cluster", "Local"],
        ));
    }
    let itp_path = child(path, "internalTrafficPolicy");
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(ty, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required(itp_path, ""));
        }
        Some(itp) if itp != "Cluster" && itp != "Local" => {
            errs.push(FieldError::not_supported(
                itp_path,
                itp,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if errs.is_empty() && (ty == "NodePort" || ty == "LoadBalancer") {
        // The NodePort allocator's check (it runs only on an otherwise valid Service).
        for (i, p) in ports.iter().enumerate() {
            let np = p.node_port.unwrap_or(0);
            if np != 0 && !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&np) {
                errs.push(FieldError::invalid(
                    child(&index(&ports_path, i), "nodePort"),
                    np,
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORT_RANGE.0, NODE_PORT_RANGE.1
                    ),
                ));
            }
        }
    }
    errs
}

/// Upstream `ValidateServiceUpdate` (`validateUpgradeDowngradeClusterIPs`): allocated cluster
/// IPs may not change, except to or from ExternalName or between headless services.
pub fn validate_service_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new: Service = typed(new)?;
    let old: Service = typed(old)?;
    let (ns, os) = (new.spec.unwrap_or_default(), old.spec.unwrap_or_default());
    let mut errs = Errors::new();
    if ns.type_.as_deref() == Some("ExternalName") || os.type_.as_deref() == Some("ExternalName") {
        return Ok(errs);
    }
    if is_headless(&ns) && is_headless(&os) {
        return Ok(errs);
    }
    let ips = |s: &ServiceSpec| -> Vec<String> {
        match (&s.cluster_ips, &s.cluster_ip) {
            (Some(v), _) if !v.is_empty() => v.clone(),
            (_, Some(ip)) if !ip.is_empty() => vec![ip.clone()],
            _ => Vec::new(),
        }
    };
    let (new_ips, old_ips) = (ips(&ns), ips(&os));
    let shown = json!(new_ips);
    if new_ips.len() == old_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    shown.clone(),
                    "may not change once set",
                ));
            }
        }
    } else if new_ips.len() < old_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                shown,
                "primary clusterIP can not be unset",
            ));
        } else if new_ips[0] != old_ips[0] {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                shown,
                "may not change once set",
            ));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            shown,
            "may not change once set",
        ));
    }
    Ok(errs)
}
