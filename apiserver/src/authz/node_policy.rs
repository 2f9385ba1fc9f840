//! The nodes' part of the default policy, reconciled at start with the rest of
//! [`super::bootstrap`]: upstream's `system:node` ClusterRole ([`node_rules`], upstream
//! `NodeRules`, which the Node authorizer applies itself; its ClusterRoleBinding exists with
//! no subjects, as upstream's has since 1.8), `system:node-bootstrapper`, the CSR approver's
//! `system:certificates.k8s.io:certificatesigningrequests:nodeclient` and `…:selfnodeclient`
//! roles, and kubeadm's bindings of them (`kubeadm:kubelet-bootstrap` and
//! `kubeadm:node-autoapprove-bootstrap` for the group of the bootstrap tokens `paddock token
//! create` makes, `kubeadm:node-autoapprove-certificate-rotation` for `system:nodes`).
//!
//! `paddock:node-components` (bound to `system:nodes`) grants what the components a paddock
//! node runs beside its pods read cluster-wide: the service proxy (upstream's
//! `system:node-proxier`), the DNS server, the Ingress controller and the local-path volume
//! cleaner. It grants no Secrets: the Ingress controller reads the TLS Secrets its Ingresses
//! name one by one, which the Node authorizer allows through its Ingress edge.
//! [`retire_legacy`] takes back what earlier paddock versions granted nodes through RBAC.

use api::status::ApiError;
use serde_json::{Value, json};

use super::bootstrap::{cluster_role, meta, rule};
use crate::registry::Registry;

const CERTS: &str = "certificates.k8s.io";

/// Upstream `NodeRules()`: the `system:node` ClusterRole's rules.
pub fn node_rules() -> Vec<Value> {
    let read = &["get", "list", "watch"][..];
    vec![
        rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
        rule(
            &["authorization.k8s.io"],
            &["subjectaccessreviews", "localsubjectaccessreviews"],
            &["create"],
        ),
        rule(&[""], &["services"], read),
        rule(&[""], &["nodes"], &["create", "get", "list", "watch"]),
        rule(&[""], &["nodes/status"], &["patch", "update"]),
        rule(&[""], &["nodes"], &["delete", "patch", "update"]),
        rule(
            &["", "events.k8s.io"],
            &["events"],
            &["create", "patch", "update"],
        ),
        rule(&[""], &["pods"], read),
        rule(&[""], &["pods"], &["create", "delete"]),
        rule(&[""], &["pods/status"], &["patch", "update"]),
        rule(&[""], &["pods/eviction"], &["create"]),
        rule(&[""], &["configmaps", "secrets"], read),
        rule(
            &[""],
            &["persistentvolumeclaims", "persistentvolumes"],
            &["get"],
        ),
        rule(&[""], &["endpoints"], &["get"]),
        rule(
            &[CERTS],
            &["certificatesigningrequests"],
            &["create", "get", "list", "watch"],
        ),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["create", "delete", "get", "patch", "update"],
        ),
        rule(&["storage.k8s.io"], &["volumeattachments"], &["get"]),
        rule(&[""], &["serviceaccounts/token"], &["create"]),
        rule(
            &[""],
            &["persistentvolumeclaims/status"],
            &["get", "patch", "update"],
        ),
        rule(&["storage.k8s.io"], &["csidrivers"], read),
        rule(
            &["storage.k8s.io"],
            &["csinodes"],
            &["create", "delete", "get", "patch", "update"],
        ),
        rule(&["node.k8s.io"], &["runtimeclasses"], read),
    ]
}

/// The nodes' ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let read = &["get", "list", "watch"][..];
    vec![
        cluster_role("system:node", &[], node_rules()),
        cluster_role(
            "system:node-bootstrapper",
            &[],
            vec![rule(
                &[CERTS],
                &["certificatesigningrequests"],
                &["create", "get", "list", "watch"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            &[],
            vec![rule(
                &[CERTS],
                &["certificatesigningrequests/nodeclient"],
                &["create"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            &[],
            vec![rule(
                &[CERTS],
                &["certificatesigningrequests/selfnodeclient"],
                &["create"],
            )],
        ),
        cluster_role(
            "paddock:node-components",
            &[],
            vec![
                rule(
                    &[""],
                    &["endpoints", "namespaces", "nodes", "pods", "services"],
                    read,
                ),
                rule(&["discovery.k8s.io"], &["endpointslices"], read),
                // LoadBalancer Services get the nodes' addresses (k3s's ServiceLB).
                rule(&[""], &["services/status"], &["patch", "update"]),
                rule(
                    &["networking.k8s.io"],
                    &["ingressclasses", "ingresses"],
                    read,
                ),
                rule(
                    &["networking.k8s.io"],
                    &["ingresses/status"],
                    &["patch", "update"],
                ),
                // The node's part of the local-path provisioner: it deletes the released
                // local-path volumes whose data it removed.
                rule(
                    &[""],
                    &["persistentvolumes"],
                    &["delete", "get", "list", "watch"],
                ),
                rule(
                    &["", "events.k8s.io"],
                    &["events"],
                    &["create", "patch", "update"],
                ),
            ],
        ),
    ]
}

fn binding(name: &str, role: &str, group: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(name, &[]),
        "roleRef": {"apiGroup": api::registry::RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": api::registry::RBAC_GROUP, "kind": "Group", "name": group}],
    })
}

/// The nodes' ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    let tokens = crate::bootstrap_token::DEFAULT_NODE_TOKEN_GROUP;
    vec![
        binding(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            tokens,
        ),
        binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            tokens,
        ),
        binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "system:nodes",
        ),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta("system:node", &[]),
            "roleRef": {"apiGroup": api::registry::RBAC_GROUP, "kind": "ClusterRole", "name": "system:node"},
        }),
        binding(
            "paddock:node-components",
            "paddock:node-components",
            "system:nodes",
        ),
    ]
}

fn autoupdate(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate")
        .and_then(Value::as_str)
        == Some("true")
}

/// Takes back what earlier paddock versions granted every node through RBAC, on objects
/// still marked for automatic update: the `system:nodes` subject of the `system:node`
/// binding (the Node authorizer applies those rules to each node itself, narrowed to its
/// pods' objects) and the rules of `paddock:node-components` beyond today's (its cluster-wide
/// read of Secrets). Reconciliation alone only adds, as upstream's does.
pub async fn retire_legacy(registry: &Registry) -> Result<(), ApiError> {
    let lookup = |plural| {
        api::registry::lookup(api::registry::RBAC_GROUP, "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))
    };
    let (roles, bindings) = (lookup("clusterroles")?, lookup("clusterrolebindings")?);
    if registry.get(bindings, "", "system:node").is_ok() {
        registry
            .update_with(bindings, "", "system:node", false, |obj| {
                if !autoupdate(obj) {
                    return Ok(false);
                }
                let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) else {
                    return Ok(false);
                };
                let before = subjects.len();
                subjects.retain(|s| {
                    !(s["kind"] == "Group" && s["name"] == super::node_restriction::NODES_GROUP)
                });
                Ok(subjects.len() != before)
            })
            .await?;
    }
    let expected = cluster_roles()
        .into_iter()
        .find(|r| r["metadata"]["name"] == "paddock:node-components")
        .map(|r| r["rules"].clone())
        .unwrap_or_default();
    if registry.get(roles, "", "paddock:node-components").is_ok() {
        registry
            .update_with(roles, "", "paddock:node-components", false, |obj| {
                if !autoupdate(obj) || obj["rules"] == expected {
                    return Ok(false);
                }
                obj["rules"] = expected.clone();
                Ok(true)
            })
            .await?;
    }
    Ok(())
}
