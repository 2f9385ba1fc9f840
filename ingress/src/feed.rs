//! Feeds a [`Router`] from the Kubernetes API with kube-rs watchers on Ingresses and
//! IngressClasses (all namespaces) and on each `kubernetes.io/tls` Secret our Ingresses name
//! in `spec.tls[].secretName` (one watch per Secret, selected by `metadata.name`, as the
//! kubelet's watch-based secret manager reads a pod's Secrets: the controller runs with its
//! node's identity, and the Node authorizer lets a node read exactly those Secrets), in the
//! style of [`proxy::feed`] (whose Service and EndpointSlice watches the router rides on as an
//! [`proxy::feed::Observer`]); on a relist, objects that disappeared are removed. It also
//! writes `status.loadBalancer.ingress` of each of our Ingresses (127.0.0.1 and the Ready
//! Nodes' addresses: every node serves every Ingress) through the `ingresses/status` subresource,
//! clears it again on an Ingress that stops being ours while this controller runs (its class
//! changed, or the default class did) and still lists exactly our addresses ([`stale`]), and
//! records a Warning event on an Ingress when one of its backend Services does not exist
//! (reason [`crate::table::REASON_NO_SERVICE`]) or a TLS Secret is missing or unusable
//! ([`crate::table::REASON_BAD_TLS`]), once per problem while it lasts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, EventSource, Node, ObjectReference, Secret};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event as WEvent};
use tokio_util::sync::CancellationToken;

use crate::Router;
use crate::table::{Key, Problem};

/// The component events are recorded under.
pub const COMPONENT: &str = "paddock-ingress-controller";

/// Watches Ingresses, IngressClasses and their TLS Secrets through `client` and keeps `router` in
/// step until `shutdown`; with `status_addresses`, writes them as each of our Ingresses'
/// `status.loadBalancer.ingress` and records its Warning events (`node` names the reporting
/// instance).
pub async fn run_from_api(
    client: kube::Client,
    router: Arc<Router>,
    node: String,
    status_addresses: Option<Vec<IpAddr>>,
    shutdown: CancellationToken,
) {
    let r = router.clone();
    let ingresses = watch_all::<Ingress, _, _>(
        Api::all(client.clone()),
        watcher::Config::default(),
        move |i| r.update_ingress(i),
        {
            let r = router.clone();
            move |ns, name| r.remove_ingress(ns, name)
        },
    );
    let r = router.clone();
    let classes = watch_all::<IngressClass, _, _>(
        Api::all(client.clone()),
        watcher::Config::default(),
        move |c| r.update_class(&c),
        {
            let r = router.clone();
            move |_, name| r.remove_class(name)
        },
    );
    let secrets = watch_tls_secrets(client.clone(), router.clone());
    let (nodes_tx, nodes_rx) = tokio::sync::watch::channel(Vec::new());
    let status = async {
        match status_addresses {
            Some(addrs) => {
                tokio::join!(
                    watch_node_addresses(client.clone(), nodes_tx),
                    write_status(client.clone(), router.clone(), node, addrs, nodes_rx),
                );
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = ingresses => {}
        _ = classes => {}
        _ = secrets => {}
        _ = status => {}
    }
}

fn key(meta: &ObjectMeta) -> Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// One watch: `apply` for every object listed or changed, `delete` for every one gone
/// (also those a relist no longer shows).
async fn watch_all<K, A, D>(api: Api<K>, config: watcher::Config, apply: A, delete: D)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K: Resource<DynamicType = ()>,
    A: Fn(K),
    D: Fn(&str, &str),
{
    {
        let kind = K::kind(&());
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut known: HashSet<Key> = HashSet::new();
        let mut listed: HashSet<Key> = HashSet::new();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!(%kind, error = %e, "ingress: watch failed; retrying");
                    continue;
                }
            };
            match event {
                WEvent::Init => listed.clear(),
                WEvent::InitApply(o) | WEvent::Apply(o) => {
                    let k = key(o.meta());
                    listed.insert(k.clone());
                    known.insert(k);
                    apply(o);
                }
                WEvent::Delete(o) => {
                    let k = key(o.meta());
                    known.remove(&k);
                    delete(&k.0, &k.1);
                }
                WEvent::InitDone => {
                    for k in known.difference(&listed) {
                        delete(&k.0, &k.1);
                    }
                    known = listed.clone();
                }
            }
        }
    }
}

/// Watches each TLS Secret our Ingresses name, alone (`metadata.name` and type field
/// selectors), starting a watch when an Ingress names a new one and ending it (and forgetting
/// the Secret) when none does any more.
async fn watch_tls_secrets(client: kube::Client, router: Arc<Router>) {
    let mut generation = router.subscribe();
    // Dropping the set (when the feed ends) aborts every watch.
    let mut tasks: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    let mut running: HashMap<Key, tokio::task::AbortHandle> = HashMap::new();
    loop {
        let wanted = router.tls_secret_refs();
        running.retain(|k, handle| {
            if wanted.contains(k) {
                return true;
            }
            handle.abort();
            router.remove_secret(&k.0, &k.1);
            false
        });
        for k in wanted {
            if running.contains_key(&k) {
                continue;
            }
            let api: Api<Secret> = Api::namespaced(client.clone(), &k.0);
            let config = watcher::Config::default()
                .fields(&format!("metadata.name={},type=kubernetes.io/tls", k.1));
            let (apply, delete) = (router.clone(), router.clone());
            let handle = tasks.spawn(watch_all::<Secret, _, _>(
                api,
                config,
                move |s| apply.update_secret(&s),
                move |ns, name| delete.remove_secret(ns, name),
            ));
            running.insert(k, handle);
        }
        while tasks.try_join_next().is_some() {}
        if generation.changed().await.is_err() {
            return;
        }
    }
}

/// The `InternalIP`s of the Ready Nodes, sorted: every node runs the controller, so each is
/// an address of every Ingress.
async fn watch_node_addresses(client: kube::Client, tx: tokio::sync::watch::Sender<Vec<IpAddr>>) {
    let nodes: Arc<parking_lot::Mutex<BTreeMap<String, Vec<IpAddr>>>> = Arc::default();
    let publish = {
        let nodes = nodes.clone();
        move || {
            let mut all: Vec<IpAddr> = nodes.lock().values().flatten().copied().collect();
            all.sort();
            all.dedup();
            tx.send_if_modified(|v| {
                let changed = *v != all;
                *v = all;
                changed
            });
        }
    };
    let apply = {
        let (nodes, publish) = (nodes.clone(), publish.clone());
        move |n: Node| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let status = n.status.as_ref();
            let ready = status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let ips: Vec<IpAddr> = status
                .and_then(|s| s.addresses.as_ref())
                .into_iter()
                .flatten()
                .filter(|a| a.type_ == "InternalIP")
                .filter_map(|a| a.address.parse().ok())
                .collect();
            if ready && !ips.is_empty() {
                nodes.lock().insert(name, ips);
            } else {
                nodes.lock().remove(&name);
            }
            publish();
        }
    };
    let delete = move |_: &str, name: &str| {
        nodes.lock().remove(name);
        publish();
    };
    watch_all::<Node, _, _>(Api::all(client), watcher::Config::default(), apply, delete).await;
}

/// What `status.loadBalancer.ingress` should list: 127.0.0.1 first when this node listens
/// there, then the Ready Nodes' addresses (each node's controller computes the same list, so
/// nodes do not overwrite each other); this node's own addresses until the Nodes are known.
fn wanted_addresses(own: &[IpAddr], nodes: &[IpAddr]) -> Vec<String> {
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let mut want: Vec<IpAddr> = Vec::new();
    if own.contains(&loopback) {
        want.push(loopback);
    }
    let rest = if nodes.is_empty() { own } else { nodes };
    for ip in rest {
        if !want.contains(ip) {
            want.push(*ip);
        }
    }
    want.iter().map(ToString::to_string).collect()
}

/// The `status.loadBalancer.ingress` addresses an Ingress lists now.
fn status_ips(ing: &Ingress) -> Vec<String> {
    ing.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// Of the Ingresses that were ours (`was_ours`) and are not any more (not in `ours`), those
/// whose status still lists exactly our addresses `want`, with their resourceVersion: their
/// status is ours to clear. `was_ours` keeps only those (an Ingress gone, or whose status
/// someone else has written since, is forgotten).
///
/// The controllers this follows do less: ingress-nginx drops an Ingress whose class is no
/// longer its own from its store without touching its status (it clears the status of its
/// Ingresses only when its last instance shuts down), leaving the address to the next
/// controller to overwrite. Here the stale address would stay on an Ingress whose new class
/// has no controller (`kubectl get ingress` showing an address that no longer routes it), so
/// it is cleared; only when it is exactly ours, and pinned to the resourceVersion read, so a
/// status another controller has written meanwhile is never erased.
pub(crate) fn stale(
    was_ours: &mut BTreeSet<Key>,
    ours: &[Key],
    want: &[String],
    ingress: impl Fn(&Key) -> Option<Ingress>,
) -> Vec<(Key, String)> {
    was_ours.extend(ours.iter().cloned());
    let mut out = Vec::new();
    was_ours.retain(|k| {
        if ours.contains(k) {
            return true;
        }
        let Some(ing) = ingress(k) else {
            return false;
        };
        if status_ips(&ing) != want {
            return false;
        }
        if let Some(rv) = ing.metadata.resource_version.clone() {
            out.push((k.clone(), rv));
        }
        // Kept until the status is seen cleared (a conflict is retried on the next change).
        true
    });
    out
}

/// Keeps the status and events of our Ingresses in step with the table and the Nodes.
async fn write_status(
    client: kube::Client,
    router: Arc<Router>,
    node: String,
    addrs: Vec<IpAddr>,
    mut nodes: tokio::sync::watch::Receiver<Vec<IpAddr>>,
) {
    let mut generation = router.subscribe();
    let mut told: BTreeSet<Problem> = BTreeSet::new();
    let mut was_ours: BTreeSet<Key> = BTreeSet::new();
    loop {
        let want = wanted_addresses(&addrs, &nodes.borrow_and_update());
        let table = router.table();
        for ((ns, name), rv) in stale(&mut was_ours, &table.ours, &want, |(ns, name)| {
            router.ingress(ns, name)
        }) {
            let api: Api<Ingress> = Api::namespaced(client.clone(), &ns);
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": rv},
                "status": {"loadBalancer": {"ingress": null}},
            });
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::debug!(ingress = %format!("{ns}/{name}"), "cleared the status of an ingress no longer ours")
                }
                Err(e) => {
                    tracing::debug!(ingress = %format!("{ns}/{name}"), error = %e, "could not clear ingress status")
                }
            }
        }
        for (ns, name) in &table.ours {
            let Some(ing) = router.ingress(ns, name) else {
                continue;
            };
            let have = status_ips(&ing);
            if have == want {
                continue;
            }
            let api: Api<Ingress> = Api::namespaced(client.clone(), ns);
            let ingress: Vec<serde_json::Value> = want
                .iter()
                .map(|ip| serde_json::json!({"ip": ip}))
                .collect();
            let patch = serde_json::json!({"status": {"loadBalancer": {"ingress": ingress}}});
            if let Err(e) = api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::warn!(ingress = %format!("{ns}/{name}"), error = %e, "could not set ingress status");
            }
        }
        let now: BTreeSet<Problem> = table.problems.iter().cloned().collect();
        for p in now.difference(&told) {
            if let Some(ing) = router.ingress(&p.ingress.0, &p.ingress.1) {
                record_warning(&client, &node, &ing, p).await;
            }
        }
        told = now;
        tokio::select! {
            r = generation.changed() => if r.is_err() { return },
            r = nodes.changed() => if r.is_err() { return },
        }
    }
}

/// Creates a Warning event about `ing`.
async fn record_warning(client: &kube::Client, node: &str, ing: &Ingress, p: &Problem) {
    let ns = p.ingress.0.clone();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let nanos = now.0.as_nanosecond();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:x}", p.ingress.1, nanos)),
            namespace: Some(ns.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("networking.k8s.io/v1".into()),
            kind: Some("Ingress".into()),
            namespace: Some(ns.clone()),
            name: Some(p.ingress.1.clone()),
            uid: ing.metadata.uid.clone(),
            resource_version: ing.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        reason: Some(p.reason.to_string()),
        message: Some(p.message.clone()),
        type_: Some("Warning".into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: Some(node.to_string()),
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(node.to_string()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    if let Err(e) = api.create(&PostParams::default(), &event).await {
        tracing::debug!(ingress = %format!("{ns}/{}", p.ingress.1), error = %e, "could not record ingress event");
    }
}

#[cfg(test)]
mod tests {
    use super::{stale, wanted_addresses};
    use std::collections::BTreeSet;
    use std::net::IpAddr;

    use k8s_openapi::api::networking::v1::Ingress;

    fn ingress(name: &str, rv: &str, ips: &[&str]) -> Ingress {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "resourceVersion": rv},
            "status": {"loadBalancer": {"ingress": ips.iter().map(|ip| serde_json::json!({"ip": ip})).collect::<Vec<_>>()}},
        }))
        .expect("ingress")
    }

    #[test]
    fn only_ingresses_that_left_us_with_our_exact_status_are_cleared() {
        let k = |n: &str| ("default".to_string(), n.to_string());
        let want = vec!["127.0.0.1".to_string(), "10.0.0.1".to_string()];
        let objects = [
            ingress("left", "5", &["127.0.0.1", "10.0.0.1"]),
            ingress("taken", "6", &["192.0.2.9"]),
            ingress("cleared", "7", &[]),
            ingress("kept", "8", &["127.0.0.1", "10.0.0.1"]),
            ingress("never", "9", &["127.0.0.1", "10.0.0.1"]),
        ];
        let lookup = |key: &(String, String)| {
            objects
                .iter()
                .find(|i| i.metadata.name.as_deref() == Some(key.1.as_str()))
                .cloned()
        };
        let mut was_ours: BTreeSet<_> = ["left", "taken", "cleared", "kept", "deleted"]
            .into_iter()
            .map(k)
            .collect();
        let ours = [k("kept")];
        let clear = stale(&mut was_ours, &ours, &want, lookup);
        // "never" was never ours: its status is someone else's even if it matches.
        assert_eq!(clear, [(k("left"), "5".to_string())]);
        assert_eq!(was_ours, [k("kept"), k("left")].into_iter().collect());
        // Once the cleared status is seen, it is forgotten.
        let after = [
            ingress("left", "10", &[]),
            ingress("kept", "8", &["127.0.0.1", "10.0.0.1"]),
        ];
        let clear = stale(&mut was_ours, &ours, &want, |key| {
            after
                .iter()
                .find(|i| i.metadata.name.as_deref() == Some(key.1.as_str()))
                .cloned()
        });
        assert!(clear.is_empty());
        assert_eq!(was_ours, [k("kept")].into_iter().collect());
    }

    #[test]
    fn status_addresses_are_the_same_on_every_node() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let nodes = [ip("10.0.0.1"), ip("10.0.0.2")];
        let a = wanted_addresses(&[ip("127.0.0.1"), ip("10.0.0.2")], &nodes);
        let b = wanted_addresses(&[ip("127.0.0.1"), ip("10.0.0.1")], &nodes);
        assert_eq!(a, ["127.0.0.1", "10.0.0.1", "10.0.0.2"]);
        assert_eq!(a, b);
        // Before the Nodes are listed: this node's own.
        assert_eq!(
            wanted_addresses(&[ip("127.0.0.1"), ip("10.0.0.2")], &[]),
            ["127.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            wanted_addresses(&[ip("10.0.0.2")], &nodes),
            ["10.0.0.1", "10.0.0.2"]
        );
    }
}
