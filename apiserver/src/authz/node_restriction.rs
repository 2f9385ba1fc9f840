//! The NodeRestriction admission plugin's checks that the request's path and the stored
//! objects decide (upstream `plugin/pkg/admission/noderestriction/admission.go`), for users
//! `system:node:<name>` in `system:nodes`, after authorization allowed the request: a node
//! may modify (update, patch, delete) only its own Node object; update only the status of
//! pods bound to it; delete and evict only pods bound to it; and modify only its own Lease in
//! `kube-node-lease`. A refusal is upstream's 403 (`nodes "other" is forbidden: node "me" is
//! not allowed to modify node "other"`).
//!
//! Not here yet (they need the request body): a Node's label and taint changes, the mirror-pod
//! rules of pod creation, a Lease's name on create, service account token bindings.

use api::status::ApiError;
use serde_json::Value;

use super::Attributes;
use crate::registry::Registry;
use crate::user::UserInfo;

/// The group of nodes (upstream `user.NodesGroup`).
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of node user names.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// Upstream `NodeIdentifier.NodeIdentity`: `Some(name)` for a user `system:node:<name>` in
/// `system:nodes` (`Some("")` when the name part is empty: a node that cannot be identified).
pub fn node_identity(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    user.groups.iter().any(|g| g == NODES_GROUP).then_some(name)
}

/// The node a user is: `system:node:<name>` in `system:nodes`, with a name.
pub fn node_name(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix(NODE_USER_PREFIX)?;
    (!name.is_empty() && user.groups.iter().any(|g| g == NODES_GROUP)).then_some(name)
}

fn forbidden(a: &Attributes, msg: String) -> ApiError {
    // Upstream `admission.NewForbidden`: the resource (without subresource) and the name.
    super::forbidden_status(&a.api_group, &a.resource, &a.name, &msg)
}

fn pod_node(registry: &Registry, namespace: &str, name: &str) -> Result<Option<String>, ()> {
    let info = api::registry::lookup("", "v1", "pods").ok_or(())?;
    match registry.get(info, namespace, name) {
        Ok(p) => Ok(Some(
            p.pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )),
        Err(e) if e.code == 404 => Ok(None),
        Err(_) => Err(()),
    }
}

/// The refusal of `a` by `user`, if NodeRestriction refuses it.
pub fn admit(registry: &Registry, user: &UserInfo, a: &Attributes) -> Option<ApiError> {
    let node = node_name(user)?;
    if !a.resource_request
        || !matches!(
            a.verb.as_str(),
            "update" | "patch" | "delete" | "deletecollection" | "create"
        )
    {
        return None;
    }
    let core = a.api_group.is_empty();
    match (core, a.resource.as_str(), a.subresource.as_str()) {
        (true, "nodes", _) if a.verb != "create" => (a.name != node).then(|| {
            forbidden(
                a,
                format!(
                    "node {} is not allowed to modify node {}",
                    api::status::go_quote(node),
                    api::status::go_quote(&a.name)
                ),
            )
        }),
        (true, "pods", "status") if matches!(a.verb.as_str(), "update" | "patch") => {
            match pod_node(registry, &a.namespace, &a.name) {
                // The update itself answers 404.
                Ok(None) => None,
                Ok(Some(n)) if n == node => None,
                _ => Some(forbidden(
                    a,
                    format!(
                        "node {} can only update pod status for pods with spec.nodeName set to itself",
                        api::status::go_quote(node)
                    ),
                )),
            }
        }
        (true, "pods", "") if matches!(a.verb.as_str(), "delete" | "deletecollection") => {
            match pod_node(registry, &a.namespace, &a.name) {
                Ok(None) if a.verb == "delete" => None,
                Ok(Some(n)) if n == node => None,
                _ => Some(forbidden(
                    a,
                    format!(
                        "node {} can only delete pods with spec.nodeName set to itself",
                        api::status::go_quote(node)
                    ),
                )),
            }
        }
        (true, "pods", "eviction") if a.verb == "create" => {
            match pod_node(registry, &a.namespace, &a.name) {
                Ok(None) => None,
                Ok(Some(n)) if n == node => None,
                _ => Some(forbidden(
                    a,
                    format!("node {node} can only evict pods with spec.nodeName set to itself"),
                )),
            }
        }
        (false, "leases", _) if a.api_group == "coordination.k8s.io" => {
            if a.namespace != NODE_LEASE_NAMESPACE {
                return Some(forbidden(
                    a,
                    format!(
                        "can only access leases in the {} system namespace",
                        api::status::go_quote(NODE_LEASE_NAMESPACE)
                    ),
                ));
            }
            // On create the name is in the body, which this check does not read.
            (a.verb != "create" && a.name != node).then(|| {
                forbidden(
                    a,
                    "can only access node lease with the same name as the requesting node".into(),
                )
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> UserInfo {
        UserInfo {
            name: format!("system:node:{name}"),
            uid: String::new(),
            groups: vec![NODES_GROUP.into(), "system:authenticated".into()],
            extra: Default::default(),
        }
    }

    fn attrs(
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            api_version: "v1".into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    async fn registry_with_pod(name: &str, on: &str) -> Registry {
        let reg = Registry::new(store::Store::memory());
        crate::bootstrap(&reg).await.unwrap();
        let info = api::registry::lookup("", "v1", "pods").unwrap();
        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": on, "containers": [{"name": "c", "image": "i"}]}});
        reg.create(info, "default", pod, &Default::default())
            .await
            .unwrap();
        reg
    }

    #[tokio::test]
    async fn a_node_modifies_only_itself_its_pods_and_its_lease() {
        let reg = registry_with_pod("theirs", "other").await;
        let me = node("me");
        let err = admit(&reg, &me, &attrs("delete", "", "nodes", "", "", "other")).unwrap();
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            r#"nodes "other" is forbidden: node "me" is not allowed to modify node "other""#
        );
        assert!(admit(&reg, &me, &attrs("patch", "", "nodes", "status", "", "me")).is_none());
        assert!(admit(&reg, &me, &attrs("get", "", "nodes", "", "", "other")).is_none());
        let err = admit(
            &reg,
            &me,
            &attrs("patch", "", "pods", "status", "default", "theirs"),
        )
        .unwrap();
        assert_eq!(
            err.message,
            r#"pods "theirs" is forbidden: node "me" can only update pod status for pods with spec.nodeName set to itself"#
        );
        let other = node("other");
        assert!(
            admit(
                &reg,
                &other,
                &attrs("patch", "", "pods", "status", "default", "theirs")
            )
            .is_none()
        );
        assert!(
            admit(
                &reg,
                &other,
                &attrs("delete", "", "pods", "", "default", "theirs")
            )
            .is_none()
        );
        let err = admit(
            &reg,
            &me,
            &attrs("delete", "", "pods", "", "default", "theirs"),
        )
        .unwrap();
        assert_eq!(
            err.message,
            r#"pods "theirs" is forbidden: node "me" can only delete pods with spec.nodeName set to itself"#
        );
        let err = admit(
            &reg,
            &me,
            &attrs(
                "update",
                "coordination.k8s.io",
                "leases",
                "",
                "kube-node-lease",
                "other",
            ),
        )
        .unwrap();
        assert_eq!(
            err.message,
            r#"leases.coordination.k8s.io "other" is forbidden: can only access node lease with the same name as the requesting node"#
        );
        assert!(
            admit(
                &reg,
                &me,
                &attrs(
                    "update",
                    "coordination.k8s.io",
                    "leases",
                    "",
                    "kube-node-lease",
                    "me"
                )
            )
            .is_none()
        );
        // Not a node (no group): not this plugin's business.
        let mut pretender = node("me");
        pretender.groups.retain(|g| g != NODES_GROUP);
        assert!(
            admit(
                &reg,
                &pretender,
                &attrs("delete", "", "nodes", "", "", "other")
            )
            .is_none()
        );
    }
}
