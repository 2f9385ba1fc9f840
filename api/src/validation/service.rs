//! Service validation (`ValidateService`, `validateServicePort`,
//! `ValidateServiceClusterIPsRelatedFields`, `ValidateServiceUpdate`,
//! `ValidateLoadBalancerStatus` in `pkg/apis/core/validation/validation.go`, plus the NodePort
//! range check of the allocator).
//! Start at [`validate_service`]; [`validate_service_spec`] follows upstream's order check by
//! check, so a Service with several faults lists them as upstream does.
//! `spec.healthCheckNodePort` is Required on a LoadBalancer with `externalTrafficPolicy:
//! Local`: the API server's allocator fills it in before validation, as upstream's does.
//!
//! Over 800 lines on purpose: one file keeps upstream's `ValidateService` order check by check
//! (the order decides which errors a faulty Service lists, and in what order).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::pod::{validate_port_num_or_name, validate_protocol};
use super::{
    Errors, child, index, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_ip,
    is_valid_port_num, key, typed, validate_labels,
};
use crate::status::{ApiError, FieldError};

/// Supported service types, sorted as upstream's `sets.List`.
const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
/// The kubelet's port (upstream `ports.KubeletPort`).
const KUBELET_PORT: i32 = 10250;
/// The default NodePort range (`--service-node-port-range`).
pub const NODE_PORT_RANGE: (i32, i32) = (30000, 32767);

/// `service.kubernetes.io/topology-mode`.
const TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
/// `service.kubernetes.io/topology-aware-hints` (deprecated).
const TOPOLOGY_HINTS: &str = "service.kubernetes.io/topology-aware-hints";
/// `service.beta.kubernetes.io/load-balancer-source-ranges`.
const SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

/// Validates a Service (everything of upstream `ValidateService` but `ValidateObjectMeta`).
pub fn validate_service(obj: &Value) -> Result<Errors, ApiError> {
    let svc: Service = typed(obj)?;
    let annotations = svc.metadata.annotations.unwrap_or_default();
    let mut errs = Errors::new();
    if let (Some(mode), Some(hints)) = (
        annotations.get(TOPOLOGY_MODE),
        annotations.get(TOPOLOGY_HINTS),
    ) && mode != hints
    {
        errs.push(FieldError::invalid(
            key("metadata.annotations", TOPOLOGY_MODE),
            mode.as_str(),
            format!("must match annotations[{TOPOLOGY_HINTS}] when both are specified"),
        ));
    }
    errs.extend(validate_service_spec(
        &svc.spec.unwrap_or_default(),
        &annotations,
        "spec",
    ));
    Ok(errs)
}

/// `spec.clusterIPs` as validation sees it: the strategy's `NormalizeClusterIPs` fills it
/// from `clusterIP` when a client set only the singular field.
fn cluster_ips(spec: &ServiceSpec) -> Vec<String> {
    match (&spec.cluster_ips, &spec.cluster_ip) {
        (Some(ips), _) if !ips.is_empty() => ips.clone(),
        (_, Some(ip)) if !ip.is_empty() => vec![ip.clone()],
        _ => Vec::new(),
    }
}

/// Upstream `isHeadlessService`: `clusterIPs` is exactly `["None"]`.
fn is_headless(spec: &ServiceSpec) -> bool {
    cluster_ips(spec) == ["None"]
}

/// Upstream `NeedsHealthCheck`: a LoadBalancer with `externalTrafficPolicy: Local`.
pub fn needs_health_check(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() == Some("LoadBalancer")
        && spec.external_traffic_policy.as_deref() == Some("Local")
}

/// Upstream `IsValidCIDR` (1.32 wording).
pub fn is_valid_cidr(value: &str) -> Vec<String> {
    let ok = value.split_once('/').is_some_and(|(ip, bits)| {
        let max = match ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(_)) => 32,
            Ok(IpAddr::V6(_)) => 128,
            Err(_) => return false,
        };
        !bits.is_empty()
            && bits.bytes().all(|b| b.is_ascii_digit())
            && bits.parse::<u8>().is_ok_and(|b| b <= max)
    });
    if ok {
        Vec::new()
    } else {
        vec!["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".to_string()]
    }
}

/// Upstream `ValidateNonSpecialIP`: no unspecified, loopback or link-local address (as
/// external IPs and endpoint addresses).
pub fn validate_non_special_ip(ip: &str, path: &str) -> Errors {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return vec![FieldError::invalid(path, ip, "must be a valid IP address")];
    };
    let (unspecified, loopback, link_local, link_local_multicast) = match addr {
        IpAddr::V4(a) => (
            a.is_unspecified(),
            a.is_loopback(),
            a.is_link_local(),
            a.octets()[..3] == [224, 0, 0],
        ),
        IpAddr::V6(a) => {
            let seg = a.segments();
            match a.to_ipv4_mapped() {
                // Go treats an IPv4-mapped address as the IPv4 one.
                Some(v4) => (
                    v4.is_unspecified(),
                    v4.is_loopback(),
                    v4.is_link_local(),
                    v4.octets()[..3] == [224, 0, 0],
                ),
                None => (
                    a.is_unspecified(),
                    a.is_loopback(),
                    seg[0] & 0xffc0 == 0xfe80,
                    seg[0] & 0xff0f == 0xff02,
                ),
            }
        }
    };
    let mut errs = Errors::new();
    if unspecified {
        errs.push(FieldError::invalid(
            path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    if loopback {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the loopback range (127.0.0.0/8, ::1/128)",
        ));
    }
    if link_local {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
    errs
}

/// [`validate_cluster_ips`] of a whole Service: the pre-check upstream's allocator runs
/// before it allocates (`initIPFamilyFields`).
pub fn validate_cluster_ips_related_fields(obj: &Value) -> Result<Errors, ApiError> {
    let svc: Service = typed(obj)?;
    Ok(validate_cluster_ips(&svc.spec.unwrap_or_default(), "spec"))
}

/// Upstream `ValidateServiceClusterIPsRelatedFields`: `clusterIP` and `clusterIPs` agree,
/// `ipFamilies` and `ipFamilyPolicy` hold supported values, the addresses are valid, at most
/// one per family, and each matches its family.
fn validate_cluster_ips(spec: &ServiceSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    if spec.type_.as_deref() == Some("ExternalName") {
        return errs;
    }
    let ips = cluster_ips(spec);
    let ips_path = child(path, "clusterIPs");
    let families_path = child(path, "ipFamilies");
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(ips_path.clone(), ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                ips_path.clone(),
                json!(ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            ips_path.clone(),
            json!(ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let families = spec.ip_families.as_deref().unwrap_or(&[]);
    let mut seen = BTreeSet::new();
    for (i, family) in families.iter().enumerate() {
        if family != "IPv4" && family != "IPv6" {
            errs.push(FieldError::not_supported(
                index(&families_path, i),
                family.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(family.as_str()) {
            errs.push(FieldError::duplicate(
                index(&families_path, i),
                family.as_str(),
            ));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref()
        && !POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            child(path, "ipFamilyPolicy"),
            policy,
            POLICIES,
        ));
    }
    let mut invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    ips_path.clone(),
                    json!(ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        for msg in is_valid_ip(ip) {
            invalid = true;
            errs.push(FieldError::invalid(index(&ips_path, i), ip.as_str(), msg));
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            ips_path.clone(),
            json!(ips),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return errs;
    }
    let is_v6 = |ip: &str| ip.parse::<IpAddr>().is_ok_and(|a| a.is_ipv6());
    if ips.len() > 1 {
        let v6 = ips.iter().filter(|ip| is_v6(ip)).count();
        if v6 == 0 || v6 == ips.len() {
            errs.push(FieldError::invalid(
                ips_path.clone(),
                json!(ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if !is_headless(spec) {
        for (i, (ip, family)) in ips.iter().zip(families).enumerate() {
            let want = match family.as_str() {
                "IPv4" if is_v6(ip) => "IPv4",
                "IPv6" if !is_v6(ip) => "IPv6",
                _ => continue,
            };
            errs.push(FieldError::invalid(
                index(&ips_path, i),
                ip.as_str(),
                format!("expected an {want} value as indicated by `ipFamilies[{i}]`"),
            ));
        }
    }
    errs
}

/// Supported `ipFamilyPolicy` values, sorted.
const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];

/// Upstream `ValidateService` (spec part), in upstream's order, followed by the NodePort
/// range check the allocator makes when everything else is valid. `annotations` are the
/// Service's (the load-balancer source ranges annotation is checked with the field).
pub fn validate_service_spec(
    spec: &ServiceSpec,
    annotations: &BTreeMap<String, String>,
    path: &str,
) -> Errors {
    let mut errs = Errors::new();
    let ty = spec.type_.as_deref().unwrap_or("");
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let ports_path = child(path, "ports");
    if ports.is_empty() && !is_headless(spec) && ty != "ExternalName" {
        errs.push(FieldError::required(ports_path.clone(), ""));
    }
    if ty == "LoadBalancer" {
        // 1.32 still refuses the kubelet's port on load balancers (dropped in 1.33).
        for (i, p) in ports.iter().enumerate() {
            if p.port == KUBELET_PORT {
                errs.push(FieldError::invalid(
                    index(&ports_path, i),
                    p.port,
                    format!(
                        "may not expose port {KUBELET_PORT} externally since it is used by kubelet"
                    ),
                ));
            }
        }
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
    errs.extend(validate_cluster_ips(spec, path));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        let ip_path = index(&child(path, "externalIPs"), i);
        let msgs = is_valid_ip(ip);
        if msgs.is_empty() {
            errs.extend(validate_non_special_ip(ip, &ip_path));
        }
        for msg in msgs {
            errs.push(FieldError::invalid(ip_path.clone(), ip.as_str(), msg));
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
    let ranges = spec.load_balancer_source_ranges.as_deref().unwrap_or(&[]);
    if !ranges.is_empty() {
        // Upstream's path really is capitalised so.
        let ranges_path = child(path, "LoadBalancerSourceRanges");
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                ranges_path.clone(),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in ranges.iter().enumerate() {
            // Space-padded values are tolerated (a leftover of the annotation).
            let r = r.trim();
            for msg in is_valid_cidr(r) {
                errs.push(FieldError::invalid(index(&ranges_path, i), r, msg));
            }
        }
    } else if let Some(val) = annotations.get(SOURCE_RANGES) {
        let ann_path = key("metadata.annotations", SOURCE_RANGES);
        if ty != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                ann_path.clone(),
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',').map(str::trim) {
                for msg in is_valid_cidr(r) {
                    errs.push(FieldError::invalid(ann_path.clone(), r, msg));
                }
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && ty != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            child(path, "allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        // Upstream's path lacks the `spec.` prefix.
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    errs.extend(load_balancer_class_format(spec, path));
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
    let hc_path = child(path, "healthCheckNodePort");
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check(spec) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                hc_path,
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        errs.push(FieldError::required(hc_path, ""));
    } else {
        for msg in is_valid_port_num(i64::from(hc)) {
            errs.push(FieldError::invalid(hc_path.clone(), hc, msg));
        }
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
    if let Some(td) = spec.traffic_distribution.as_deref()
        && td != "PreferClose"
    {
        errs.push(FieldError::not_supported(
            child(path, "trafficDistribution"),
            td,
            &["PreferClose"],
        ));
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

/// The format part of upstream `validateLoadBalancerClassField`: a qualified name on a
/// LoadBalancer, absent on other types.
fn load_balancer_class_format(spec: &ServiceSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    if let Some(class) = spec.load_balancer_class.as_deref() {
        let class_path = child(path, "loadBalancerClass");
        if spec.type_.as_deref() == Some("LoadBalancer") {
            for msg in is_qualified_name(class) {
                errs.push(FieldError::invalid(class_path.clone(), class, msg));
            }
        } else {
            errs.push(FieldError::forbidden(
                class_path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
    }
    errs
}

/// Upstream `ValidateServiceUpdate` (the create rules run separately): allocated cluster IPs
/// and IP families may not change, except to or from ExternalName or between headless
/// services, and releasing the secondary one needs `ipFamilyPolicy: SingleStack`; the
/// `loadBalancerClass` of a LoadBalancer and an allocated `healthCheckNodePort` are fixed.
pub fn validate_service_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new: Service = typed(new)?;
    let old: Service = typed(old)?;
    let (ns, os) = (new.spec.unwrap_or_default(), old.spec.unwrap_or_default());
    let mut errs = upgrade_downgrade_cluster_ips(&ns, &os);
    errs.extend(upgrade_downgrade_families(&ns, &os));
    if ns.type_.as_deref() == Some("LoadBalancer")
        && os.type_.as_deref() == Some("LoadBalancer")
        && ns.load_balancer_class != os.load_balancer_class
    {
        errs.push(FieldError::invalid(
            "spec.loadBalancerClass",
            json!(ns.load_balancer_class),
            "may not change once set",
        ));
    }
    // validateLoadBalancerClassField(old, new) checks the format too (again in
    // ValidateService).
    errs.extend(load_balancer_class_format(&ns, "spec"));
    if needs_health_check(&ns)
        && needs_health_check(&os)
        && ns.health_check_node_port.unwrap_or(0) != os.health_check_node_port.unwrap_or(0)
    {
        errs.push(FieldError::forbidden(
            "spec.healthCheckNodePort",
            "field is immutable",
        ));
    }
    Ok(errs)
}

/// Upstream `ValidateServiceStatusUpdate` (its `ValidateLoadBalancerStatus` part): ingress
/// points only on LoadBalancer services, valid IPs, `ipMode` required with an IP (defaulting
/// sets VIP, so it is missing only when the request's spec was not a LoadBalancer), only
/// with an IP, and VIP or Proxy; hostnames that are DNS names and not IPs.
pub fn validate_service_status(new: &Value) -> Result<Errors, ApiError> {
    let svc: Service = typed(new)?;
    let spec = svc.spec.unwrap_or_default();
    let ingress = svc
        .status
        .and_then(|s| s.load_balancer)
        .and_then(|lb| lb.ingress)
        .unwrap_or_default();
    let path = "status.loadBalancer.ingress";
    let mut errs = Errors::new();
    if spec.type_.as_deref() != Some("LoadBalancer") && !ingress.is_empty() {
        errs.push(FieldError::forbidden(
            path,
            "may only be used when `spec.type` is 'LoadBalancer'",
        ));
        return Ok(errs);
    }
    for (i, ing) in ingress.iter().enumerate() {
        let at = index(path, i);
        let ip = ing.ip.as_deref().unwrap_or("");
        if !ip.is_empty() {
            for msg in is_valid_ip(ip) {
                errs.push(FieldError::invalid(child(&at, "ip"), ip, msg));
            }
        }
        match ing.ip_mode.as_deref() {
            None if !ip.is_empty() => errs.push(FieldError::required(
                child(&at, "ipMode"),
                "must be specified when `ip` is set",
            )),
            Some(_) if ip.is_empty() => errs.push(FieldError::forbidden(
                child(&at, "ipMode"),
                "may not be specified when `ip` is not set",
            )),
            Some(mode) if mode != "VIP" && mode != "Proxy" => errs.push(FieldError::not_supported(
                child(&at, "ipMode"),
                mode,
                &["Proxy", "VIP"],
            )),
            _ => {}
        }
        let host = ing.hostname.as_deref().unwrap_or("");
        if !host.is_empty() {
            for msg in is_dns1123_subdomain(host) {
                errs.push(FieldError::invalid(child(&at, "hostname"), host, msg));
            }
            if host.parse::<IpAddr>().is_ok() {
                errs.push(FieldError::invalid(
                    child(&at, "hostname"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    Ok(errs)
}

fn external_name(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() == Some("ExternalName")
}

fn single_stack_required(spec: &ServiceSpec, what: &str) -> Option<FieldError> {
    (spec.ip_family_policy.as_deref() != Some("SingleStack")).then(|| {
        FieldError::invalid(
            "spec.ipFamilyPolicy",
            json!(spec.ip_family_policy),
            format!("must be set to 'SingleStack' when releasing the secondary {what}"),
        )
    })
}

/// Upstream `validateUpgradeDowngradeClusterIPs`.
fn upgrade_downgrade_cluster_ips(ns: &ServiceSpec, os: &ServiceSpec) -> Errors {
    let mut errs = Errors::new();
    if external_name(ns) || external_name(os) || (is_headless(ns) && is_headless(os)) {
        return errs;
    }
    let (new_ips, old_ips) = (cluster_ips(ns), cluster_ips(os));
    let shown = json!(new_ips);
    let changed = |i: usize| {
        FieldError::invalid(
            index("spec.clusterIPs", i),
            shown.clone(),
            "may not change once set",
        )
    };
    if new_ips.len() == old_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(changed(i));
            }
        }
    } else if new_ips.len() < old_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                shown.clone(),
                "primary clusterIP can not be unset",
            ));
        } else if new_ips[0] != old_ips[0] {
            errs.push(changed(0));
        }
        if new_ips.len() == 1 {
            errs.extend(single_stack_required(ns, "clusterIP"));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(changed(0));
    }
    errs
}

/// Upstream `validateUpgradeDowngradeIPFamilies` (its odd spots kept: a changed family is
/// reported at index 0 and a released primary is judged by `clusterIPs`).
fn upgrade_downgrade_families(ns: &ServiceSpec, os: &ServiceSpec) -> Errors {
    let mut errs = Errors::new();
    if external_name(ns) || external_name(os) || is_headless(ns) || is_headless(os) {
        return errs;
    }
    let new_f = ns.ip_families.clone().unwrap_or_default();
    let old_f = os.ip_families.clone().unwrap_or_default();
    let changed =
        |value: Value| FieldError::invalid("spec.ipFamilies[0]", value, "may not change once set");
    if new_f.len() == old_f.len() {
        for (i, f) in old_f.iter().enumerate() {
            if *f != new_f[i] {
                errs.push(changed(json!(new_f)));
            }
        }
    } else if new_f.len() < old_f.len() {
        if cluster_ips(ns).is_empty() {
            errs.push(FieldError::invalid(
                "spec.ipFamilies[0]",
                json!(new_f),
                "primary ipFamily can not be unset",
            ));
        }
        if !new_f.is_empty() && new_f[0] != old_f[0] {
            errs.push(changed(json!(cluster_ips(ns))));
        }
        if new_f.len() == 1 {
            errs.extend(single_stack_required(ns, "ipFamily"));
        }
    } else if !old_f.is_empty() && !new_f.is_empty() && new_f[0] != old_f[0] {
        errs.push(changed(json!(cluster_ips(ns))));
    }
    errs
}

#[cfg(test)]
mod tests;
