//! The controllers' port (`api::cluster::Cluster`) over a kube-rs client: the same
//! controllers, run out of process against any paddock (or Kubernetes) API server. Each
//! operation is the REST call the in-process adapter stands for (GET, LIST, WATCH from a
//! resourceVersion, POST, PUT on the object or its `status`/`finalize` subresource, DELETE
//! with `DeleteOptions`, POST `binding`); a `Status` error comes back as the same
//! `ApiError`, a watch `ERROR` event (such as 410 Gone) as an error that makes the reflector
//! list again.

// `ApiError` (the whole Status) is the port's error, as in `api` and the controllers.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use api::cluster::{
    Binding, Cluster, DeleteOptions, Deleted, ObjectList, Subresource, WatchEvent, WatchStream,
};
use api::registry::ResourceInfo;
use api::status::ApiError;
use futures::StreamExt;
use http::Method;
use serde_json::{Value, json};

/// The port over a kube-rs client.
#[derive(Clone)]
pub(crate) struct KubeCluster {
    client: kube::Client,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubeCluster")
    }
}

impl KubeCluster {
    pub(crate) fn new(client: kube::Client) -> KubeCluster {
        KubeCluster { client }
    }

    /// The REST call `method path` with a JSON body, answered with JSON.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.client
            .request::<Value>(request(method, path, body)?)
            .await
            .map_err(api_error)
    }
}

/// The collection path of `info` (`/api/v1/namespaces/ns/pods`), an object's with `name`,
/// a subresource's with `sub`.
fn path(
    info: &ResourceInfo,
    namespace: Option<&str>,
    name: Option<&str>,
    sub: Option<&str>,
) -> String {
    let mut p = if info.group.is_empty() {
        format!("/api/{}", info.version)
    } else {
        format!("/apis/{}/{}", info.group, info.version)
    };
    if let Some(ns) = namespace.filter(|ns| info.namespaced && !ns.is_empty()) {
        p.push_str(&format!("/namespaces/{ns}"));
    }
    p.push('/');
    p.push_str(info.plural);
    for part in [name, sub].into_iter().flatten() {
        p.push('/');
        p.push_str(part);
    }
    p
}

fn request(
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<http::Request<Vec<u8>>, ApiError> {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// A client error as the `Status` the server sent (or a 503 when none came back).
fn api_error(e: kube::Error) -> ApiError {
    match e {
        kube::Error::Api(s) => ApiError::new(s.code, &s.reason, s.message),
        other => ApiError::service_unavailable(other.to_string()),
    }
}

/// Items of a list carry no `apiVersion`/`kind` on the wire; the controllers read them as
/// stored objects, which do.
fn typed(info: &ResourceInfo, mut obj: Value) -> Arc<Value> {
    if let Some(m) = obj.as_object_mut() {
        m.entry("apiVersion")
            .or_insert_with(|| json!(info.api_version()));
        m.entry("kind").or_insert_with(|| json!(info.kind));
    }
    Arc::new(obj)
}

#[async_trait::async_trait]
impl Cluster for KubeCluster {
    async fn get(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let p = path(info, Some(namespace), Some(name), None);
        Ok(typed(info, self.call(Method::GET, &p, None).await?))
    }

    async fn list(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
    ) -> Result<ObjectList, ApiError> {
        let mut list = self
            .call(Method::GET, &path(info, namespace, None, None), None)
            .await?;
        let resource_version = list["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let items = match list["items"].take() {
            Value::Array(items) => items.into_iter().map(|o| typed(info, o)).collect(),
            _ => Vec::new(),
        };
        Ok(ObjectList {
            items,
            resource_version,
        })
    }

    async fn watch(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        resource_version: &str,
    ) -> Result<WatchStream, ApiError> {
        let p = format!(
            "{}?watch=true&allowWatchBookmarks=true&resourceVersion={resource_version}",
            path(info, namespace, None, None)
        );
        let events = self
            .client
            .request_events::<Value>(request(Method::GET, &p, None)?)
            .await
            .map_err(api_error)?;
        let (api_version, kind) = (info.api_version(), info.kind);
        let stream = events.filter_map(move |ev| {
            let typed = |mut o: Value| {
                if let Some(m) = o.as_object_mut() {
                    m.entry("apiVersion").or_insert_with(|| json!(api_version));
                    m.entry("kind").or_insert_with(|| json!(kind));
                }
                Arc::new(o)
            };
            let out = match ev {
                Ok(kube::api::WatchEvent::Added(o)) => Some(Ok(WatchEvent::Added(typed(o)))),
                Ok(kube::api::WatchEvent::Modified(o)) => Some(Ok(WatchEvent::Modified(typed(o)))),
                Ok(kube::api::WatchEvent::Deleted(o)) => Some(Ok(WatchEvent::Deleted(typed(o)))),
                Ok(kube::api::WatchEvent::Bookmark(_)) => None,
                Ok(kube::api::WatchEvent::Error(s)) => {
                    Some(Err(ApiError::new(s.code, &s.reason, s.message)))
                }
                Err(e) => Some(Err(api_error(e))),
            };
            futures::future::ready(out)
        });
        Ok(Box::pin(stream))
    }

    async fn create(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let p = path(info, Some(namespace), None, None);
        Ok(typed(info, self.call(Method::POST, &p, Some(&obj)).await?))
    }

    async fn update(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        obj: Value,
        subresource: Subresource,
    ) -> Result<Arc<Value>, ApiError> {
        let sub = match subresource {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
            Subresource::Finalize => Some("finalize"),
            Subresource::Approval => Some("approval"),
        };
        let p = path(info, Some(namespace), Some(name), sub);
        Ok(typed(info, self.call(Method::PUT, &p, Some(&obj)).await?))
    }

    async fn delete(
        &self,
        info: &ResourceInfo,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let mut body = json!({"apiVersion": "v1", "kind": "DeleteOptions"});
        if let Some(g) = opts.grace_period_seconds {
            body["gracePeriodSeconds"] = json!(g);
        }
        if let Some(p) = opts.propagation_policy {
            body["propagationPolicy"] = json!(p.as_str());
        }
        if let Some(uid) = &opts.preconditions_uid {
            body["preconditions"]["uid"] = json!(uid);
        }
        if let Some(rv) = &opts.preconditions_resource_version {
            body["preconditions"]["resourceVersion"] = json!(rv);
        }
        if opts.dry_run {
            body["dryRun"] = json!(["All"]);
        }
        let p = path(info, Some(namespace), Some(name), None);
        let out = self.call(Method::DELETE, &p, Some(&body)).await?;
        // A Status (or the last state without a deletionTimestamp) means gone; an object
        // marked for deletion stays until its finalizers or grace period end.
        Ok(
            if out["kind"] != "Status" && !out["metadata"]["deletionTimestamp"].is_null() {
                Deleted::Pending(typed(info, out))
            } else {
                Deleted::Gone(Arc::new(out))
            },
        )
    }

    async fn bind(&self, namespace: &str, name: &str, binding: &Binding) -> Result<(), ApiError> {
        let mut body = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": binding.node},
        });
        if let Some(uid) = &binding.uid {
            body["metadata"]["uid"] = json!(uid);
        }
        if let Some(rv) = &binding.resource_version {
            body["metadata"]["resourceVersion"] = json!(rv);
        }
        if !binding.annotations.is_empty() {
            body["metadata"]["annotations"] = json!(binding.annotations);
        }
        let pods = api::registry::lookup("", "v1", "pods")
            .ok_or_else(|| ApiError::internal("the resource table serves pods"))?;
        let p = path(pods, Some(namespace), Some(name), Some("binding"));
        self.call(Method::POST, &p, Some(&body)).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use controllers::{CancellationToken, ClusterRef};

    use super::*;

    /// The registry's view of the active pods in `ns`.
    fn active_pods(registry: &apiserver::registry::Registry, ns: &str) -> usize {
        let pods = api::registry::lookup("", "v1", "pods").unwrap();
        let (items, _) = registry.list(pods, Some(ns), None, None).unwrap();
        items
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .count()
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..300 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// The ReplicaSet controller, given `cluster`, creates a set's pods and scales it down.
    async fn replicaset_scales(
        cluster: ClusterRef,
        registry: &apiserver::registry::Registry,
        ns: &str,
    ) {
        let opts = apiserver::registry::WriteOptions::default();
        let info = |g, p| {
            api::registry::resources()
                .iter()
                .find(|i| i.group == g && i.plural == p)
                .unwrap()
        };
        registry
            .create(
                info("", "namespaces"),
                "",
                json!({"metadata": {"name": ns}}),
                &opts,
            )
            .await
            .unwrap();
        registry
            .create(
                info("apps", "replicasets"),
                ns,
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
                       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                                "template": {"metadata": {"labels": {"app": "web"}},
                                             "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
                &opts,
            )
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(controllers::replicaset::run(cluster, stop.clone()));
        wait_for("2 pods", || active_pods(registry, ns) == 2).await;
        registry
            .update_with(info("apps", "replicasets"), ns, "web", false, |rs| {
                rs["spec"]["replicas"] = json!(1);
                Ok(true)
            })
            .await
            .unwrap();
        wait_for("1 pod", || active_pods(registry, ns) == 1).await;
        let rs = registry
            .get(info("apps", "replicasets"), ns, "web")
            .unwrap();
        wait_for("status", || {
            registry
                .get(info("apps", "replicasets"), ns, "web")
                .unwrap()["status"]["replicas"]
                == 1
        })
        .await;
        assert_eq!(rs["metadata"]["name"], "web");
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn replicaset_controller_runs_in_process_and_over_kube_rs() {
        let dir = tempfile::tempdir().unwrap();
        let server = apiserver::start(apiserver::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("server"),
            memory_store: true,
            advertise_host: None,
            extra_sans: Vec::new(),
            max_connections: None,
        })
        .await
        .unwrap();
        let registry = server.registry();
        replicaset_scales(Arc::new(registry.clone()), &registry, "in-process").await;

        let kc = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        let client = kube::Client::try_from(cfg).unwrap();
        replicaset_scales(
            Arc::new(KubeCluster::new(client)),
            &registry,
            "over-kube-rs",
        )
        .await;
        server.shutdown().await;
    }
}
