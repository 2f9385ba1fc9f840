//! The nodes' part of the default policy, reconciled at start with the rest of
//! [`super::bootstrap`]: upstream's `system:node` ClusterRole (`NodeRules`),
//! `system:node-bootstrapper`, the CSR approver's
//! `system:certificates.k8s.io:certificatesigningrequests:nodeclient` and `…:selfnodeclient`
//! roles, and kubeadm's bindings of them (`kubeadm:kubelet-bootstrap` and
//! `kubeadm:node-autoapprove-bootstrap` for the group of the bootstrap tokens `paddock token
//! create` makes, `kubeadm:node-autoapprove-certificate-rotation` for `system:nodes`).
//!
//! Until the Node authorizer exists, `system:node` is bound to the group `system:nodes` (the
//! `system:node` binding upstream had before 1.8), and `paddock:node-components` grants what
//! the components a paddock node runs beside its pods use: the service proxy (upstream's
//! `system:node-proxier`), the DNS server, the Ingress controller and the local-path volume
//! cleaner.

use serde_json::{Value, json};

use super::bootstrap::{cluster_role, meta, rule};

const CERTS: &str = "certificates.k8s.io";

/// The nodes' ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let read = &["get", "list", "watch"][..];
    vec![
        cluster_role(
            "system:node",
            &[],
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
            ],
        ),
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
                // TLS certificates of Ingresses.
                rule(&[""], &["secrets"], read),
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
        binding("system:node", "system:node", "system:nodes"),
        binding(
            "paddock:node-components",
            "paddock:node-components",
            "system:nodes",
        ),
    ]
}
