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
//!
//! Services, pods, nodes and slices are read as k8s-openapi types (`crate::typed`); slices
//! are built typed and serialised once, at the write, which edits only the fields this
//! controller owns in the stored JSON.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use api::registry::ResourceInfo;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::endpoints::{
    HEADLESS, Key, ServiceController, ServiceSync, deleting, edit_map, find_port, ip_families,
    managed_selector, pod_ip, publish_not_ready, run_service_controller, set_trigger,
    should_pod_be_in_endpoints, should_set_hostname, target_ref,
};
use crate::pod::typed::{hostname, is_ready, node_name};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

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
    typed::info::<EndpointSlice>()
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
        let m = typed::metadata(s).ok()?;
        let name = label(&m, LABEL_SERVICE_NAME)?;
        ours(&m).then(|| (m.namespace.clone().unwrap_or_default(), name.to_string()))
    }

    async fn sync(ctl: &Controller, namespace: &str, name: &str) -> Result<(), Error> {
        ctl.sync(namespace, name).await
    }
}

/// Runs the EndpointSlice controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    run_service_controller::<Slices>(cluster, shutdown).await;
}

/// The label `key` of an object.
fn label<'a>(m: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    m.labels.as_ref()?.get(key).map(String::as_str)
}

/// Whether this controller manages the slice.
fn ours(m: &ObjectMeta) -> bool {
    label(m, LABEL_MANAGED_BY) == Some(CONTROLLER_NAME)
}

/// The endpoint's identity across syncs (upstream `endpointHashObj`: addresses, hostname and
/// the pod's namespace/name).
fn endpoint_key(ep: &Endpoint) -> String {
    let pod = ep.target_ref.as_ref();
    format!(
        "{:?}|{}|{}/{}",
        ep.addresses,
        ep.hostname.as_deref().unwrap_or(""),
        pod.and_then(|r| r.namespace.as_deref()).unwrap_or(""),
        pod.and_then(|r| r.name.as_deref()).unwrap_or("")
    )
}

/// A port mapping's identity (upstream `NewPortMapKey`), independent of order.
fn ports_key(ports: &[EndpointPort]) -> String {
    let mut list: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p.name.as_deref().unwrap_or(""),
                p.protocol.as_deref().unwrap_or(""),
                p.port.unwrap_or(0),
                p.app_protocol.as_deref().unwrap_or("")
            )
        })
        .collect();
    list.sort();
    list.join(",")
}

/// A slice's ports, `[]` when unset.
fn ports_of(s: &EndpointSlice) -> &[EndpointPort] {
    s.ports.as_deref().unwrap_or_default()
}

/// A slice's endpoints, `[]` when unset.
fn endpoints_of(s: &EndpointSlice) -> &[Endpoint] {
    s.endpoints.as_deref().unwrap_or_default()
}

/// A change to make.
enum Write {
    Create(Box<EndpointSlice>),
    /// Replace endpoints, ports and labels of the named slice.
    Update {
        name: String,
        ports: Vec<EndpointPort>,
        endpoints: Vec<Endpoint>,
        labels: BTreeMap<String, String>,
    },
    Delete(String),
}

/// A typed object as the JSON a write sends.
fn to_json(obj: &impl serde::Serialize) -> Result<Value, Error> {
    serde_json::to_value(obj).map_err(|e| Error::Decode {
        kind: "EndpointSlice",
        message: e.to_string(),
    })
}

impl Controller {
    /// upstream `syncService` + `reconciler.Reconcile`.
    async fn sync(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let Some(svc) = typed::get::<Service>(&self.cluster, namespace, name).await? else {
            // The garbage collector removes the slices through their owner reference.
            self.triggers
                .forget(&(namespace.to_string(), name.to_string()));
            return Ok(());
        };
        let Some(sel) = managed_selector(&svc) else {
            return Ok(());
        };
        if deleting(&svc.metadata) {
            return Ok(());
        }
        let pods = self.tracker.selected_pods(&svc, sel).await?;
        let trigger = self.triggers.compute(&svc, &pods);
        let svc_uid = svc.metadata.uid.as_deref().unwrap_or("");
        let existing: Vec<EndpointSlice> =
            typed::list::<EndpointSlice>(&self.cluster, Some(namespace))
                .await?
                .into_iter()
                .filter(|s| {
                    ours(&s.metadata) && label(&s.metadata, LABEL_SERVICE_NAME) == Some(name)
                })
                .filter(|s| match crate::typed::controller_ref(&s.metadata) {
                    Some(r) => r.uid == svc_uid,
                    None => true,
                })
                .collect();
        let labels = slice_labels(&svc);
        let families: Vec<String> = ip_families(&svc).iter().map(|s| s.to_string()).collect();
        let slice_name = |s: &EndpointSlice| s.metadata.name.clone().unwrap_or_default();
        let mut writes = Vec::new();
        // Slices of address types the service no longer has.
        for s in &existing {
            if !families.contains(&s.address_type) {
                writes.push(Write::Delete(slice_name(s)));
            }
        }
        for family in &families {
            // Desired endpoints per port mapping.
            let mut desired: BTreeMap<String, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
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
            let mine: Vec<&EndpointSlice> = existing
                .iter()
                .filter(|s| s.address_type == *family)
                .collect();
            let mut family_writes = Vec::new();
            let mut by_group: BTreeMap<String, Vec<&EndpointSlice>> = BTreeMap::new();
            for s in &mine {
                by_group.entry(ports_key(ports_of(s))).or_default().push(s);
            }
            for (key, (ports, eps)) in &desired {
                let current = by_group.remove(key).unwrap_or_default();
                family_writes.extend(reconcile_group(&svc, family, ports, eps, &current, &labels));
            }
            for (_, gone) in by_group {
                for s in gone {
                    family_writes.push(Write::Delete(slice_name(s)));
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
                    ports_key(ports_of(s)).is_empty()
                        && endpoints_of(s).is_empty()
                        && s.metadata.labels.as_ref() == Some(&labels)
                });
                match placeholder {
                    Some(p) => {
                        let keep = slice_name(p);
                        family_writes.retain(|w| !matches!(w, Write::Delete(n) if *n == keep));
                    }
                    None => family_writes.push(Write::Create(Box::new(new_slice(
                        &svc,
                        family,
                        &[],
                        Vec::new(),
                        &labels,
                    )))),
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
        p: &Pod,
        svc: &Service,
        family: &str,
    ) -> Result<Option<Endpoint>, Error> {
        let Some(ip) = pod_ip(p, family) else {
            return Ok(None);
        };
        let serving = is_ready(p);
        let terminating = deleting(&p.metadata);
        let ready = publish_not_ready(svc) || (serving && !terminating);
        let mut ep = Endpoint {
            addresses: vec![ip.into()],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: should_set_hostname(p, svc).then(|| hostname(p).into()),
            target_ref: Some(target_ref(p)),
            ..Default::default()
        };
        if let Some(node) = Some(node_name(p)).filter(|n| !n.is_empty()) {
            ep.node_name = Some(node.into());
            if let Some(n) = typed::get::<Node>(&self.cluster, "", node).await? {
                ep.zone = label(&n.metadata, ZONE_LABEL)
                    .filter(|z| !z.is_empty())
                    .map(Into::into);
            }
        }
        Ok(Some(ep))
    }

    /// Makes one write; created and updated slices get the trigger-time annotation (upstream
    /// `addTriggerTimeAnnotation`).
    async fn write(&self, namespace: &str, w: Write, trigger: Option<&str>) -> Result<(), Error> {
        let result = match w {
            Write::Create(mut slice) => {
                let mut annotations = slice.metadata.annotations.take().unwrap_or_default();
                set_trigger(&mut annotations, trigger);
                slice.metadata.annotations = Some(annotations).filter(|a| !a.is_empty());
                self.cluster
                    .create(slices(), namespace, to_json(&slice)?)
                    .await
                    .map(|_| ())
            }
            Write::Update {
                name,
                ports,
                endpoints,
                labels,
            } => {
                let (ports, endpoints) = (to_json(&ports)?, to_json(&endpoints)?);
                self.cluster
                    .update_with(slices(), namespace, &name, Subresource::Main, |s| {
                        let before = s.clone();
                        s["ports"] = ports.clone();
                        s["endpoints"] = endpoints.clone();
                        edit_map(s, "labels", |l| *l = labels.clone());
                        let changed = *s != before;
                        if changed {
                            edit_map(s, "annotations", |a| set_trigger(a, trigger));
                        }
                        Ok(changed)
                    })
                    .await
                    .map(|_| ())
            }
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

/// upstream `getEndpointPorts`: the service ports resolved for one pod (ports whose named
/// target the pod lacks are left out).
fn endpoint_ports(svc: &Service, p: &Pod) -> Vec<EndpointPort> {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .filter_map(|sp| {
            let num = find_port(p, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                port: Some(num),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// upstream `setEndpointSliceLabels`: the service's labels (minus the reserved ones), the
/// headless marker, the service name and the manager.
fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = svc
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| *k != LABEL_SERVICE_NAME && *k != LABEL_MANAGED_BY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert(HEADLESS.into(), String::new());
    } else {
        labels.remove(HEADLESS);
    }
    let name = svc.metadata.name.clone().unwrap_or_default();
    labels.insert(LABEL_SERVICE_NAME.into(), name);
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    labels
}

/// upstream `newEndpointSlice`.
fn new_slice(
    svc: &Service,
    family: &str,
    ports: &[EndpointPort],
    endpoints: Vec<Endpoint>,
    labels: &BTreeMap<String, String>,
) -> EndpointSlice {
    let name = svc.metadata.name.clone().unwrap_or_default();
    // upstream `getEndpointSlicePrefix`: `<service>-` unless that is not a valid prefix.
    let prefix = if name.len() < 253 - 5 {
        format!("{name}-")
    } else {
        "slice-".to_string()
    };
    // upstream `NewControllerRef`.
    let owner = OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name,
        uid: svc.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: Some(svc.metadata.namespace.clone().unwrap_or_default()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        address_type: family.into(),
        ports: Some(ports.to_vec()),
        endpoints: Some(endpoints),
    }
}

/// upstream `reconcileByPortMapping` for one (address type, ports) group: the writes that
/// turn `current` slices into ones holding exactly `desired`.
fn reconcile_group(
    svc: &Service,
    family: &str,
    ports: &[EndpointPort],
    desired: &[Endpoint],
    current: &[&EndpointSlice],
    labels: &BTreeMap<String, String>,
) -> Vec<Write> {
    let mut want: BTreeMap<String, &Endpoint> =
        desired.iter().map(|e| (endpoint_key(e), e)).collect();
    let mut writes = Vec::new();
    // Slices to update (name, endpoints) and unchanged slices with free room.
    let mut updating: Vec<(String, Vec<Endpoint>)> = Vec::new();
    let mut unchanged: Vec<(&EndpointSlice, usize)> = Vec::new();
    for s in current {
        let mut kept = Vec::new();
        let mut changed = false;
        for ep in endpoints_of(s) {
            match want.remove(&endpoint_key(ep)) {
                Some(new) => {
                    changed |= new != ep;
                    kept.push(new.clone());
                }
                None => changed = true,
            }
        }
        let name = s.metadata.name.clone().unwrap_or_default();
        if kept.is_empty() {
            writes.push(Write::Delete(name));
        } else if changed || s.metadata.labels.as_ref() != Some(labels) {
            updating.push((name, kept));
        } else {
            unchanged.push((s, kept.len()));
        }
    }
    let mut rest: Vec<Endpoint> = want.into_values().cloned().collect();
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
        let mut eps: Vec<Endpoint> = endpoints_of(s).to_vec();
        debug_assert_eq!(eps.len(), *n);
        eps.append(&mut rest);
        updating.push((s.metadata.name.clone().unwrap_or_default(), eps));
    }
    for (name, endpoints) in updating {
        writes.push(Write::Update {
            name,
            ports: ports.to_vec(),
            endpoints,
            labels: labels.clone(),
        });
    }
    while !rest.is_empty() {
        let n = rest.len().min(MAX_ENDPOINTS_PER_SLICE);
        let chunk: Vec<Endpoint> = rest.drain(..n).collect();
        writes.push(Write::Create(Box::new(new_slice(
            svc, family, ports, chunk, labels,
        ))));
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
                ports: slice.ports.take().unwrap_or_default(),
                endpoints: slice.endpoints.take().unwrap_or_default(),
                labels: slice.metadata.labels.take().unwrap_or_default(),
            };
        }
    }
    others.extend(deletes);
    others
}
