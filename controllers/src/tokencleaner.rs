//! The token cleaner (upstream `pkg/controller/bootstrap/tokencleaner.go`): deletes a
//! bootstrap token's Secret (type `bootstrap.kubernetes.io/token` in `kube-system`) once its
//! `expiration` has passed (with the Secret's uid as precondition); an unexpired one is looked
//! at again when it expires. An `expiration` that does not parse counts as expired, as
//! upstream's `HasExpired` says.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, DeleteOptions};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// The namespace of bootstrap token Secrets.
const NAMESPACE: &str = "kube-system";
/// Their type.
const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const WORKERS: usize = 1;

/// Runs the token cleaner until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let c = Arc::new(Controller {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
    });
    crate::queue::drive(&cluster, c, &[typed::info::<Secret>()], WORKERS, &shutdown).await;
}

struct Controller {
    cluster: ClusterRef,
    queue: WorkQueue<String>,
}

fn is_token_secret(s: &Secret) -> bool {
    typed::namespace(&s.metadata) == NAMESPACE && s.type_.as_deref() == Some(SECRET_TYPE)
}

/// When the token expires: `None` never, `Some(None)` an unparseable expiration (expired).
fn expiration(s: &Secret) -> Option<Option<Timestamp>> {
    let raw = s.data.as_ref()?.get("expiration")?;
    let text = String::from_utf8(raw.0.clone()).ok();
    Some(text.and_then(|t| t.parse::<Timestamp>().ok()))
}

impl Reconciler for Controller {
    type Key = String;

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    fn observe(&self, change: Change) {
        if let Delta::Upsert(_) = &change.delta
            && let Some(s) = typed::upserted::<Secret>(&change)
            && is_token_secret(&s)
        {
            self.queue.add(typed::name(&s.metadata).to_string());
        }
    }

    async fn reconcile(self: Arc<Self>, name: String) -> Result<Option<Duration>, Error> {
        let Some(s) = typed::get::<Secret>(&self.cluster, NAMESPACE, &name).await? else {
            return Ok(None);
        };
        if !is_token_secret(&s) || s.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let now = api::time::now();
        match expiration(&s) {
            None => return Ok(None),
            Some(Some(t)) if t > now => {
                let left = Duration::try_from(t.duration_since(now)).unwrap_or_default();
                return Ok(Some(left));
            }
            Some(_) => {}
        }
        tracing::info!(secret = %name, "deleting expired bootstrap token");
        let opts = DeleteOptions {
            preconditions_uid: s.metadata.uid.clone(),
            ..DeleteOptions::default()
        };
        match self
            .cluster
            .delete(typed::info::<Secret>(), NAMESPACE, &name, &opts)
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if e.code == 404 || e.code == 409 => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// base64 of `s` (tests build Secrets with it).
#[cfg(test)]
fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(name: &str, ty: &str, expiration: Option<&str>) -> serde_json::Value {
        let mut data = json!({"token-id": b64("abcdef")});
        if let Some(e) = expiration {
            data["expiration"] = json!(b64(e));
        }
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": NAMESPACE}, "type": ty, "data": data})
    }

    #[tokio::test]
    async fn expired_token_secrets_are_deleted_and_others_kept() {
        let registry = crate::testutil::registry_with_namespace(NAMESPACE).await;
        let cluster = crate::testutil::cluster(&registry);
        let info = typed::info::<Secret>();
        let future =
            api::time::rfc3339(api::time::now() + k8s_openapi::jiff::SignedDuration::from_hours(1));
        for (name, ty, exp) in [
            (
                "bootstrap-token-aaaaaa",
                SECRET_TYPE,
                Some("2020-01-01T00:00:00Z"),
            ),
            ("bootstrap-token-bbbbbb", SECRET_TYPE, Some(future.as_str())),
            ("bootstrap-token-cccccc", SECRET_TYPE, None),
            ("bootstrap-token-dddddd", SECRET_TYPE, Some("garbage")),
            ("other", "Opaque", Some("2020-01-01T00:00:00Z")),
        ] {
            cluster
                .create(info, NAMESPACE, secret(name, ty, exp))
                .await
                .unwrap();
        }
        let c = Arc::new(Controller {
            cluster: cluster.clone(),
            queue: WorkQueue::controller_default(),
        });
        for name in [
            "bootstrap-token-aaaaaa",
            "bootstrap-token-bbbbbb",
            "bootstrap-token-cccccc",
            "bootstrap-token-dddddd",
            "other",
        ] {
            let again = c.clone().reconcile(name.to_string()).await.unwrap();
            if name == "bootstrap-token-bbbbbb" {
                let left = again.unwrap();
                assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));
            } else {
                assert_eq!(again, None, "{name}");
            }
        }
        let left = crate::testutil::names(&registry, "secrets", NAMESPACE);
        assert_eq!(
            left,
            ["bootstrap-token-bbbbbb", "bootstrap-token-cccccc", "other"]
        );
    }
}
