//! `networking.k8s.io/v1` validation with upstream's messages and field paths
//! (`pkg/apis/networking/validation/validation.go`): Ingress (`ValidateIngressCreate`,
//! `ValidateIngressUpdate`, `ValidateIngressStatusUpdate`) and IngressClass
//! (`ValidateIngressClass`, `ValidateIngressClassUpdate`).
//!
//! Start at [`validate_ingress`] (spec rules, create or update) and
//! [`validate_ingress_class`]. The rules read the decoded object as JSON: decoding keeps a
//! path's missing `pathType` missing (k8s-openapi would make it `""`), so "pathType must be
//! specified" is told apart from an unsupported empty type, as upstream's nil pointer is.

use serde_json::{Value, json};

use super::{
    Errors, IMMUTABLE_MSG, child, index, is_dns1123_subdomain, is_domain_prefixed_path,
    is_valid_port_name, is_valid_port_num, is_wildcard_dns1123_subdomain, name_is_dns_subdomain,
    name_is_dns1035_label, name_is_dns1123_label, parses_as_ip_sloppy, path_segment_name,
};
use crate::status::FieldError;

/// The legacy annotation naming an Ingress's class (`networking.k8s.io/v1beta1`
/// `AnnotationIngressClass`).
pub const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// The annotation marking the default IngressClass (`networking.k8s.io/v1`
/// `AnnotationIsDefaultIngressClass`).
pub const DEFAULT_INGRESS_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// Path types upstream supports, sorted as its `sets.String.List()` prints them.
pub const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const PARAMETER_SCOPES: &[&str] = &["Cluster", "Namespace"];
const MAX_CONTROLLER_LEN: usize = 250;

/// `IngressValidationOptions`: what an update may keep from the stored object.
#[derive(Debug, Clone, Copy, Default)]
struct Options {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Whether `v` is set (present and not null).
fn set(v: &Value) -> bool {
    !v.is_null()
}

/// `ValidateIngressSpec` (the part of `validateIngress` after ObjectMeta), with the options of
/// `ValidateIngressCreate` (`old` = `None`) or of `ValidateIngressUpdate` (`old` = the stored
/// Ingress: its invalid TLS secret names and invalid wildcard rules may stay). On create
/// the legacy class annotation must also match `spec.ingressClassName`.
pub fn validate_ingress(obj: &Value, old: Option<&Value>) -> Errors {
    let opts = match old {
        None => Options::default(),
        Some(o) => Options {
            allow_invalid_secret_name: allow_invalid_secret_name(o),
            allow_invalid_wildcard_host_rule: allow_invalid_wildcard_host_rule(o),
        },
    };
    let mut errs = validate_ingress_spec(&obj["spec"], "spec", opts);
    if old.is_none() {
        let ann = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
            .and_then(Value::as_str);
        let class = obj
            .pointer("/spec/ingressClassName")
            .and_then(Value::as_str);
        if let (Some(a), Some(c)) = (ann, class)
            && a != c
        {
            errs.push(FieldError::invalid(
                child("annotations", INGRESS_CLASS_ANNOTATION),
                a,
                "must match `ingressClassName` when both are specified",
            ));
        }
    }
    errs
}

fn validate_ingress_spec(spec: &Value, path: &str, opts: Options) -> Errors {
    let mut errs = Errors::new();
    let rules = &spec["rules"];
    let backend = &spec["defaultBackend"];
    if arr(rules).is_empty() && !set(backend) {
        // The Go value printed is the internal `[]networking.IngressRule`.
        let shown = if rules.is_array() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errs.push(FieldError::invalid(
            path,
            json!({"$go": shown}),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if set(backend) {
        errs.extend(validate_backend(backend, &child(path, "defaultBackend")));
    }
    let rules_path = child(path, "rules");
    for (i, rule) in arr(rules).iter().enumerate() {
        let rule_path = index(&rules_path, i);
        let host = s(&rule["host"]);
        let mut wildcard = false;
        if !host.is_empty() {
            let host_path = child(&rule_path, "host");
            if parses_as_ip_sloppy(host) {
                errs.push(FieldError::invalid(
                    &host_path,
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            let msgs = if host.contains('*') {
                wildcard = true;
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid(&host_path, host, m)),
            );
        }
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(validate_rule_value(rule, &rule_path));
        }
    }
    for (t, tls) in arr(&spec["tls"]).iter().enumerate() {
        let tls_path = index(&child(path, "tls"), t);
        for (h, host) in arr(&tls["hosts"]).iter().enumerate() {
            let host = s(host);
            let msgs = if host.contains('*') {
                is_wildcard_dns1123_subdomain(host)
            } else {
                is_dns1123_subdomain(host)
            };
            let host_path = index(&child(&tls_path, "hosts"), h);
            errs.extend(
                msgs.into_iter()
                    .map(|m| FieldError::invalid(&host_path, host, m)),
            );
        }
        if !opts.allow_invalid_secret_name {
            let secret = s(&tls["secretName"]);
            errs.extend(
                tls_secret_name(secret)
                    .into_iter()
                    .map(|m| FieldError::invalid(child(&tls_path, "secretName"), secret, m)),
            );
        }
    }
    if let Some(class) = spec["ingressClassName"].as_str() {
        errs.extend(
            name_is_dns_subdomain(class, false)
                .into_iter()
                .map(|m| FieldError::invalid(child(path, "ingressClassName"), class, m)),
        );
    }
    errs
}

/// `validateTLSSecretName`: an empty name is allowed.
fn tls_secret_name(name: &str) -> Vec<String> {
    if name.is_empty() {
        Vec::new()
    } else {
        name_is_dns_subdomain(name, false)
    }
}

/// `validateIngressRuleValue` / `validateHTTPIngressRuleValue`.
fn validate_rule_value(rule: &Value, rule_path: &str) -> Errors {
    let mut errs = Errors::new();
    let http = &rule["http"];
    if !set(http) {
        return errs;
    }
    let http_path = child(rule_path, "http");
    let paths = arr(&http["paths"]);
    if paths.is_empty() {
        errs.push(FieldError::required(child(&http_path, "paths"), ""));
    }
    for (i, p) in paths.iter().enumerate() {
        errs.extend(validate_http_path(
            p,
            &index(&child(&http_path, "paths"), i),
        ));
    }
    errs
}

/// `validateHTTPIngressPath`.
fn validate_http_path(p: &Value, path: &str) -> Errors {
    let mut errs = Errors::new();
    let Some(path_type) = p["pathType"].as_str() else {
        errs.push(FieldError::required(
            child(path, "pathType"),
            "pathType must be specified",
        ));
        return errs;
    };
    let value = s(&p["path"]);
    let value_path = child(path, "path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &value_path,
                    value,
                    "must be an absolute path",
                ));
            }
            if !value.is_empty() {
                for seq in INVALID_PATH_SEQUENCES {
                    if value.contains(seq) {
                        errs.push(FieldError::invalid(
                            &value_path,
                            value,
                            format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            &value_path,
                            value,
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &value_path,
                    value,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "pathType"),
            other,
            PATH_TYPES,
        )),
    }
    errs.extend(validate_backend(&p["backend"], &child(path, "backend")));
    errs
}

/// `validateIngressBackend`: exactly one of `service` and `resource`; a service backend names
/// a DNS-1035 Service and a port by name or by number.
fn validate_backend(backend: &Value, path: &str) -> Errors {
    let mut errs = Errors::new();
    let resource = &backend["resource"];
    let service = &backend["service"];
    match (set(resource), set(service)) {
        (true, true) => {
            errs.push(FieldError::invalid(
                path,
                "",
                "cannot set both resource and service backends",
            ));
        }
        (true, false) => errs.extend(validate_typed_local_object_reference(
            resource,
            &child(path, "resource"),
        )),
        (false, true) => {
            let service_path = child(path, "service");
            let name = s(&service["name"]);
            if name.is_empty() {
                errs.push(FieldError::required(child(&service_path, "name"), ""));
            } else {
                errs.extend(
                    name_is_dns1035_label(name, false)
                        .into_iter()
                        .map(|m| FieldError::invalid(child(&service_path, "name"), name, m)),
                );
            }
            let port = &service["port"];
            let port_name = s(&port["name"]);
            let port_number = port["number"].as_i64().unwrap_or(0);
            let port_path = child(&service_path, "port");
            match (!port_name.is_empty(), port_number != 0) {
                (true, true) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (true, false) => errs.extend(
                    is_valid_port_name(port_name)
                        .into_iter()
                        .map(|m| FieldError::invalid(child(&port_path, "name"), port_name, m)),
                ),
                (false, true) => errs.extend(
                    is_valid_port_num(port_number)
                        .into_iter()
                        .map(|m| FieldError::invalid(child(&port_path, "number"), port_number, m)),
                ),
                (false, false) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (false, false) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}

/// `validateIngressTypedLocalObjectReference`: a resource backend's group, kind and name.
fn validate_typed_local_object_reference(r: &Value, path: &str) -> Errors {
    let mut errs = Errors::new();
    if let Some(group) = r["apiGroup"].as_str() {
        errs.extend(
            is_dns1123_subdomain(group)
                .into_iter()
                .map(|m| FieldError::invalid(child(path, "apiGroup"), group, m)),
        );
    }
    errs.extend(kind_and_name(r, path));
    errs
}

/// The `kind` and `name` of a reference: required, and path segment names.
fn kind_and_name(r: &Value, path: &str) -> Errors {
    let mut errs = Errors::new();
    for field in ["kind", "name"] {
        let v = s(&r[field]);
        if v.is_empty() {
            errs.push(FieldError::required(child(path, field), ""));
        } else {
            errs.extend(
                path_segment_name(v, false)
                    .into_iter()
                    .map(|m| FieldError::invalid(child(path, field), v, m)),
            );
        }
    }
    errs
}

/// `allowInvalidSecretName`: the stored Ingress already has an invalid TLS secret name.
fn allow_invalid_secret_name(old: &Value) -> bool {
    arr(&old["spec"]["tls"])
        .iter()
        .any(|t| !tls_secret_name(s(&t["secretName"])).is_empty())
}

/// `allowInvalidWildcardHostRule`: the stored Ingress already has a wildcard rule whose
/// paths are invalid.
fn allow_invalid_wildcard_host_rule(old: &Value) -> bool {
    arr(&old["spec"]["rules"])
        .iter()
        .any(|r| s(&r["host"]).contains('*') && !validate_rule_value(r, "").is_empty())
}

/// `ValidateIngressStatusUpdate` after the ObjectMeta update:
/// `ValidateIngressLoadBalancerStatus` (1.32: IPs parse, hostnames are DNS names, not IPs).
pub fn validate_ingress_status(obj: &Value) -> Errors {
    let mut errs = Errors::new();
    let path = "status.loadBalancer.ingress";
    for (i, ing) in arr(&obj["status"]["loadBalancer"]["ingress"])
        .iter()
        .enumerate()
    {
        let at = index(path, i);
        let ip = s(&ing["ip"]);
        if !ip.is_empty() && !parses_as_ip_sloppy(ip) {
            errs.push(FieldError::invalid(
                child(&at, "ip"),
                ip,
                "must be a valid IP address",
            ));
        }
        let hostname = s(&ing["hostname"]);
        if !hostname.is_empty() {
            errs.extend(
                is_dns1123_subdomain(hostname)
                    .into_iter()
                    .map(|m| FieldError::invalid(child(&at, "hostname"), hostname, m)),
            );
            if parses_as_ip_sloppy(hostname) {
                errs.push(FieldError::invalid(
                    child(&at, "hostname"),
                    hostname,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}

/// `validateIngressClassSpec` (the part of `ValidateIngressClass` after ObjectMeta): a
/// domain-prefixed controller name of at most 250 bytes, and the parameters reference.
pub fn validate_ingress_class(obj: &Value) -> Errors {
    let mut errs = Errors::new();
    let spec = &obj["spec"];
    let controller = s(&spec["controller"]);
    if controller.is_empty() {
        errs.push(FieldError::required("spec.controller", ""));
    } else {
        if controller.len() > MAX_CONTROLLER_LEN {
            errs.push(FieldError::too_long("spec.controller", MAX_CONTROLLER_LEN));
        }
        errs.extend(is_domain_prefixed_path("spec.controller", controller));
    }
    let params = &spec["parameters"];
    if set(params) {
        errs.extend(validate_parameters(params, "spec.parameters"));
    }
    errs
}

/// `validateIngressClassParametersReference`.
fn validate_parameters(p: &Value, path: &str) -> Errors {
    let mut errs = Errors::new();
    if let Some(group) = p["apiGroup"].as_str() {
        errs.extend(
            is_dns1123_subdomain(group)
                .into_iter()
                .map(|m| FieldError::invalid(child(path, "apiGroup"), group, m)),
        );
    }
    errs.extend(kind_and_name(p, path));
    let Some(scope) = p["scope"].as_str() else {
        errs.push(FieldError::required(child(path, "scope"), ""));
        return errs;
    };
    let ns_path = child(path, "namespace");
    match scope {
        "Namespace" => match p["namespace"].as_str() {
            None => errs.push(FieldError::required(
                ns_path,
                "`parameters.scope` is set to 'Namespace'",
            )),
            Some(ns) => errs.extend(
                name_is_dns1123_label(ns, false)
                    .into_iter()
                    .map(|m| FieldError::invalid(&ns_path, ns, m)),
            ),
        },
        "Cluster" => {
            if set(&p["namespace"]) {
                errs.push(FieldError::forbidden(
                    ns_path,
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "scope"),
            other,
            PARAMETER_SCOPES,
        )),
    }
    errs
}

/// `validateIngressClassSpecUpdate`: the controller never changes.
pub fn validate_ingress_class_update(new: &Value, old: &Value) -> Errors {
    let (n, o) = (&new["spec"]["controller"], &old["spec"]["controller"]);
    if s(n) == s(o) {
        return Errors::new();
    }
    vec![FieldError::invalid(
        "spec.controller",
        n.as_str().unwrap_or(""),
        IMMUTABLE_MSG,
    )]
}

#[cfg(test)]
mod tests;
