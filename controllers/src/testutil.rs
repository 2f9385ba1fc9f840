//! Test helpers: a registry over a memory store, manifests, and polling under paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use api::registry::ResourceInfo;
use apiserver::Registry;
use apiserver::registry::{DeleteOptions, Deleted, Propagation, WriteOptions};
use serde_json::{Value, json};
use store::{Event, ListOptions, Store};
use tokio_util::sync::CancellationToken;

pub(crate) fn info(plural: &str) -> &'static ResourceInfo {
    api::registry::resources()
        .iter()
        .find(|i| i.plural == plural)
        .unwrap()
}

/// A registry over an empty memory store with namespace `ns` created.
pub(crate) async fn registry_with_namespace(ns: &str) -> Registry {
    let registry = Registry::new(Store::memory());
    create_namespace(&registry, ns).await;
    registry
}

/// Creates namespace `ns`.
pub(crate) async fn create_namespace(registry: &Registry, ns: &str) {
    create(
        registry,
        "namespaces",
        "",
        json!({"metadata": {"name": ns}}),
    )
    .await;
}

/// Sets `spec.replicas` of ReplicaSet `default/name`.
pub(crate) async fn scale_replicaset(registry: &Registry, name: &str, replicas: i64) {
    registry
        .update_with(info("replicasets"), "default", name, false, |rs| {
            rs["spec"]["replicas"] = json!(replicas);
            Ok(true)
        })
        .await
        .unwrap();
}

pub(crate) async fn create(registry: &Registry, plural: &str, ns: &str, obj: Value) -> Arc<Value> {
    registry
        .create(info(plural), ns, obj, &WriteOptions::default())
        .await
        .unwrap_or_else(|e| panic!("create {plural}: {e:?}"))
}

pub(crate) async fn delete(
    registry: &Registry,
    plural: &str,
    ns: &str,
    name: &str,
    policy: Option<Propagation>,
) -> Deleted {
    let opts = DeleteOptions {
        propagation_policy: policy,
        ..DeleteOptions::default()
    };
    registry
        .delete(info(plural), ns, name, &opts)
        .await
        .unwrap_or_else(|e| panic!("delete {plural}/{name}: {e:?}"))
}

pub(crate) fn get(registry: &Registry, plural: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
    registry.get(info(plural), ns, name).ok()
}

pub(crate) fn names(registry: &Registry, plural: &str, ns: &str) -> Vec<String> {
    list(registry, plural, ns)
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn owner_ref(kind: &str, api_version: &str, obj: &Value) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

fn template() -> Value {
    json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
    })
}

/// A Deployment `web`, its ReplicaSet `web-5d8f7` and two pods, owned in a chain as the
/// deployment and replicaset controllers create them. Returns (deployment, rs, pods).
pub(crate) async fn deployment_chain(
    registry: &Registry,
    ns: &str,
) -> (Arc<Value>, Arc<Value>, Vec<Arc<Value>>) {
    let deploy = create(
        registry,
        "deployments",
        ns,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template()}
        }),
    )
    .await;
    let rs = create(
        registry,
        "replicasets",
        ns,
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-5d8f7", "labels": {"app": "web"},
                         "ownerReferences": [owner_ref("Deployment", "apps/v1", &deploy)]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template()}
        }),
    )
    .await;
    let mut pods = Vec::new();
    for name in ["web-5d8f7-a", "web-5d8f7-b"] {
        pods.push(
            create(
                registry,
                "pods",
                ns,
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "labels": {"app": "web"},
                                 "ownerReferences": [owner_ref("ReplicaSet", "apps/v1", &rs)]},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
                }),
            )
            .await,
        );
    }
    (deploy, rs, pods)
}

/// Polls `cond` every 10 ms of (paused) tokio time; panics after 10 virtual minutes.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..60_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Starts every controller; returns the token that stops them.
pub(crate) fn start(registry: &Registry) -> CancellationToken {
    let stop = CancellationToken::new();
    tokio::spawn(crate::run(
        cluster(registry),
        authority(&ca()),
        crate::Options::default(),
        stop.clone(),
    ));
    stop
}

/// The registry as the controllers' port (the in-process adapter).
pub(crate) fn cluster(registry: &Registry) -> crate::ClusterRef {
    Arc::new(registry.clone())
}

/// A fresh cluster CA (made in a directory removed again; the CA lives on in memory).
pub(crate) fn ca() -> Arc<apiserver::tls::ClusterCa> {
    let dir = tempfile::tempdir().unwrap();
    Arc::new(apiserver::tls::ClusterCa::load_or_create(dir.path()).unwrap())
}

/// `ca` as the signer's authority, as the binary passes it.
pub(crate) fn authority(
    ca: &Arc<apiserver::tls::ClusterCa>,
) -> Arc<dyn crate::csrsigning::Authority> {
    let ca = ca.clone();
    Arc::new(move |params, key: &rcgen::SubjectPublicKeyInfo, ttl| {
        ca.sign(params, key, ttl).map_err(|e| e.to_string())
    })
}

/// The events of `resource` after revision `from` that are already in the log.
pub(crate) async fn events_since(store: &Store, resource: &str, from: u64) -> Vec<Event> {
    let mut watch = store.watch(resource, None, from).unwrap();
    let mut out = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(50), watch.next()).await {
        out.push(ev);
    }
    out
}

/// Every object of `plural` in `ns`.
pub(crate) fn list(registry: &Registry, plural: &str, ns: &str) -> Vec<Value> {
    registry
        .store()
        .list(
            &info(plural).store_resource(),
            Some(ns),
            &ListOptions::default(),
        )
        .unwrap()
        .items
        .iter()
        .map(|o| Value::clone(o))
        .collect()
}

/// Every event in `ns`.
pub(crate) fn list_events(registry: &Registry, ns: &str) -> Vec<Value> {
    list(registry, "events", ns)
}

/// The registry as a port for tests: pod reads (get, list, watch) fail while `broken` is
/// set (a store that cannot be read), counting the failures; every call fails while
/// `partitioned` is set (a server cut off from the cluster); pod creates are counted.
#[derive(Debug)]
pub(crate) struct TestPort {
    inner: Registry,
    pub(crate) broken: AtomicBool,
    pub(crate) partitioned: AtomicBool,
    pub(crate) failed_reads: AtomicUsize,
    pub(crate) pod_creates: AtomicUsize,
}

impl TestPort {
    pub(crate) fn new(registry: &Registry) -> TestPort {
        TestPort {
            inner: registry.clone(),
            broken: AtomicBool::new(false),
            partitioned: AtomicBool::new(false),
            failed_reads: AtomicUsize::new(0),
            pod_creates: AtomicUsize::new(0),
        }
    }

    fn cut(&self) -> Result<(), api::status::ApiError> {
        if self.partitioned.load(Ordering::SeqCst) {
            return Err(api::status::ApiError::service_unavailable(
                "no route to the cluster",
            ));
        }
        Ok(())
    }

    fn fail(&self, info: &api::registry::ResourceInfo) -> Result<(), api::status::ApiError> {
        self.cut()?;
        if info.plural == "pods" && self.broken.load(Ordering::SeqCst) {
            self.failed_reads.fetch_add(1, Ordering::SeqCst);
            return Err(api::status::ApiError::service_unavailable(
                "storage is unreachable",
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::cluster::Cluster for TestPort {
    async fn get(
        &self,
        info: &api::registry::ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<std::sync::Arc<Value>, api::status::ApiError> {
        self.fail(info)?;
        crate::cluster::Cluster::get(&self.inner, info, namespace, name).await
    }

    async fn list(
        &self,
        info: &api::registry::ResourceInfo,
        namespace: Option<&str>,
    ) -> Result<crate::cluster::ObjectList, api::status::ApiError> {
        self.fail(info)?;
        crate::cluster::Cluster::list(&self.inner, info, namespace).await
    }

    async fn watch(
        &self,
        info: &api::registry::ResourceInfo,
        namespace: Option<&str>,
        resource_version: &str,
    ) -> Result<crate::cluster::WatchStream, api::status::ApiError> {
        self.fail(info)?;
        self.inner.watch(info, namespace, resource_version).await
    }

    async fn create(
        &self,
        info: &api::registry::ResourceInfo,
        namespace: &str,
        obj: Value,
    ) -> Result<std::sync::Arc<Value>, api::status::ApiError> {
        self.cut()?;
        if info.plural == "pods" {
            self.pod_creates.fetch_add(1, Ordering::SeqCst);
        }
        crate::cluster::Cluster::create(&self.inner, info, namespace, obj).await
    }

    async fn update(
        &self,
        info: &api::registry::ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        subresource: crate::cluster::Subresource,
    ) -> Result<std::sync::Arc<Value>, api::status::ApiError> {
        self.cut()?;
        crate::cluster::Cluster::update(&self.inner, info, namespace, name, obj, subresource).await
    }

    async fn delete(
        &self,
        info: &api::registry::ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &crate::cluster::DeleteOptions,
    ) -> Result<crate::cluster::Deleted, api::status::ApiError> {
        self.cut()?;
        crate::cluster::Cluster::delete(&self.inner, info, namespace, name, opts).await
    }

    async fn bind(
        &self,
        namespace: &str,
        name: &str,
        binding: &crate::cluster::Binding,
    ) -> Result<(), api::status::ApiError> {
        self.cut()?;
        crate::cluster::Cluster::bind(&self.inner, namespace, name, binding).await
    }
}

/// Removes from `obj`'s metadata what the store or the clock sets (uid, resourceVersion,
/// creationTimestamp, generation, managedFields, owner reference uids, and the generated
/// name), for tests that pin written objects byte for byte.
pub(crate) fn strip_volatile_metadata(obj: &mut Value) {
    let md = obj["metadata"].as_object_mut().unwrap();
    for f in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
    ] {
        md.remove(f);
    }
    if let Some(refs) = md.get_mut("ownerReferences").and_then(Value::as_array_mut) {
        for r in refs {
            r.as_object_mut().unwrap().remove("uid");
        }
    }
    if md.contains_key("generateName") {
        md.remove("name");
    }
}

/// `v` with every object's keys sorted, so that the pin is of the content, not of the order
/// in which a builder inserted the fields.
pub(crate) fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let sorted: std::collections::BTreeMap<_, _> =
                    m.iter().map(|(k, v)| (k.clone(), sort(v))).collect();
                Value::Object(sorted.into_iter().collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            v => v.clone(),
        }
    }
    serde_json::to_string(&sort(v)).unwrap()
}
