//! Pod and pod-spec validation (`ValidatePodSpec`, `validateContainers`, `validateProbe`,
//! `validateHandler`, `validateVolumes`… in `pkg/apis/core/validation/validation.go`), shared
//! by Pods and the pod templates of Deployments and ReplicaSets.
//!
//! Over 800 lines on purpose: one file mirrors upstream's pod-spec validation function for
//! function, so a later upstream change maps onto it; volume sources are in `volume`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, Lifecycle, Pod, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{
    Errors, NEGATIVE_MSG, child, inclusive_range_error, index, is_dns1123_label,
    is_dns1123_subdomain, is_env_var_name, is_http_header_name, is_valid_port_name,
    is_valid_port_num, key, typed, validate_annotations, validate_labels, validate_nonnegative,
    volume,
};
use crate::quantity::Quantity;
use crate::status::{ApiError, FieldError};

/// `SCTP`, `TCP`, `UDP` (sorted, as upstream's `sets.List`).
pub const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Validates a Pod's spec (ObjectMeta is checked by the caller), including the pod-only
/// checks upstream skips for templates.
pub fn validate_pod(obj: &Value) -> Result<Errors, ApiError> {
    let pod: Pod = typed(obj)?;
    let spec = pod.spec.unwrap_or_default();
    let mut errs = validate_pod_spec(&spec, "spec", true);
    errs.extend(validate_ephemeral_containers(&spec));
    // validateContainersOnlyForPod
    for (field, list) in [
        ("containers", Some(&spec.containers)),
        ("initContainers", spec.init_containers.as_ref()),
    ] {
        for (i, c) in list.into_iter().flatten().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    child(&index(&child("spec", field), i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    Ok(errs)
}

/// The container fields an ephemeral container may set (upstream
/// `allowedEphemeralContainerFields`); the others are refused.
const EPHEMERAL_FORBIDDEN: &[&str] = &[
    "ports",
    "resources",
    "resizePolicy",
    "restartPolicy",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
];

/// `validateEphemeralContainers`: each as a container, a name unique across every container
/// of the pod, a `targetContainerName` naming a regular or init container, none of the fields
/// a workload relies on, no subPath.
fn validate_ephemeral_containers(spec: &PodSpec) -> Errors {
    let mut errs = Errors::new();
    let Some(list) = spec.ephemeral_containers.as_ref() else {
        return errs;
    };
    let volumes: BTreeSet<String> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.clone())
        .collect();
    let others: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    let mut all = others.clone();
    for (i, ec) in list.iter().enumerate() {
        let p = index("spec.ephemeralContainers", i);
        let as_json = serde_json::to_value(ec).unwrap_or(Value::Null);
        let c: Container = serde_json::from_value(as_json.clone()).unwrap_or_default();
        errs.extend(validate_container_common(&c, &p, &volumes));
        if !all.insert(ec.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), ec.name.as_str()));
        }
        if let Some(t) = ec.target_container_name.as_deref()
            && !t.is_empty()
            && !others.contains(t)
        {
            errs.push(FieldError::not_found(child(&p, "targetContainerName"), t));
        }
        for f in EPHEMERAL_FORBIDDEN {
            // Set means not Go's zero value: `resources: {}` is what kubectl sends.
            let set = as_json.get(*f).is_some_and(|v| match v {
                Value::Null => false,
                Value::Object(o) => o.values().any(|x| !x.is_null()),
                Value::Array(a) => !a.is_empty(),
                Value::String(s) => !s.is_empty(),
                _ => true,
            });
            if set {
                errs.push(FieldError::forbidden(
                    child(&p, f),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, vm) in ec.volume_mounts.iter().flatten().enumerate() {
            let vp = index(&child(&p, "volumeMounts"), j);
            if vm.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                errs.push(FieldError::forbidden(
                    child(&vp, "subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            if vm.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
                errs.push(FieldError::forbidden(
                    child(&vp, "subPathExpr"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodEphemeralContainersUpdate`'s own part (the caller checks the metadata and the
/// pod as on create): existing ephemeral containers are neither removed nor changed.
pub fn validate_ephemeral_containers_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new_pod: Pod = typed(new)?;
    let old_pod: Pod = typed(old)?;
    let mut errs = Errors::new();
    if old_pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
    {
        errs.push(FieldError::forbidden(
            "",
            "static pods do not support ephemeral containers",
        ));
        return Ok(errs);
    }
    let new_list = new_pod
        .spec
        .and_then(|s| s.ephemeral_containers)
        .unwrap_or_default();
    for o in old_pod
        .spec
        .and_then(|s| s.ephemeral_containers)
        .unwrap_or_default()
    {
        match new_list.iter().find(|n| n.name == o.name) {
            None => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!(
                    "existing ephemeral containers {:?} may not be removed\n",
                    o.name
                ),
            )),
            Some(n) if *n != o => errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                format!(
                    "existing ephemeral containers {:?} may not be changed\n",
                    o.name
                ),
            )),
            Some(_) => {}
        }
    }
    Ok(errs)
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
        false,
    ));
    errs
}

/// Upstream `ValidatePodSpec`, in upstream's order (the parts paddock can act on).
/// `is_pod` is upstream's `opts.ResourceIsPod`.
pub fn validate_pod_spec(spec: &PodSpec, path: &str, is_pod: bool) -> Errors {
    let mut errs = Errors::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            child(path, "terminationGracePeriodSeconds"),
            "",
        ));
    }
    let (volumes, mut verrs) = volume::validate_volumes(
        spec.volumes.as_deref().unwrap_or(&[]),
        &child(path, "volumes"),
    );
    errs.append(&mut verrs);
    let grace = spec.termination_grace_period_seconds;
    errs.extend(validate_containers(&spec.containers, &volumes, grace, path));
    errs.extend(validate_init_containers(
        spec.init_containers.as_deref().unwrap_or(&[]),
        &spec.containers,
        &volumes,
        grace,
        path,
    ));
    if spec.host_network == Some(true) {
        // validatePodHostNetworkDeps: regular containers only; a template may leave it 0.
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, p) in c.ports.iter().flatten().enumerate() {
                let hp = p.host_port.unwrap_or(0);
                if (is_pod || hp != 0) && hp != p.container_port {
                    errs.push(FieldError::invalid(
                        child(
                            &index(&child(&index(&child(path, "containers"), i), "ports"), j),
                            "hostPort",
                        ),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
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
    if let Some(a) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&a)
    {
        errs.push(FieldError::invalid(
            child(path, "activeDeadlineSeconds"),
            a,
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            for msg in is_dns1123_label(v) {
                errs.push(FieldError::invalid(child(path, field), v, msg));
            }
        }
    }
    errs.extend(validate_tolerations(
        spec.tolerations.as_deref().unwrap_or(&[]),
        &child(path, "tolerations"),
    ));
    errs
}

/// Upstream `ValidateTolerations`.
pub(super) fn validate_tolerations(tolerations: &[Toleration], path: &str) -> Errors {
    let mut errs = Errors::new();
    for (i, t) in tolerations.iter().enumerate() {
        let tpath = index(path, i);
        let key = t.key.as_deref().unwrap_or("");
        let op = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key.is_empty() {
            for msg in super::is_qualified_name(key) {
                errs.push(FieldError::invalid(child(&tpath, "key"), key, msg));
            }
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&tpath, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&tpath, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = super::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&tpath, "operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&tpath, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&tpath, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(FieldError::not_supported(
                child(&tpath, "effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
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

/// Upstream `validateContainers`: the common rules, unique names, lifecycle and probes,
/// no container-level restartPolicy, host port conflicts across all containers.
fn validate_containers(
    containers: &[Container],
    volumes: &BTreeSet<String>,
    grace: Option<i64>,
    path: &str,
) -> Errors {
    let cpath = child(path, "containers");
    if containers.is_empty() {
        return vec![FieldError::required(cpath, "")];
    }
    let mut errs = Errors::new();
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(&cpath, i);
        errs.extend(validate_container_common(c, &p, volumes));
        if !names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(child(&p, "name"), c.name.as_str()));
        }
        if let Some(lc) = &c.lifecycle {
            errs.extend(validate_lifecycle(lc, grace, &child(&p, "lifecycle")));
        }
        errs.extend(validate_probes(c, &p));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(containers.iter().enumerate(), &cpath));
    errs
}

/// Upstream `validateInitContainers`: the common rules, restartPolicy only `Always`, names
/// unique across init and regular containers, probes and lifecycle only for restartable
/// (sidecar) init containers.
fn validate_init_containers(
    init: &[Container],
    regular: &[Container],
    volumes: &BTreeSet<String>,
    grace: Option<i64>,
    path: &str,
) -> Errors {
    let ipath = child(path, "initContainers");
    let mut errs = Errors::new();
    let mut names: BTreeSet<String> = regular.iter().map(|c| c.name.clone()).collect();
    for (i, c) in init.iter().enumerate() {
        let p = index(&ipath, i);
        errs.extend(validate_container_common(c, &p, volumes));
        let mut restart_always = false;
        if let Some(rp) = c.restart_policy.as_deref() {
            if rp == "Always" {
                restart_always = true;
            } else {
                errs.push(FieldError::not_supported(
                    child(&p, "restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
        }
        if names.contains(&c.name) {
            errs.push(FieldError::duplicate(child(&p, "name"), c.name.as_str()));
        } else if !c.name.is_empty() {
            names.insert(c.name.clone());
        }
        errs.extend(host_port_conflicts([(i, c)].into_iter(), &ipath));
        if restart_always {
            if let Some(lc) = &c.lifecycle {
                errs.extend(validate_lifecycle(lc, grace, &child(&p, "lifecycle")));
            }
            errs.extend(validate_probes(c, &p));
        } else {
            let fields = [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ];
            for (field, set) in fields {
                if set {
                    errs.push(FieldError::forbidden(
                        child(&p, field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// The three probes of a container, each with its own rules.
fn validate_probes(c: &Container, path: &str) -> Errors {
    let mut errs = Errors::new();
    if let Some(p) = &c.liveness_probe {
        errs.extend(validate_liveness_probe(p, &child(path, "livenessProbe")));
    }
    if let Some(p) = &c.readiness_probe {
        errs.extend(validate_readiness_probe(p, &child(path, "readinessProbe")));
    }
    if let Some(p) = &c.startup_probe {
        errs.extend(validate_startup_probe(p, &child(path, "startupProbe")));
    }
    errs
}

/// Upstream `AccumulateUniqueHostPorts`: `protocol/hostIP/hostPort` must be unique.
fn host_port_conflicts<'a>(
    containers: impl Iterator<Item = (usize, &'a Container)>,
    path: &str,
) -> Errors {
    let mut errs = Errors::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers {
        for (pi, p) in c.ports.iter().flatten().enumerate() {
            let hp = p.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{hp}",
                p.protocol.as_deref().unwrap_or(""),
                p.host_ip.as_deref().unwrap_or("")
            );
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    child(&index(&child(&index(path, ci), "ports"), pi), "hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

/// Upstream `validateLifecycle`: each hook is a handler (exec, httpGet, tcpSocket, sleep).
fn validate_lifecycle(lc: &Lifecycle, grace: Option<i64>, path: &str) -> Errors {
    let mut errs = Errors::new();
    for (field, hook) in [("postStart", &lc.post_start), ("preStop", &lc.pre_stop)] {
        if let Some(h) = hook {
            let probe = Probe {
                exec: h.exec.clone(),
                http_get: h.http_get.clone(),
                tcp_socket: h.tcp_socket.clone(),
                ..Probe::default()
            };
            let hpath = child(path, field);
            let mut herrs = validate_handler(&probe, &hpath);
            if let Some(sleep) = &h.sleep {
                let count = [
                    h.exec.is_some(),
                    h.http_get.is_some(),
                    h.tcp_socket.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                // The sleep handler counts as one too.
                herrs.retain(|e| e.detail != "must specify a handler type");
                if count > 0 {
                    herrs.push(FieldError::forbidden(
                        child(&hpath, "sleep"),
                        "may not specify more than 1 handler type",
                    ));
                } else if let Some(g) = grace
                    && (sleep.seconds < 0 || sleep.seconds > g)
                {
                    // AllowPodLifecycleSleepActionZeroValue is on by default since 1.32.
                    herrs.push(FieldError::invalid(
                        child(&hpath, "sleep"),
                        sleep.seconds,
                        format!(
                            "must be non-negative and less than terminationGracePeriodSeconds ({g})"
                        ),
                    ));
                }
            }
            errs.extend(herrs);
        }
    }
    errs
}

/// Upstream `validateContainerCommon`, in its order: name, image, terminationMessagePolicy,
/// ports, env, volumeMounts, imagePullPolicy, resources.
fn validate_container_common(c: &Container, path: &str, volumes: &BTreeSet<String>) -> Errors {
    let mut errs = Errors::new();
    let npath = child(path, "name");
    if c.name.is_empty() {
        errs.push(FieldError::required(npath, ""));
    } else {
        for msg in is_dns1123_label(&c.name) {
            errs.push(FieldError::invalid(npath.clone(), c.name.as_str(), msg));
        }
    }
    if c.image.as_deref().unwrap_or("").is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    let tmp_path = child(path, "terminationMessagePolicy");
    match c.termination_message_policy.as_deref().unwrap_or("") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(tmp_path, "")),
        other => errs.push(FieldError::not_supported(
            tmp_path,
            other,
            &["File", "FallbackToLogsOnError"],
        )),
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
    errs.extend(volume::validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or(&[]),
        volumes,
        &child(path, "volumeMounts"),
    ));
    let pull_path = child(path, "imagePullPolicy");
    match c.image_pull_policy.as_deref().unwrap_or("") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(pull_path, "")),
        other => errs.push(FieldError::not_supported(
            pull_path,
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, &child(path, "resources")));
    }
    errs
}

/// Upstream `ValidateContainerResourceRequirements` (the quantity rules): values
/// non-negative, requests at most limits.
pub(super) fn validate_resources(r: &ResourceRequirements, path: &str) -> Errors {
    let mut errs = Errors::new();
    let parse =
        |q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity| Quantity::parse(&q.0).ok();
    let limits = r.limits.clone().unwrap_or_default();
    let requests = r.requests.clone().unwrap_or_default();
    for (field, list) in [("limits", &limits), ("requests", &requests)] {
        for (name, q) in list {
            if let Some(v) = parse(q)
                && v.nanos() < 0
            {
                errs.push(FieldError::invalid(
                    key(&child(path, field), name),
                    v.canonical(),
                    NEGATIVE_MSG,
                ));
            }
        }
    }
    let req_path = child(path, "requests");
    for (name, q) in &requests {
        let (Some(req), Some(lim)) = (parse(q), limits.get(name).and_then(parse)) else {
            continue;
        };
        // Upstream `IsOvercommitAllowed`: native (unprefixed or kubernetes.io/) and not
        // hugepages; extended resources must request exactly their limit.
        let native = !name.contains('/') || name.contains("kubernetes.io/");
        let overcommit = native && !name.starts_with("hugepages-");
        if !overcommit && req != lim {
            errs.push(FieldError::invalid(
                req_path.clone(),
                req.canonical(),
                format!("must be equal to {name} limit of {}", lim.canonical()),
            ));
        } else if req > lim {
            errs.push(FieldError::invalid(
                req_path.clone(),
                req.canonical(),
                format!(
                    "must be less than or equal to {name} limit of {}",
                    lim.canonical()
                ),
            ));
        }
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

/// The fields a pod update may change (upstream `updatablePodSpecFields`).
const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Upstream `ValidateContainerUpdates`: same number of containers, images set; `true` means
/// stop (containers were added or removed).
fn validate_container_updates(new: &[Container], old: &[Container], path: &str) -> (Errors, bool) {
    if new.len() != old.len() {
        return (
            vec![FieldError::forbidden(
                path,
                "pod updates may not add or remove containers",
            )],
            true,
        );
    }
    let mut errs = Errors::new();
    for (i, c) in new.iter().enumerate() {
        let image = c.image.as_deref().unwrap_or("");
        if image.is_empty() {
            errs.push(FieldError::required(child(&index(path, i), "image"), ""));
        }
        if image.trim() != image {
            errs.push(FieldError::invalid(
                child(&index(path, i), "image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    (errs, false)
}

/// Upstream `ValidatePodUpdate` (spec part): only images, activeDeadlineSeconds (set once or
/// lowered), added tolerations (existing ones may change only tolerationSeconds), removed
/// scheduling gates, and terminationGracePeriodSeconds from negative to 1 may change.
pub fn validate_pod_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new_pod: Pod = typed(new)?;
    let old_pod: Pod = typed(old)?;
    let ns = new_pod.spec.unwrap_or_default();
    let os = old_pod.spec.unwrap_or_default();
    let mut errs = Errors::new();
    let (e, stop) = validate_container_updates(&ns.containers, &os.containers, "spec.containers");
    errs.extend(e);
    if stop {
        return Ok(errs);
    }
    let (e, stop) = validate_container_updates(
        ns.init_containers.as_deref().unwrap_or(&[]),
        os.init_containers.as_deref().unwrap_or(&[]),
        "spec.initContainers",
    );
    errs.extend(e);
    if stop {
        return Ok(errs);
    }
    let ads_path = "spec.activeDeadlineSeconds";
    match (ns.active_deadline_seconds, os.active_deadline_seconds) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                ads_path,
                n,
                inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return Ok(errs);
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                ads_path,
                n,
                "must be less than or equal to previous value",
            ));
            return Ok(errs);
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            ads_path,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    let new_tol = ns.tolerations.clone().unwrap_or_default();
    for o in os.tolerations.iter().flatten() {
        let found = new_tol.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            o == *n
        });
        if !found {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    let old_gates: BTreeSet<&str> = os
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    for (i, g) in ns.scheduling_gates.iter().flatten().enumerate() {
        if !old_gates.contains(g.name.as_str()) {
            errs.push(FieldError::forbidden(
                child(&index("spec.schedulingGates", i), "name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }
    if ns == os {
        return Ok(errs);
    }
    // Munge the updatable fields back to their old values; anything left is forbidden.
    let mut munged = ns.clone();
    for (n, o) in munged.containers.iter_mut().zip(&os.containers) {
        n.image.clone_from(&o.image);
    }
    for (n, o) in munged
        .init_containers
        .iter_mut()
        .flatten()
        .zip(os.init_containers.iter().flatten())
    {
        n.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = os.active_deadline_seconds;
    munged.scheduling_gates.clone_from(&os.scheduling_gates);
    munged.tolerations.clone_from(&os.tolerations);
    // Deviation: upstream sets nodeName only through the binding subresource, whose storage
    // skips this validation; paddock's API server routes binding through the update path,
    // so setting an empty nodeName once is allowed here.
    if os.node_name.as_deref().unwrap_or("").is_empty() {
        munged.node_name.clone_from(&os.node_name);
    }
    if os.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = os.termination_grace_period_seconds;
    }
    if munged != os {
        errs.push(FieldError::forbidden(
            "spec",
            format!(
                "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n{}",
                spec_diff(&os, &munged)
            ),
        ));
    }
    Ok(errs)
}

/// A readable diff of two pod specs, shaped like the `cmp.Diff` upstream appends: the
/// changed top-level fields, old value with `-`, new with `+`.
fn spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let o = serde_json::to_value(old).unwrap_or_default();
    let n = serde_json::to_value(new).unwrap_or_default();
    let empty = serde_json::Map::new();
    let (om, nm) = (
        o.as_object().unwrap_or(&empty),
        n.as_object().unwrap_or(&empty),
    );
    let mut keys: BTreeSet<&String> = om.keys().collect();
    keys.extend(nm.keys());
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (ov, nv) = (om.get(k), nm.get(k));
        if ov != nv {
            if let Some(v) = ov {
                out.push_str(&format!("- \t{k}: {v},\n"));
            }
            if let Some(v) = nv {
                out.push_str(&format!("+ \t{k}: {v},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

/// Upstream `ValidatePodStatusUpdate` (the rules that guard node agents): nodeName and
/// qosClass do not change, and with restartPolicy Never (or OnFailure after exit code 0) a
/// terminated container does not go back to another state.
pub fn validate_pod_status_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new_pod: Pod = typed(new)?;
    let old_pod: Pod = typed(old)?;
    let mut errs = Errors::new();
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    if node(&new_pod) != node(&old_pod) {
        errs.push(FieldError::forbidden(
            "status.nodeName",
            "may not be changed directly",
        ));
    }
    let (ns, os) = (
        new_pod.status.unwrap_or_default(),
        old_pod.status.unwrap_or_default(),
    );
    if let Some(nn) = ns.nominated_node_name.as_deref().filter(|n| !n.is_empty())
        && ns.nominated_node_name != os.nominated_node_name
    {
        for msg in is_dns1123_subdomain(nn) {
            errs.push(FieldError::invalid("status.nominatedNodeName", nn, msg));
        }
    }
    if ns.qos_class != os.qos_class {
        errs.push(FieldError::invalid(
            "status.qosClass",
            ns.qos_class.clone().unwrap_or_default(),
            super::IMMUTABLE_MSG,
        ));
    }
    let old_spec = old_pod.spec.unwrap_or_default();
    let policy = old_spec.restart_policy.as_deref().unwrap_or("Always");
    let restartable_init: BTreeSet<&str> = old_spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    for (field, new_list, old_list) in [
        (
            "status.containerStatuses",
            &ns.container_statuses,
            &os.container_statuses,
        ),
        (
            "status.initContainerStatuses",
            &ns.init_container_statuses,
            &os.init_container_statuses,
        ),
    ] {
        if policy == "Always" {
            continue;
        }
        for (i, o) in old_list.iter().flatten().enumerate() {
            let Some(term) = o.state.as_ref().and_then(|s| s.terminated.as_ref()) else {
                continue;
            };
            if term.exit_code != 0 && policy == "OnFailure" {
                continue;
            }
            if field == "status.initContainerStatuses" && restartable_init.contains(o.name.as_str())
            {
                continue;
            }
            let regressed = new_list.iter().flatten().any(|n| {
                n.name == o.name
                    && n.state
                        .as_ref()
                        .and_then(|s| s.terminated.as_ref())
                        .is_none()
            });
            if regressed {
                errs.push(FieldError::forbidden(
                    child(&index(field, i), "state"),
                    "may not be transitioned to non-terminated state",
                ));
            }
        }
    }
    Ok(errs)
}

/// The pod template's labels (for the selector check of workloads).
pub fn template_labels(t: &PodTemplateSpec) -> BTreeMap<String, String> {
    t.metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}
