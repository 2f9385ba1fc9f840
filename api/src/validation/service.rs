//! Service validation (`ValidateService`, `validateServicePort`, `ValidateServiceUpdate` in
//! `pkg/apis/core/validation/validation.go`, plus the NodePort range check of the allocator).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use serde_json::Value;

use super::pod::{validate_port_num_or_name, validate_protocol};
use super::{
    Errors, child, index, is_dns1123_label, is_dns1123_subdomain, is_valid_ip, is_valid_port_num,
    typed, validate_labels,
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

/// The spec rules: type, ports (names, ranges, protocol, target ports, duplicates, node
/// ports), selector, session affinity, cluster IPs, external name, traffic policies.
pub fn validate_service_spec(spec: &ServiceSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    let ty = spec.type_.as_deref().unwrap_or("");
    let type_path = child(path, "type");
    match ty {
        "" => errs.push(FieldError::required(type_path, "")),
        t if TYPES.contains(&t) => {}
        t => errs.push(FieldError::not_supported(type_path, t, TYPES)),
    }
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let ports_path = child(path, "ports");
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(FieldError::required(ports_path.clone(), ""));
    }
    if ty == "ExternalName" {
        let name = spec.external_name.as_deref().unwrap_or("");
        let npath = child(path, "externalName");
        if name.is_empty() {
            errs.push(FieldError::required(npath, ""));
        } else {
            for msg in is_dns1123_subdomain(name.trim_end_matches('.')) {
                errs.push(FieldError::invalid(npath.clone(), name, msg));
            }
        }
        if spec.cluster_ip.as_deref().is_some_and(|c| !c.is_empty()) {
            errs.push(FieldError::forbidden(
                child(path, "clusterIP"),
                "may not be set for ExternalName services",
            ));
        }
    }
    let require_name = ports.len() > 1;
    let mut names = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index(&ports_path, i);
        let name = p.name.as_deref().unwrap_or("");
        if require_name && name.is_empty() {
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
        if let Some(tp) = &p.target_port {
            errs.extend(validate_port_num_or_name(tp, &child(&ppath, "targetPort")));
        }
        let protocol = p.protocol.clone().unwrap_or_default();
        if !seen.insert((protocol.clone(), p.port)) {
            errs.push(FieldError::duplicate(
                ppath.clone(),
                serde_json::json!({"$go": format!(
                    "core.ServicePort{{Name:\"\", Protocol:\"{protocol}\", AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    p.port
                )}),
            ));
        }
        if let Some(np) = p.node_port.filter(|n| *n != 0) {
            let npath = child(&ppath, "nodePort");
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.push(FieldError::forbidden(
                    npath,
                    format!("may not be used when `type` is '{ty}'"),
                ));
            } else if !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&np) {
                errs.push(FieldError::invalid(
                    npath,
                    np,
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORT_RANGE.0, NODE_PORT_RANGE.1
                    ),
                ));
            }
        }
    }
    errs.extend(validate_labels(
        spec.selector.as_ref(),
        &child(path, "selector"),
    ));
    let affinity_path = child(path, "sessionAffinity");
    match spec.session_affinity.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(affinity_path, "")),
        "ClientIP" => {
            let timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .unwrap_or(0);
            if !(1..=86400).contains(&timeout) {
                errs.push(FieldError::invalid(
                    child(path, "sessionAffinityConfig.clientIP.timeoutSeconds"),
                    timeout,
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.push(FieldError::invalid(
                    child(path, "sessionAffinityConfig"),
                    Value::Null,
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
    if let Some(ip) = spec
        .cluster_ip
        .as_deref()
        .filter(|ip| !ip.is_empty() && *ip != "None")
    {
        for msg in is_valid_ip(ip) {
            errs.push(FieldError::invalid(child(path, "clusterIPs[0]"), ip, msg));
        }
    }
    if is_headless(spec) && (ty == "NodePort" || ty == "LoadBalancer") {
        errs.push(FieldError::invalid(
            child(path, "clusterIPs[0]"),
            "None",
            format!("may not be set to 'None' for {ty} services"),
        ));
    }
    if let Some(itp) = spec.internal_traffic_policy.as_deref() {
        if ty == "ExternalName" {
            // Upstream drops it for ExternalName; nothing to check.
        } else if itp != "Cluster" && itp != "Local" {
            errs.push(FieldError::not_supported(
                child(path, "internalTrafficPolicy"),
                itp,
                &["Cluster", "Local"],
            ));
        }
    }
    if let Some(etp) = spec
        .external_traffic_policy
        .as_deref()
        .filter(|e| !e.is_empty())
    {
        let external = ty == "NodePort"
            || ty == "LoadBalancer"
            || spec.external_ips.as_ref().is_some_and(|v| !v.is_empty());
        if !external {
            errs.push(FieldError::invalid(
                child(path, "externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        } else if etp != "Cluster" && etp != "Local" {
            errs.push(FieldError::not_supported(
                child(path, "externalTrafficPolicy"),
                etp,
                &["Cluster", "Local"],
            ));
        }
    }
    errs
}

/// Upstream `ValidateServiceUpdate`: clusterIP may not change once set (except when the
/// type changes to or from ExternalName).
pub fn validate_service_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new: Service = typed(new)?;
    let old: Service = typed(old)?;
    let (ns, os) = (new.spec.unwrap_or_default(), old.spec.unwrap_or_default());
    let mut errs = Errors::new();
    let old_ip = os.cluster_ip.as_deref().unwrap_or("");
    let new_ip = ns.cluster_ip.as_deref().unwrap_or("");
    let to_external = ns.type_.as_deref() == Some("ExternalName");
    let from_external = os.type_.as_deref() == Some("ExternalName");
    if !old_ip.is_empty() && new_ip != old_ip && !to_external && !from_external {
        errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            new_ip,
            "may not change once set",
        ));
    }
    Ok(errs)
}
