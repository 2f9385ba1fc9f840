//! Feeds a [`Proxy`] from the Kubernetes API with kube-rs watchers on Services and
//! EndpointSlices (all namespaces), as kube-proxy's informers do: every slice labelled
//! `kubernetes.io/service-name` adds its endpoints to that service; the merged set replaces
//! the service's endpoints in the proxy. On a relist, objects that disappeared are removed.
//! With `write_lb_status`, LoadBalancer services get `status.loadBalancer.ingress` set to the
//! node's addresses (127.0.0.1 first on a `paddock up` node). A service's
//! `healthCheckNodePort` goes to [`Proxy::set_health_check_port`]. Another consumer of the
//! same objects in the process (the node's DNS server) can ride on the same watches as an
//! [`Observer`] ([`run_from_api_with`]) instead of opening its own.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio_util::sync::CancellationToken;

use crate::Proxy;
use crate::model::{EndpointInfo, ServiceInfo};

const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

type Key = (String, String);

fn key(meta: &kube::api::ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Told every Service and EndpointSlice the proxy is told (including ExternalName services
/// and slices of no service, which the proxy ignores), and their removals.
pub trait Observer: Send + Sync {
    /// A Service was added or changed.
    fn service(&self, svc: &Service);
    /// A Service is gone.
    fn service_deleted(&self, namespace: &str, name: &str);
    /// An EndpointSlice was added or changed.
    fn slice(&self, slice: &EndpointSlice);
    /// An EndpointSlice is gone.
    fn slice_deleted(&self, namespace: &str, name: &str);
}

/// Watches Services and EndpointSlices through `client` and keeps `proxy`'s table in step
/// until `shutdown`.
pub async fn run_from_api(
    client: kube::Client,
    proxy: Arc<Proxy>,
    write_lb_status: bool,
    shutdown: CancellationToken,
) {
    run_from_api_with(client, proxy, write_lb_status, None, shutdown).await;
}

/// [`run_from_api`], also telling `observer`.
pub async fn run_from_api_with(
    client: kube::Client,
    proxy: Arc<Proxy>,
    write_lb_status: bool,
    observer: Option<Arc<dyn Observer>>,
    shutdown: CancellationToken,
) {
    let services = watch_services(
        client.clone(),
        proxy.clone(),
        write_lb_status,
        observer.clone(),
    );
    let slices = watch_slices(client, proxy, observer);
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = services => {}
        _ = slices => {}
    }
}

async fn watch_services(
    client: kube::Client,
    proxy: Arc<Proxy>,
    write_lb_status: bool,
    observer: Option<Arc<dyn Observer>>,
) {
    let api: Api<Service> = Api::all(client.clone());
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut known: HashSet<Key> = HashSet::new();
    let mut listed: HashSet<Key> = HashSet::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "service watch failed; retrying");
                continue;
            }
        };
        match event {
            Event::Init => listed.clear(),
            Event::InitApply(svc) | Event::Apply(svc) => {
                let k = key(&svc.metadata);
                listed.insert(k.clone());
                known.insert(k.clone());
                if let Some(o) = &observer {
                    o.service(&svc);
                }
                match ServiceInfo::from_service(&svc) {
                    Some(info) => {
                        let lb = info.type_ == "LoadBalancer";
                        proxy.set_health_check_port(
                            &k.0,
                            &k.1,
                            crate::model::health_check_node_port(&svc),
                        );
                        proxy.update_service(info);
                        if lb && write_lb_status {
                            set_lb_status(&client, &proxy, &svc).await;
                        }
                    }
                    None => proxy.remove_service(&k.0, &k.1),
                }
            }
            Event::Delete(svc) => {
                let k = key(&svc.metadata);
                known.remove(&k);
                proxy.remove_service(&k.0, &k.1);
                if let Some(o) = &observer {
                    o.service_deleted(&k.0, &k.1);
                }
            }
            Event::InitDone => {
                for k in known.difference(&listed) {
                    proxy.remove_service(&k.0, &k.1);
                    if let Some(o) = &observer {
                        o.service_deleted(&k.0, &k.1);
                    }
                }
                known = listed.clone();
            }
        }
    }
}

/// Sets `status.loadBalancer.ingress` to the proxy's addresses when it differs.
async fn set_lb_status(client: &kube::Client, proxy: &Proxy, svc: &Service) {
    let want: Vec<String> = proxy
        .load_balancer_ingress()
        .iter()
        .map(ToString::to_string)
        .collect();
    let have: Vec<String> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect();
    if want == have {
        return;
    }
    let (ns, name) = key(&svc.metadata);
    let api: Api<Service> = Api::namespaced(client.clone(), &ns);
    let ingress: Vec<serde_json::Value> = want
        .iter()
        .map(|ip| serde_json::json!({"ip": ip, "ipMode": "VIP"}))
        .collect();
    let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}});
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(service = %format!("{ns}/{name}"), error = %e, "could not set load balancer status");
    }
}

async fn watch_slices(
    client: kube::Client,
    proxy: Arc<Proxy>,
    observer: Option<Arc<dyn Observer>>,
) {
    let api: Api<EndpointSlice> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // slice key -> (service key, its endpoints)
    let mut slices: HashMap<Key, (Key, Vec<EndpointInfo>)> = HashMap::new();
    let mut listed: HashSet<Key> = HashSet::new();
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "endpointslice watch failed; retrying");
                continue;
            }
        };
        let mut touched: HashSet<Key> = HashSet::new();
        // When the endpoint changes these slices carry happened, for the programming latency.
        let mut triggers: Vec<String> = Vec::new();
        match event {
            Event::Init => listed.clear(),
            Event::InitApply(slice) | Event::Apply(slice) => {
                let k = key(&slice.metadata);
                listed.insert(k.clone());
                if let Some(o) = &observer {
                    o.slice(&slice);
                }
                if let Some(t) = slice
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(crate::metrics::LAST_CHANGE_TRIGGER_TIME))
                {
                    triggers.push(t.clone());
                }
                let service = slice
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .map(|s| (k.0.clone(), s.clone()));
                let old = match service {
                    Some(svc) => {
                        touched.insert(svc.clone());
                        slices.insert(k, (svc, EndpointInfo::from_slice(&slice)))
                    }
                    None => slices.remove(&k),
                };
                if let Some((svc, _)) = old {
                    touched.insert(svc);
                }
            }
            Event::Delete(slice) => {
                let k = key(&slice.metadata);
                if let Some(o) = &observer {
                    o.slice_deleted(&k.0, &k.1);
                }
                if let Some((svc, _)) = slices.remove(&k) {
                    touched.insert(svc);
                }
            }
            Event::InitDone => {
                let gone: Vec<Key> = slices
                    .keys()
                    .filter(|k| !listed.contains(*k))
                    .cloned()
                    .collect();
                for k in gone {
                    if let Some(o) = &observer {
                        o.slice_deleted(&k.0, &k.1);
                    }
                    if let Some((svc, _)) = slices.remove(&k) {
                        touched.insert(svc);
                    }
                }
                touched.extend(slices.values().map(|(svc, _)| svc.clone()));
            }
        }
        for svc in touched {
            let eps: Vec<EndpointInfo> = slices
                .values()
                .filter(|(s, _)| *s == svc)
                .flat_map(|(_, e)| e.iter().cloned())
                .collect();
            proxy.set_endpoints(&svc.0, &svc.1, eps);
        }
        for t in &triggers {
            proxy.metrics().programmed(t);
        }
    }
}
