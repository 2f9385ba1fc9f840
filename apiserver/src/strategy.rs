//! Per-kind rules of the generic registry, after upstream's `pkg/registry/<group>/<kind>/
//! strategy.go` files: what a create resets (status), when `metadata.generation` moves,
//! which kinds allow create-on-update, how a pod's grace period is chosen, which
//! finalizers a propagation policy sets, who requested a CertificateSigningRequest and how
//! its subresources merge, and when an update turns into a delete.

use api::quantity::Quantity;
use api::registry::ResourceInfo;
use api::status::ApiError;
use serde_json::{Map, Value, json};

use crate::meta::{self, meta_mut, meta_str};
use crate::options::{DeleteOptions, Propagation, UpdateMode, WriteOptions};
use crate::user::UserInfo;

/// The `namespaces` resource.
pub fn namespaces() -> &'static ResourceInfo {
    api::registry::lookup("", "v1", "namespaces").unwrap_or(&api::registry::resources()[0])
}

/// Checks the body is an object of `info`'s kind and fills `apiVersion`/`kind` when absent.
pub fn check_type(info: &ResourceInfo, obj: Value) -> Result<Value, ApiError> {
    let Value::Object(mut map) = obj else {
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized (must be of type {})",
            info.kind
        )));
    };
    let want = info.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), json!(want));
        }
        Some(av) if av != want => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({want})"
            )));
        }
        Some(_) => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), json!(info.kind));
        }
        Some(k) if k != info.kind => {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): kind {k:?} is not {:?}",
                info.kind, info.kind
            )));
        }
        Some(_) => {}
    }
    if let Some(m) = map.get("metadata")
        && !m.is_object()
        && !m.is_null()
    {
        return Err(ApiError::bad_request(
            "metadata: expected an object".to_string(),
        ));
    }
    Ok(Value::Object(map))
}

/// Fills or checks `metadata.namespace` against the URL's namespace (upstream
/// `rest.EnsureObjectNamespaceMatchesRequestNamespace`).
pub fn check_namespace_field(
    info: &ResourceInfo,
    namespace: &str,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let m = meta_mut(obj);
    let body_ns = m.get("namespace").and_then(Value::as_str).unwrap_or("");
    if info.namespaced {
        if !body_ns.is_empty() && body_ns != namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        m.insert("namespace".into(), json!(namespace));
    } else {
        // Cluster-scoped: a namespace in the body is dropped silently, as upstream does.
        m.remove("namespace");
    }
    Ok(())
}

/// Whether `metadata.generation` is maintained for this kind.
fn uses_generation(info: &ResourceInfo) -> bool {
    matches!(
        info.kind,
        "Deployment"
            | "ReplicaSet"
            | "ReplicationController"
            | "StatefulSet"
            | "DaemonSet"
            | "EndpointSlice"
            | "Job"
            | "CronJob"
            | "Ingress"
            | "IngressClass"
            | "PodDisruptionBudget"
    )
}

/// Whether the kind has a `status` subresource (so the main resource ignores status).
pub fn has_status(info: &ResourceInfo) -> bool {
    info.subresource("status").is_some()
}

/// Upstream `PrepareForCreate` of each strategy; `user` is the authenticated requester.
pub fn prepare_for_create(info: &ResourceInfo, obj: &mut Value, user: Option<&UserInfo>) {
    if uses_generation(info) {
        meta_mut(obj).insert("generation".into(), json!(1));
    } else {
        meta_mut(obj).remove("generation");
    }
    match info.kind {
        "Deployment" | "ReplicaSet" | "CronJob" => {
            obj["status"] = json!({});
        }
        // The Go status structs' fields without `omitempty`.
        "ReplicationController" => {
            obj["status"] = json!({"replicas": 0});
        }
        "StatefulSet" => {
            obj["status"] = json!({"replicas": 0, "availableReplicas": 0});
        }
        "DaemonSet" => {
            obj["status"] = json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
                "desiredNumberScheduled": 0, "numberReady": 0});
            // The internal `spec.templateGeneration` starts at 1; apps/v1 carries it as
            // this annotation.
            set_template_generation(obj, 1);
        }
        "Job" => {
            obj["status"] = json!({});
            generate_job_selector(obj);
        }
        // The HPA strategy resets the status; autoscaling/v2's `desiredReplicas` has no
        // `omitempty`.
        "HorizontalPodAutoscaler" => {
            obj["status"] = json!({"desiredReplicas": 0});
        }
        // policy/v1 PodDisruptionBudgetStatus: the four counters have no `omitempty`.
        "PodDisruptionBudget" => {
            obj["status"] = json!({"disruptionsAllowed": 0, "currentHealthy": 0,
                "desiredHealthy": 0, "expectedPods": 0});
        }
        // The Ingress strategy resets the status (the Go struct's empty `loadBalancer`).
        "Service" | "Ingress" => {
            obj["status"] = json!({"loadBalancer": {}});
        }
        "Pod" => {
            let qos = pod_qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        "Namespace" => {
            obj["status"] = json!({"phase": "Active"});
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            namespace_name_label(obj);
        }
        "CertificateSigningRequest" => csr_requester(obj, user),
        "ServiceAccount" => clean_secret_references(obj),
        // The PV strategy resets the status and stamps the phase transition; the claim
        // strategy resets it (both read back with the defaulted `Pending` phase).
        "PersistentVolume" => {
            obj["status"] =
                json!({"phase": "Pending", "lastPhaseTransitionTime": meta::rfc3339(meta::now())});
        }
        "PersistentVolumeClaim" => {
            obj["status"] = json!({"phase": "Pending"});
        }
        _ => {}
    }
}

/// The ServiceAccount strategy's `cleanSecretReferences` (on create and update): a secret
/// reference keeps its name alone.
fn clean_secret_references(obj: &mut Value) {
    if let Some(secrets) = obj.get_mut("secrets").and_then(Value::as_array_mut) {
        for s in secrets.iter_mut() {
            let name = s.get("name").cloned();
            *s = match name {
                Some(n) => json!({"name": n}),
                None => json!({}),
            };
        }
    }
}

/// The Job strategy's `generateSelector` (unless `spec.manualSelector`): the template gets
/// the job-name and controller-uid labels (both the `batch.kubernetes.io/` ones and the
/// legacy ones, each unless already set: a conflict is left for validation to report), and
/// the selector selects `batch.kubernetes.io/controller-uid`.
fn generate_job_selector(obj: &mut Value) {
    use api::validation::batch::{
        CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
    };
    if obj.pointer("/spec/manualSelector") == Some(&json!(true)) {
        return;
    }
    let name = meta_str(obj, "name").to_string();
    let uid = meta_str(obj, "uid").to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let template = spec.entry("template").or_insert_with(|| json!({}));
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        for (k, v) in [
            (LEGACY_JOB_NAME_LABEL, &name),
            (JOB_NAME_LABEL, &name),
            (LEGACY_CONTROLLER_UID_LABEL, &uid),
            (CONTROLLER_UID_LABEL, &uid),
        ] {
            labels.entry(k).or_insert_with(|| json!(v));
        }
    }
    let selector = spec.entry("selector").or_insert_with(|| json!({}));
    if !selector.is_object() {
        *selector = json!({});
    }
    if !selector["matchLabels"].is_object() {
        selector["matchLabels"] = json!({});
    }
    if let Some(m) = selector["matchLabels"].as_object_mut() {
        m.entry(CONTROLLER_UID_LABEL).or_insert_with(|| json!(uid));
    }
    // Upstream defaults every read from storage, so a Job stored without labels is served
    // with its (now generated) template labels by SetDefaults_Job; store them so.
    let template_labels = obj.pointer("/spec/template/metadata/labels").cloned();
    let m = meta_mut(obj);
    let empty = m
        .get("labels")
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if empty && let Some(l) = template_labels {
        m.insert("labels".into(), l);
    }
}

/// The CSR strategy's `PrepareForCreate`: the requester is whoever authenticated (whatever the
/// body claimed), and nothing arrives approved or signed.
fn csr_requester(obj: &mut Value, user: Option<&UserInfo>) {
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        for f in ["username", "uid", "groups", "extra"] {
            spec.remove(f);
        }
        if let Some(u) = user {
            if !u.name.is_empty() {
                spec.insert("username".into(), json!(u.name));
            }
            if !u.uid.is_empty() {
                spec.insert("uid".into(), json!(u.uid));
            }
            if !u.groups.is_empty() {
                spec.insert("groups".into(), json!(u.groups));
            }
        }
    }
    obj["status"] = json!({});
}

/// The CSR status strategy: Approved and Denied conditions stay as they were (only
/// `approval` changes them; validation reports an attempt to add or remove one).
fn preserve_approval_conditions(old: &Value, new: &mut Value) {
    let conds = |v: &Value| {
        v.pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let old_conds = conds(old);
    let Some(new_conds) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for t in ["Approved", "Denied"] {
        let of = |list: &[Value]| -> Vec<usize> {
            (0..list.len())
                .filter(|&i| list[i]["type"].as_str() == Some(t))
                .collect()
        };
        let (o, n) = (of(&old_conds), of(new_conds));
        if o.len() == n.len() {
            for (oi, ni) in o.into_iter().zip(n) {
                new_conds[ni] = old_conds[oi].clone();
            }
        }
    }
}

/// Upstream `populateConditionTimestamps`: a condition without `lastUpdateTime` gets now; one
/// without `lastTransitionTime` keeps that of the same type and status before, or gets now.
fn populate_condition_timestamps(old: &Value, new: &mut Value) {
    let now = json!(meta::rfc3339(meta::now()));
    let old_conds = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(conds) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in conds.iter_mut().filter_map(Value::as_object_mut) {
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c.insert("lastUpdateTime".into(), now.clone());
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            let before = old_conds
                .iter()
                .find(|o| {
                    o.get("type") == c.get("type")
                        && o.get("status") == c.get("status")
                        && o.get("lastTransitionTime").is_some_and(|t| !t.is_null())
                })
                .and_then(|o| o.get("lastTransitionTime").cloned());
            c.insert(
                "lastTransitionTime".into(),
                before.unwrap_or_else(|| now.clone()),
            );
        }
    }
}

/// Namespaces always carry `kubernetes.io/metadata.name=<name>` (upstream strategy).
fn namespace_name_label(obj: &mut Value) {
    let name = meta_str(obj, "name").to_string();
    let m = meta_mut(obj);
    let labels = m.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels["kubernetes.io/metadata.name"] = json!(name);
}

/// The pod's QoS class (upstream `qos.GetPodQOS`), from requests and limits of all
/// containers and init containers.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    // Upstream `ComputePodQOS` (pkg/apis/core/helper/qos): sums of positive cpu/memory
    // quantities, compared as quantities (`1` equals `1000m`), pod-level resources first.
    type Sums = std::collections::BTreeMap<&'static str, Quantity>;
    fn add(sums: &mut Sums, list: &Map<String, Value>, found: Option<&mut Vec<&'static str>>) {
        let mut found = found;
        for name in ["cpu", "memory"] {
            let Some(q) = list
                .get(name)
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Quantity>().ok())
            else {
                continue;
            };
            if q.is_zero() || q.nanos() < 0 {
                continue;
            }
            if let Some(f) = found.as_deref_mut() {
                f.push(name);
            }
            let sum = sums.get(name).map_or_else(|| q, |s| s.add(&q));
            sums.insert(name, sum);
        }
    }
    let list = |v: &Value, k: &str| {
        v.pointer(&format!("/resources/{k}"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (mut requests, mut limits) = (Sums::new(), Sums::new());
    let mut guaranteed = true;
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    if spec.get("resources").is_some_and(Value::is_object) {
        let (limit_list, mut request_list) = (list(&spec, "limits"), list(&spec, "requests"));
        for (k, v) in &limit_list {
            request_list.entry(k.clone()).or_insert_with(|| v.clone());
        }
        add(&mut requests, &request_list, None);
        let mut found = Vec::new();
        add(&mut limits, &limit_list, Some(&mut found));
        guaranteed = found.len() == 2;
    } else {
        let containers = ["containers", "initContainers"].into_iter().flat_map(|f| {
            spec.get(f)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        });
        for c in containers {
            let limit_list = list(&c, "limits");
            let mut request_list = list(&c, "requests");
            // Defaulting (SetDefaults_Pod) gives requests from limits.
            for (k, v) in &limit_list {
                request_list.entry(k.clone()).or_insert_with(|| v.clone());
            }
            add(&mut requests, &request_list, None);
            let mut found = Vec::new();
            add(&mut limits, &limit_list, Some(&mut found));
            if found.len() != 2 {
                guaranteed = false;
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.len() == limits.len()
        && requests.iter().all(|(k, r)| limits.get(k) == Some(r))
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Upstream `AllowCreateOnUpdate`.
pub fn allow_create_on_update(info: &ResourceInfo) -> bool {
    matches!(info.kind, "Service" | "Endpoints" | "Event" | "Lease")
}

/// For kinds with a status subresource, the main resource keeps the stored status.
pub fn keep_status(info: &ResourceInfo, old: &Value, new: &mut Value) {
    if !has_status(info) {
        return;
    }
    let Some(obj) = new.as_object_mut() else {
        return;
    };
    match old.get("status") {
        Some(s) => {
            obj.insert("status".into(), s.clone());
        }
        None => {
            obj.remove("status");
        }
    }
}

/// What a status update takes from the new object besides `status`. Upstream's
/// `deploymentStatusStrategy.PrepareForUpdate` keeps only spec and labels from the stored
/// Deployment, so the deployment controller's revision annotation travels with its status
/// write (without the generation bump a main-resource update would cause).
pub fn status_update_metadata(info: &ResourceInfo, new: &Value, merged: &mut Value) {
    if info.kind != "Deployment" {
        return;
    }
    let m = meta_mut(merged);
    match new.pointer("/metadata/annotations") {
        Some(a) => {
            m.insert("annotations".into(), a.clone());
        }
        None => {
            m.remove("annotations");
        }
    }
}

/// Upstream `PrepareForUpdate`: generation bumps and fields the main resource may not
/// change.
pub fn prepare_for_update(info: &ResourceInfo, old: &Value, new: &mut Value, mode: UpdateMode) {
    match info.kind {
        "Namespace" => {
            if mode == UpdateMode::Main || mode == UpdateMode::Status {
                // spec.finalizers only change through /finalize.
                match old.get("spec") {
                    Some(s) => new["spec"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("spec");
                        }
                    }
                }
            }
            namespace_name_label(new);
        }
        "Deployment"
            if mode == UpdateMode::Main
                && (old.get("spec") != new.get("spec")
                    || meta::meta(old).and_then(|m| m.get("annotations"))
                        != meta::meta(new).and_then(|m| m.get("annotations"))) =>
        {
            bump_generation(old, new);
        }
        "DaemonSet" if mode == UpdateMode::Main => {
            // The DaemonSet strategy: templateGeneration (the annotation, which a client
            // cannot set) follows template changes.
            let old_gen = template_generation(old);
            let bump = old.pointer("/spec/template") != new.pointer("/spec/template");
            set_template_generation(new, if bump { old_gen + 1 } else { old_gen });
            if old.get("spec") != new.get("spec") {
                bump_generation(old, new);
            }
        }
        "ReplicaSet"
        | "ReplicationController"
        | "StatefulSet"
        | "Job"
        | "CronJob"
        | "Ingress"
        | "IngressClass"
        | "PodDisruptionBudget"
            if mode == UpdateMode::Main && old.get("spec") != new.get("spec") =>
        {
            bump_generation(old, new);
        }
        "Service" if mode == UpdateMode::Main => drop_type_dependent_fields(old, new),
        "ServiceAccount" => clean_secret_references(new),
        // Certificate requests are immutable but through their subresources (the status is
        // kept by `keep_status`, or merged per subresource by the registry).
        "CertificateSigningRequest" => {
            match old.get("spec") {
                Some(spec) => new["spec"] = spec.clone(),
                None => {
                    if let Some(o) = new.as_object_mut() {
                        o.remove("spec");
                    }
                }
            }
            if mode == UpdateMode::Status {
                preserve_approval_conditions(old, new);
            }
            if matches!(mode, UpdateMode::Status | UpdateMode::Approval) {
                populate_condition_timestamps(old, new);
            }
        }
        // persistentvolumeStatusStrategy: a phase change stamps lastPhaseTransitionTime
        // unless the writer set a new one.
        "PersistentVolume" if mode == UpdateMode::Status => {
            let phase = |v: &Value| v.pointer("/status/phase").cloned();
            let stamp = |v: &Value| v.pointer("/status/lastPhaseTransitionTime").cloned();
            if phase(old) != phase(new)
                && (stamp(new).is_none_or(|t| t.is_null()) || stamp(new) == stamp(old))
                && let Some(st) = new.get_mut("status").and_then(Value::as_object_mut)
            {
                st.insert(
                    "lastPhaseTransitionTime".into(),
                    json!(meta::rfc3339(meta::now())),
                );
            }
        }
        "EndpointSlice" => {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(o) = v.as_object_mut() {
                    o.remove("metadata");
                }
                v
            };
            if strip(old) != strip(new) {
                bump_generation(old, new);
            }
        }
        _ => {}
    }
}

/// Upstream service `dropTypeDependentFields`: on a type change, fields the new type does
/// not use are wiped when the request left them as they were (so they are released), and
/// a service that is no longer a LoadBalancer loses its load-balancer status.
fn drop_type_dependent_fields(old: &Value, new: &mut Value) {
    use crate::alloc::{needs_health_check_port, needs_node_port, node_ports, service_type};
    let (old_ty, new_ty) = (service_type(old).to_string(), service_type(new).to_string());
    let spec = |v: &Value, f: &str| v.get("spec").and_then(|s| s.get(f)).cloned();
    let same = |f: &str| spec(old, f) == spec(new, f);
    let externally_accessible = |v: &Value, t: &str| {
        t == "LoadBalancer"
            || t == "NodePort"
            || (t == "ClusterIP"
                && v.pointer("/spec/externalIPs")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty()))
    };
    let mut drop_fields: Vec<&str> = Vec::new();
    if old_ty != "ExternalName" && new_ty == "ExternalName" {
        if same("clusterIP") && same("clusterIPs") {
            drop_fields.extend(["clusterIP", "clusterIPs"]);
        }
        if same("ipFamilies") {
            drop_fields.push("ipFamilies");
        }
        if same("ipFamilyPolicy") {
            drop_fields.push("ipFamilyPolicy");
        }
    }
    // Users may add, remove or change ports as long as no NodePort is new.
    let wipe_node_ports = needs_node_port(old)
        && !needs_node_port(new)
        && node_ports(new).iter().all(|p| node_ports(old).contains(p));
    if needs_health_check_port(old) && !needs_health_check_port(new) && same("healthCheckNodePort")
    {
        drop_fields.push("healthCheckNodePort");
    }
    if old_ty == "LoadBalancer" && new_ty != "LoadBalancer" {
        let (o, n) = (
            spec(old, "allocateLoadBalancerNodePorts"),
            spec(new, "allocateLoadBalancerNodePorts"),
        );
        if o.is_some() && o == n {
            drop_fields.push("allocateLoadBalancerNodePorts");
        }
        if same("loadBalancerClass") {
            drop_fields.push("loadBalancerClass");
        }
    }
    if externally_accessible(old, &old_ty)
        && !externally_accessible(new, &new_ty)
        && same("externalTrafficPolicy")
    {
        drop_fields.push("externalTrafficPolicy");
    }
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        for f in drop_fields {
            spec.remove(f);
        }
    }
    if wipe_node_ports
        && let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
    {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("nodePort");
        }
    }
    if new_ty != "LoadBalancer" {
        match new.get_mut("status").and_then(Value::as_object_mut) {
            Some(status) => {
                status.insert("loadBalancer".into(), json!({}));
            }
            None => new["status"] = json!({"loadBalancer": {}}),
        }
    }
}

/// The annotation apps/v1 DaemonSets carry their internal `templateGeneration` in.
const DS_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// A DaemonSet's template generation (1 when unset or not a number).
fn template_generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(DS_TEMPLATE_GENERATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn set_template_generation(obj: &mut Value, generation: i64) {
    let m = meta_mut(obj);
    let annotations = m.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[DS_TEMPLATE_GENERATION] = json!(generation.to_string());
}

fn bump_generation(old: &Value, new: &mut Value) {
    meta_mut(new).insert("generation".into(), json!(meta::generation(old) + 1));
}

/// Upstream `WarningsOnCreate` of the strategies that have any: the Ingress strategy warns
/// about the deprecated `kubernetes.io/ingress.class` annotation when no
/// `spec.ingressClassName` is set (the admission plugin leaves an annotated Ingress alone).
pub fn warnings_on_create(info: &ResourceInfo, obj: &Value) -> Vec<String> {
    use api::validation::networking::INGRESS_CLASS_ANNOTATION;
    if info.kind != "Ingress" || info.group != api::registry::NETWORKING_GROUP {
        return Vec::new();
    }
    let annotated = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
        .is_some();
    let classed = obj
        .pointer("/spec/ingressClassName")
        .is_some_and(|c| !c.is_null());
    if annotated && !classed {
        vec![format!(
            "annotation {INGRESS_CLASS_ANNOTATION:?} is deprecated, please use 'spec.ingressClassName' instead"
        )]
    } else {
        Vec::new()
    }
}

/// Create-time validation (field-level validation lives in the `api` crate).
pub fn validate_create(
    info: &ResourceInfo,
    obj: &Value,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let _ = opts;
    api::object::validate_create(info, obj)
}

/// Update-time validation: the status strategy's `ValidateUpdate` for writes to the
/// `status` subresource (`ValidateServiceStatusUpdate`, `ValidatePodStatusUpdate`, …), the
/// main strategy's otherwise.
pub fn validate_update(
    info: &ResourceInfo,
    new: &Value,
    old: &Value,
    mode: UpdateMode,
    opts: &WriteOptions,
) -> Result<(), ApiError> {
    let _ = opts;
    match mode {
        UpdateMode::Status => api::object::validate_status_update(info, new, old),
        UpdateMode::Approval => api::object::validate_approval_update(info, new, old),
        UpdateMode::EphemeralContainers => {
            api::object::validate_ephemeral_containers_update(info, new, old)
        }
        _ => api::object::validate_update(info, new, old),
    }
}

/// Records the write in `metadata.managedFields`.
pub fn record_managed_fields(
    info: &ResourceInfo,
    old: Option<&Value>,
    new: &mut Value,
    opts: &WriteOptions,
    mode: UpdateMode,
    now: k8s_openapi::jiff::Timestamp,
) {
    let manager = opts.field_manager.as_deref().unwrap_or(DEFAULT_MANAGER);
    let sub = match mode {
        UpdateMode::Status => "status",
        UpdateMode::Approval => "approval",
        UpdateMode::EphemeralContainers => "ephemeralcontainers",
        UpdateMode::Main | UpdateMode::Finalize => "",
    };
    api::patch::record_update_with(old, new, info.kind, manager, sub, &meta::rfc3339(now));
}

/// The field manager of writes that name none (in-process controllers).
pub const DEFAULT_MANAGER: &str = "kube-controller-manager";

/// Whether an update changes nothing but bookkeeping (then no write happens, as upstream's
/// GuaranteedUpdate skips identical bytes).
pub fn unchanged(old: &Value, new: &Value) -> bool {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return old == new;
    };
    if o.len() != n.len() {
        return false;
    }
    for (k, v) in o {
        let Some(nv) = n.get(k) else {
            return false;
        };
        if k == "metadata" {
            let strip = |v: &Value| {
                let mut m = v.as_object().cloned().unwrap_or_default();
                m.remove("resourceVersion");
                m.remove("managedFields");
                m
            };
            if strip(v) != strip(nv) {
                return false;
            }
        } else if v != nv {
            return false;
        }
    }
    true
}

/// Whether an object marked for deletion may go now: no finalizers left, and for pods the
/// grace period is over (`deletionGracePeriodSeconds: 0`), for namespaces `spec.finalizers`
/// is empty.
pub fn should_delete_during_update(info: &ResourceInfo, obj: &Value) -> bool {
    let Some(m) = meta::meta(obj) else {
        return false;
    };
    if !m.contains_key("deletionTimestamp") || !meta::finalizers(obj).is_empty() {
        return false;
    }
    match info.kind {
        "Pod" => {
            m.get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == 0
        }
        "Namespace" => obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        _ => true,
    }
}

/// Graceful deletion (upstream `rest.BeforeDelete` + pod `CheckGracefulDelete`): for a pod
/// bound to a node and not finished, with a grace period > 0, sets `deletionTimestamp` =
/// now + grace and `deletionGracePeriodSeconds`. Returns whether the deletion is graceful
/// (the object stays).
pub fn graceful_delete(
    info: &ResourceInfo,
    old: &Value,
    new: &mut Value,
    opts: &DeleteOptions,
    now: k8s_openapi::jiff::Timestamp,
) -> bool {
    if info.kind != "Pod" {
        return false;
    }
    let mut grace = opts.grace_period_seconds.unwrap_or_else(|| {
        old.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    let node = old
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let phase = old
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() || phase == "Succeeded" || phase == "Failed" {
        grace = 0;
    }
    let grace = grace.max(0);
    let m = meta::meta(old);
    if let Some(current) = m
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        && m.is_some_and(|m| m.contains_key("deletionTimestamp"))
    {
        // Already terminating: only a shorter grace period changes anything.
        if grace >= current {
            return current > 0;
        }
    }
    if grace == 0 {
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut)
            && m.contains_key("deletionTimestamp")
        {
            m.insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        return false;
    }
    let at = now
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(grace))
        .unwrap_or(now);
    let m = meta_mut(new);
    m.insert("deletionTimestamp".into(), json!(meta::rfc3339(at)));
    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    if meta::generation(old) > 0 {
        m.insert("generation".into(), json!(meta::generation(old) + 1));
    }
    true
}

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// Whether deleting an object of this kind without a propagation policy orphans its
/// dependents (the strategy's `DefaultGarbageCollectionPolicy` is `OrphanDependents`): only
/// ReplicationControllers among the served kinds, as before server-side garbage collection.
pub fn orphans_by_default(info: &ResourceInfo) -> bool {
    info.kind == "ReplicationController" && info.group.is_empty()
}

/// Sets the garbage-collection finalizers a propagation policy asks for (upstream
/// `deletionFinalizersForGarbageCollection`); returns whether they changed. Without a policy,
/// a finalizer already on the object decides, then the kind's default (`default_orphan`).
pub fn gc_finalizers(obj: &mut Value, policy: Option<Propagation>, default_orphan: bool) -> bool {
    let before = meta::finalizers(obj);
    let (orphan, foreground) = match policy {
        Some(Propagation::Orphan) => (true, false),
        Some(Propagation::Foreground) => (false, true),
        Some(Propagation::Background) => (false, false),
        None => {
            let has_orphan = before.iter().any(|f| f == ORPHAN);
            let has_foreground = before.iter().any(|f| f == FOREGROUND);
            (
                has_orphan || (!has_foreground && default_orphan),
                has_foreground && !has_orphan,
            )
        }
    };
    let mut after: Vec<String> = before
        .iter()
        .filter(|f| f.as_str() != ORPHAN && f.as_str() != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        after.push(ORPHAN.into());
    }
    if foreground {
        after.push(FOREGROUND.into());
    }
    let mut a = after.clone();
    let mut b = before.clone();
    a.sort();
    b.sort();
    if a == b {
        return false;
    }
    meta::set_finalizers(obj, &after);
    true
}

/// Namespace deletion (upstream namespace `REST.Delete`): marks the namespace
/// `Terminating`; returns whether it must stay (its `spec.finalizers` are pending).
pub fn namespace_delete(
    info: &ResourceInfo,
    obj: &mut Value,
    now: k8s_openapi::jiff::Timestamp,
) -> bool {
    if info.kind != "Namespace" {
        return false;
    }
    let pending = obj
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    obj["status"]["phase"] = json!("Terminating");
    let m = meta_mut(obj);
    if !m.contains_key("deletionTimestamp") {
        m.insert("deletionTimestamp".into(), json!(meta::rfc3339(now)));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
    pending
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The resource of `kind` (shared by the crate's unit tests).
    pub(crate) fn info(kind: &str) -> &'static ResourceInfo {
        api::registry::resources()
            .iter()
            .find(|r| r.kind == kind)
            .unwrap()
    }

    #[test]
    fn qos() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "a", "resources": res}]}});
        assert_eq!(pod_qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            pod_qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            pod_qos_class(&pod(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        // Quantities compare by value, not by spelling.
        assert_eq!(
            pod_qos_class(&pod(json!({
                "limits": {"cpu": "1", "memory": "1Gi"},
                "requests": {"cpu": "1000m", "memory": "1024Mi"}
            }))),
            "Guaranteed"
        );
        // Zero quantities do not count; a limit without cpu is not Guaranteed.
        assert_eq!(
            pod_qos_class(&pod(json!({"requests": {"cpu": "0"}}))),
            "BestEffort"
        );
        assert_eq!(
            pod_qos_class(&pod(json!({"limits": {"memory": "1Gi"}}))),
            "Burstable"
        );
        // Two containers: Guaranteed needs every container to have both limits.
        let two = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "b"}
        ]}});
        assert_eq!(pod_qos_class(&two), "Burstable");
        // Pod-level resources decide when present.
        let pod_level = json!({"spec": {
            "resources": {"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "2", "memory": "2Gi"}},
            "containers": [{"name": "a"}]
        }});
        assert_eq!(pod_qos_class(&pod_level), "Guaranteed");
    }

    #[test]
    fn gc_finalizer_policies() {
        let mut o = json!({"metadata": {"finalizers": ["x"]}});
        assert!(gc_finalizers(&mut o, Some(Propagation::Foreground), false));
        assert_eq!(meta::finalizers(&o), ["x", "foregroundDeletion"]);
        assert!(gc_finalizers(&mut o, Some(Propagation::Orphan), false));
        assert_eq!(meta::finalizers(&o), ["x", "orphan"]);
        assert!(!gc_finalizers(&mut o, None, false));
        assert!(gc_finalizers(&mut o, Some(Propagation::Background), false));
        assert_eq!(meta::finalizers(&o), ["x"]);
        assert!(!gc_finalizers(&mut o, Some(Propagation::Background), false));
        // A ReplicationController orphans by default unless a finalizer already decided.
        assert!(orphans_by_default(info("ReplicationController")));
        assert!(!orphans_by_default(info("ReplicaSet")));
        let mut rc = json!({"metadata": {}});
        assert!(gc_finalizers(&mut rc, None, true));
        assert_eq!(meta::finalizers(&rc), ["orphan"]);
        let mut rc = json!({"metadata": {"finalizers": ["foregroundDeletion"]}});
        assert!(!gc_finalizers(&mut rc, None, true));
        let mut rc = json!({"metadata": {}});
        assert!(!gc_finalizers(&mut rc, Some(Propagation::Background), true));
    }

    #[test]
    fn deployment_generation_moves_on_spec_and_annotations() {
        let d = info("Deployment");
        let old = json!({"metadata": {"generation": 3}, "spec": {"replicas": 1}});
        let mut new = old.clone();
        prepare_for_update(d, &old, &mut new, UpdateMode::Main);
        assert_eq!(meta::generation(&new), 3);
        new["spec"]["replicas"] = json!(2);
        prepare_for_update(d, &old, &mut new, UpdateMode::Main);
        assert_eq!(meta::generation(&new), 4);
        let mut new = old.clone();
        new["metadata"]["annotations"] = json!({"a": "b"});
        prepare_for_update(d, &old, &mut new, UpdateMode::Main);
        assert_eq!(meta::generation(&new), 4);
        let rs = info("ReplicaSet");
        let mut new = old.clone();
        new["metadata"]["annotations"] = json!({"a": "b"});
        prepare_for_update(rs, &old, &mut new, UpdateMode::Main);
        assert_eq!(meta::generation(&new), 3);
    }

    #[test]
    fn pod_grace() {
        let p = info("Pod");
        let now = meta::now();
        let bound = json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n"}, "status": {"phase": "Running"}});
        let mut new = bound.clone();
        assert!(graceful_delete(
            p,
            &bound,
            &mut new,
            &DeleteOptions::default(),
            now
        ));
        assert_eq!(new["metadata"]["deletionGracePeriodSeconds"], 30);
        let unbound = json!({"metadata": {"name": "a"}, "spec": {}});
        let mut new = unbound.clone();
        assert!(!graceful_delete(
            p,
            &unbound,
            &mut new,
            &DeleteOptions::default(),
            now
        ));
        let zero = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let mut new = bound.clone();
        assert!(!graceful_delete(p, &bound, &mut new, &zero, now));
    }
}
