//! `POST pods/{name}/binding`, the one way a pod gets its node (the HTTP route and the
//! in-process scheduler both end here), as upstream's `BindingREST.Create` →
//! `setPodNodeAndMetadata`: one storage write, guarded by the binding's uid and
//! resourceVersion preconditions, that sets `spec.nodeName` (only if empty), copies the
//! binding's annotations onto the pod and sets `PodScheduled=True`. It is not a pod update:
//! pod update validation (which forbids changing `nodeName`) and managedFields do not apply.

use api::cluster::Binding;
use api::status::{ApiError, StatusDetails, go_quote};
use serde_json::{Value, json};
use store::StoreError;

use crate::meta::{meta_mut, meta_str};
use crate::registry::{Registry, check_preconditions, store_error};

impl Registry {
    /// Binds pod `namespace/name` to `binding.node`; with `dry_run` checks without writing.
    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        binding: &Binding,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let info = pods();
        let key = Registry::key(info, namespace, name);
        loop {
            let old = self.get(info, namespace, name)?;
            let uid = binding.uid.as_deref().filter(|u| !u.is_empty());
            let rv = binding
                .resource_version
                .as_deref()
                .filter(|r| !r.is_empty());
            check_preconditions(info, name, &old, uid, rv)?;
            if !old["metadata"]["deletionTimestamp"].is_null() {
                return Err(refused(
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            let current = old["spec"]["nodeName"].as_str().unwrap_or("");
            if !current.is_empty() {
                return Err(refused(
                    name,
                    &format!(
                        "pod {name} is already assigned to node {}",
                        go_quote(current)
                    ),
                ));
            }
            if old["spec"]["schedulingGates"]
                .as_array()
                .is_some_and(|g| !g.is_empty())
            {
                return Err(refused(
                    name,
                    &format!("pod {name} has non-empty .spec.schedulingGates"),
                ));
            }
            let mut new = Value::clone(&old);
            new["spec"]["nodeName"] = json!(binding.node);
            if !binding.annotations.is_empty() {
                let m = meta_mut(&mut new);
                let dst = m.entry("annotations").or_insert_with(|| json!({}));
                if !dst.is_object() {
                    *dst = json!({});
                }
                for (k, v) in &binding.annotations {
                    dst[k] = json!(v);
                }
            }
            api::pod_condition::update(&mut new, json!({"type": "PodScheduled", "status": "True"}));
            if dry_run {
                return Ok(());
            }
            let rv = meta_str(&old, "resourceVersion").parse().unwrap_or(0);
            match self.store().update(key.clone(), new, Some(rv)).await {
                Ok(_) => return Ok(()),
                // Changed meanwhile: check the preconditions again on the fresh pod.
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(info, name, e)),
            }
        }
    }
}

fn pods() -> &'static api::registry::ResourceInfo {
    api::registry::lookup("", "v1", "pods").unwrap_or(&api::registry::resources()[0])
}

/// Upstream `assignPod`'s error for a refused binding: a 409 on `pods/binding`.
fn refused(name: &str, msg: &str) -> ApiError {
    ApiError {
        code: 409,
        reason: "Conflict".into(),
        message: format!(
            "Operation cannot be fulfilled on pods/binding {}: {msg}",
            go_quote(name)
        ),
        details: Some(StatusDetails {
            name: name.to_string(),
            kind: "pods/binding".into(),
            ..StatusDetails::default()
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use store::Store;

    use super::*;
    use crate::registry::WriteOptions;

    async fn setup() -> (Registry, std::sync::Arc<Value>) {
        let r = Registry::new(Store::memory());
        let ns = api::registry::lookup("", "v1", "namespaces").unwrap();
        r.create(
            ns,
            "",
            json!({"metadata": {"name": "d"}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
        let pod = r
            .create(
                pods(),
                "d",
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "c", "image": "i"}]}}),
                &WriteOptions::default(),
            )
            .await
            .unwrap();
        (r, pod)
    }

    #[tokio::test]
    async fn one_write_with_node_annotations_and_condition() {
        let (r, pod) = setup().await;
        let before = r.store().revision();
        let binding = Binding {
            uid: Some(meta_str(&pod, "uid").to_string()),
            annotations: BTreeMap::from([("a".to_string(), "1".to_string())]),
            node: "n1".into(),
            ..Binding::default()
        };
        r.bind("d", "p", &binding, false).await.unwrap();
        assert_eq!(r.store().revision(), before + 1, "one write");
        let p = r.get(pods(), "d", "p").unwrap();
        assert_eq!(p["spec"]["nodeName"], "n1");
        assert_eq!(p["metadata"]["annotations"]["a"], "1");
        assert_eq!(p["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(p["status"]["conditions"][0]["status"], "True");
        assert!(p["status"]["conditions"][0]["lastTransitionTime"].is_string());

        let again = r.bind("d", "p", &binding, false).await.unwrap_err();
        assert_eq!(again.code, 409);
        assert_eq!(
            again.message,
            "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"n1\""
        );
    }

    #[tokio::test]
    async fn preconditions_dry_run_and_gates() {
        let (r, _) = setup().await;
        let stale = Binding {
            uid: Some("other".into()),
            node: "n1".into(),
            ..Binding::default()
        };
        let e = r.bind("d", "p", &stale, false).await.unwrap_err();
        assert_eq!(e.code, 409);
        assert!(
            e.message
                .contains("Precondition failed: UID in precondition: other")
        );
        let old_rv = Binding {
            resource_version: Some("1".into()),
            node: "n1".into(),
            ..Binding::default()
        };
        assert_eq!(
            r.bind("d", "p", &old_rv, false).await.unwrap_err().code,
            409
        );
        let ok = Binding {
            node: "n1".into(),
            ..Binding::default()
        };
        r.bind("d", "p", &ok, true).await.unwrap();
        let p = r.get(pods(), "d", "p").unwrap();
        assert!(p["spec"]["nodeName"].is_null(), "dry run writes nothing");
        assert_eq!(r.bind("d", "gone", &ok, false).await.unwrap_err().code, 404);
    }
}
