//! The built-in Ingress controller: an HTTP(S) reverse proxy on every node that routes
//! requests by host and path to the ready endpoints of the Services that the Ingresses of
//! class `paddock` (controller `paddock.dev/ingress-controller`) name.
//!
//! Start at [`Router`]: it is told Ingresses, IngressClasses and the TLS Secrets they name
//! ([`feed`]), the
//! Services and EndpointSlices the L4 proxy's watches see (it is a
//! [`proxy::feed::Observer`]), and the node agent's faster view of pod readiness
//! ([`Router::set_pod_ready`]); every change rebuilds the routing [`table::Table`] (host and
//! path rules in [`matching`]) and swaps it in atomically, so the data path in [`serve`] (hyper
//! HTTP/1.1 and HTTP/2, rustls with certificates chosen by SNI in [`tls`]) never takes a
//! lock. [`feed::run_from_api`] also writes each Ingress's `status.loadBalancer` and Warning
//! events for missing backends and unusable TLS Secrets.

pub mod feed;
pub mod matching;
pub mod serve;
pub mod table;
pub mod tls;

use std::sync::Arc;

use arc_swap::ArcSwap;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use parking_lot::Mutex;
use tokio::sync::watch;

pub use table::{CLASS, CONTROLLER, Decision, Table};

/// Why the ingress listener failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// TLS could not be set up.
    #[error("TLS: {0}")]
    Tls(String),
    /// The serving threads could not be started.
    #[error("starting the ingress workers: {0}")]
    Workers(std::io::Error),
}

/// The ingress routing state of one node. Share it behind an `Arc`.
#[derive(Debug)]
pub struct Router {
    table: ArcSwap<Table>,
    sources: Mutex<table::Sources>,
    /// Bumped on every table swap; the status writer waits on it.
    generation: watch::Sender<u64>,
}

impl Default for Router {
    fn default() -> Self {
        Router {
            table: ArcSwap::from_pointee(Table::default()),
            sources: Mutex::default(),
            generation: watch::Sender::new(0),
        }
    }
}

fn key(meta: &kube::api::ObjectMeta) -> table::Key {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl Router {
    /// An empty router.
    pub fn new() -> Arc<Router> {
        Arc::new(Router::default())
    }

    /// The current table.
    pub fn table(&self) -> Arc<Table> {
        self.table.load_full()
    }

    /// A receiver that changes with every new table.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Runs `f` on the sources and, when it says something changed, swaps in a new table.
    fn edit(&self, f: impl FnOnce(&mut table::Sources) -> bool) {
        let mut s = self.sources.lock();
        if !f(&mut s) {
            return;
        }
        let t = table::build(&s, &self.table.load());
        self.table.store(Arc::new(t));
        drop(s);
        self.generation.send_modify(|g| *g += 1);
    }

    /// The sources' copy of one Ingress (for its status).
    pub fn ingress(&self, namespace: &str, name: &str) -> Option<Ingress> {
        self.sources
            .lock()
            .ingresses
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The TLS Secrets (`spec.tls[].secretName`, in the Ingress's namespace) of our
    /// Ingresses: the only Secrets the controller reads.
    pub fn tls_secret_refs(&self) -> std::collections::BTreeSet<table::Key> {
        let table = self.table();
        let sources = self.sources.lock();
        table
            .ours
            .iter()
            .filter_map(|k| sources.ingresses.get(k))
            .flat_map(|ing| {
                let ns = ing.metadata.namespace.clone().unwrap_or_default();
                ing.spec
                    .iter()
                    .flat_map(|s| s.tls.iter().flatten())
                    .filter_map(|t| t.secret_name.clone())
                    .filter(|n| !n.is_empty())
                    .map(move |n| (ns.clone(), n))
            })
            .collect()
    }

    /// Adds or replaces an Ingress.
    pub fn update_ingress(&self, ing: Ingress) {
        self.edit(|s| {
            let k = key(&ing.metadata);
            let old = s.ingresses.insert(k, ing.clone());
            // A status write alone changes no route.
            old.is_none_or(|o| {
                o.spec != ing.spec || o.metadata.annotations != ing.metadata.annotations
            })
        });
    }

    /// Removes an Ingress.
    pub fn remove_ingress(&self, namespace: &str, name: &str) {
        self.edit(|s| {
            s.ingresses
                .remove(&(namespace.to_string(), name.to_string()))
                .is_some()
        });
    }

    /// Adds or replaces an IngressClass.
    pub fn update_class(&self, class: &IngressClass) {
        let name = class.metadata.name.clone().unwrap_or_default();
        let info = table::class_info(class);
        self.edit(|s| s.classes.insert(name, info.clone()) != Some(info));
    }

    /// Removes an IngressClass.
    pub fn remove_class(&self, name: &str) {
        self.edit(|s| s.classes.remove(name).is_some());
    }

    /// Adds or replaces a Secret (only `kubernetes.io/tls` ones are kept).
    pub fn update_secret(&self, secret: &Secret) {
        let k = key(&secret.metadata);
        if secret.type_.as_deref() != Some("kubernetes.io/tls") {
            return self.remove_secret(&k.0, &k.1);
        }
        let parsed = tls::certified_key_from_secret(secret).map(Arc::new);
        self.edit(|s| {
            let same = match (s.secrets.get(&k), &parsed) {
                (Some(Ok(a)), Ok(b)) => a.cert == b.cert,
                (Some(Err(a)), Err(b)) => a == b,
                _ => false,
            };
            s.secrets.insert(k, parsed);
            !same
        });
    }

    /// Removes a Secret.
    pub fn remove_secret(&self, namespace: &str, name: &str) {
        self.edit(|s| {
            s.secrets
                .remove(&(namespace.to_string(), name.to_string()))
                .is_some()
        });
    }

    /// Adds or replaces a Service (ExternalName services count as absent).
    pub fn update_service(&self, svc: &Service) {
        let k = key(&svc.metadata);
        match proxy::ServiceInfo::from_service(svc) {
            Some(info) => self.edit(|s| s.services.insert(k, info.clone()).as_ref() != Some(&info)),
            None => self.remove_service(&k.0, &k.1),
        }
    }

    /// Removes a Service.
    pub fn remove_service(&self, namespace: &str, name: &str) {
        self.edit(|s| {
            s.services
                .remove(&(namespace.to_string(), name.to_string()))
                .is_some()
        });
    }

    /// Adds or replaces an EndpointSlice (one labelled with its service).
    pub fn update_slice(&self, slice: &EndpointSlice) {
        let k = key(&slice.metadata);
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
            .map(|s| (k.0.clone(), s.clone()));
        let Some(service) = service else {
            return self.remove_slice(&k.0, &k.1);
        };
        let eps = proxy::EndpointInfo::from_slice(slice);
        self.edit(|s| {
            let entry = (service, eps);
            if s.slices.get(&k) == Some(&entry) {
                return false;
            }
            s.slices.insert(k, entry);
            drop_agreed_overrides(s);
            true
        });
    }

    /// Removes an EndpointSlice.
    pub fn remove_slice(&self, namespace: &str, name: &str) {
        self.edit(|s| {
            let gone = s
                .slices
                .remove(&(namespace.to_string(), name.to_string()))
                .is_some();
            if gone {
                drop_agreed_overrides(s);
            }
            gone
        });
    }

    /// The node agent's fast path: pod `uid` is ready (or not) now, whatever its
    /// EndpointSlices still say; kept until the API agrees or [`Router::forget_pod`].
    pub fn set_pod_ready(&self, uid: &str, ready: bool) {
        self.edit(|s| {
            let listed: Vec<bool> = s
                .slices
                .values()
                .flat_map(|(_, e)| e.iter())
                .filter(|e| e.pod_uid.as_deref() == Some(uid))
                .map(|e| e.ready)
                .collect();
            if !listed.is_empty() && listed.iter().all(|r| *r == ready) {
                return s.overrides.remove(uid).is_some();
            }
            s.overrides.insert(uid.to_string(), ready) != Some(ready)
        });
    }

    /// The pod is gone from the node: it stays out of routing until no slice lists it
    /// as ready.
    pub fn forget_pod(&self, uid: &str) {
        self.edit(|s| {
            let listed_ready = s
                .slices
                .values()
                .flat_map(|(_, e)| e.iter())
                .any(|e| e.pod_uid.as_deref() == Some(uid) && e.ready);
            if listed_ready {
                s.overrides.insert(uid.to_string(), false) != Some(false)
            } else {
                s.overrides.remove(uid).is_some()
            }
        });
    }
}

/// Drops the overrides the slices now agree with (every listed endpoint of the pod has the
/// overriding readiness; a not-ready pod no slice lists needs no override either).
fn drop_agreed_overrides(s: &mut table::Sources) {
    let slices = &s.slices;
    s.overrides.retain(|uid, ready| {
        let listed: Vec<bool> = slices
            .values()
            .flat_map(|(_, e)| e.iter())
            .filter(|e| e.pod_uid.as_deref() == Some(uid.as_str()))
            .map(|e| e.ready)
            .collect();
        let agrees = if listed.is_empty() {
            !*ready
        } else {
            listed.iter().all(|r| r == ready)
        };
        !agrees
    });
}

impl proxy::feed::Observer for Router {
    fn service(&self, svc: &Service) {
        self.update_service(svc);
    }
    fn service_deleted(&self, namespace: &str, name: &str) {
        self.remove_service(namespace, name);
    }
    fn slice(&self, slice: &EndpointSlice) {
        self.update_slice(slice);
    }
    fn slice_deleted(&self, namespace: &str, name: &str) {
        self.remove_slice(namespace, name);
    }
}

#[cfg(test)]
mod tests;
