//! Validation of the smaller kinds: Namespace, ConfigMap, Secret, Endpoints, EndpointSlice,
//! Node, Event, Lease (from `pkg/apis/core/validation`, `pkg/apis/discovery/validation`,
//! `pkg/apis/coordination/validation`).

use std::collections::BTreeSet;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Event, Namespace, Node, Secret};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use super::pod::validate_protocol;
use super::{
    Errors, child, index, is_config_map_key, is_dns1123_label, is_dns1123_subdomain,
    is_qualified_name, is_valid_ip, is_valid_port_num, key, typed, validate_nonnegative,
};
use crate::status::{ApiError, FieldError};

/// Maximum total size of ConfigMap/Secret data (upstream `MaxSecretSize`, 1 MiB).
const MAX_DATA_SIZE: usize = 1024 * 1024;

/// Namespace: `spec.finalizers` are qualified names.
pub fn validate_namespace(obj: &Value) -> Result<Errors, ApiError> {
    let ns: Namespace = typed(obj)?;
    let mut errs = Errors::new();
    for (i, f) in ns
        .spec
        .and_then(|s| s.finalizers)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(
                index("spec.finalizers", i),
                f.as_str(),
                msg,
            ));
        }
    }
    Ok(errs)
}

fn validate_data_keys<'a>(
    keys: impl Iterator<Item = (&'a str, &'a str, usize)>,
    errs: &mut Errors,
) {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for (field, k, size) in keys {
        let path = key(field, k);
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(path.clone(), k, msg));
        }
        if !seen.insert(k.to_string()) {
            errs.push(FieldError::duplicate(path, k));
        }
        total += size;
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long("", MAX_DATA_SIZE));
    }
}

/// ConfigMap: data/binaryData keys valid and disjoint, total size ≤ 1 MiB.
pub fn validate_config_map(obj: &Value) -> Result<Errors, ApiError> {
    let cm: ConfigMap = typed(obj)?;
    let mut errs = Errors::new();
    let data = cm.data.unwrap_or_default();
    let binary = cm.binary_data.unwrap_or_default();
    let keys = data
        .iter()
        .map(|(k, v)| ("data", k.as_str(), v.len()))
        .chain(
            binary
                .iter()
                .map(|(k, v)| ("binaryData", k.as_str(), v.0.len())),
        );
    validate_data_keys(keys, &mut errs);
    Ok(errs)
}

/// Secret: data keys valid, size ≤ 1 MiB, the required keys of typed secrets.
pub fn validate_secret(obj: &Value) -> Result<Errors, ApiError> {
    let s: Secret = typed(obj)?;
    let mut errs = Errors::new();
    let data = s.data.unwrap_or_default();
    validate_data_keys(
        data.iter().map(|(k, v)| ("data", k.as_str(), v.0.len())),
        &mut errs,
    );
    let required: &[&str] = match s.type_.as_deref().unwrap_or("") {
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/basic-auth" => &[],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        _ => &[],
    };
    for k in required {
        if !data.contains_key(*k) {
            errs.push(FieldError::required(key("data", k), ""));
        }
    }
    Ok(errs)
}

/// Endpoints: addresses are IPs, ports valid.
pub fn validate_endpoints(obj: &Value) -> Result<Errors, ApiError> {
    let e: Endpoints = typed(obj)?;
    let mut errs = Errors::new();
    for (i, ss) in e.subsets.iter().flatten().enumerate() {
        let spath = index("subsets", i);
        for (field, list) in [
            ("addresses", ss.addresses.as_ref()),
            ("notReadyAddresses", ss.not_ready_addresses.as_ref()),
        ] {
            for (j, a) in list.into_iter().flatten().enumerate() {
                let apath = index(&child(&spath, field), j);
                for msg in is_valid_ip(&a.ip) {
                    errs.push(FieldError::invalid(child(&apath, "ip"), a.ip.as_str(), msg));
                }
                if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                    for msg in is_dns1123_label(h) {
                        errs.push(FieldError::invalid(child(&apath, "hostname"), h, msg));
                    }
                }
            }
        }
        let ports = ss.ports.as_deref().unwrap_or(&[]);
        for (j, p) in ports.iter().enumerate() {
            let ppath = index(&child(&spath, "ports"), j);
            let name = p.name.as_deref().unwrap_or("");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(child(&ppath, "name"), ""));
            } else if !name.is_empty() {
                for msg in is_dns1123_label(name) {
                    errs.push(FieldError::invalid(child(&ppath, "name"), name, msg));
                }
            }
            for msg in is_valid_port_num(i64::from(p.port)) {
                errs.push(FieldError::invalid(child(&ppath, "port"), p.port, msg));
            }
            errs.extend(validate_protocol(
                p.protocol.as_deref(),
                &child(&ppath, "protocol"),
            ));
        }
    }
    Ok(errs)
}

/// EndpointSlice: addressType, 1–100 addresses per endpoint of that type, ports.
pub fn validate_endpoint_slice(obj: &Value) -> Result<Errors, ApiError> {
    let s: EndpointSlice = typed(obj)?;
    let mut errs = Errors::new();
    let at = s.address_type.as_str();
    match at {
        "IPv4" | "IPv6" | "FQDN" => {}
        "" => errs.push(FieldError::required("addressType", "")),
        other => errs.push(FieldError::not_supported(
            "addressType",
            other,
            &["FQDN", "IPv4", "IPv6"],
        )),
    }
    let endpoints = s.endpoints.as_deref().unwrap_or(&[]);
    if endpoints.len() > 1000 {
        errs.push(FieldError::too_many("endpoints", endpoints.len(), 1000));
    }
    for (i, e) in endpoints.iter().enumerate() {
        let epath = index("endpoints", i);
        let apath = child(&epath, "addresses");
        if e.addresses.is_empty() {
            errs.push(FieldError::required(
                apath.clone(),
                "must contain at least 1 address",
            ));
        } else if e.addresses.len() > 100 {
            errs.push(FieldError::too_many(apath.clone(), e.addresses.len(), 100));
        }
        for (j, a) in e.addresses.iter().enumerate() {
            let msgs = match at {
                "IPv4" if a.parse::<std::net::Ipv4Addr>().is_err() => {
                    vec!["must be a valid IPv4 address".to_string()]
                }
                "IPv6" if a.parse::<std::net::Ipv6Addr>().is_err() => {
                    vec!["must be a valid IPv6 address".to_string()]
                }
                "FQDN" => is_dns1123_subdomain(a),
                _ => Vec::new(),
            };
            for msg in msgs {
                errs.push(FieldError::invalid(index(&apath, j), a.as_str(), msg));
            }
        }
        if let Some(n) = e.node_name.as_deref().filter(|n| !n.is_empty()) {
            for msg in is_dns1123_subdomain(n) {
                errs.push(FieldError::invalid(child(&epath, "nodeName"), n, msg));
            }
        }
    }
    let ports = s.ports.as_deref().unwrap_or(&[]);
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index("ports", i);
        let name = p.name.as_deref().unwrap_or("");
        if !name.is_empty() {
            for msg in is_dns1123_label(name) {
                errs.push(FieldError::invalid(child(&ppath, "name"), name, msg));
            }
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(child(&ppath, "name"), name));
        }
        if let Some(port) = p.port {
            for msg in is_valid_port_num(i64::from(port)) {
                errs.push(FieldError::invalid(child(&ppath, "port"), port, msg));
            }
        }
        errs.extend(validate_protocol(
            p.protocol.as_deref(),
            &child(&ppath, "protocol"),
        ));
    }
    Ok(errs)
}

/// Node: pod CIDR and taints basics.
pub fn validate_node(obj: &Value) -> Result<Errors, ApiError> {
    let n: Node = typed(obj)?;
    let mut errs = Errors::new();
    for (i, t) in n
        .spec
        .and_then(|s| s.taints)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let tpath = index("spec.taints", i);
        for msg in is_qualified_name(&t.key) {
            errs.push(FieldError::invalid(
                child(&tpath, "key"),
                t.key.as_str(),
                msg,
            ));
        }
        match t.effect.as_str() {
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            "" => errs.push(FieldError::required(child(&tpath, "effect"), "")),
            other => errs.push(FieldError::not_supported(
                child(&tpath, "effect"),
                other,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
    }
    Ok(errs)
}

/// Event (core/v1): upstream `legacyValidateEvent` for v1 requests. Old-style events (no
/// `eventTime`) need the involved object's namespace to match (empty is fine in `default`);
/// new-style ones need reportingComponent, reportingInstance, action and reason, with
/// upstream's length limits.
pub fn validate_event(obj: &Value) -> Result<Errors, ApiError> {
    let e: Event = typed(obj)?;
    let mut errs = Errors::new();
    let ns = e.metadata.namespace.as_deref().unwrap_or("");
    let ins = e.involved_object.namespace.as_deref().unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            ins,
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        if ins.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(mismatch());
            }
        } else if ns != ins {
            errs.push(mismatch());
        }
    } else {
        if ins.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let rc = e.reporting_component.as_deref().unwrap_or("");
        if rc.is_empty() {
            errs.push(FieldError::required("reportingComponent", ""));
        }
        for msg in is_qualified_name(rc) {
            errs.push(FieldError::invalid("reportingComponent", rc, msg));
        }
        let limited = [
            (
                "reportingInstance",
                e.reporting_instance.as_deref(),
                128,
                true,
            ),
            ("action", e.action.as_deref(), 128, true),
            ("reason", e.reason.as_deref(), 128, true),
            ("message", e.message.as_deref(), 1024, false),
        ];
        for (field, value, limit, required) in limited {
            let v = value.unwrap_or("");
            if required && v.is_empty() {
                errs.push(FieldError::required(field, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    field,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
    }
    for msg in is_dns1123_subdomain(ns) {
        errs.push(FieldError::invalid("namespace", ns, msg));
    }
    Ok(errs)
}

/// Lease: durations and transitions positive/non-negative.
pub fn validate_lease(obj: &Value) -> Result<Errors, ApiError> {
    let l: Lease = typed(obj)?;
    let mut errs = Errors::new();
    let spec = l.spec.unwrap_or_default();
    if let Some(d) = spec.lease_duration_seconds
        && d <= 0
    {
        errs.push(FieldError::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions {
        errs.extend(validate_nonnegative(i64::from(t), "spec.leaseTransitions"));
    }
    Ok(errs)
}

/// The immutability rules of `ValidateConfigMapUpdate` / `ValidateSecretUpdate`: a
/// Secret's `type` never changes (checked first), and with `immutable: true` neither the
/// flag nor the data may.
pub fn validate_immutable_data_update(kind: &str, new: &Value, old: &Value) -> Errors {
    let mut errs = Errors::new();
    if kind == "Secret" && new.get("type") != old.get("type") {
        errs.push(FieldError::invalid(
            "type",
            new.get("type").cloned().unwrap_or(Value::Null),
            super::IMMUTABLE_MSG,
        ));
    }
    if old.get("immutable").and_then(Value::as_bool) != Some(true) {
        return errs;
    }
    if new.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    let fields: &[&str] = if kind == "Secret" {
        &["data"]
    } else {
        &["data", "binaryData"]
    };
    for field in fields {
        if new.get(*field) != old.get(*field) {
            errs.push(FieldError::forbidden(
                *field,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

/// The update rule of `ValidateEndpointSliceUpdate`: `addressType` is immutable.
pub fn validate_endpoint_slice_update(new: &Value, old: &Value) -> Errors {
    let (n, o) = (new.get("addressType"), old.get("addressType"));
    if n == o {
        return Errors::new();
    }
    vec![FieldError::invalid(
        "addressType",
        n.cloned().unwrap_or(Value::Null),
        super::IMMUTABLE_MSG,
    )]
}
