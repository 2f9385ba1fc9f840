//! Where a controller turns the port's JSON into k8s-openapi types: once, where it reads (a
//! `get`, or a watched change), as kube-runtime's `watcher<K>` decodes each object as it
//! arrives. Reads are typed from there on. Writes stay edits of the stored JSON
//! ([`crate::edit_at`]), so that fields this k8s-openapi version does not know survive a
//! read-modify-write.
//!
//! Every controller reads typed objects: `csrsigning`, `namespace` (the namespace
//! itself; its content, of every kind, is handled as metadata, as upstream's dynamic client
//! does), `gc` (objects of every kind as their [`metadata`]), `endpoints` and
//! `endpointslice` (services, pods, nodes and what they write; the desired object is built
//! typed and serialised once, at the write), `scheduler` (its cache holds typed pods and
//! nodes), `replicaset` (ReplicaSets and pods; the pods it creates are built typed from the
//! template) and `deployment` (Deployments, ReplicaSets and pods; the ReplicaSets it creates
//! are built typed; its status is computed typed and written whole), `nodelifecycle`,
//! `tainteviction` and `nodeipam` (nodes, leases and pods; their writes are edits of
//! conditions, taints and pod CIDRs). Claiming
//! (`crate::claim`) takes typed objects of any kind. Pod facts over typed pods live in
//! `crate::pod::typed`; the event handlers' caches are typed (`crate::reflector::Cache`).

use api::registry::ResourceInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::{Metadata, Resource};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Error;
use crate::cluster::{ClusterRef, Subresource};
use crate::reflector::{Change, Delta};

/// The resource table's entry for `K`.
pub(crate) fn info<K: Resource>() -> &'static ResourceInfo {
    crate::resource(K::GROUP, K::URL_PATH_SEGMENT)
}

/// `obj` as a `K`.
pub(crate) fn decode<K: Resource + DeserializeOwned>(obj: &Value) -> Result<K, Error> {
    K::deserialize(obj).map_err(|e| Error::Decode {
        kind: K::KIND,
        message: e.to_string(),
    })
}

/// The metadata of `obj`, of any kind: what the garbage collector reads, as upstream's
/// metadata-only informers (`PartialObjectMetadata`) give it.
pub(crate) fn metadata(obj: &Value) -> Result<ObjectMeta, Error> {
    ObjectMeta::deserialize(&obj["metadata"]).map_err(|e| Error::Decode {
        kind: "ObjectMeta",
        message: e.to_string(),
    })
}

/// The current `namespace/name` (`""` for cluster-scoped kinds) as a `K`; `None` when it
/// does not exist. Any other failure is an error (the reconcile is retried), never "gone".
pub(crate) async fn get<K: Resource + DeserializeOwned>(
    cluster: &ClusterRef,
    namespace: &str,
    name: &str,
) -> Result<Option<K>, Error> {
    match cluster.get(info::<K>(), namespace, name).await {
        Ok(obj) => decode(&obj).map(Some),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every `K` (in `namespace`, or all with `None`). An item that does not decode is logged
/// and skipped, as by [`upserted`]; a failed list is an error, never an empty list.
pub(crate) async fn list<K: Resource + DeserializeOwned>(
    cluster: &ClusterRef,
    namespace: Option<&str>,
) -> Result<Vec<K>, Error> {
    let list = cluster.list(info::<K>(), namespace).await?;
    Ok(list
        .items
        .iter()
        .filter_map(|obj| {
            decode(obj)
                .inspect_err(|e| tracing::warn!(error = %e, "ignoring a listed object"))
                .ok()
        })
        .collect())
}

/// The new state of a `K` a watch reported as created or changed; `None` for deletions,
/// other resources and the end of the initial list. An object that does not decode is
/// logged and skipped (validation refuses such objects; an informer could not decode it).
pub(crate) fn upserted<K: Resource + DeserializeOwned>(change: &Change) -> Option<K> {
    let Delta::Upsert(obj) = &change.delta else {
        return None;
    };
    if !std::ptr::eq(change.info, info::<K>()) {
        return None;
    }
    decode(obj)
        .inspect_err(|e| tracing::warn!(error = %e, "ignoring a watched object"))
        .ok()
}

/// The owner reference with `controller: true` (upstream `GetControllerOf`).
pub(crate) fn controller_ref(m: &ObjectMeta) -> Option<&OwnerReference> {
    m.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (upstream `NewControllerRef`).
pub(crate) fn controller_ref_to<K: Resource + Metadata<Ty = ObjectMeta>>(
    owner: &K,
) -> OwnerReference {
    let m = owner.metadata();
    OwnerReference {
        api_version: K::API_VERSION.into(),
        kind: K::KIND.into(),
        name: m.name.clone().unwrap_or_default(),
        uid: m.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A desired object (or part of one) as the JSON the port writes: built typed, serialised
/// once, at the write.
pub(crate) fn encode<T: Serialize>(obj: &T) -> Result<Value, api::status::ApiError> {
    serde_json::to_value(obj).map_err(|e| {
        let what = std::any::type_name::<T>();
        api::status::ApiError::internal(format!("encoding {what}: {e}"))
    })
}

/// `metadata.name`, `""` when unset.
pub(crate) fn name(m: &ObjectMeta) -> &str {
    m.name.as_deref().unwrap_or("")
}

/// `metadata.namespace`, `""` when unset.
pub(crate) fn namespace(m: &ObjectMeta) -> &str {
    m.namespace.as_deref().unwrap_or("")
}

/// `metadata.uid`, `""` when unset.
pub(crate) fn uid(m: &ObjectMeta) -> &str {
    m.uid.as_deref().unwrap_or("")
}

/// An object's namespace, name and uid.
pub(crate) fn at(m: &ObjectMeta) -> (&str, &str, &str) {
    (namespace(m), name(m), uid(m))
}

/// An object's `(namespace, name)`, the key of the work queues and caches.
pub(crate) fn key_of(m: &ObjectMeta) -> (String, String) {
    (namespace(m).to_string(), name(m).to_string())
}

/// [`crate::edit_at`] of the stored JSON of `obj` (same namespace, name and uid).
pub(crate) async fn edit<K: Resource + Metadata<Ty = ObjectMeta>>(
    cluster: &ClusterRef,
    obj: &K,
    subresource: Subresource,
    f: impl FnMut(&mut Value) -> bool + Send,
) -> Result<Option<std::sync::Arc<Value>>, api::status::ApiError> {
    crate::edit_at(cluster, info::<K>(), at(obj.metadata()), subresource, f).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    use super::*;
    use crate::testutil::{TestPort, create, info as info_of, registry_with_namespace};

    #[tokio::test]
    async fn get_is_none_only_when_not_found() {
        let registry = registry_with_namespace("ns").await;
        let port = Arc::new(TestPort::new(&registry));
        let cluster: ClusterRef = port.clone();
        assert!(
            get::<ConfigMap>(&cluster, "ns", "cm")
                .await
                .unwrap()
                .is_none()
        );
        create(
            &registry,
            "configmaps",
            "ns",
            json!({"metadata": {"name": "cm"}, "data": {"k": "v"}}),
        )
        .await;
        let cm = get::<ConfigMap>(&cluster, "ns", "cm")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cm.data.unwrap()["k"], "v");
        // An object that got into the store around validation is skipped by a list.
        registry
            .store()
            .create(
                store::Key::new("configmaps", "ns", "bad"),
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "bad", "namespace": "ns"}, "data": 5}),
            )
            .await
            .unwrap();
        let names: Vec<_> = list::<ConfigMap>(&cluster, Some("ns"))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|c| c.metadata.name)
            .collect();
        assert!(
            names.contains(&"cm".to_string()) && !names.contains(&"bad".to_string()),
            "{names:?}"
        );
        // A server that cannot answer is an error to retry on, not "gone" or "none".
        port.partitioned.store(true, Ordering::SeqCst);
        assert!(matches!(
            get::<ConfigMap>(&cluster, "ns", "cm").await,
            Err(Error::Api(e)) if e.code == 503
        ));
        assert!(list::<ConfigMap>(&cluster, Some("ns")).await.is_err());
    }

    #[test]
    fn decode_names_the_kind_and_upserted_filters_changes() {
        let err = decode::<ConfigMap>(&json!({"data": 5})).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    kind: "ConfigMap",
                    ..
                }
            ),
            "{err}"
        );

        let cm = Arc::new(json!({"metadata": {"name": "cm"}, "data": {"k": "v"}}));
        let change = |info, delta| Change { info, delta };
        let got = upserted::<ConfigMap>(&change(info_of("configmaps"), Delta::Upsert(cm.clone())));
        assert_eq!(got.unwrap().metadata.name.as_deref(), Some("cm"));
        assert!(
            upserted::<ConfigMap>(&change(info_of("secrets"), Delta::Upsert(cm.clone()))).is_none()
        );
        assert!(upserted::<ConfigMap>(&change(info_of("configmaps"), Delta::Delete(cm))).is_none());
        let bad = Arc::new(json!({"data": 5}));
        assert!(
            upserted::<ConfigMap>(&change(info_of("configmaps"), Delta::Upsert(bad))).is_none()
        );
    }
}
