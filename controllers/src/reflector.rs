//! List-then-watch on one resource through the [`Cluster`](crate::cluster::Cluster) port,
//! kube-runtime's watcher + reflector in one: the current objects are listed together with
//! the resourceVersion they are consistent at, then watched from exactly that version; when
//! the watch ends or fails (the watcher fell behind, or the version was compacted: 410) the
//! resource is listed again and the differences to the local cache are reported as changes,
//! so a consumer sees every object's latest state and every deletion.
//!
//! A failing list is retried with back-off and reported as nothing at all: the consumer
//! keeps its last view, and never sees a failure as "no objects" (which would make a
//! ReplicaSet controller create pods that already exist).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{Metadata, Resource};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, WatchEvent};
use crate::typed;

/// A change to one object of a watched resource.
#[derive(Debug, Clone)]
pub(crate) enum Delta {
    /// Created or changed: the new state.
    Upsert(Arc<Value>),
    /// Deleted; its last state.
    Delete(Arc<Value>),
    /// The initial list has been delivered.
    Synced,
}

/// A [`Delta`] of one resource.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The resource the object belongs to.
    pub(crate) info: &'static ResourceInfo,
    /// What happened.
    pub(crate) delta: Delta,
}

/// First wait before relisting after a watch ended or a list failed; doubles up to
/// [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Reflects `info`'s objects (all namespaces) into `tx` until `shutdown` or until the receiver
/// is dropped.
pub(crate) async fn reflect(
    cluster: ClusterRef,
    info: &'static ResourceInfo,
    tx: mpsc::Sender<Change>,
    shutdown: CancellationToken,
) {
    let mut cache: HashMap<(String, String), Arc<Value>> = HashMap::new();
    let mut synced = false;
    let mut backoff = MIN_BACKOFF;
    let send = |delta| {
        let tx = tx.clone();
        async move { tx.send(Change { info, delta }).await.is_ok() }
    };
    loop {
        let listed = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = cluster.list(info, None) => r,
        };
        let mut delivered = false;
        match listed {
            Err(e) => {
                tracing::warn!(resource = info.plural, error = %e, ?backoff, "list failed; retrying");
            }
            Ok(list) => {
                tracing::trace!(
                    resource = info.plural,
                    resource_version = %list.resource_version,
                    items = list.items.len(),
                    "listed"
                );
                let mut seen = HashSet::with_capacity(list.items.len());
                for obj in list.items {
                    let key = key_of(&obj);
                    seen.insert(key.clone());
                    let old = cache.insert(key, obj.clone());
                    if old.as_ref().is_some_and(|o| same_version(o, &obj)) {
                        continue;
                    }
                    if !send(Delta::Upsert(obj)).await {
                        return;
                    }
                }
                let gone: Vec<_> = cache
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(old) = cache.remove(&key)
                        && !send(Delta::Delete(old)).await
                    {
                        return;
                    }
                }
                if !synced {
                    synced = true;
                    if !send(Delta::Synced).await {
                        return;
                    }
                }
                let watch = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    w = cluster.watch(info, None, &list.resource_version) => w,
                };
                match watch {
                    Err(e) => {
                        tracing::debug!(resource = info.plural, error = %e, "watch failed; relisting")
                    }
                    Ok(mut watch) => loop {
                        let event = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            ev = watch.next() => ev,
                        };
                        let event = match event {
                            None => break,
                            Some(Err(e)) => {
                                tracing::debug!(resource = info.plural, error = %e, "watch error; relisting");
                                break;
                            }
                            Some(Ok(event)) => event,
                        };
                        delivered = true;
                        let delta = match event {
                            WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                                cache.insert(key_of(&obj), obj.clone());
                                Delta::Upsert(obj)
                            }
                            WatchEvent::Deleted(obj) => {
                                cache.remove(&key_of(&obj));
                                Delta::Delete(obj)
                            }
                        };
                        if !send(delta).await {
                            return;
                        }
                    },
                }
            }
        }
        if delivered {
            backoff = MIN_BACKOFF;
        }
        tracing::debug!(resource = info.plural, ?backoff, "relisting");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// The objects of kind `K` the reflectors delivered, decoded, by namespace and name: what a
/// controller's event handlers read synchronously (client-go's listers, kube-runtime's
/// reflector `Store<K>`). Reconciles read through the port instead, so a failed read is an
/// error there, not an absent object.
pub(crate) struct Cache<K> {
    objects: parking_lot::RwLock<BTreeMap<(String, String), Arc<K>>>,
}

impl<K> Default for Cache<K> {
    fn default() -> Self {
        Cache {
            objects: parking_lot::RwLock::default(),
        }
    }
}

impl<K: Resource + DeserializeOwned + Metadata<Ty = ObjectMeta>> Cache<K> {
    /// Applies a change if it is one of `K` (call it first in `observe`). An object that
    /// does not decode is dropped (and logged by [`typed::upserted`]).
    pub(crate) fn apply(&self, change: &Change) {
        if !std::ptr::eq(change.info, typed::info::<K>()) {
            return;
        }
        let (Delta::Upsert(obj) | Delta::Delete(obj)) = &change.delta else {
            return;
        };
        let Ok(m) = typed::metadata(obj) else {
            return;
        };
        let key = typed::key_of(&m);
        let mut objects = self.objects.write();
        match typed::upserted::<K>(change) {
            Some(obj) => objects.insert(key, Arc::new(obj)),
            None => objects.remove(&key),
        };
    }

    /// Stores (or with `None` removes) the object at `key`: for a controller that decodes
    /// the watched objects itself (the ReplicationController read as a ReplicaSet).
    pub(crate) fn set(&self, key: (String, String), obj: Option<K>) {
        let mut objects = self.objects.write();
        match obj {
            Some(obj) => objects.insert(key, Arc::new(obj)),
            None => objects.remove(&key),
        };
    }

    /// The cached objects in `namespace`.
    pub(crate) fn list(&self, namespace: &str) -> Vec<Arc<K>> {
        self.objects
            .read()
            .range((namespace.to_string(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// The keys of the `K`s a dependent with metadata `m` concerns (upstream's
    /// `getPodStatefulSets` / `getDaemonSetsForPod`): its controller when that is a `K`,
    /// nothing when another kind controls it, and for an orphan every cached `K` of its
    /// namespace whose `selector` selects it.
    pub(crate) fn owners_of(
        &self,
        m: &ObjectMeta,
        selector: impl Fn(&K) -> Option<api::selector::LabelSelector>,
    ) -> Vec<(String, String)> {
        let ns = typed::namespace(m);
        match typed::controller_ref(m) {
            // Any version of the group, as upstream compares the group only.
            Some(r)
                if r.kind == K::KIND
                    && r.api_version.rsplit_once('/').map_or("", |(g, _)| g) == K::GROUP =>
            {
                vec![(ns.to_string(), r.name.clone())]
            }
            Some(_) => Vec::new(),
            None => self
                .list(ns)
                .into_iter()
                .filter(|set| selector(set).is_some_and(|sel| crate::claim::selected(&sel, m)))
                .map(|set| typed::key_of(set.metadata()))
                .collect(),
        }
    }

    /// Every cached object.
    pub(crate) fn all(&self) -> Vec<Arc<K>> {
        self.objects.read().values().cloned().collect()
    }

    /// The cached object `namespace/name`.
    pub(crate) fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.objects
            .read()
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// Spawns one reflector per resource of `infos` onto `tasks`, all feeding the returned
/// channel (which closes once every reflector has ended).
pub(crate) fn spawn_all(
    tasks: &mut tokio::task::JoinSet<()>,
    cluster: &ClusterRef,
    infos: &[&'static ResourceInfo],
    shutdown: &CancellationToken,
) -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(1024);
    for info in infos {
        tasks.spawn(reflect(cluster.clone(), info, tx.clone(), shutdown.clone()));
    }
    rx
}

/// Spawns a task handing every change from `rx` to `f` until `shutdown` or until the
/// reflectors end.
pub(crate) fn spawn_feeder(
    tasks: &mut tokio::task::JoinSet<()>,
    mut rx: mpsc::Receiver<Change>,
    shutdown: &CancellationToken,
    mut f: impl FnMut(Change) + Send + 'static,
) {
    let stop = shutdown.clone();
    tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                change = rx.recv() => match change {
                    Some(change) => f(change),
                    None => return,
                },
            }
        }
    });
}

fn key_of(obj: &Value) -> (String, String) {
    (
        crate::meta::str(obj, "namespace").to_string(),
        crate::meta::str(obj, "name").to_string(),
    )
}

fn same_version(a: &Value, b: &Value) -> bool {
    crate::meta::str(a, "resourceVersion") == crate::meta::str(b, "resourceVersion")
        && crate::meta::uid(a) == crate::meta::uid(b)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use store::{Key, Store, StoreConfig};

    use super::*;

    fn name(obj: &Value) -> String {
        crate::meta::str(obj, "name").to_string()
    }

    /// Applies deltas to a map, as a consumer's cache would.
    fn apply(cache: &mut BTreeMap<String, Arc<Value>>, delta: Delta) {
        match delta {
            Delta::Upsert(obj) => {
                cache.insert(name(&obj), obj);
            }
            Delta::Delete(obj) => {
                cache.remove(&name(&obj));
            }
            Delta::Synced => {}
        }
    }

    #[tokio::test(start_paused = true)]
    async fn relists_after_falling_behind_and_reports_deletions() {
        let store = Store::memory_with(StoreConfig {
            watch_buffer: 2,
            ..StoreConfig::default()
        });
        let key = |n: &str| Key::new("configmaps", "ns", n);
        for n in ["a", "b"] {
            store
                .create(key(n), json!({"metadata": {"name": n, "namespace": "ns"}}))
                .await
                .unwrap();
        }
        let (tx, mut rx) = mpsc::channel(1);
        let stop = CancellationToken::new();
        tokio::spawn(reflect(
            Arc::new(apiserver::Registry::new(store.clone())),
            crate::testutil::info("configmaps"),
            tx,
            stop.clone(),
        ));
        let mut cache = BTreeMap::new();
        loop {
            let change = rx.recv().await.unwrap();
            let synced = matches!(change.delta, Delta::Synced);
            apply(&mut cache, change.delta);
            if synced {
                break;
            }
        }
        assert_eq!(cache.keys().collect::<Vec<_>>(), ["a", "b"]);

        // Not reading: the reflector blocks, its store watcher overflows and is ended.
        for i in 0..20 {
            let n = format!("c{i:02}");
            store
                .create(key(&n), json!({"metadata": {"name": n, "namespace": "ns"}}))
                .await
                .unwrap();
        }
        store.delete(&key("a"), None).await.unwrap();
        store
            .update(
                key("b"),
                json!({"metadata": {"name": "b", "namespace": "ns"}, "data": {"x": "1"}}),
                None,
            )
            .await
            .unwrap();

        let mut deleted = Vec::new();
        while let Ok(Some(change)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await
        {
            if let Delta::Delete(obj) = &change.delta {
                deleted.push(name(obj));
            }
            apply(&mut cache, change.delta);
        }
        assert_eq!(deleted, ["a"]);
        let want: Vec<String> = store
            .list("configmaps", Some("ns"), &store::ListOptions::default())
            .unwrap()
            .items
            .iter()
            .map(|o| name(o))
            .collect();
        assert_eq!(cache.keys().cloned().collect::<Vec<_>>(), want);
        assert_eq!(cache["b"]["data"]["x"], "1");
        stop.cancel();
    }

    #[test]
    fn the_cache_holds_decoded_objects_of_its_kind() {
        use k8s_openapi::api::apps::v1::ReplicaSet;
        let info = |plural| crate::testutil::info(plural);
        let rs = |ns: &str, name: &str, replicas: Value| {
            Arc::new(json!({"metadata": {"namespace": ns, "name": name},
                            "spec": {"replicas": replicas}}))
        };
        let change = |info, delta| Change { info, delta };
        let cache: Cache<ReplicaSet> = Cache::default();
        for (ns, name) in [("a", "x"), ("a", "y"), ("b", "x")] {
            cache.apply(&change(
                info("replicasets"),
                Delta::Upsert(rs(ns, name, json!(1))),
            ));
        }
        // Another kind is not its business.
        cache.apply(&change(
            info("deployments"),
            Delta::Upsert(rs("a", "z", json!(1))),
        ));
        let names = |ns| -> Vec<String> {
            let list = cache.list(ns);
            list.iter()
                .map(|r| r.metadata.name.clone().unwrap())
                .collect()
        };
        assert_eq!(names("a"), ["x", "y"]);
        assert_eq!(cache.get("b", "x").unwrap().spec.replicas, Some(1));
        cache.apply(&change(
            info("replicasets"),
            Delta::Delete(rs("a", "x", json!(1))),
        ));
        assert_eq!(names("a"), ["y"]);
        // A state that does not decode replaces none: the stale one goes.
        cache.apply(&change(
            info("replicasets"),
            Delta::Upsert(rs("a", "y", json!("two"))),
        ));
        assert!(cache.get("a", "y").is_none());
        assert_eq!(names("b"), ["x"]);
    }
}
