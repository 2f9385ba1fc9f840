//! The EndpointSlice controller (upstream `pkg/controller/endpointslice` with its reconciler
//! in `staging/src/k8s.io/endpointslice/reconciler.go` and `utils.go`).
//!
//! Start at [`Controller::sync`]: for a Service with a selector (not ExternalName) every
//! selected pod that has an IP and is not finished becomes an endpoint ([`pod_to_endpoint`]:
//! `serving` = pod Ready, `terminating` = being deleted, `ready` = `publishNotReadyAddresses`
//! or serving and not terminating; the pod IP of the slice's address type, `nodeName`, the
//! node's zone, `hostname`, a Pod `targetRef`). Endpoints are grouped by address type and by
//! their resolved port mapping (a named `targetPort` can map to different numbers per pod);
//! [`reconcile_group`] keeps endpoints in the slice they already sit in, updates slices whose
//! endpoints changed, fills free room, and creates new slices of at most
//! [`MAX_ENDPOINTS_PER_SLICE`]; emptied slices are deleted, or reused in place of a create.
//! A service whose slices would all disappear keeps one placeholder slice without ports or
//! endpoints, as upstream does. Slices carry `kubernetes.io/service-name`,
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, the service's
//! labels, and a controller reference to the Service (the garbage collector removes them with
//! it).

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use api::registry::ResourceInfo;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::endpoints::{
    Key, LAST_CHANGE_TRIGGER_TIME, ServiceController, ServiceSync, find_port, ip_families,
    managed_selector, pod_ip, run_service_controller, services, should_pod_be_in_endpoints,
    should_set_hostname, target_ref,
};
use crate::reflector::{Change, Delta};
use crate::replicaset::list;
use crate::resource;
use crate::{Error, meta, pod};

/// Upstream `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Label naming the slice's service (upstream `discovery.LabelServiceName`).
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label naming the slice's manager (upstream `discovery.LabelManagedBy`).
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's name in [`LABEL_MANAGED_BY`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Node label with the zone (upstream `v1.LabelTopologyZone`).
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

fn slices() -> &'static ResourceInfo {
    resource("discovery.k8s.io", "endpointslices")
}

/// The EndpointSlice controller's part of the service controllers' skeleton.
pub(crate) struct Slices;

/// The EndpointSlice controller.
pub(crate) type Controller = ServiceController<Slices>;

impl ServiceSync for Slices {
    /// Upstream `--concurrent-service-endpoint-syncs`.
    const WORKERS: usize = 5;

    fn written() -> &'static ResourceInfo {
        slices()
    }

    /// upstream `onEndpointSlice{Add,Update,Delete}`: a managed slice changed behind the
    /// controller's back (or its write came through): look at the service again.
    fn requeue(change: &Change) -> Option<Key> {
        let (Delta::Upsert(s) | Delta::Delete(s)) = &change.delta else {
            return None;
        };
        let name = s["metadata"]["labels"][LABEL_SERVICE_NAME].as_str()?;
        ours(s).then(|| (meta::str(s, "namespace").to_string(), name.to_string()))
    }

    async fn sync(ctl: &Controller, namespace: &str, name: &str) -> Result<(), Error> {
        ctl.sync(namespace, name).await
    }
}

/// Runs the EndpointSlice controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_service_controller::<Slices>(cluster, shutdown).await;
}

/// Whether this controller manages the slice.
fn ours(slice: &Value) -> bool {
    slice["metadata"]["labels"][LABEL_MANAGED_BY] == CONTROLLER_NAME
}

/// The endpoint's identity across syncs (upstream `endpointHashObj`: addresses, hostname and
/// the pod's namespace/name).
fn endpoint_key(ep: &Value) -> String {
    format!(
        "{}|{}|{}/{}",
        ep["addresses"],
        ep["hostname"].as_str().unwrap_or(""),
        ep["targetRef"]["namespace"].as_str().unwrap_or(""),
        ep["targetRef"]["name"].as_str().unwrap_or("")
    )
}

/// A port mapping's identity (upstream `NewPortMapKey`), independent of field order.
fn ports_key(ports: &Value) -> String {
    let mut list: Vec<String> = ports
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p["name"].as_str().unwrap_or(""),
                p["protocol"].as_str().unwrap_or(""),
                p["port"].as_i64().unwrap_or(0),
                p["appProtocol"].as_str().unwrap_or("")
            )
        })
        .collect();
    list.sort();
    list.join(",")
}

/// A change to make.
enum Write {
    Create(Value),
    /// Replace endpoints, ports and labels of the named slice.
    Update {
        name: String,
        ports: Value,
        endpoints: Vec<Value>,
        labels: Value,
    },
    Delete(String),
}

impl Controller {
    /// upstream `syncService` + `reconciler.Reconcile`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let svc = match self.cluster.get(services(), namespace, name).await {
            Ok(s) => s,
            // The garbage collector removes the slices through their owner reference.
            Err(e) if e.code == 404 => {
                self.triggers
                    .forget(&(namespace.to_string(), name.to_string()));
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let Some(sel) = managed_selector(&svc) else {
            return Ok(());
        };
        if meta::deleting(&svc) {
            return Ok(());
        }
        let pods = self.tracker.selected_pods(&svc, sel).await?;
        let trigger = self.triggers.compute(&svc, &pods);
        let existing: Vec<Arc<Value>> = list(&self.cluster, slices(), namespace)
            .await?
            .into_iter()
            .filter(|s| ours(s) && s["metadata"]["labels"][LABEL_SERVICE_NAME] == name)
            .filter(|s| {
                meta::controlled_by(s, meta::uid(&svc)) || meta::controller_ref(s).is_none()
            })
            .collect();
        let labels = slice_labels(&svc);
        let families: Vec<String> = ip_families(&svc).iter().map(|s| s.to_string()).collect();
        let mut writes = Vec::new();
        // Slices of address types the service no longer has.
        for s in &existing {
            if !families.iter().any(|f| s["addressType"] == f.as_str()) {
                writes.push(Write::Delete(meta::str(s, "name").to_string()));
            }
        }
        for family in &families {
            // Desired endpoints per port mapping.
            let mut desired: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
            for p in &pods {
                if !should_pod_be_in_endpoints(p, true) {
                    continue;
                }
                let Some(ep) = self.pod_to_endpoint(p, &svc, family).await? else {
                    continue;
                };
                let ports = endpoint_ports(&svc, p);
                desired
                    .entry(ports_key(&ports))
                    .or_insert_with(|| (ports, Vec::new()))
                    .1
                    .push(ep);
            }
            let mine: Vec<&Arc<Value>> = existing
                .iter()
                .filter(|s| s["addressType"] == family.as_str())
                .collect();
            let mut family_writes = Vec::new();
            let mut by_group: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
            for s in &mine {
                by_group.entry(ports_key(&s["ports"])).or_default().push(s);
            }
            for (key, (ports, eps)) in &desired {
                let current = by_group.remove(key).unwrap_or_default();
                family_writes.extend(reconcile_group(&svc, family, ports, eps, &current, &labels));
            }
            for (_, gone) in by_group {
                for s in gone {
                    family_writes.push(Write::Delete(meta::str(s, "name").to_string()));
                }
            }
            let deletes = family_writes
                .iter()
                .filter(|w| matches!(w, Write::Delete(_)))
                .count();
            let creates = family_writes
                .iter()
                .filter(|w| matches!(w, Write::Create(_)))
                .count();
            if mine.len() == deletes && creates == 0 {
                // upstream: a service always keeps one (placeholder) slice per address type.
                let placeholder = mine.iter().find(|s| {
                    ports_key(&s["ports"]).is_empty()
                        && s["endpoints"].as_array().is_none_or(Vec::is_empty)
                        && s["metadata"]["labels"] == labels
                });
                match placeholder {
                    Some(p) => {
                        let keep = meta::str(p, "name");
                        family_writes.retain(|w| !matches!(w, Write::Delete(n) if n == keep));
                    }
                    None => family_writes.push(Write::Create(new_slice(
                        &svc,
                        family,
                        &json!([]),
                        Vec::new(),
                        &labels,
                    ))),
                }
            }
            writes.extend(reuse_deleted(family_writes));
        }
        for w in writes {
            self.write(namespace, w, trigger.as_deref()).await?;
        }
        Ok(())
    }

    /// upstream `podToEndpoint`; the zone comes from the pod's node (none when the node is
    /// gone; a failed read is an error).
    async fn pod_to_endpoint(
        &self,
        p: &Value,
        svc: &Value,
        family: &str,
    ) -> Result<Option<Value>, api::status::ApiError> {
        let Some(ip) = pod_ip(p, family) else {
            return Ok(None);
        };
        let serving = pod::is_ready(p);
        let terminating = meta::deleting(p);
        let ready = svc["spec"]["publishNotReadyAddresses"] == true || (serving && !terminating);
        let mut ep = json!({
            "addresses": [ip],
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        });
        if should_set_hostname(p, svc) {
            ep["hostname"] = p["spec"]["hostname"].clone();
        }
        ep["targetRef"] = target_ref(p);
        if let Some(node) = p["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            ep["nodeName"] = json!(node);
            let n = match self.cluster.get(resource("", "nodes"), "", node).await {
                Ok(n) => Some(n),
                Err(e) if e.code == 404 => None,
                Err(e) => return Err(e),
            };
            if let Some(n) = n
                && let Some(zone) = n["metadata"]["labels"][ZONE_LABEL]
                    .as_str()
                    .filter(|z| !z.is_empty())
            {
                ep["zone"] = json!(zone);
            }
        }
        Ok(Some(ep))
    }

    /// Makes one write; created and updated slices get the trigger-time annotation (upstream
    /// `addTriggerTimeAnnotation`).
    async fn write(&self, namespace: &str, w: Write, trigger: Option<&str>) -> Result<(), Error> {
        let result = match w {
            Write::Create(mut slice) => {
                set_trigger(&mut slice, trigger);
                self.cluster
                    .create(slices(), namespace, slice)
                    .await
                    .map(|_| ())
            }
            Write::Update {
                name,
                ports,
                endpoints,
                labels,
            } => self
                .cluster
                .update_with(slices(), namespace, &name, Subresource::Main, |s| {
                    let before = s.clone();
                    s["ports"] = ports.clone();
                    s["endpoints"] = Value::Array(endpoints.clone());
                    s["metadata"]["labels"] = labels.clone();
                    let changed = *s != before;
                    if changed {
                        set_trigger(s, trigger);
                    }
                    Ok(changed)
                })
                .await
                .map(|_| ()),
            Write::Delete(name) => self
                .cluster
                .delete(slices(), namespace, &name, &DeleteOptions::default())
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(()),
            // Gone meanwhile, or the namespace is terminating: the next sync sees the truth.
            Err(e) if e.code == 404 || e.code == 403 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// Sets (or, without a time, removes) the trigger-time annotation.
fn set_trigger(slice: &mut Value, trigger: Option<&str>) {
    let md = &mut slice["metadata"];
    if !md["annotations"].is_object() {
        md["annotations"] = json!({});
    }
    if let Some(a) = md["annotations"].as_object_mut() {
        match trigger {
            Some(t) => {
                a.insert(LAST_CHANGE_TRIGGER_TIME.into(), json!(t));
            }
            None => {
                a.remove(LAST_CHANGE_TRIGGER_TIME);
            }
        }
        if a.is_empty()
            && let Some(m) = md.as_object_mut()
        {
            m.remove("annotations");
        }
    }
}

/// upstream `getEndpointPorts`: the service ports resolved for one pod (ports whose named
/// target the pod lacks are left out).
fn endpoint_ports(svc: &Value, p: &Value) -> Value {
    let ports: Vec<Value> = svc["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let num = find_port(p, sp)?;
            let mut port = json!({
                "name": sp["name"].as_str().unwrap_or(""),
                "protocol": sp["protocol"].as_str().unwrap_or("TCP"),
                "port": num,
            });
            if let Some(a) = sp["appProtocol"].as_str() {
                port["appProtocol"] = json!(a);
            }
            Some(port)
        })
        .collect();
    Value::Array(ports)
}

/// upstream `setEndpointSliceLabels`: the service's labels (minus the reserved ones), the
/// headless marker, the service name and the manager.
fn slice_labels(svc: &Value) -> Value {
    let mut labels = serde_json::Map::new();
    for (k, v) in svc["metadata"]["labels"].as_object().into_iter().flatten() {
        if k != LABEL_SERVICE_NAME && k != LABEL_MANAGED_BY {
            labels.insert(k.clone(), v.clone());
        }
    }
    if svc["spec"]["clusterIP"] == "None" {
        labels.insert(crate::endpoints::HEADLESS.into(), json!(""));
    } else {
        labels.remove(crate::endpoints::HEADLESS);
    }
    labels.insert(LABEL_SERVICE_NAME.into(), json!(meta::str(svc, "name")));
    labels.insert(LABEL_MANAGED_BY.into(), json!(CONTROLLER_NAME));
    Value::Object(labels)
}

/// upstream `newEndpointSlice`.
fn new_slice(
    svc: &Value,
    family: &str,
    ports: &Value,
    endpoints: Vec<Value>,
    labels: &Value,
) -> Value {
    let name = meta::str(svc, "name");
    // upstream `getEndpointSlicePrefix`: `<service>-` unless that is not a valid prefix.
    let prefix = if name.len() < 253 - 5 {
        format!("{name}-")
    } else {
        "slice-".to_string()
    };
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "generateName": prefix,
            "namespace": meta::str(svc, "namespace"),
            "labels": labels,
            "ownerReferences": [meta::new_controller_ref(svc, "v1", "Service")],
        },
        "addressType": family,
        "ports": ports,
        "endpoints": endpoints,
    })
}

/// upstream `reconcileByPortMapping` for one (address type, ports) group: the writes that
/// turn `current` slices into ones holding exactly `desired`.
fn reconcile_group(
    svc: &Value,
    family: &str,
    ports: &Value,
    desired: &[Value],
    current: &[&Value],
    labels: &Value,
) -> Vec<Write> {
    let mut want: BTreeMap<String, &Value> = desired.iter().map(|e| (endpoint_key(e), e)).collect();
    let mut writes = Vec::new();
    // Slices to update (name, endpoints) and unchanged slices with free room.
    let mut updating: Vec<(String, Vec<Value>)> = Vec::new();
    let mut unchanged: Vec<(&Value, usize)> = Vec::new();
    for s in current {
        let old: Vec<Value> = s["endpoints"].as_array().cloned().unwrap_or_default();
        let mut kept = Vec::new();
        let mut changed = false;
        for ep in &old {
            match want.remove(&endpoint_key(ep)) {
                Some(new) => {
                    changed |= new != ep;
                    kept.push(new.clone());
                }
                None => changed = true,
            }
        }
        let name = meta::str(s, "name").to_string();
        if kept.is_empty() {
            writes.push(Write::Delete(name));
        } else if changed || s["metadata"]["labels"] != *labels {
            updating.push((name, kept));
        } else {
            unchanged.push((s, kept.len()));
        }
    }
    let mut rest: Vec<Value> = want.into_values().cloned().collect();
    // Fill slices that are being written anyway.
    for (_, eps) in &mut updating {
        let room = MAX_ENDPOINTS_PER_SLICE
            .saturating_sub(eps.len())
            .min(rest.len());
        eps.extend(rest.drain(..room));
    }
    // Then one unchanged slice that can take all the rest (upstream: the fullest fitting one).
    if !rest.is_empty()
        && let Some((s, n)) = unchanged
            .iter()
            .filter(|(_, n)| n + rest.len() <= MAX_ENDPOINTS_PER_SLICE)
            .max_by_key(|(_, n)| *n)
    {
        let mut eps: Vec<Value> = s["endpoints"].as_array().cloned().unwrap_or_default();
        debug_assert_eq!(eps.len(), *n);
        eps.append(&mut rest);
        updating.push((meta::str(s, "name").to_string(), eps));
    }
    for (name, endpoints) in updating {
        writes.push(Write::Update {
            name,
            ports: ports.clone(),
            endpoints,
            labels: labels.clone(),
        });
    }
    while !rest.is_empty() {
        let n = rest.len().min(MAX_ENDPOINTS_PER_SLICE);
        let chunk: Vec<Value> = rest.drain(..n).collect();
        writes.push(Write::Create(new_slice(svc, family, ports, chunk, labels)));
    }
    writes
}

/// upstream `finalize`: a slice about to be deleted is reused (updated) in place of a slice
/// about to be created, to avoid churn.
fn reuse_deleted(writes: Vec<Write>) -> Vec<Write> {
    let (mut deletes, mut others): (Vec<Write>, Vec<Write>) = writes
        .into_iter()
        .partition(|w| matches!(w, Write::Delete(_)));
    for w in &mut others {
        if let Write::Create(slice) = w
            && let Some(Write::Delete(name)) = deletes.pop()
        {
            *w = Write::Update {
                name,
                ports: slice["ports"].clone(),
                endpoints: slice["endpoints"].as_array().cloned().unwrap_or_default(),
                labels: slice["metadata"]["labels"].clone(),
            };
        }
    }
    others.extend(deletes);
    others
}
