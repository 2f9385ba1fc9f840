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

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Cache, Change, Delta};
use crate::replicaset::list;
use crate::resource;
use crate::{Error, meta, pod};

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
    resource("", "services")
}

pub(crate) fn pods() -> &'static ResourceInfo {
    resource("", "pods")
}

fn endpoints() -> &'static ResourceInfo {
    resource("", "endpoints")
}

/// A service key: (namespace, name).
pub(crate) type Key = (String, String);

pub(crate) fn key_of(obj: &Value) -> Key {
    (
        meta::str(obj, "namespace").to_string(),
        meta::str(obj, "name").to_string(),
    )
}

/// The service's `spec.selector` when these controllers manage it: services without a
/// selector and ExternalName services get no endpoints from them.
pub(crate) fn managed_selector(svc: &Value) -> Option<&Map<String, Value>> {
    if svc["spec"]["type"] == "ExternalName" {
        return None;
    }
    svc["spec"]["selector"]
        .as_object()
        .filter(|m| !m.is_empty())
}

/// Whether a service selector (a plain label map) matches the pod's labels.
pub(crate) fn selects(selector: &Map<String, Value>, pod: &Value) -> bool {
    let labels = &pod["metadata"]["labels"];
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Upstream `ShouldPodBeInEndpoints`: not terminal, has an IP, and (when
/// `include_terminating` is false) not being deleted.
pub(crate) fn should_pod_be_in_endpoints(p: &Value, include_terminating: bool) -> bool {
    if pod::is_terminal(p) {
        return false;
    }
    let has_ip = p["status"]["podIP"].as_str().is_some_and(|s| !s.is_empty())
        || p["status"]["podIPs"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
    if !has_ip {
        return false;
    }
    include_terminating || !meta::deleting(p)
}

/// Upstream `ShouldSetHostname`.
pub(crate) fn should_set_hostname(p: &Value, svc: &Value) -> bool {
    let hostname = p["spec"]["hostname"].as_str().unwrap_or("");
    !hostname.is_empty()
        && p["spec"]["subdomain"].as_str() == Some(meta::str(svc, "name"))
        && meta::str(p, "namespace") == meta::str(svc, "namespace")
}

/// Upstream `podutil.FindPort`: the pod's port for a service port. A numeric (or absent,
/// meaning `port`) `targetPort` is used as is; a named one is the `containerPort` of the
/// container port (in a container or restartable init container) with that name and the
/// service port's protocol. `None` when the name is not found.
pub(crate) fn find_port(p: &Value, svc_port: &Value) -> Option<i64> {
    let target = &svc_port["targetPort"];
    if let Some(n) = target.as_i64() {
        return Some(n);
    }
    let Some(name) = target.as_str() else {
        return svc_port["port"].as_i64();
    };
    if let Ok(n) = name.parse::<i64>() {
        return Some(n);
    }
    let protocol = svc_port["protocol"].as_str().unwrap_or("TCP");
    let sidecars = p["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["restartPolicy"] == "Always");
    let containers = p["spec"]["containers"].as_array().into_iter().flatten();
    containers
        .chain(sidecars)
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|cp| {
            cp["name"].as_str() == Some(name)
                && cp["protocol"].as_str().unwrap_or("TCP") == protocol
        })
        .and_then(|cp| cp["containerPort"].as_i64())
}

/// The service's IP families (`spec.ipFamilies`, IPv4 when unset).
pub(crate) fn ip_families(svc: &Value) -> Vec<&str> {
    let families: Vec<&str> = svc["spec"]["ipFamilies"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if families.is_empty() {
        vec!["IPv4"]
    } else {
        families
    }
}

/// The pod's IP of `family` (`IPv4` / `IPv6`), from `status.podIPs` then `status.podIP`.
pub(crate) fn pod_ip<'a>(p: &'a Value, family: &str) -> Option<&'a str> {
    let want_v6 = family == "IPv6";
    p["status"]["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str())
        .chain(p["status"]["podIP"].as_str())
        .find(|ip| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_ipv6() == want_v6)
        })
}

/// A reference to the pod as endpoints carry it.
pub(crate) fn target_ref(p: &Value) -> Value {
    json!({
        "kind": "Pod",
        "namespace": meta::str(p, "namespace"),
        "name": meta::str(p, "name"),
        "uid": meta::uid(p),
    })
}

/// Whether the service has a cluster IP (upstream `IsServiceIPSet`); headless otherwise.
pub(crate) fn is_service_ip_set(svc: &Value) -> bool {
    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// Turns watched service and pod changes into the keys of the services they concern
/// (upstream `addPod` / `updatePod` / `deletePod` + `GetPodServiceMemberships`).
pub(crate) struct ServiceTracker {
    cluster: ClusterRef,
    /// The last seen state of every pod, to match the old labels on updates.
    pods: Mutex<HashMap<Key, Arc<Value>>>,
    /// The services seen (upstream's serviceLister), to find those selecting a pod.
    services: Cache,
}

impl ServiceTracker {
    pub(crate) fn new(cluster: ClusterRef) -> ServiceTracker {
        ServiceTracker {
            cluster,
            pods: Mutex::new(HashMap::new()),
            services: Cache::default(),
        }
    }

    /// The services to sync for a service or pod change (other kinds: none).
    pub(crate) fn keys(&self, change: &Change) -> HashSet<Key> {
        let mut keys = HashSet::new();
        let (old, new) = match (&change.delta, change.info.plural) {
            (Delta::Synced, _) => return keys,
            (Delta::Upsert(s) | Delta::Delete(s), "services") => {
                self.services.apply(change);
                keys.insert(key_of(s));
                return keys;
            }
            (Delta::Upsert(p), "pods") => {
                let old = self.pods.lock().insert(key_of(p), p.clone());
                (old, Some(p.clone()))
            }
            (Delta::Delete(p), "pods") => {
                self.pods.lock().remove(&key_of(p));
                (Some(p.clone()), None)
            }
            _ => return keys,
        };
        let Some(any) = new.as_ref().or(old.as_ref()) else {
            return keys;
        };
        for svc in self.services.list(services(), meta::str(any, "namespace")) {
            let Some(sel) = managed_selector(&svc) else {
                continue;
            };
            if [&old, &new].into_iter().flatten().any(|p| selects(sel, p)) {
                keys.insert(key_of(&svc));
            }
        }
        keys
    }

    /// The pods of the service's namespace its selector matches.
    pub(crate) async fn selected_pods(
        &self,
        svc: &Value,
        sel: &Map<String, Value>,
    ) -> Result<Vec<Arc<Value>>, api::status::ApiError> {
        let mut pods: Vec<Arc<Value>> = list(&self.cluster, pods(), meta::str(svc, "namespace"))
            .await?
            .into_iter()
            .filter(|p| selects(sel, p))
            .collect();
        pods.sort_by(|a, b| meta::str(a, "name").cmp(meta::str(b, "name")));
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
    pub(crate) fn compute(&self, svc: &Value, pods: &[Arc<Value>]) -> Option<String> {
        let mut state = self.state.lock();
        let (last_pods, last_svc) = state.entry(key_of(svc)).or_default();
        let mut min: Option<i64> = None;
        let mut seen = HashMap::new();
        for p in pods {
            let Some(t) = pod::ready_since(p) else {
                continue;
            };
            let name = meta::str(p, "name").to_string();
            if last_pods.get(&name) != Some(&t) {
                min = Some(min.map_or(t, |m| m.min(t)));
            }
            seen.insert(name, t);
        }
        *last_pods = seen;
        let svc_time = pod::seconds(meta::str(svc, "creationTimestamp"));
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
            Delta::Delete(ep) => Some(key_of(ep)),
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
        let svc = match self.cluster.get(services(), namespace, name).await {
            Ok(s) => s,
            Err(e) if e.code == 404 => {
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
            }
            Err(e) => return Err(e.into()),
        };
        let Some(sel) = managed_selector(&svc) else {
            return Ok(());
        };
        let pods = self.tracker.selected_pods(&svc, sel).await?;
        let (subsets, truncated) = desired_subsets(&svc, &pods);
        let trigger = self.triggers.compute(&svc, &pods);
        let trigger = Some(trigger.as_deref());
        let current = match self.cluster.get(endpoints(), namespace, name).await {
            Ok(e) => Some(e),
            Err(e) if e.code == 404 => None,
            Err(e) => return Err(e.into()),
        };
        let Some(current) = current else {
            let mut ep = json!({
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": name, "namespace": namespace},
            });
            apply(&mut ep, &svc, &subsets, truncated, trigger);
            return match self.cluster.create(endpoints(), namespace, ep).await {
                Ok(_) => Ok(()),
                // A terminating namespace refuses new objects; nothing to do.
                Err(e) if e.code == 403 || e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        // upstream: nothing to write when subsets, labels and capacity annotation agree
        // (the trigger time alone does not cause a write).
        let mut want = Value::clone(&current);
        apply(&mut want, &svc, &subsets, truncated, None);
        if want == *current {
            return Ok(());
        }
        match self
            .cluster
            .update_with(endpoints(), namespace, name, Subresource::Main, |ep| {
                let before = ep.clone();
                apply(ep, &svc, &subsets, truncated, trigger);
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

/// Writes subsets, labels and the capacity annotation into an Endpoints object, and the
/// trigger-time annotation unless `trigger` is `None` (`Some(None)` removes it).
fn apply(
    ep: &mut Value,
    svc: &Value,
    subsets: &[Value],
    truncated: bool,
    trigger: Option<Option<&str>>,
) {
    if subsets.is_empty() {
        if let Some(o) = ep.as_object_mut() {
            o.remove("subsets");
        }
    } else {
        ep["subsets"] = Value::Array(subsets.to_vec());
    }
    let mut labels = svc["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if is_service_ip_set(svc) {
        labels.remove(HEADLESS);
    } else {
        labels.insert(HEADLESS.into(), json!(""));
    }
    let md = &mut ep["metadata"];
    if labels.is_empty() {
        if let Some(o) = md.as_object_mut() {
            o.remove("labels");
        }
    } else {
        md["labels"] = Value::Object(labels);
    }
    let mut annotations = md["annotations"].as_object().cloned().unwrap_or_default();
    if truncated {
        annotations.insert(OVER_CAPACITY.into(), json!("truncated"));
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    match trigger {
        None => {}
        Some(Some(t)) => {
            annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), json!(t));
        }
        Some(None) => {
            annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if annotations.is_empty() {
        if let Some(o) = md.as_object_mut() {
            o.remove("annotations");
        }
    } else {
        md["annotations"] = Value::Object(annotations);
    }
}

/// The repacked subsets for `svc` over its selected `pods`, and whether they were truncated.
pub(crate) fn desired_subsets(svc: &Value, pods: &[Arc<Value>]) -> (Vec<Value>, bool) {
    let publish = svc["spec"]["publishNotReadyAddresses"] == true;
    let family = ip_families(svc)[0];
    let ports = svc["spec"]["ports"].as_array().cloned().unwrap_or_default();
    let mut raw: Vec<(Value, Option<Value>, bool)> = Vec::new();
    let (mut ready, mut not_ready) = (0usize, 0usize);
    for p in pods {
        if !should_pod_be_in_endpoints(p, publish) {
            continue;
        }
        let Some(ip) = pod_ip(p, family) else {
            tracing::debug!(
                pod = meta::str(p, "name"),
                "no pod IP of the service's family"
            );
            continue;
        };
        let mut addr = json!({"ip": ip});
        if should_set_hostname(p, svc) {
            addr["hostname"] = p["spec"]["hostname"].clone();
        }
        if let Some(node) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            addr["nodeName"] = json!(node);
        }
        addr["targetRef"] = target_ref(p);
        let is_ready = publish || pod::is_ready(p);
        if ports.is_empty() {
            if !is_service_ip_set(svc) {
                raw.push((addr, None, is_ready));
                if is_ready { ready += 1 } else { not_ready += 1 }
            }
            continue;
        }
        for sp in &ports {
            let Some(num) = find_port(p, sp) else {
                tracing::debug!(pod = meta::str(p, "name"), port = %sp, "failed to find port");
                continue;
            };
            let mut port =
                json!({"port": num, "protocol": sp["protocol"].as_str().unwrap_or("TCP")});
            if let Some(n) = sp["name"].as_str().filter(|n| !n.is_empty()) {
                port["name"] = json!(n);
            }
            if let Some(a) = sp["appProtocol"].as_str() {
                port["appProtocol"] = json!(a);
            }
            raw.push((addr.clone(), Some(port), is_ready));
            if is_ready { ready += 1 } else { not_ready += 1 }
        }
    }
    let mut subsets = repack_subsets(raw);
    let truncated = truncate(&mut subsets, ready, not_ready);
    (subsets, truncated)
}

/// Upstream `RepackSubsets`: (address, port, ready) triples regrouped so that ports sharing
/// the same addresses (with the same readiness) form one subset; an address ready on a port
/// is not also listed as not ready there. Addresses are sorted by IP then pod uid, ports and
/// subsets deterministically.
pub(crate) fn repack_subsets(raw: Vec<(Value, Option<Value>, bool)>) -> Vec<Value> {
    let addr_key = |a: &Value| {
        format!(
            "{}/{}",
            a["ip"].as_str().unwrap_or(""),
            a["targetRef"]["uid"].as_str().unwrap_or("")
        )
    };
    let mut addrs: BTreeMap<String, Value> = BTreeMap::new();
    // port (serialized; "" for no port) -> address key -> ready
    let mut by_port: BTreeMap<String, (Option<Value>, BTreeMap<String, bool>)> = BTreeMap::new();
    for (addr, port, ready) in raw {
        let k = addr_key(&addr);
        addrs.entry(k.clone()).or_insert(addr);
        let pk = port.as_ref().map(port_sort_key).unwrap_or_default();
        let entry = by_port.entry(pk).or_insert_with(|| (port, BTreeMap::new()));
        let r = entry.1.entry(k).or_insert(ready);
        *r |= ready;
    }
    // Group ports with identical address maps.
    let mut groups: Vec<(BTreeMap<String, bool>, Vec<Value>)> = Vec::new();
    for (_, (port, map)) in by_port {
        match groups.iter_mut().find(|(m, _)| *m == map) {
            Some((_, ports)) => ports.extend(port),
            None => groups.push((map, port.into_iter().collect())),
        }
    }
    let sort_addrs = |list: &mut Vec<Value>| {
        list.sort_by(|a, b| {
            let ka = (
                a["ip"].as_str().unwrap_or(""),
                a["targetRef"]["uid"].as_str().unwrap_or(""),
            );
            let kb = (
                b["ip"].as_str().unwrap_or(""),
                b["targetRef"]["uid"].as_str().unwrap_or(""),
            );
            ka.cmp(&kb)
        });
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
            sort_addrs(&mut ready);
            sort_addrs(&mut not_ready);
            let mut s = json!({});
            if !ready.is_empty() {
                s["addresses"] = Value::Array(ready);
            }
            if !not_ready.is_empty() {
                s["notReadyAddresses"] = Value::Array(not_ready);
            }
            if !ports.is_empty() {
                s["ports"] = Value::Array(ports);
            }
            s
        })
        .collect()
}

fn port_sort_key(p: &Value) -> String {
    format!(
        "{}/{:05}/{}",
        p["name"].as_str().unwrap_or(""),
        p["port"].as_i64().unwrap_or(0),
        p["protocol"].as_str().unwrap_or("")
    )
}

/// Upstream `truncateEndpoints`: above [`MAX_CAPACITY`] addresses, not-ready addresses are
/// dropped first, each subset keeping its proportional (rounded up) share; whether it cut.
fn truncate(subsets: &mut [Value], total_ready: usize, total_not_ready: usize) -> bool {
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
        let field = if truncate_ready {
            "addresses"
        } else {
            "notReadyAddresses"
        };
        let n = s[field].as_array().map_or(0, Vec::len);
        let share = (n * max).div_ceil(total.max(1)).min(room);
        if let Some(list) = s[field].as_array_mut() {
            list.truncate(share);
            room -= list.len();
        }
        if truncate_ready && let Some(o) = s.as_object_mut() {
            o.remove("notReadyAddresses");
        }
        if let Some(o) = s.as_object_mut()
            && o.get(field)
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty)
        {
            o.remove(field);
        }
    }
    true
}
