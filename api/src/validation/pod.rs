//! Pod and pod-spec validation (`ValidatePodSpec`, `validateContainers`, `validateProbe`,
//! `validateHandler`, `validateVolumes`… in `pkg/apis/core/validation/validation.go`), shared
//! by Pods and the pod templates of Deployments and ReplicaSets.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, Pod, PodSpec, PodTemplateSpec, Probe, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{
    Errors, child, inclusive_range_error, index, is_dns1123_label, is_dns1123_subdomain,
    is_env_var_name, is_http_header_name, is_valid_port_name, is_valid_port_num, typed,
    validate_annotations, validate_labels, validate_nonnegative,
};
use crate::status::{ApiError, FieldError};

/// `SCTP`, `TCP`, `UDP` (sorted, as upstream's `sets.List`).
pub const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Validates a Pod's spec (ObjectMeta is checked by the caller).
pub fn validate_pod(obj: &Value) -> Result<Errors, ApiError> {
    let pod: Pod = typed(obj)?;
    let spec = pod.spec.unwrap_or_default();
    Ok(validate_pod_spec(&spec, "spec"))
}

/// Validates a pod template (labels, annotations, spec) at `path` (`spec.template`).
pub fn validate_pod_template(t: &PodTemplateSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    let meta = t.metadata.clone().unwrap_or_default();
    let mpath = child(path, "metadata");
    errs.extend(validate_labels(
        meta.labels.as_ref(),
        &child(&mpath, "labels"),
    ));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &child(&mpath, "annotations"),
    ));
    errs.extend(validate_pod_spec(
        &t.spec.clone().unwrap_or_default(),
        &child(path, "spec"),
    ));
    errs
}

/// Upstream `ValidatePodSpec` (the parts paddock can act on).
pub fn validate_pod_spec(spec: &PodSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    let (volumes, mut verrs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or(&[]),
        &child(path, "volumes"),
    );
    errs.append(&mut verrs);
    let mut names = BTreeSet::new();
    let init = spec.init_containers.as_deref().unwrap_or(&[]);
    for (i, c) in init.iter().enumerate() {
        let cpath = index(&child(path, "initContainers"), i);
        errs.extend(validate_container(c, &cpath, &volumes, &mut names, true));
    }
    if spec.containers.is_empty() {
        errs.push(FieldError::required(child(path, "containers"), ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let cpath = index(&child(path, "containers"), i);
        errs.extend(validate_container(c, &cpath, &volumes, &mut names, false));
    }
    errs.extend(validate_restart_policy(
        spec.restart_policy.as_deref().unwrap_or(""),
        &child(path, "restartPolicy"),
    ));
    let dns = spec.dns_policy.as_deref().unwrap_or("");
    let dns_path = child(path, "dnsPolicy");
    match dns {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(dns_path, "")),
        other => errs.push(FieldError::not_supported(
            dns_path,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    if let Some(t) = spec.termination_grace_period_seconds {
        errs.extend(validate_nonnegative(
            t,
            &child(path, "terminationGracePeriodSeconds"),
        ));
    }
    if let Some(a) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&a)
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            a,
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &child(path, "nodeSelector"),
    ));
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            for msg in is_dns1123_subdomain(v) {
                errs.push(FieldError::invalid(child(path, field), v, msg));
            }
        }
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            for msg in is_dns1123_label(v) {
                errs.push(FieldError::invalid(child(path, field), v, msg));
            }
        }
    }
    if spec.host_network == Some(true) {
        for (field, list) in [
            ("containers", Some(&spec.containers)),
            ("initContainers", spec.init_containers.as_ref()),
        ] {
            for (i, c) in list.into_iter().flatten().enumerate() {
                for (j, p) in c.ports.iter().flatten().enumerate() {
                    if p.host_port.is_some_and(|h| h != p.container_port) {
                        errs.push(FieldError::invalid(
                            child(
                                &index(&child(&index(&child(path, field), i), "ports"), j),
                                "hostPort",
                            ),
                            p.host_port.unwrap_or(0),
                            "must match `containerPort` when `hostNetwork` is true",
                        ));
                    }
                }
            }
        }
    }
    errs
}

/// Upstream `validateRestartPolicy`.
pub fn validate_restart_policy(policy: &str, path: &str) -> Errors {
    match policy {
        "Always" | "OnFailure" | "Never" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "OnFailure", "Never"],
        )],
    }
}

/// Upstream `validateVolumes`: names (DNS-1123 label, unique) and exactly one source. Returns
/// the volume names for volumeMount checks.
fn validate_volumes(volumes: &[Volume], path: &str) -> (BTreeSet<String>, Errors) {
    let mut errs = Errors::new();
    let mut names = BTreeSet::new();
    for (i, v) in volumes.iter().enumerate() {
        let vpath = index(path, i);
        let npath = child(&vpath, "name");
        if v.name.is_empty() {
            errs.push(FieldError::required(npath, ""));
        } else {
            for msg in is_dns1123_label(&v.name) {
                errs.push(FieldError::invalid(npath.clone(), v.name.as_str(), msg));
            }
            if !names.insert(v.name.clone()) {
                errs.push(FieldError::duplicate(npath, v.name.as_str()));
            }
        }
        let sources: Vec<String> = serde_json::to_value(v)
            .ok()
            .and_then(|j| {
                j.as_object()
                    .map(|m| m.keys().filter(|k| *k != "name").cloned().collect())
            })
            .unwrap_or_default();
        match sources.as_slice() {
            [] => errs.push(FieldError::required(vpath, "must specify a volume type")),
            [_] => {}
            [_, rest @ ..] => {
                for s in rest {
                    errs.push(FieldError::forbidden(
                        child(&vpath, s),
                        "may not specify more than 1 volume type",
                    ));
                }
            }
        }
    }
    (names, errs)
}

/// One container (regular or init): name, image, ports, env, mounts, policies, probes.
fn validate_container(
    c: &Container,
    path: &str,
    volumes: &BTreeSet<String>,
    names: &mut BTreeSet<String>,
    init: bool,
) -> Errors {
    let mut errs = Errors::new();
    let npath = child(path, "name");
    if c.name.is_empty() {
        errs.push(FieldError::required(npath, ""));
    } else {
        for msg in is_dns1123_label(&c.name) {
            errs.push(FieldError::invalid(npath.clone(), c.name.as_str(), msg));
        }
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(npath, c.name.as_str()));
        }
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    } else if image.trim() != image {
        errs.push(FieldError::invalid(
            child(path, "image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    errs.extend(validate_container_ports(
        c.ports.as_deref().unwrap_or(&[]),
        &child(path, "ports"),
    ));
    for (i, e) in c.env.iter().flatten().enumerate() {
        let epath = index(&child(path, "env"), i);
        if e.name.is_empty() {
            errs.push(FieldError::required(child(&epath, "name"), ""));
        } else {
            for msg in is_env_var_name(&e.name) {
                errs.push(FieldError::invalid(
                    child(&epath, "name"),
                    e.name.as_str(),
                    msg,
                ));
            }
        }
    }
    let mut mount_paths = BTreeSet::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let mpath = index(&child(path, "volumeMounts"), i);
        if m.name.is_empty() {
            errs.push(FieldError::required(child(&mpath, "name"), ""));
        } else if !volumes.contains(&m.name) {
            errs.push(FieldError::not_found(
                child(&mpath, "name"),
                m.name.as_str(),
            ));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(child(&mpath, "mountPath"), ""));
        } else if !mount_paths.insert(m.mount_path.clone()) {
            errs.push(FieldError::invalid(
                child(&mpath, "mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
    }
    let tmp = c.termination_message_policy.as_deref().unwrap_or("");
    let tmp_path = child(path, "terminationMessagePolicy");
    match tmp {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            tmp_path,
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        other => errs.push(FieldError::invalid(
            tmp_path,
            other,
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
    }
    let pull = c.image_pull_policy.as_deref().unwrap_or("");
    let pull_path = child(path, "imagePullPolicy");
    match pull {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(pull_path, "")),
        other => errs.push(FieldError::not_supported(
            pull_path,
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    let restartable_init = init && c.restart_policy.as_deref() == Some("Always");
    if let Some(rp) = c.restart_policy.as_deref() {
        if !init {
            errs.push(FieldError::forbidden(
                child(path, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        } else if rp != "Always" {
            errs.push(FieldError::not_supported(
                child(path, "restartPolicy"),
                rp,
                &["Always"],
            ));
        }
    }
    let probes = [
        ("livenessProbe", &c.liveness_probe),
        ("readinessProbe", &c.readiness_probe),
        ("startupProbe", &c.startup_probe),
    ];
    for (field, probe) in probes {
        let Some(p) = probe else { continue };
        let ppath = child(path, field);
        if init && !restartable_init {
            errs.push(FieldError::forbidden(
                ppath,
                "may not be set for init containers without restartPolicy=Always",
            ));
            continue;
        }
        errs.extend(match field {
            "livenessProbe" => validate_liveness_probe(p, &ppath),
            "readinessProbe" => validate_readiness_probe(p, &ppath),
            _ => validate_startup_probe(p, &ppath),
        });
    }
    errs
}

/// Upstream `validateContainerPorts`: names (IANA_SVC_NAME, unique per container), port
/// ranges, protocol.
pub fn validate_container_ports(ports: &[ContainerPort], path: &str) -> Errors {
    let mut errs = Errors::new();
    let mut names = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let ppath = index(path, i);
        if let Some(name) = p.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(child(&ppath, "name"), name, msg));
                }
            } else if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(child(&ppath, "name"), name));
            }
        }
        if p.container_port == 0 {
            errs.push(FieldError::required(child(&ppath, "containerPort"), ""));
        } else {
            for msg in is_valid_port_num(i64::from(p.container_port)) {
                errs.push(FieldError::invalid(
                    child(&ppath, "containerPort"),
                    p.container_port,
                    msg,
                ));
            }
        }
        if let Some(h) = p.host_port.filter(|h| *h != 0) {
            for msg in is_valid_port_num(i64::from(h)) {
                errs.push(FieldError::invalid(child(&ppath, "hostPort"), h, msg));
            }
        }
        errs.extend(validate_protocol(
            p.protocol.as_deref(),
            &child(&ppath, "protocol"),
        ));
    }
    errs
}

/// Protocol required, one of SCTP/TCP/UDP.
pub fn validate_protocol(protocol: Option<&str>, path: &str) -> Errors {
    match protocol.unwrap_or("") {
        "" => vec![FieldError::required(path, "")],
        p if PROTOCOLS.contains(&p) => Vec::new(),
        p => vec![FieldError::not_supported(path, p, PROTOCOLS)],
    }
}

/// Upstream `validateLivenessProbe`: the common rules plus `successThreshold` must be 1.
pub fn validate_liveness_probe(p: &Probe, path: &str) -> Errors {
    let mut errs = validate_probe(p, path);
    let st = p.success_threshold.unwrap_or(0);
    if st != 1 {
        errs.push(FieldError::invalid(
            child(path, "successThreshold"),
            st,
            "must be 1",
        ));
    }
    errs
}

/// Upstream `validateStartupProbe`: same rules as liveness.
pub fn validate_startup_probe(p: &Probe, path: &str) -> Errors {
    validate_liveness_probe(p, path)
}

/// Upstream `validateReadinessProbe`: the common rules; probe-level
/// `terminationGracePeriodSeconds` is not allowed.
pub fn validate_readiness_probe(p: &Probe, path: &str) -> Errors {
    let mut errs = validate_probe(p, path);
    if let Some(t) = p.termination_grace_period_seconds {
        errs.push(FieldError::invalid(
            child(path, "terminationGracePeriodSeconds"),
            t,
            "must not be set for readinessProbes",
        ));
    }
    errs
}

/// Upstream `validateProbe`: exactly one handler, non-negative timings, positive
/// probe-level grace period.
pub fn validate_probe(p: &Probe, path: &str) -> Errors {
    let mut errs = validate_handler(p, path);
    for (field, value) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        errs.extend(validate_nonnegative(
            i64::from(value.unwrap_or(0)),
            &child(path, field),
        ));
    }
    if let Some(t) = p.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(
            child(path, "terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    errs
}

/// Upstream `validateHandler` for probes: exec, httpGet, tcpSocket, grpc in that order; the
/// first one set is validated, any further one is forbidden.
fn validate_handler(p: &Probe, path: &str) -> Errors {
    let mut errs = Errors::new();
    let mut count = 0;
    let mut one = |errs: &mut Errors, field: &str, check: &dyn Fn(&str) -> Errors| {
        let hpath = child(path, field);
        if count > 0 {
            errs.push(FieldError::forbidden(
                hpath,
                "may not specify more than 1 handler type",
            ));
        } else {
            count += 1;
            errs.extend(check(&hpath));
        }
    };
    if let Some(e) = &p.exec {
        one(&mut errs, "exec", &|hp| {
            if e.command.as_ref().is_none_or(Vec::is_empty) {
                vec![FieldError::required(child(hp, "command"), "")]
            } else {
                Vec::new()
            }
        });
    }
    if let Some(h) = &p.http_get {
        one(&mut errs, "httpGet", &|hp| validate_http_get(h, hp));
    }
    if let Some(t) = &p.tcp_socket {
        one(&mut errs, "tcpSocket", &|hp| {
            validate_port_num_or_name(&t.port, &child(hp, "port"))
        });
    }
    if let Some(g) = &p.grpc {
        one(&mut errs, "grpc", &|hp| {
            is_valid_port_num(i64::from(g.port))
                .into_iter()
                .map(|msg| FieldError::invalid(child(hp, "port"), g.port, msg))
                .collect()
        });
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// Upstream `validateHTTPGetAction`.
fn validate_http_get(h: &HTTPGetAction, path: &str) -> Errors {
    let mut errs = Errors::new();
    if h.path.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(child(path, "path"), ""));
    }
    errs.extend(validate_port_num_or_name(&h.port, &child(path, "port")));
    let scheme = h.scheme.as_deref().unwrap_or("");
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(
            child(path, "scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in h.http_headers.iter().flatten() {
        for msg in is_http_header_name(&header.name) {
            errs.push(FieldError::invalid(
                child(path, "httpHeaders"),
                header.name.as_str(),
                msg,
            ));
        }
    }
    errs
}

/// Upstream `ValidatePortNumOrName`.
pub fn validate_port_num_or_name(port: &IntOrString, path: &str) -> Errors {
    match port {
        IntOrString::Int(n) => is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|msg| FieldError::invalid(path, *n, msg))
            .collect(),
        IntOrString::String(s) => is_valid_port_name(s)
            .into_iter()
            .map(|msg| FieldError::invalid(path, s.as_str(), msg))
            .collect(),
    }
}

/// Pod updates may change only a few spec fields (upstream `ValidatePodUpdate`).
pub fn validate_pod_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new_pod: Pod = typed(new)?;
    let old_pod: Pod = typed(old)?;
    let (Some(mut ns), Some(os)) = (new_pod.spec, old_pod.spec) else {
        return Ok(Vec::new());
    };
    // Copy over the mutable fields from old to new, then the rest must be equal.
    for (n, o) in ns.containers.iter_mut().zip(os.containers.iter()) {
        n.image.clone_from(&o.image);
    }
    for (n, o) in ns
        .init_containers
        .iter_mut()
        .flatten()
        .zip(os.init_containers.iter().flatten())
    {
        n.image.clone_from(&o.image);
    }
    ns.active_deadline_seconds = os.active_deadline_seconds;
    ns.termination_grace_period_seconds = os.termination_grace_period_seconds;
    let old_tolerations = os.tolerations.clone().unwrap_or_default();
    let tolerations_ok = ns
        .tolerations
        .as_ref()
        .is_none_or(|t| old_tolerations.iter().all(|o| t.contains(o)));
    if tolerations_ok {
        ns.tolerations.clone_from(&os.tolerations);
    }
    // nodeName may be set once by binding; scheduling gates may only be removed.
    if os.node_name.as_deref().unwrap_or("").is_empty() {
        ns.node_name.clone_from(&os.node_name);
    }
    if ns != os {
        return Ok(vec![FieldError::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        )]);
    }
    Ok(Vec::new())
}

/// The pod template's labels (for the selector check of workloads).
pub fn template_labels(t: &PodTemplateSpec) -> BTreeMap<String, String> {
    t.metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}
