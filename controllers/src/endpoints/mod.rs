//! The Endpoints controller (upstream `pkg/controller/endpoint/endpoints_controller.go`) and
//! the pod/service helpers it shares with [`crate::endpointslice`] (upstream
//! `staging/src/k8s.io/endpointslice/util/controller_utils.go`, `pkg/api/v1/pod` `FindPort`).
//!
//! Start at [`Controller::sync`], upstream's `syncService`: for a Service with a selector
//! (and not of type ExternalName) every pod of its namespace that the selector matches and
//! [`should_pod_be_in_endpoints`] admits becomes one address per service port, with the port
//! number resolved from the pod ([`find_port`]: a named `targetPort` is looked up in the pod's
//! container ports); ready pods (or every pod with `publishNotReadyAddresses`) go to
//! `addresses`, the others to `notReadyAddresses`; the subsets are repacked
//! ([`repack_subsets`]), truncated to 1000 addresses with the `over-capacity` annotation, and
//! written to the Endpoints object of the Service's name when they changed. A Service that
//! is gone takes its Endpoints with it.
//!
//! [`ServiceTracker`] turns watched changes into service keys for both controllers: a service
//! change queues it, a pod change queues every service whose selector matches the old or new
//! pod.
//!
//! Services, pods and Endpoints are read as k8s-openapi types (`crate::typed`); the desired
//! Endpoints is built typed and serialised once, at the write, which edits only the fields
//! this controller owns in the stored JSON.

#[cfg(test)]
mod pinned;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints as EndpointsObject, ObjectReference,
    Pod, Service, ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::pod::typed::{hostname, is_ready, is_terminal, node_name, ready_condition};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// Most addresses an Endpoints object holds (upstream `maxCapacity`).
pub const MAX_CAPACITY: usize = 1000;
/// Annotation set when addresses were dropped for capacity (upstream `v1.EndpointsOverCapacity`).
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Label marking the objects of a headless service (upstream `v1.IsHeadlessService`).
pub const HEADLESS: &str = "service.kubernetes.io/headless";
/// Annotation with the time of the earliest change that led to this write (upstream
/// `v1.EndpointsLastChangeTriggerTime`).
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

pub(crate) fn services() -> &'static ResourceInfo {
    typed::info::<Service>()
}

pub(crate) fn pods() -> &'static ResourceInfo {
    typed::info::<Pod>()
}

fn endpoints() -> &'static ResourceInfo {
    typed::info::<EndpointsObject>()
}

/// A service key: (namespace, name).
pub(crate) type Key = (String, String);

/// The key of an object's metadata.
pub(crate) fn key_of(m: &ObjectMeta) -> Key {
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// The key of a watched object, read from its metadata; `None` when that does not decode.
pub(crate) fn watched_key(obj: &Value) -> Option<Key> {
    typed::metadata(obj)
        .inspect_err(|e| tracing::warn!(error = %e, "ignoring a watched object"))
        .ok()
        .map(|m| key_of(&m))
}

/// The service's `spec.selector` when these controllers manage it: services without a
/// selector and ExternalName services get no endpoints from them.
pub(crate) fn managed_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    spec.selector.as_ref().filter(|m| !m.is_empty())
}

/// Whether a service selector (a plain label map) matches the pod's labels.
pub(crate) fn selects(selector: &BTreeMap<String, String>, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.as_ref();
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether `metadata.deletionTimestamp` is set.
pub(crate) fn deleting(m: &ObjectMeta) -> bool {
    m.deletion_timestamp.is_some()
}

/// Upstream `ShouldPodBeInEndpoints`: not terminal, has an IP, and (when
/// `include_terminating` is false) not being deleted.
pub(crate) fn should_pod_be_in_endpoints(p: &Pod, include_terminating: bool) -> bool {
    if is_terminal(p) {
        return false;
    }
    let has_ip = p.status.as_ref().is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
            || s.pod_ips.as_ref().is_some_and(|a| !a.is_empty())
    });
    if !has_ip {
        return false;
    }
    include_terminating || !deleting(&p.metadata)
}

/// Upstream `ShouldSetHostname`.
pub(crate) fn should_set_hostname(p: &Pod, svc: &Service) -> bool {
    let subdomain = p.spec.as_ref().and_then(|s| s.subdomain.as_deref());
    !hostname(p).is_empty()
        && subdomain == Some(svc.metadata.name.as_deref().unwrap_or(""))
        && p.metadata.namespace.as_deref().unwrap_or("")
            == svc.metadata.namespace.as_deref().unwrap_or("")
}

/// Upstream `podutil.FindPort`: the pod's port for a service port. A numeric (or absent,
/// meaning `port`) `targetPort` is used as is; a named one is the `containerPort` of the
/// container port (in a container or restartable init container) with that name and the
/// service port's protocol. `None` when the name is not found.
pub(crate) fn find_port(p: &Pod, svc_port: &ServicePort) -> Option<i32> {
    let name = match &svc_port.target_port {
        None => return Some(svc_port.port),
        Some(IntOrString::Int(n)) => return Some(*n),
        Some(IntOrString::String(name)) => name,
    };
    if let Ok(n) = name.parse::<i32>() {
        return Some(n);
    }
    let protocol = svc_port.protocol.as_deref().unwrap_or("TCP");
    let spec = p.spec.as_ref()?;
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|cp| {
            cp.name.as_deref() == Some(name.as_str())
                && cp.protocol.as_deref().unwrap_or("TCP") == protocol
        })
        .map(|cp| cp.container_port)
}

/// The service's IP families (`spec.ipFamilies`, IPv4 when unset).
pub(crate) fn ip_families(svc: &Service) -> Vec<&str> {
    let families: Vec<&str> = svc
        .spec
        .iter()
        .flat_map(|s| s.ip_families.iter().flatten())
        .map(String::as_str)
        .collect();
    if families.is_empty() {
        vec!["IPv4"]
    } else {
        families
    }
}

/// The pod's IP of `family` (`IPv4` / `IPv6`), from `status.podIPs` then `status.podIP`.
pub(crate) fn pod_ip<'a>(p: &'a Pod, family: &str) -> Option<&'a str> {
    let want_v6 = family == "IPv6";
    let status = p.status.as_ref()?;
    status
        .pod_ips
        .iter()
        .flatten()
        .map(|i| i.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .find(|ip| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_ipv6() == want_v6)
        })
}

/// A reference to the pod as endpoints carry it.
pub(crate) fn target_ref(p: &Pod) -> ObjectReference {
    let m = &p.metadata;
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: Some(m.namespace.clone().unwrap_or_default()),
        name: Some(m.name.clone().unwrap_or_default()),
        uid: Some(m.uid.clone().unwrap_or_default()),
        ..Default::default()
    }
}

/// Whether the service has a cluster IP (upstream `IsServiceIPSet`); headless otherwise.
pub(crate) fn is_service_ip_set(svc: &Service) -> bool {
    let ip = svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    !matches!(ip, None | Some("" | "None"))
}

/// Upstream `publishNotReadyAddresses`.
pub(crate) fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// Edits a string map of the stored JSON's `metadata` (`labels`, `annotations`) through its
/// typed form; an emptied map is removed.
pub(crate) fn edit_map(
    obj: &mut Value,
    field: &str,
    f: impl FnOnce(&mut BTreeMap<String, String>),
) {
    let md = &mut obj["metadata"];
    let mut map = BTreeMap::<String, String>::deserialize(&md[field]).unwrap_or_default();
    f(&mut map);
    match md.as_object_mut() {
        Some(o) if map.is_empty() => {
            o.remove(field);
        }
        _ => md[field] = serde_json::to_value(map).unwrap_or_default(),
    }
}

/// Sets (or, without a time, removes) the trigger-time annotation (upstream
/// `addTriggerTimeAnnotation`).
pub(crate) fn set_trigger(annotations: &mut BTreeMap<String, String>, trigger: Option<&str>) {
    match trigger {
        Some(t) => {
            annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), t.into());
        }
        None => {
            annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        }
    }
}

/// Turns watched service and pod changes into the keys of the services they concern
/// (upstream `addPod` / `updatePod` / `deletePod` + `GetPodServiceMemberships`).
pub(crate) struct ServiceTracker {
    cluster: ClusterRef,
    /// The last seen state of every pod, to match the old labels on updates.
    pods: Mutex<HashMap<Key, Arc<Pod>>>,
    /// The services seen (upstream's serviceLister), to find those selecting a pod.
    services: Mutex<HashMap<Key, Arc<Service>>>,
}

impl ServiceTracker {
    pub(crate) fn new(cluster: ClusterRef) -> ServiceTracker {
        ServiceTracker {
            cluster,
            pods: Mutex::new(HashMap::new()),
            services: Mutex::new(HashMap::new()),
        }
    }

    /// The services to sync for a service or pod change (other kinds: none).
    pub(crate) fn keys(&self, change: &Change) -> HashSet<Key> {
        let mut keys = HashSet::new();
        let (old, new) = match (&change.delta, change.info.plural) {
            (Delta::Synced, _) => return keys,
            (Delta::Upsert(s) | Delta::Delete(s), "services") => {
                let Some(key) = watched_key(s) else {
                    return keys;
                };
                let mut seen = self.services.lock();
                match typed::upserted::<Service>(change) {
                    Some(svc) => seen.insert(key.clone(), Arc::new(svc)),
                    None => seen.remove(&key),
                };
                keys.insert(key);
                return keys;
            }
            (Delta::Upsert(_), "pods") => {
                let Some(p) = typed::upserted::<Pod>(change).map(Arc::new) else {
                    return keys;
                };
                let old = self.pods.lock().insert(key_of(&p.metadata), p.clone());
                (old, Some(p))
            }
            (Delta::Delete(p), "pods") => {
                let Some(key) = watched_key(p) else {
                    return keys;
                };
                let last = self.pods.lock().remove(&key);
                let gone = typed::decode::<Pod>(p).ok().map(Arc::new);
                (gone.or(last), None)
            }
            _ => return keys,
        };
        let Some(any) = new.as_ref().or(old.as_ref()) else {
            return keys;
        };
        let namespace = any.metadata.namespace.as_deref();
        for svc in self.services.lock().values() {
            if svc.metadata.namespace.as_deref() != namespace {
                continue;
            }
            let Some(sel) = managed_selector(svc) else {
                continue;
            };
            if [&old, &new].into_iter().flatten().any(|p| selects(sel, p)) {
                keys.insert(key_of(&svc.metadata));
            }
        }
        keys
    }

    /// The pods of the service's namespace its selector matches, by name.
    pub(crate) async fn selected_pods(
        &self,
        svc: &Service,
        sel: &BTreeMap<String, String>,
    ) -> Result<Vec<Pod>, Error> {
        let namespace = svc.metadata.namespace.as_deref().unwrap_or("");
        let mut pods: Vec<Pod> = typed::list::<Pod>(&self.cluster, Some(namespace))
            .await?
            .into_iter()
            .filter(|p| selects(sel, p))
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(pods)
    }
}

/// Upstream `TriggerTimeTracker`: per service, the pods' trigger times (their Ready
/// condition's `lastTransitionTime`) and the service's (its `creationTimestamp`) seen at the
/// last sync; [`TriggerTimes::compute`] returns the earliest one that changed since.
#[derive(Default)]
pub(crate) struct TriggerTimes {
    state: Mutex<HashMap<Key, ServiceTriggers>>,
}

/// Trigger times of one service's pods (by name) and of the service, in epoch seconds.
type ServiceTriggers = (HashMap<String, i64>, Option<i64>);

impl TriggerTimes {
    /// The last-change trigger time for this sync (RFC 3339), if any changed.
    pub(crate) fn compute(&self, svc: &Service, pods: &[Pod]) -> Option<String> {
        let mut state = self.state.lock();
        let (last_pods, last_svc) = state.entry(key_of(&svc.metadata)).or_default();
        let mut min: Option<i64> = None;
        let mut seen = HashMap::new();
        for p in pods {
            let Some((_, Some(t))) = ready_condition(p) else {
                continue;
            };
            let name = p.metadata.name.clone().unwrap_or_default();
            if last_pods.get(&name) != Some(&t) {
                min = Some(min.map_or(t, |m| m.min(t)));
            }
            seen.insert(name, t);
        }
        *last_pods = seen;
        let svc_time = svc
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second());
        if svc_time.is_some() && svc_time != *last_svc {
            *last_svc = svc_time;
            if let Some(t) = svc_time {
                min = Some(min.map_or(t, |m| m.min(t)));
            }
        }
        let t = k8s_openapi::jiff::Timestamp::from_second(min?).ok()?;
        Some(api::time::rfc3339(t))
    }

    /// Forgets a deleted service.
    pub(crate) fn forget(&self, key: &Key) {
        self.state.lock().remove(key);
    }
}

/// What the Endpoints and EndpointSlice controllers do differently on their one shared
/// skeleton ([`ServiceController`]: the same watches of services and pods, the same
/// [`ServiceTracker`] and [`TriggerTimes`], the same workers): the resource each writes,
/// which changes of it ask to look at a service again, and the sync.
pub(crate) trait ServiceSync: Sized + Send + Sync + 'static {
    /// Concurrent syncs.
    const WORKERS: usize;
    /// The resource the controller writes.
    fn written() -> &'static ResourceInfo;
    /// The service to look at again after a change of a written object, if any.
    fn requeue(change: &Change) -> Option<Key>;
    /// Upstream `syncService` for the service `namespace/name`.
    fn sync(
        ctl: &ServiceController<Self>,
        namespace: &str,
        name: &str,
    ) -> impl std::future::Future<Output = Result<(), Error>> + Send;
}

/// A controller that keeps what backs each Service (Endpoints or EndpointSlices) current.
pub(crate) struct ServiceController<S> {
    pub(crate) cluster: ClusterRef,
    pub(crate) tracker: ServiceTracker,
    pub(crate) triggers: TriggerTimes,
    pub(crate) queue: WorkQueue<Key>,
    kind: std::marker::PhantomData<fn() -> S>,
}

/// Runs the controller of `S` until `shutdown` is cancelled.
pub(crate) async fn run_service_controller<S: ServiceSync>(
    cluster: ClusterRef,
    shutdown: CancellationToken,
) {
    let controller = Arc::new(ServiceController::<S> {
        tracker: ServiceTracker::new(cluster.clone()),
        triggers: TriggerTimes::default(),
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        kind: std::marker::PhantomData,
    });
    crate::queue::drive(
        &cluster,
        controller,
        &[services(), pods(), S::written()],
        S::WORKERS,
        &shutdown,
    )
    .await;
}

impl<S: ServiceSync> Reconciler for ServiceController<S> {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        S::sync(&self, &key.0, &key.1).await.map(|()| None)
    }

    fn observe(&self, change: Change) {
        if std::ptr::eq(change.info, S::written()) {
            if let Some(key) = S::requeue(&change) {
                self.queue.add(key);
            }
            return;
        }
        for key in self.tracker.keys(&change) {
            self.queue.add(key);
        }
    }
}

/// The Endpoints controller's part of the skeleton.
pub(crate) struct Endpoints;

/// The Endpoints controller.
pub(crate) type Controller = ServiceController<Endpoints>;

impl ServiceSync for Endpoints {
    /// Upstream `--concurrent-endpoint-syncs`.
    const WORKERS: usize = 5;

    fn written() -> &'static ResourceInfo {
        endpoints()
    }

    /// upstream `onEndpointsDelete`: recreate what someone removed.
    fn requeue(change: &Change) -> Option<Key> {
        match &change.delta {
            Delta::Delete(ep) => watched_key(ep),
            _ => None,
        }
    }

    async fn sync(ctl: &Controller, namespace: &str, name: &str) -> Result<(), Error> {
        ctl.sync(namespace, name).await
    }
}

/// Runs the Endpoints controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_service_controller::<Endpoints>(cluster, shutdown).await;
}

impl Controller {
    /// upstream `syncService`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let Some(svc) = typed::get::<Service>(&self.cluster, namespace, name).await? else {
            self.triggers
                .forget(&(namespace.to_string(), name.to_string()));
            return match self
                .cluster
                .delete(endpoints(), namespace, name, &DeleteOptions::default())
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code == 404 => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        let Some(sel) = managed_selector(&svc) else {
            return Ok(());
        };
        let pods = self.tracker.selected_pods(&svc, sel).await?;
        let (subsets, truncated) = desired_subsets(&svc, &pods);
        let trigger = self.triggers.compute(&svc, &pods);
        let trigger = Some(trigger.as_deref());
        let current = typed::get::<EndpointsObject>(&self.cluster, namespace, name).await?;
        let Some(current) = current else {
            let mut ep = EndpointsObject {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some(namespace.into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            apply(&mut ep, &svc, subsets, truncated, trigger);
            let ep = serde_json::to_value(&ep).map_err(|e| Error::Decode {
                kind: "Endpoints",
                message: e.to_string(),
            })?;
            return match self.cluster.create(endpoints(), namespace, ep).await {
                Ok(_) => Ok(()),
                // A terminating namespace refuses new objects; nothing to do.
                Err(e) if e.code == 403 || e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        // upstream: nothing to write when subsets, labels and capacity annotation agree
        // (the trigger time alone does not cause a write).
        let mut want = current.clone();
        apply(&mut want, &svc, subsets, truncated, None);
        if want == current {
            return Ok(());
        }
        let subsets = want
            .subsets
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Decode {
                kind: "Endpoints",
                message: e.to_string(),
            })?;
        let labels = want.metadata.labels.clone().unwrap_or_default();
        match self
            .cluster
            .update_with(endpoints(), namespace, name, Subresource::Main, |ep| {
                let before = ep.clone();
                match (&subsets, ep.as_object_mut()) {
                    (Some(s), _) => ep["subsets"] = s.clone(),
                    (None, Some(o)) => {
                        o.remove("subsets");
                    }
                    (None, None) => {}
                }
                edit_map(ep, "labels", |l| *l = labels.clone());
                edit_map(ep, "annotations", |a| annotate(a, truncated, trigger));
                Ok(*ep != before)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => {
                self.queue.add((namespace.to_string(), name.to_string()));
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Sets subsets, labels and the capacity annotation of an Endpoints object, and the
/// trigger-time annotation unless `trigger` is `None` (`Some(None)` removes it).
fn apply(
    ep: &mut EndpointsObject,
    svc: &Service,
    subsets: Vec<EndpointSubset>,
    truncated: bool,
    trigger: Option<Option<&str>>,
) {
    ep.subsets = Some(subsets).filter(|s| !s.is_empty());
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    if is_service_ip_set(svc) {
        labels.remove(HEADLESS);
    } else {
        labels.insert(HEADLESS.into(), String::new());
    }
    ep.metadata.labels = Some(labels).filter(|l| !l.is_empty());
    let mut annotations = ep.metadata.annotations.take().unwrap_or_default();
    annotate(&mut annotations, truncated, trigger);
    ep.metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
}

/// The capacity annotation, and the trigger-time one unless `trigger` is `None`.
fn annotate(
    annotations: &mut BTreeMap<String, String>,
    truncated: bool,
    trigger: Option<Option<&str>>,
) {
    if truncated {
        annotations.insert(OVER_CAPACITY.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    if let Some(t) = trigger {
        set_trigger(annotations, t);
    }
}

/// The repacked subsets for `svc` over its selected `pods`, and whether they were truncated.
pub(crate) fn desired_subsets(svc: &Service, pods: &[Pod]) -> (Vec<EndpointSubset>, bool) {
    let publish = publish_not_ready(svc);
    let family = ip_families(svc)[0];
    let ports: &[ServicePort] = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let mut raw: Vec<(EndpointAddress, Option<EndpointPort>, bool)> = Vec::new();
    let (mut ready, mut not_ready) = (0usize, 0usize);
    for p in pods {
        if !should_pod_be_in_endpoints(p, publish) {
            continue;
        }
        let Some(ip) = pod_ip(p, family) else {
            tracing::debug!(
                pod = p.metadata.name.as_deref(),
                "no pod IP of the service's family"
            );
            continue;
        };
        let addr = EndpointAddress {
            ip: ip.into(),
            hostname: should_set_hostname(p, svc).then(|| hostname(p).into()),
            node_name: Some(node_name(p)).filter(|n| !n.is_empty()).map(Into::into),
            target_ref: Some(target_ref(p)),
        };
        let is_ready = publish || is_ready(p);
        if ports.is_empty() {
            if !is_service_ip_set(svc) {
                raw.push((addr, None, is_ready));
                if is_ready { ready += 1 } else { not_ready += 1 }
            }
            continue;
        }
        for sp in ports {
            let Some(num) = find_port(p, sp) else {
                tracing::debug!(pod = p.metadata.name.as_deref(), port = ?sp, "failed to find port");
                continue;
            };
            let port = EndpointPort {
                port: num,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                name: sp.name.clone().filter(|n| !n.is_empty()),
                app_protocol: sp.app_protocol.clone(),
            };
            raw.push((addr.clone(), Some(port), is_ready));
            if is_ready { ready += 1 } else { not_ready += 1 }
        }
    }
    let mut subsets = repack_subsets(raw);
    let truncated = truncate(&mut subsets, ready, not_ready);
    (subsets, truncated)
}

/// An address's identity and order: IP, then pod uid.
fn addr_key(a: &EndpointAddress) -> (&str, &str) {
    let uid = a.target_ref.as_ref().and_then(|r| r.uid.as_deref());
    (a.ip.as_str(), uid.unwrap_or(""))
}

/// Upstream `RepackSubsets`: (address, port, ready) triples regrouped so that ports sharing
/// the same addresses (with the same readiness) form one subset; an address ready on a port
/// is not also listed as not ready there. Addresses are sorted by IP then pod uid, ports and
/// subsets deterministically.
pub(crate) fn repack_subsets(
    raw: Vec<(EndpointAddress, Option<EndpointPort>, bool)>,
) -> Vec<EndpointSubset> {
    let key = |a: &EndpointAddress| {
        let (ip, uid) = addr_key(a);
        format!("{ip}/{uid}")
    };
    let mut addrs: BTreeMap<String, EndpointAddress> = BTreeMap::new();
    // port ("" for no port) -> address key -> ready
    type ByPort = BTreeMap<String, (Option<EndpointPort>, BTreeMap<String, bool>)>;
    let mut by_port: ByPort = BTreeMap::new();
    for (addr, port, ready) in raw {
        let k = key(&addr);
        addrs.entry(k.clone()).or_insert(addr);
        let pk = port.as_ref().map(port_sort_key).unwrap_or_default();
        let entry = by_port.entry(pk).or_insert_with(|| (port, BTreeMap::new()));
        let r = entry.1.entry(k).or_insert(ready);
        *r |= ready;
    }
    // Group ports with identical address maps.
    let mut groups: Vec<(BTreeMap<String, bool>, Vec<EndpointPort>)> = Vec::new();
    for (_, (port, map)) in by_port {
        match groups.iter_mut().find(|(m, _)| *m == map) {
            Some((_, ports)) => ports.extend(port),
            None => groups.push((map, port.into_iter().collect())),
        }
    }
    let sorted = |mut list: Vec<EndpointAddress>| {
        list.sort_by(|a, b| addr_key(a).cmp(&addr_key(b)));
        Some(list).filter(|l| !l.is_empty())
    };
    groups
        .into_iter()
        .map(|(map, ports)| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (k, r) in map {
                if let Some(a) = addrs.get(&k) {
                    if r {
                        ready.push(a.clone())
                    } else {
                        not_ready.push(a.clone())
                    }
                }
            }
            EndpointSubset {
                addresses: sorted(ready),
                not_ready_addresses: sorted(not_ready),
                ports: Some(ports).filter(|p| !p.is_empty()),
            }
        })
        .collect()
}

fn port_sort_key(p: &EndpointPort) -> String {
    format!(
        "{}/{:05}/{}",
        p.name.as_deref().unwrap_or(""),
        p.port,
        p.protocol.as_deref().unwrap_or("")
    )
}

/// Upstream `truncateEndpoints`: above [`MAX_CAPACITY`] addresses, not-ready addresses are
/// dropped first, each subset keeping its proportional (rounded up) share; whether it cut.
fn truncate(subsets: &mut [EndpointSubset], total_ready: usize, total_not_ready: usize) -> bool {
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut room = max;
    for s in subsets.iter_mut() {
        if truncate_ready {
            s.not_ready_addresses = None;
        }
        let field = if truncate_ready {
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        if let Some(list) = field {
            let share = (list.len() * max).div_ceil(total.max(1)).min(room);
            list.truncate(share);
            room -= list.len();
            if list.is_empty() {
                *field = None;
            }
        }
    }
    true
}
