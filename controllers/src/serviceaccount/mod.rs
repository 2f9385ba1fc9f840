//! Service account controllers, one reconciler for three upstream ones:
//! - the serviceaccount controller (`pkg/controller/serviceaccount/serviceaccounts_controller.go`):
//!   every active namespace has the `default` ServiceAccount (made again when deleted);
//! - the root-CA publisher (`pkg/controller/certificates/rootcacertpublisher/publisher.go`):
//!   every namespace has the `kube-root-ca.crt` ConfigMap holding the cluster CA (`ca.crt`),
//!   put back when deleted or edited;
//! - the token controller (`pkg/controller/serviceaccount/tokens_controller.go`): a Secret of
//!   type `kubernetes.io/service-account-token` naming an account in the
//!   `kubernetes.io/service-account.name` annotation gets `token` (a legacy token the
//!   [`LegacyTokenSigner`] signs), `ca.crt` and `namespace`, and the account's uid annotation;
//!   a token Secret whose account is gone (or was recreated) is deleted.
//!
//! Start at [`run`]; [`Controller::reconcile`] takes a namespace or a Secret.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions, Subresource};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, resource};

/// The account every namespace gets.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// The ConfigMap the root-CA publisher keeps in every namespace.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
/// Its description annotation (upstream's text).
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";
/// The type of legacy token Secrets.
pub const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotation naming a token Secret's account.
pub const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The annotation with the account's uid.
pub const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

const WORKERS: usize = 3;

/// Signs legacy tokens (`namespace`, account `name`, account `uid`, `secret` name) for the
/// token controller; the binary passes the API server's token issuer.
pub trait LegacyTokenSigner: Send + Sync {
    /// A legacy token for the account, stored in `secret`.
    fn sign(&self, namespace: &str, name: &str, uid: &str, secret: &str) -> Result<String, String>;
}

impl<F> LegacyTokenSigner for F
where
    F: Fn(&str, &str, &str, &str) -> Result<String, String> + Send + Sync,
{
    fn sign(&self, namespace: &str, name: &str, uid: &str, secret: &str) -> Result<String, String> {
        self(namespace, name, uid, secret)
    }
}

/// What the controllers need from the server.
#[derive(Clone)]
pub struct Config {
    /// The cluster CA certificate, PEM (`kube-root-ca.crt` and token Secrets' `ca.crt`).
    pub root_ca: String,
    /// The legacy token signer.
    pub signer: Arc<dyn LegacyTokenSigner>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config").finish_non_exhaustive()
    }
}

/// A queued unit of work.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// A namespace: its `default` account and its root-CA ConfigMap.
    Namespace(String),
    /// A token Secret.
    Secret(String, String),
    /// A deleted account: its token Secrets go.
    DeletedAccount(String, String, String),
}

/// Runs the service account controllers until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, config: Config, shutdown: CancellationToken) {
    let c = Arc::new(Controller {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        config,
    });
    let infos = [
        resource("", "namespaces"),
        resource("", "serviceaccounts"),
        resource("", "configmaps"),
        resource("", "secrets"),
    ];
    crate::queue::drive(&cluster, c, &infos, WORKERS, &shutdown).await;
}

struct Controller {
    cluster: ClusterRef,
    queue: WorkQueue<Key>,
    config: Config,
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

impl Reconciler for Controller {
    type Key = Key;

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        let (obj, deleted) = match &change.delta {
            Delta::Upsert(o) => (o, false),
            Delta::Delete(o) => (o, true),
            Delta::Synced => return,
        };
        let ns = s(obj, "/metadata/namespace").to_string();
        let name = s(obj, "/metadata/name").to_string();
        match change.info.plural {
            "namespaces" if !deleted => self.queue.add(Key::Namespace(name)),
            "serviceaccounts" if deleted => {
                self.queue.add(Key::Namespace(ns.clone()));
                let uid = s(obj, "/metadata/uid").to_string();
                self.queue.add(Key::DeletedAccount(ns, name, uid));
            }
            "configmaps" if name == ROOT_CA_CONFIG_MAP => self.queue.add(Key::Namespace(ns)),
            "secrets" if !deleted && s(obj, "/type") == TOKEN_SECRET_TYPE => {
                self.queue.add(Key::Secret(ns, name));
            }
            _ => {}
        }
    }

    async fn reconcile(self: Arc<Self>, key: Key) -> Result<Option<Duration>, Error> {
        match key {
            Key::Namespace(ns) => {
                self.ensure_default_account(&ns).await?;
                self.publish_root_ca(&ns).await?;
            }
            Key::Secret(ns, name) => self.sync_token_secret(&ns, &name).await?,
            Key::DeletedAccount(ns, name, uid) => self.delete_tokens_of(&ns, &name, &uid).await?,
        }
        Ok(None)
    }
}

/// Whether a create failed only because the namespace is gone or terminating (nothing to do).
fn namespace_gone(e: &api::status::ApiError) -> bool {
    e.code == 404 || (e.code == 403 && e.message.contains("is being terminated"))
}

impl Controller {
    /// The namespace, when it exists and is active.
    async fn active_namespace(&self, ns: &str) -> Result<bool, Error> {
        match self.cluster.get(resource("", "namespaces"), "", ns).await {
            Ok(n) => Ok(s(&n, "/status/phase") != "Terminating"
                && n.pointer("/metadata/deletionTimestamp").is_none()),
            Err(e) if e.code == 404 => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// upstream `syncNamespace` of the serviceaccount controller.
    async fn ensure_default_account(&self, ns: &str) -> Result<(), Error> {
        if !self.active_namespace(ns).await? {
            return Ok(());
        }
        let info = resource("", "serviceaccounts");
        match self.cluster.get(info, ns, DEFAULT_SERVICE_ACCOUNT).await {
            Ok(_) => return Ok(()),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_SERVICE_ACCOUNT}});
        match self.cluster.create(info, ns, sa).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 || namespace_gone(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// upstream `syncNamespace` of the root-CA publisher.
    async fn publish_root_ca(&self, ns: &str) -> Result<(), Error> {
        let info = resource("", "configmaps");
        let data = json!({"ca.crt": self.config.root_ca});
        match self.cluster.get(info, ns, ROOT_CA_CONFIG_MAP).await {
            Err(e) if e.code == 404 => {
                if !self.active_namespace(ns).await? {
                    return Ok(());
                }
                let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA_CONFIG_MAP,
                        "annotations": {"kubernetes.io/description": DESCRIPTION}},
                    "data": data});
                match self.cluster.create(info, ns, cm).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.code == 409 || namespace_gone(&e) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
            Ok(cm) => {
                let described =
                    s(&cm, "/metadata/annotations/kubernetes.io~1description") == DESCRIPTION;
                if cm.get("data") == Some(&data) && described {
                    return Ok(());
                }
                let mut new = Value::clone(&cm);
                new["data"] = data;
                if !new["metadata"]["annotations"].is_object() {
                    new["metadata"]["annotations"] = json!({});
                }
                new["metadata"]["annotations"]["kubernetes.io/description"] = json!(DESCRIPTION);
                match self
                    .cluster
                    .update(info, ns, ROOT_CA_CONFIG_MAP, new, Subresource::Main)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.code == 404 => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// upstream `syncSecret`: the account must exist (with the annotated uid, if any), else
    /// the Secret goes; then the missing token, `ca.crt` and `namespace` are filled in.
    async fn sync_token_secret(&self, ns: &str, name: &str) -> Result<(), Error> {
        let info = resource("", "secrets");
        let secret = match self.cluster.get(info, ns, name).await {
            Ok(s) => s,
            Err(e) if e.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if s(&secret, "/type") != TOKEN_SECRET_TYPE
            || secret.pointer("/metadata/deletionTimestamp").is_some()
        {
            return Ok(());
        }
        let annotations: BTreeMap<String, String> = secret
            .pointer("/metadata/annotations")
            .and_then(|a| serde_json::from_value(a.clone()).ok())
            .unwrap_or_default();
        let sa_name = annotations
            .get(NAME_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        let want_uid = annotations.get(UID_ANNOTATION).cloned().unwrap_or_default();
        let sa = if sa_name.is_empty() {
            None
        } else {
            match self
                .cluster
                .get(resource("", "serviceaccounts"), ns, &sa_name)
                .await
            {
                Ok(sa) => Some(sa),
                Err(e) if e.code == 404 => None,
                Err(e) => return Err(e.into()),
            }
        };
        let sa = sa.filter(|sa| want_uid.is_empty() || s(sa, "/metadata/uid") == want_uid);
        let Some(sa) = sa else {
            let opts = DeleteOptions {
                preconditions_uid: Some(s(&secret, "/metadata/uid").to_string()),
                ..DeleteOptions::default()
            };
            return match self.cluster.delete(info, ns, name, &opts).await {
                Ok(_) => Ok(()),
                Err(e) if e.code == 404 || e.code == 409 => Ok(()),
                Err(e) => Err(e.into()),
            };
        };
        let sa_uid = s(&sa, "/metadata/uid").to_string();
        let has = |k: &str| {
            secret
                .pointer(&format!("/data/{k}"))
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        };
        let ca_b64 = STANDARD.encode(&self.config.root_ca);
        let ns_b64 = STANDARD.encode(ns);
        let ca_ok = s(&secret, "/data/ca.crt") == ca_b64;
        let ns_ok = s(&secret, "/data/namespace") == ns_b64;
        if has("token") && ca_ok && ns_ok && want_uid == sa_uid {
            return Ok(());
        }
        let token = if has("token") {
            None
        } else {
            Some(
                self.config
                    .signer
                    .sign(ns, &sa_name, &sa_uid, name)
                    .map_err(Error::Signing)?,
            )
        };
        let mut new = Value::clone(&secret);
        if !new["data"].is_object() {
            new["data"] = json!({});
        }
        new["data"]["ca.crt"] = json!(ca_b64);
        new["data"]["namespace"] = json!(ns_b64);
        if let Some(t) = token {
            new["data"]["token"] = json!(STANDARD.encode(t));
        }
        new["metadata"]["annotations"][UID_ANNOTATION] = json!(sa_uid);
        match self
            .cluster
            .update(info, ns, name, new, Subresource::Main)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 404 => Ok(()),
            // Changed meanwhile: the watch brings it back.
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// upstream `syncServiceAccount` for a deleted account: its token Secrets are deleted.
    async fn delete_tokens_of(&self, ns: &str, name: &str, uid: &str) -> Result<(), Error> {
        let info = resource("", "secrets");
        let list = self.cluster.list(info, Some(ns)).await?;
        for secret in &list.items {
            let annotations = secret.pointer("/metadata/annotations");
            let named = annotations
                .and_then(|a| a.get(NAME_ANNOTATION))
                .and_then(Value::as_str)
                == Some(name);
            let of_uid = annotations
                .and_then(|a| a.get(UID_ANNOTATION))
                .and_then(Value::as_str)
                .is_none_or(|u| u == uid);
            if s(secret, "/type") != TOKEN_SECRET_TYPE || !named || !of_uid {
                continue;
            }
            let sname = s(secret, "/metadata/name");
            match self
                .cluster
                .delete(info, ns, sname, &DeleteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
