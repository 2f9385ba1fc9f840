//! The Node authorizer's graph (upstream `plugin/pkg/auth/authorizer/node/graph.go` and
//! `graph_populator.go`): which Secrets, ConfigMaps, PersistentVolumeClaims,
//! PersistentVolumes, ServiceAccounts and Pods a node may read because a pod bound to it uses
//! them. Edges, as upstream: `pod -> node` (`spec.nodeName`); `secret`, `configmap`, `pvc`
//! (including an ephemeral volume's `<pod>-<volume>` claim) and `serviceaccount -> pod`;
//! `pv -> pvc` (the PV's `spec.claimRef`); `secret -> pv` (the PV source's secret
//! references). paddock adds one edge upstream has not: `secret -> ingress -> every node` for
//! each `spec.tls[].secretName`, because each node runs the Ingress controller with the
//! node's identity and needs exactly those certificates.
//!
//! [`NodeGraph::start`] keeps it current from the store's watch of pods, PersistentVolumes and
//! Ingresses (one list, then events; a watch that fell behind is listed again), so it holds
//! one entry per bound pod, claimed PV and TLS-naming Ingress and nothing else.
//! [`NodeGraph::sync`] lets a caller wait until every write committed before its request is
//! in the graph, so a decision never lags the store: a pod just bound is not refused, nor a
//! pod just deleted still honoured.
//!
//! Start at [`NodeGraph::has_path`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use serde_json::Value;
use store::{EventType, Revision, Store, Watch};

/// The volume sources (of a pod's volumes and of PVs) that name a Secret in `secretRef`.
const SECRET_REF_SOURCES: [&str; 7] = [
    "cephfs",
    "cinder",
    "flexVolume",
    "rbd",
    "scaleIO",
    "iscsi",
    "storageos",
];

/// What kind of object a vertex is (upstream `vertexType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vertex {
    /// `pods`.
    Pod,
    /// `secrets`.
    Secret,
    /// `configmaps`.
    ConfigMap,
    /// `persistentvolumeclaims`.
    Pvc,
    /// `persistentvolumes`.
    Pv,
    /// `serviceaccounts`.
    ServiceAccount,
}

type NsName = (String, String);
type Ref = (Vertex, String, String);

/// A bound pod's node and the objects it references (itself included).
#[derive(Debug, Clone, PartialEq, Eq)]
struct PodRefs {
    node: String,
    refs: Vec<Ref>,
}

/// A PersistentVolume's claim and the Secrets its source names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PvRefs {
    claim: Option<NsName>,
    secrets: Vec<NsName>,
}

/// The relationships; every map shrinks when the objects behind it go.
#[derive(Debug, Default)]
pub struct Graph {
    pods: HashMap<NsName, PodRefs>,
    /// Per node, how many of its pods reference each object.
    reach: HashMap<String, HashMap<Ref, u32>>,
    pvs: HashMap<String, PvRefs>,
    pv_by_claim: HashMap<NsName, BTreeSet<String>>,
    pv_by_secret: HashMap<NsName, BTreeSet<String>>,
    ingresses: HashMap<NsName, Vec<String>>,
    /// How many Ingresses name each TLS Secret.
    ingress_secrets: HashMap<NsName, u32>,
}

fn s(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn ns_name(obj: &Value) -> NsName {
    (s(obj, "/metadata/namespace"), s(obj, "/metadata/name"))
}

fn items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The Secrets and ConfigMaps a pod's containers read through `env` and `envFrom` (all
/// containers: init, regular and ephemeral, as upstream `VisitPodSecretNames`).
fn container_refs(pod: &Value, out: &mut Vec<(Vertex, String)>) {
    for list in [
        "/spec/initContainers",
        "/spec/containers",
        "/spec/ephemeralContainers",
    ] {
        for c in items(pod, list) {
            for e in items(c, "/envFrom") {
                out.push((Vertex::Secret, s(e, "/secretRef/name")));
                out.push((Vertex::ConfigMap, s(e, "/configMapRef/name")));
            }
            for e in items(c, "/env") {
                out.push((Vertex::Secret, s(e, "/valueFrom/secretKeyRef/name")));
                out.push((Vertex::ConfigMap, s(e, "/valueFrom/configMapKeyRef/name")));
            }
        }
    }
}

/// The objects a pod references, in its namespace (upstream `AddPod`'s edges).
fn pod_refs(pod: &Value) -> Vec<Ref> {
    let (ns, name) = ns_name(pod);
    let mut named: Vec<(Vertex, String)> = vec![(Vertex::Pod, name.clone())];
    for p in items(pod, "/spec/imagePullSecrets") {
        named.push((Vertex::Secret, s(p, "/name")));
    }
    container_refs(pod, &mut named);
    for v in items(pod, "/spec/volumes") {
        named.push((Vertex::Secret, s(v, "/secret/secretName")));
        named.push((Vertex::ConfigMap, s(v, "/configMap/name")));
        for src in items(v, "/projected/sources") {
            named.push((Vertex::Secret, s(src, "/secret/name")));
            named.push((Vertex::ConfigMap, s(src, "/configMap/name")));
        }
        named.push((Vertex::Secret, s(v, "/azureFile/secretName")));
        for source in SECRET_REF_SOURCES {
            named.push((Vertex::Secret, s(v, &format!("/{source}/secretRef/name"))));
        }
        named.push((Vertex::Secret, s(v, "/csi/nodePublishSecretRef/name")));
        named.push((Vertex::Pvc, s(v, "/persistentVolumeClaim/claimName")));
        if v.get("ephemeral").is_some_and(Value::is_object) {
            // Upstream `ephemeral.VolumeClaimName`.
            named.push((Vertex::Pvc, format!("{name}-{}", s(v, "/name"))));
        }
    }
    let sa = s(pod, "/spec/serviceAccountName");
    named.push((Vertex::ServiceAccount, sa));
    let mut refs: Vec<Ref> = named
        .into_iter()
        .filter(|(_, n)| !n.is_empty())
        .map(|(k, n)| (k, ns.clone(), n))
        .collect();
    refs.sort_by(|a, b| (a.1.as_str(), a.2.as_str()).cmp(&(b.1.as_str(), b.2.as_str())));
    refs.dedup();
    refs
}

/// What kinds of API objects a pod references (NodeRestriction refuses mirror pods that
/// reference any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodReferences {
    /// Any Secret (upstream `VisitPodSecretNames`).
    pub secrets: bool,
    /// Any ConfigMap (upstream `VisitPodConfigmapNames`).
    pub config_maps: bool,
    /// A `persistentVolumeClaim` volume.
    pub claims: bool,
    /// A projected `clusterTrustBundle` source.
    pub cluster_trust_bundles: bool,
}

/// The kinds of objects `pod` references.
pub fn pod_references(pod: &Value) -> PodReferences {
    let refs = pod_refs(pod);
    let has = |k: Vertex| refs.iter().any(|(kind, _, _)| *kind == k);
    PodReferences {
        secrets: has(Vertex::Secret),
        config_maps: has(Vertex::ConfigMap),
        claims: items(pod, "/spec/volumes")
            .any(|v| v.get("persistentVolumeClaim").is_some_and(|c| !c.is_null())),
        cluster_trust_bundles: items(pod, "/spec/volumes").any(|v| {
            items(v, "/projected/sources")
                .any(|s| s.get("clusterTrustBundle").is_some_and(|c| !c.is_null()))
        }),
    }
}

/// A PersistentVolume's claim and secret references (upstream `AddPV` and
/// `VisitPVSecretNames`): a reference without a namespace is in the claim's namespace
/// (`default` when the PV is not claimed, as upstream does for Azure File).
fn pv_refs(pv: &Value) -> PvRefs {
    let claim_ns = s(pv, "/spec/claimRef/namespace");
    let claim_name = s(pv, "/spec/claimRef/name");
    let default_ns = if claim_ns.is_empty() {
        "default".to_string()
    } else {
        claim_ns.clone()
    };
    let with_ns = |ns: String| {
        if ns.is_empty() {
            default_ns.clone()
        } else {
            ns
        }
    };
    let mut secrets = Vec::new();
    let mut push = |ns: String, name: String| {
        if !name.is_empty() {
            secrets.push((with_ns(ns), name));
        }
    };
    push(
        s(pv, "/spec/azureFile/secretNamespace"),
        s(pv, "/spec/azureFile/secretName"),
    );
    for source in SECRET_REF_SOURCES {
        push(
            s(pv, &format!("/spec/{source}/secretRef/namespace")),
            s(pv, &format!("/spec/{source}/secretRef/name")),
        );
    }
    for r in [
        "controllerPublishSecretRef",
        "nodeStageSecretRef",
        "nodePublishSecretRef",
        "controllerExpandSecretRef",
        "nodeExpandSecretRef",
    ] {
        push(
            s(pv, &format!("/spec/csi/{r}/namespace")),
            s(pv, &format!("/spec/csi/{r}/name")),
        );
    }
    secrets.sort();
    secrets.dedup();
    PvRefs {
        claim: (!claim_name.is_empty()).then_some((claim_ns, claim_name)),
        secrets,
    }
}

fn ingress_tls_secrets(ing: &Value) -> Vec<String> {
    let mut v: Vec<String> = items(ing, "/spec/tls")
        .map(|t| s(t, "/secretName"))
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v.dedup();
    v
}

impl Graph {
    /// Adds or replaces a pod (upstream `AddPod`); an unbound pod has no edges.
    pub fn set_pod(&mut self, pod: &Value) {
        let key = ns_name(pod);
        let node = s(pod, "/spec/nodeName");
        if node.is_empty() {
            self.delete_pod(&key.0, &key.1);
            return;
        }
        let new = PodRefs {
            node,
            refs: pod_refs(pod),
        };
        if self.pods.get(&key) == Some(&new) {
            return;
        }
        self.delete_pod(&key.0, &key.1);
        let reach = self.reach.entry(new.node.clone()).or_default();
        for r in &new.refs {
            *reach.entry(r.clone()).or_default() += 1;
        }
        self.pods.insert(key, new);
    }

    /// Removes a pod and the edges only it held (upstream `DeletePod`).
    pub fn delete_pod(&mut self, namespace: &str, name: &str) {
        let Some(old) = self.pods.remove(&(namespace.to_string(), name.to_string())) else {
            return;
        };
        let Some(reach) = self.reach.get_mut(&old.node) else {
            return;
        };
        for r in &old.refs {
            if let Some(n) = reach.get_mut(r) {
                *n -= 1;
                if *n == 0 {
                    reach.remove(r);
                }
            }
        }
        if reach.is_empty() {
            self.reach.remove(&old.node);
        }
    }

    /// Adds or replaces a PersistentVolume (upstream `AddPV`).
    pub fn set_pv(&mut self, pv: &Value) {
        let name = s(pv, "/metadata/name");
        let new = pv_refs(pv);
        if self.pvs.get(&name) == Some(&new) {
            return;
        }
        self.delete_pv(&name);
        if new.claim.is_none() && new.secrets.is_empty() {
            return;
        }
        if let Some(c) = &new.claim {
            self.pv_by_claim
                .entry(c.clone())
                .or_default()
                .insert(name.clone());
        }
        for sec in &new.secrets {
            self.pv_by_secret
                .entry(sec.clone())
                .or_default()
                .insert(name.clone());
        }
        self.pvs.insert(name, new);
    }

    /// Removes a PersistentVolume (upstream `DeletePV`).
    pub fn delete_pv(&mut self, name: &str) {
        let Some(old) = self.pvs.remove(name) else {
            return;
        };
        let unindex = |map: &mut HashMap<NsName, BTreeSet<String>>, k: &NsName| {
            if let Some(set) = map.get_mut(k) {
                set.remove(name);
                if set.is_empty() {
                    map.remove(k);
                }
            }
        };
        if let Some(c) = &old.claim {
            unindex(&mut self.pv_by_claim, c);
        }
        for sec in &old.secrets {
            unindex(&mut self.pv_by_secret, sec);
        }
    }

    /// Adds or replaces an Ingress: its TLS Secrets become readable by every node.
    pub fn set_ingress(&mut self, ing: &Value) {
        let key = ns_name(ing);
        let new = ingress_tls_secrets(ing);
        if self.ingresses.get(&key) == Some(&new) {
            return;
        }
        self.delete_ingress(&key.0, &key.1);
        if new.is_empty() {
            return;
        }
        for name in &new {
            *self
                .ingress_secrets
                .entry((key.0.clone(), name.clone()))
                .or_default() += 1;
        }
        self.ingresses.insert(key, new);
    }

    /// Removes an Ingress.
    pub fn delete_ingress(&mut self, namespace: &str, name: &str) {
        let Some(old) = self
            .ingresses
            .remove(&(namespace.to_string(), name.to_string()))
        else {
            return;
        };
        for sec in old {
            let k = (namespace.to_string(), sec);
            if let Some(n) = self.ingress_secrets.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.ingress_secrets.remove(&k);
                }
            }
        }
    }

    fn reaches(&self, node: &str, kind: Vertex, namespace: &str, name: &str) -> bool {
        self.reach
            .get(node)
            .is_some_and(|r| r.contains_key(&(kind, namespace.to_string(), name.to_string())))
    }

    fn pv_reaches(&self, node: &str, pv: &str) -> bool {
        self.pvs
            .get(pv)
            .and_then(|p| p.claim.as_ref())
            .is_some_and(|(ns, n)| self.reaches(node, Vertex::Pvc, ns, n))
    }

    /// Whether a path leads from the object to `node` (upstream `hasPathFrom`).
    pub fn has_path(&self, node: &str, kind: Vertex, namespace: &str, name: &str) -> bool {
        match kind {
            Vertex::Pv => self.pv_reaches(node, name),
            Vertex::Secret => {
                let k = (namespace.to_string(), name.to_string());
                self.reaches(node, kind, namespace, name)
                    || self.ingress_secrets.contains_key(&k)
                    || self
                        .pv_by_secret
                        .get(&k)
                        .is_some_and(|pvs| pvs.iter().any(|pv| self.pv_reaches(node, pv)))
            }
            _ => self.reaches(node, kind, namespace, name),
        }
    }

    /// Whether a PVC's PV chain matters: a claim some PV names (tests).
    #[cfg(test)]
    fn sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.pods.len(),
            self.reach.values().map(HashMap::len).sum(),
            self.pvs.len() + self.pv_by_claim.len() + self.pv_by_secret.len(),
            self.ingresses.len() + self.ingress_secrets.len(),
        )
    }
}

/// The resources the graph follows, as store resources.
const PODS: usize = 0;
const PVS: usize = 1;
const INGRESSES: usize = 2;
const WATCHED: [&str; 3] = ["pods", "persistentvolumes", "networking.k8s.io/ingresses"];

/// The pause before listing a resource again after its watch ended.
const RELIST_PAUSE: Duration = Duration::from_millis(50);
/// How long a refusal waits for the graph to catch up with the store before answering.
const SYNC_WAIT: Duration = Duration::from_secs(5);

/// The graph behind a lock, and what the populator has applied.
#[derive(Debug, Default)]
pub struct NodeGraph {
    graph: parking_lot::RwLock<Graph>,
    /// Every write up to this store revision is in the graph.
    synced: AtomicU64,
    /// The revision a waiter needs the graph to reach.
    wanted: AtomicU64,
    /// Whether the populator ([`NodeGraph::start`]) runs (bare registries in unit tests have no graph
    /// task; refusals then do not wait).
    running: AtomicBool,
    /// Wakes the populator (a waiter arrived) and the waiters (the graph synced).
    to_populator: tokio::sync::Notify,
    to_waiters: tokio::sync::Notify,
    /// How many times a resource was listed (each followed resource once at start).
    lists: AtomicU64,
}

impl NodeGraph {
    /// Whether a path leads from the object to `node`.
    pub fn has_path(&self, node: &str, kind: Vertex, namespace: &str, name: &str) -> bool {
        self.graph.read().has_path(node, kind, namespace, name)
    }

    /// Waits (at most a few seconds) until every write the store committed before this call
    /// is in the graph.
    pub async fn sync(&self, store: &Store) {
        if !self.running.load(Ordering::Acquire) {
            return;
        }
        let want = store.revision();
        if self.synced.load(Ordering::Acquire) >= want {
            return;
        }
        self.wanted.fetch_max(want, Ordering::AcqRel);
        let wait = async {
            loop {
                let notified = self.to_waiters.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.synced.load(Ordering::Acquire) >= want {
                    return;
                }
                self.to_populator.notify_one();
                notified.await;
            }
        };
        if tokio::time::timeout(SYNC_WAIT, wait).await.is_err() {
            tracing::warn!(
                revision = want,
                "node authorizer graph did not catch up in time"
            );
        }
    }

    fn apply(&self, resource: usize, kind: EventType, obj: &Value) {
        let mut g = self.graph.write();
        let (ns, name) = ns_name(obj);
        match (resource, kind) {
            (PODS, EventType::Deleted) => g.delete_pod(&ns, &name),
            (PODS, _) => g.set_pod(obj),
            (PVS, EventType::Deleted) => g.delete_pv(&name),
            (PVS, _) => g.set_pv(obj),
            (INGRESSES, EventType::Deleted) => g.delete_ingress(&ns, &name),
            (INGRESSES, _) => g.set_ingress(obj),
            _ => {}
        }
    }

    /// Lists `resource` afresh: its objects replace the graph's, and a new watch follows.
    fn relist(&self, store: &Store, resource: usize) -> Watch {
        self.lists.fetch_add(1, Ordering::Relaxed);
        let (items, _, watch) = store.list_and_watch(WATCHED[resource], None);
        let mut g = self.graph.write();
        match resource {
            PODS => g.pods.clear(),
            PVS => g.pvs.clear(),
            _ => g.ingresses.clear(),
        }
        match resource {
            PODS => g.reach.clear(),
            PVS => {
                g.pv_by_claim.clear();
                g.pv_by_secret.clear();
            }
            _ => g.ingress_secrets.clear(),
        }
        drop(g);
        for obj in &items {
            self.apply(resource, EventType::Added, obj);
        }
        watch
    }

    /// Lists the followed resources now and keeps the graph in step with `store` from a task
    /// until `shutdown` flips (upstream's graph populator over informers).
    pub fn start(self: &Arc<Self>, store: Store, shutdown: tokio::sync::watch::Receiver<bool>) {
        let watches: Vec<Watch> = (0..WATCHED.len()).map(|r| self.relist(&store, r)).collect();
        self.running.store(true, Ordering::Release);
        tokio::spawn(self.clone().run(store, watches, shutdown));
    }

    async fn run(
        self: Arc<Self>,
        store: Store,
        mut watches: Vec<Watch>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let next = std::future::poll_fn(|cx| {
                for (i, w) in watches.iter_mut().enumerate() {
                    if let Poll::Ready(ev) = w.poll_shared(cx) {
                        return Poll::Ready((i, ev));
                    }
                }
                Poll::Pending
            });
            tokio::select! {
                _ = shutdown.changed() => break,
                (i, ev) = next => match ev {
                    Some(ev) => self.apply(i, ev.kind, &ev.object),
                    None => {
                        tracing::debug!(resource = WATCHED[i], "node graph: watch ended; listing again");
                        // A closed store ends every new watch at once: do not spin.
                        tokio::select! {
                            _ = shutdown.changed() => break,
                            _ = tokio::time::sleep(RELIST_PAUSE) => {}
                        }
                        watches[i] = self.relist(&store, i);
                    }
                },
                _ = self.to_populator.notified() => {}
            }
            let wanted = self.wanted.load(Ordering::Acquire);
            if wanted > self.synced.load(Ordering::Acquire)
                && let Some(at) = watches
                    .iter()
                    .map(Watch::bookmark_revision)
                    .collect::<Option<Vec<Revision>>>()
                    .and_then(|v| v.into_iter().min())
            {
                self.synced.fetch_max(at, Ordering::AcqRel);
                self.to_waiters.notify_waiters();
            }
        }
        self.running.store(false, Ordering::Release);
        self.to_waiters.notify_waiters();
    }

    /// Applies `obj` as the populator would (unit tests without a store task).
    #[cfg(test)]
    pub fn apply_for_test(&self, resource: &str, deleted: bool, obj: &Value) {
        let i = WATCHED.iter().position(|r| *r == resource).unwrap();
        let kind = if deleted {
            EventType::Deleted
        } else {
            EventType::Modified
        };
        self.apply(i, kind, obj);
    }

    /// How many times a resource was listed (tests: a watch that fell behind lists again).
    #[cfg(test)]
    pub fn lists(&self) -> u64 {
        self.lists.load(Ordering::Relaxed)
    }

    /// The graph's entry counts (tests: memory follows the objects).
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        self.graph.read().sizes()
    }
}
