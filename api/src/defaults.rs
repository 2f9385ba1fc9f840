//! Kubernetes defaulting (`SetDefaults_*` from `pkg/apis/core/v1/defaults.go`,
//! `pkg/apis/apps/v1/defaults.go`, `pkg/apis/discovery/v1/defaults.go` and the generated
//! `zz_generated.defaults.go` that walks nested structs) on the typed k8s-openapi objects.
//!
//! One `pub fn` per served kind; [`crate::object::decode`] calls them after the typed round
//! trip. Pod templates inside Deployments and ReplicaSets get the same pod-spec defaults as a
//! Pod, but not the Pod-only ones (`enableServiceLinks`, requests from limits), as upstream.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy,
    ReplicaSet, RollingUpdateDaemonSet, RollingUpdateDeployment, RollingUpdateStatefulSetStrategy,
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Endpoints, EnvVar, Event, Lifecycle, LifecycleHandler, Namespace,
    NamespaceStatus, Node, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, Pod,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ReplicationController,
    ResourceRequirements, Secret, Service, Volume,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::{ByteString, api::core::v1::EmptyDirVolumeSource};

/// `v1.SecretVolumeSourceDefaultMode` and friends: 0644.
const DEFAULT_FILE_MODE: i32 = 0o644;

/// Pod: pod-spec defaults plus the Pod-only ones of `SetDefaults_Pod`.
pub fn pod(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    pod_spec(spec);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        requests_from_limits(c);
    }
    // Ephemeral containers get the container defaults too (the generated defaulters run
    // `SetDefaults_EphemeralContainer`'s equivalents on their common fields).
    for e in spec.ephemeral_containers.iter_mut().flatten() {
        if e.image_pull_policy.as_deref().unwrap_or("").is_empty() {
            let policy = image_pull_policy(e.image.as_deref().unwrap_or(""));
            e.image_pull_policy = Some(policy.to_string());
        }
        set_if_empty(&mut e.termination_message_path, "/dev/termination-log");
        set_if_empty(&mut e.termination_message_policy, "File");
        if e.resources.is_none() {
            e.resources = Some(ResourceRequirements::default());
        }
        for v in e.env.iter_mut().flatten() {
            env_var(v);
        }
    }
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
}

/// If limits are set but requests are not, requests default to limits (Pods only).
fn requests_from_limits(c: &mut Container) {
    let Some(res) = c.resources.as_mut() else {
        return;
    };
    let Some(limits) = res.limits.as_ref() else {
        return;
    };
    let requests = res.requests.get_or_insert_with(Default::default);
    for (k, v) in limits {
        requests.entry(k.clone()).or_insert_with(|| v.clone());
    }
}

/// A pod template (Deployment, ReplicaSet): `SetDefaults_PodSpec` and nested defaults.
pub fn pod_template(t: &mut PodTemplateSpec) {
    pod_spec(t.spec.get_or_insert_with(PodSpec::default));
}

/// `SetDefaults_PodSpec` plus the nested container, probe, volume and port defaults.
pub fn pod_spec(spec: &mut PodSpec) {
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.restart_policy, "Always");
    if spec.security_context.is_none() {
        spec.security_context = Some(PodSecurityContext::default());
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(30);
    }
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
}

/// Sets an optional string to `value` when it is absent or empty (Go's `== ""`).
fn set_if_empty(field: &mut Option<String>, value: &str) {
    if field.as_deref().unwrap_or("").is_empty() {
        *field = Some(value.to_string());
    }
}

/// The `imagePullPolicy` an image gets when none is set: `Always` for `:latest` or no tag,
/// else `IfNotPresent` (an image pinned by digest alone has no tag: `IfNotPresent`, as
/// upstream's `parsers.ParseImageName` sees it).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image_tag(image) == "latest" {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// `SetDefaults_Container` and the defaults of everything a container holds.
pub fn container(c: &mut Container) {
    if c.image_pull_policy.as_deref().unwrap_or("").is_empty() {
        let policy = image_pull_policy(c.image.as_deref().unwrap_or(""));
        c.image_pull_policy = Some(policy.to_string());
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    // Go's Resources is a struct, so it always serializes as at least `{}`.
    if c.resources.is_none() {
        c.resources = Some(ResourceRequirements::default());
    }
    for p in c.ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
    }
    for e in c.env.iter_mut().flatten() {
        env_var(e);
    }
    for p in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        probe(p);
    }
    if let Some(lc) = c.lifecycle.as_mut() {
        lifecycle(lc);
    }
}

/// `fieldRef.apiVersion` defaults to `v1` (`SetDefaults_ObjectFieldSelector`).
fn env_var(e: &mut EnvVar) {
    if let Some(fr) = e.value_from.as_mut().and_then(|vf| vf.field_ref.as_mut()) {
        set_if_empty(&mut fr.api_version, "v1");
    }
}

fn lifecycle(lc: &mut Lifecycle) {
    for h in [&mut lc.post_start, &mut lc.pre_stop].into_iter().flatten() {
        lifecycle_handler(h);
    }
}

fn lifecycle_handler(h: &mut LifecycleHandler) {
    if let Some(g) = h.http_get.as_mut() {
        set_if_empty(&mut g.path, "/");
        set_if_empty(&mut g.scheme, "HTTP");
    }
}

/// `SetDefaults_Probe` (0 means unset) and `SetDefaults_HTTPGetAction`.
pub fn probe(p: &mut Probe) {
    let zero_to = |f: &mut Option<i32>, d: i32| {
        if f.unwrap_or(0) == 0 {
            *f = Some(d);
        }
    };
    zero_to(&mut p.timeout_seconds, 1);
    zero_to(&mut p.period_seconds, 10);
    zero_to(&mut p.success_threshold, 1);
    zero_to(&mut p.failure_threshold, 3);
    if let Some(g) = p.http_get.as_mut() {
        set_if_empty(&mut g.path, "/");
        set_if_empty(&mut g.scheme, "HTTP");
    }
    if let Some(g) = p.grpc.as_mut()
        && g.service.is_none()
    {
        // Go's `*string` default in `SetDefaults_GRPCAction`: the empty service name.
        g.service = Some(String::new());
    }
}

/// `SetDefaults_Volume` (no source → emptyDir) and the per-source default modes.
pub fn volume(v: &mut Volume) {
    let value = serde_json::to_value(&*v).unwrap_or_default();
    let has_source = value
        .as_object()
        .is_some_and(|m| m.keys().any(|k| k != "name"));
    if !has_source {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(s) = v.config_map.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
    }
    if let Some(s) = v.downward_api.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for item in s.items.iter_mut().flatten() {
            if let Some(fr) = item.field_ref.as_mut() {
                set_if_empty(&mut fr.api_version, "v1");
            }
        }
    }
    if let Some(s) = v.projected.as_mut() {
        s.default_mode.get_or_insert(DEFAULT_FILE_MODE);
        for src in s.sources.iter_mut().flatten() {
            if let Some(t) = src.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
        }
    }
    if let Some(h) = v.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
    if let Some(spec) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
    {
        persistent_volume_claim_spec(&mut spec.spec);
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`: `volumeMode: Filesystem`.
pub fn persistent_volume_claim_spec(spec: &mut PersistentVolumeClaimSpec) {
    spec.volume_mode
        .get_or_insert_with(|| "Filesystem".to_string());
}

/// PersistentVolumeClaim: `SetDefaults_PersistentVolumeClaim` (phase `Pending`) and the spec's.
pub fn persistent_volume_claim(pvc: &mut PersistentVolumeClaim) {
    persistent_volume_claim_spec(pvc.spec.get_or_insert_with(Default::default));
    let status = pvc.status.get_or_insert_with(Default::default);
    if status.phase.as_deref().unwrap_or("").is_empty() {
        status.phase = Some("Pending".into());
    }
}

/// PersistentVolume: `SetDefaults_PersistentVolume` (phase `Pending`, reclaim policy
/// `Retain`, `volumeMode: Filesystem`) and the hostPath source's empty type.
pub fn persistent_volume(pv: &mut PersistentVolume) {
    let spec = pv.spec.get_or_insert_with(Default::default);
    if spec
        .persistent_volume_reclaim_policy
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        spec.persistent_volume_reclaim_policy = Some("Retain".into());
    }
    spec.volume_mode
        .get_or_insert_with(|| "Filesystem".to_string());
    if let Some(h) = spec.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
    let status = pv.status.get_or_insert_with(Default::default);
    if status.phase.as_deref().unwrap_or("").is_empty() {
        status.phase = Some("Pending".into());
    }
}

/// IngressClass (`networking.k8s.io/v1` `SetDefaults_IngressClass`): a parameters reference
/// without a scope is cluster-scoped.
pub fn ingress_class(ic: &mut IngressClass) {
    if let Some(p) = ic.spec.as_mut().and_then(|s| s.parameters.as_mut()) {
        p.scope.get_or_insert_with(|| "Cluster".to_string());
    }
}

/// StorageClass (`storage.k8s.io/v1` `SetDefaults_StorageClass`): reclaim policy `Delete`,
/// binding mode `Immediate`.
pub fn storage_class(sc: &mut StorageClass) {
    sc.reclaim_policy
        .get_or_insert_with(|| "Delete".to_string());
    sc.volume_binding_mode
        .get_or_insert_with(|| "Immediate".to_string());
}

/// The tag `ParseImageName` yields: the explicit tag, `""` for a digest-only reference,
/// `latest` when neither is given.
pub fn image_tag(image: &str) -> &str {
    let (name, has_digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    // A tag is after the last ':' that follows the last '/' (a ':' before it is a registry port).
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once(':') {
        Some((_, tag)) => tag,
        None if has_digest => "",
        None => "latest",
    }
}

/// `SetDefaults_Service` plus the per-port defaults (and `status.loadBalancer.ingress[].ipMode`
/// VIP where an IP is set on a LoadBalancer). `ipFamilyPolicy` and `ipFamilies` are not
/// defaults: the API server's allocator fills them in (upstream `initIPFamilyFields`).
pub fn service(svc: &mut Service) {
    let spec = svc.spec.get_or_insert_with(Default::default);
    set_if_empty(&mut spec.session_affinity, "None");
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config =
                    Some(k8s_openapi::api::core::v1::SessionAffinityConfig {
                        client_ip: Some(k8s_openapi::api::core::v1::ClientIPConfig {
                            timeout_seconds: Some(10800),
                        }),
                    });
            }
        }
        _ => {}
    }
    set_if_empty(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    let ty = spec.type_.clone().unwrap_or_default();
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|v| !v.is_empty()));
    if externally_accessible {
        set_if_empty(&mut spec.external_traffic_policy, "Cluster");
    }
    if spec.internal_traffic_policy.is_none()
        && matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP")
    {
        spec.internal_traffic_policy = Some("Cluster".to_string());
    }
    if ty == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        spec.allocate_load_balancer_node_ports = Some(true);
    }
    // LoadBalancerIPMode (GA in 1.32): an ingress point with an IP and no mode is a VIP.
    if ty == "LoadBalancer" {
        let ingress = svc
            .status
            .as_mut()
            .and_then(|s| s.load_balancer.as_mut())
            .and_then(|lb| lb.ingress.as_mut());
        for ing in ingress.into_iter().flatten() {
            if ing.ip.as_deref().is_some_and(|ip| !ip.is_empty()) && ing.ip_mode.is_none() {
                ing.ip_mode = Some("VIP".to_string());
            }
        }
    }
}

/// `SetDefaults_Deployment`: replicas 1, RollingUpdate 25%/25%, revisionHistoryLimit 10,
/// progressDeadlineSeconds 600, and the pod template defaults.
pub fn deployment(d: &mut Deployment) {
    let spec = &mut d.spec;
    spec.replicas.get_or_insert(1);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    set_if_empty(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        ru.max_unavailable
            .get_or_insert_with(|| IntOrString::String("25%".to_string()));
        ru.max_surge
            .get_or_insert_with(|| IntOrString::String("25%".to_string()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    pod_template(&mut spec.template);
}

/// `SetDefaults_ReplicaSet`: replicas 1, and the pod template defaults.
pub fn replica_set(rs: &mut ReplicaSet) {
    let spec = &mut rs.spec;
    spec.replicas.get_or_insert(1);
    pod_template(spec.template.get_or_insert_with(Default::default));
}

/// `SetDefaults_ReplicationController` (core/v1): the template's labels become the selector
/// and the object's labels when those are empty; replicas 1; the pod template defaults.
pub fn replication_controller(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    let labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(labels) = labels {
        if spec.selector.as_ref().is_none_or(|s| s.is_empty()) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
            rc.metadata.labels = Some(labels);
        }
    }
    spec.replicas.get_or_insert(1);
    if let Some(t) = spec.template.as_mut() {
        pod_template(t);
    }
}

/// `SetDefaults_StatefulSet`: podManagementPolicy OrderedReady, updateStrategy RollingUpdate
/// with partition 0, persistentVolumeClaimRetentionPolicy Retain/Retain (StatefulSetAutoDeletePVC
/// is on by default), replicas 1, revisionHistoryLimit 10; the pod template defaults and the
/// volume claim templates' (`volumeMode: Filesystem`, `status.phase: Pending`).
pub fn stateful_set(sts: &mut StatefulSet) {
    let spec = &mut sts.spec;
    set_if_empty(&mut spec.pod_management_policy, "OrderedReady");
    let strategy = spec
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    if strategy.type_.as_deref().unwrap_or("").is_empty() {
        strategy.type_ = Some("RollingUpdate".to_string());
        strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateStatefulSetStrategy::default);
    }
    if strategy.type_.as_deref() == Some("RollingUpdate")
        && let Some(ru) = strategy.rolling_update.as_mut()
    {
        ru.partition.get_or_insert(0);
    }
    let policy = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    set_if_empty(&mut policy.when_deleted, "Retain");
    set_if_empty(&mut policy.when_scaled, "Retain");
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    pod_template(&mut spec.template);
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        let cs = claim.spec.get_or_insert_with(Default::default);
        if cs.volume_mode.is_none() {
            cs.volume_mode = Some("Filesystem".to_string());
        }
        let st = claim.status.get_or_insert_with(Default::default);
        set_if_empty(&mut st.phase, "Pending");
    }
}

/// `SetDefaults_DaemonSet`: updateStrategy RollingUpdate with maxUnavailable 1 and maxSurge
/// 0, revisionHistoryLimit 10; the pod template defaults.
pub fn daemon_set(ds: &mut DaemonSet) {
    let spec = &mut ds.spec;
    let strategy = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    set_if_empty(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        ru.max_unavailable.get_or_insert(IntOrString::Int(1));
        ru.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    pod_template(&mut spec.template);
}

/// ControllerRevisions have no defaulting.
pub fn controller_revision(_: &mut ControllerRevision) {}

/// `SetDefaults_Job` (`pkg/apis/batch/v1/defaults.go`): completions and parallelism 1 when
/// both are unset, parallelism 1, backoffLimit 6 (or MaxInt32 with backoffLimitPerIndex),
/// the Job's labels from the template when it has none, completionMode NonIndexed, suspend
/// false, podReplacementPolicy (Failed with a podFailurePolicy, TerminatingOrFailed
/// otherwise), `status: True` on podFailurePolicy condition patterns; the pod template
/// defaults.
pub fn job(j: &mut Job) {
    let spec = j.spec.get_or_insert_with(JobSpec::default);
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    job_spec(spec);
    if let Some(labels) = template_labels
        && j.metadata.labels.as_ref().is_none_or(|l| l.is_empty())
    {
        j.metadata.labels = Some(labels);
    }
}

/// The part of [`job`] over the spec.
fn job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    set_if_empty(&mut spec.completion_mode, "NonIndexed");
    spec.suspend.get_or_insert(false);
    if let Some(policy) = spec.pod_failure_policy.as_mut() {
        for rule in &mut policy.rules {
            for p in rule.on_pod_conditions.iter_mut().flatten() {
                set_if_empty(&mut p.status, "True");
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        let policy = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy = Some(policy.to_string());
    }
    pod_template(&mut spec.template);
}

/// `SetDefaults_CronJob`: concurrencyPolicy Allow, suspend false, history limits 3 and 1;
/// the job template's pod template gets the pod defaults (its JobSpec is not defaulted until
/// a Job is made from it, as upstream).
pub fn cron_job(c: &mut CronJob) {
    let spec = &mut c.spec;
    set_if_empty(&mut spec.concurrency_policy, "Allow");
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    if let Some(js) = spec.job_template.spec.as_mut() {
        pod_template(&mut js.template);
    }
}

/// `SetDefaults_Namespace` (the `kubernetes.io/metadata.name` label) and status phase Active.
pub fn namespace(ns: &mut Namespace) {
    if let Some(name) = ns.metadata.name.clone().filter(|n| !n.is_empty()) {
        ns.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("kubernetes.io/metadata.name".to_string(), name);
    }
    let status = ns.status.get_or_insert_with(NamespaceStatus::default);
    set_if_empty(&mut status.phase, "Active");
}

/// `SetDefaults_Secret` (type Opaque), and the v1→internal conversion that merges
/// `stringData` into `data`.
pub fn secret(s: &mut Secret) {
    set_if_empty(&mut s.type_, "Opaque");
    if let Some(sd) = s.string_data.take() {
        let data = s.data.get_or_insert_with(Default::default);
        for (k, v) in sd {
            data.insert(k, ByteString(v.into_bytes()));
        }
    }
}

/// ConfigMaps have no visible defaults (`data` becomes an empty map, which Go omits).
pub fn config_map(_cm: &mut ConfigMap) {}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub fn node(n: &mut Node) {
    if let Some(st) = n.status.as_mut()
        && st.allocatable.is_none()
        && st.capacity.is_some()
    {
        st.allocatable = st.capacity.clone();
    }
}

/// `SetDefaults_Endpoints`: port protocol TCP.
pub fn endpoints(e: &mut Endpoints) {
    for ss in e.subsets.iter_mut().flatten() {
        for p in ss.ports.iter_mut().flatten() {
            set_if_empty(&mut p.protocol, "TCP");
        }
    }
}

/// discovery/v1 `SetDefaults_EndpointPort`: name `""`, protocol TCP.
pub fn endpoint_slice(s: &mut EndpointSlice) {
    for p in s.ports.iter_mut().flatten() {
        p.name.get_or_insert_with(String::new);
        set_if_empty(&mut p.protocol, "TCP");
    }
}

/// Events have no defaults.
pub fn event(_e: &mut Event) {}

/// Leases have no defaults.
pub fn lease(_l: &mut Lease) {}

#[cfg(test)]
mod tests;

/// `SetDefaults_RoleBinding` and `SetDefaults_Subject` (rbac/v1): the role reference's and
/// the User and Group subjects' API group is `rbac.authorization.k8s.io`.
pub fn role_binding(b: &mut k8s_openapi::api::rbac::v1::RoleBinding) {
    rbac_refs(&mut b.role_ref, b.subjects.as_deref_mut());
}

/// `SetDefaults_ClusterRoleBinding` and `SetDefaults_Subject` (rbac/v1).
pub fn cluster_role_binding(b: &mut k8s_openapi::api::rbac::v1::ClusterRoleBinding) {
    rbac_refs(&mut b.role_ref, b.subjects.as_deref_mut());
}

fn rbac_refs(
    role_ref: &mut k8s_openapi::api::rbac::v1::RoleRef,
    subjects: Option<&mut [k8s_openapi::api::rbac::v1::Subject]>,
) {
    if role_ref.api_group.as_deref().unwrap_or_default().is_empty() {
        role_ref.api_group = Some(crate::registry::RBAC_GROUP.to_string());
    }
    for s in subjects.unwrap_or_default() {
        if s.api_group.as_deref().unwrap_or_default().is_empty()
            && matches!(s.kind.as_str(), "User" | "Group")
        {
            s.api_group = Some(crate::registry::RBAC_GROUP.to_string());
        }
    }
}

/// autoscaling/v1 `SetDefaults_HorizontalPodAutoscaler`: `minReplicas` 1 (the CPU target's
/// default is applied by the conversion to v2, as upstream's).
pub fn horizontal_pod_autoscaler_v1(
    hpa: &mut k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler,
) {
    hpa.spec.min_replicas.get_or_insert(1);
}

/// autoscaling/v2 `SetDefaults_HorizontalPodAutoscaler`: `minReplicas` 1, a CPU target of 80%
/// when no metric is given, and a given `behavior`'s unset rules and fields from
/// `GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules`.
pub fn horizontal_pod_autoscaler(
    hpa: &mut k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
) {
    use k8s_openapi::api::autoscaling::v2::{
        HPAScalingPolicy, HPAScalingRules, MetricSpec, MetricTarget, ResourceMetricSource,
    };
    let spec = &mut hpa.spec;
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".into(),
            resource: Some(ResourceMetricSource {
                name: "cpu".into(),
                target: MetricTarget {
                    type_: "Utilization".into(),
                    average_utilization: Some(80),
                    ..MetricTarget::default()
                },
            }),
            ..MetricSpec::default()
        }]);
    }
    let policy = |type_: &str, value: i32| HPAScalingPolicy {
        type_: type_.into(),
        value,
        period_seconds: 15,
    };
    let fill =
        |rules: &mut Option<HPAScalingRules>, window: i32, policies: Vec<HPAScalingPolicy>| {
            let r = rules.get_or_insert_with(HPAScalingRules::default);
            r.stabilization_window_seconds.get_or_insert(window);
            r.select_policy.get_or_insert_with(|| "Max".into());
            if r.policies.is_none() {
                r.policies = Some(policies);
            }
        };
    if let Some(b) = spec.behavior.as_mut() {
        fill(
            &mut b.scale_up,
            0,
            vec![policy("Pods", 4), policy("Percent", 100)],
        );
        fill(&mut b.scale_down, 300, vec![policy("Percent", 100)]);
    }
}
