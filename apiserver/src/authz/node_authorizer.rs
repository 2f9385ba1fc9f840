//! The Node authorizer (upstream `plugin/pkg/auth/authorizer/node/node_authorizer.go`), run
//! before RBAC as kube-apiserver's `--authorization-mode=Node,RBAC`: for users
//! `system:node:<name>` in `system:nodes` it allows reading a Secret, ConfigMap,
//! PersistentVolumeClaim or PersistentVolume and creating a ServiceAccount token only when
//! the object is related to a pod bound to that node (the [`super::node_graph`]); a node's
//! own Lease and CSINode by name; with `AuthorizeNodeWithSelectors` (on by default since
//! 1.32, and always here) reading its own Node only (`get`, or `list`/`watch` with a
//! `metadata.name=<node>` field selector) and listing or watching pods only with a
//! `spec.nodeName=<node>` field selector (getting a pod bound to it); and everything else the
//! static `system:node` rules ([`super::node_policy::node_rules`]) allow. Otherwise it has no
//! opinion, with upstream's reason (`no relationship found between node 'n1' and this
//! object`, `can only list/watch pods with spec.nodeName field selector`), and RBAC decides.
//!
//! Start at [`authorize`].

use std::sync::OnceLock;

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::Attributes;
use super::node_graph::{NodeGraph, Vertex};

/// The Node authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeDecision {
    /// Allowed.
    Allow,
    /// No opinion (the next authorizer decides), with the reason (may be empty).
    NoOpinion {
        /// Upstream's reason text.
        reason: String,
    },
}

fn no(reason: impl Into<String>) -> NodeDecision {
    NodeDecision::NoOpinion {
        reason: reason.into(),
    }
}

/// Upstream `NodeRules()`, the static rules for what the graph does not subdivide.
fn node_rules() -> &'static [PolicyRule] {
    static RULES: OnceLock<Vec<PolicyRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        super::node_policy::node_rules()
            .into_iter()
            .filter_map(|r| serde_json::from_value(r).ok())
            .collect()
    })
}

/// Whether the decision on `a` reads the graph (the caller brings it up to date first).
pub fn uses_graph(a: &Attributes) -> bool {
    a.resource_request
        && a.api_group.is_empty()
        && matches!(
            a.resource.as_str(),
            "secrets"
                | "configmaps"
                | "persistentvolumeclaims"
                | "persistentvolumes"
                | "serviceaccounts"
                | "pods"
        )
}

/// Upstream `NodeAuthorizer.Authorize` for the node `node` (`""`: a node user without a
/// name, `user` names it in the reason).
pub fn authorize(graph: &NodeGraph, user: &str, node: &str, a: &Attributes) -> NodeDecision {
    if node.is_empty() {
        return no(format!(
            "unknown node for user {}",
            api::status::go_quote(user)
        ));
    }
    if a.resource_request {
        match (a.api_group.as_str(), a.resource.as_str()) {
            ("", "secrets") => return read_namespaced(graph, node, Vertex::Secret, a),
            ("", "configmaps") => return read_namespaced(graph, node, Vertex::ConfigMap, a),
            ("", "persistentvolumeclaims") => {
                return if a.subresource == "status" {
                    status_update(graph, node, Vertex::Pvc, a)
                } else {
                    get(graph, node, Vertex::Pvc, a)
                };
            }
            ("", "persistentvolumes") => return get(graph, node, Vertex::Pv, a),
            ("", "serviceaccounts") => return create_token(graph, node, a),
            ("coordination.k8s.io", "leases") => return lease(node, a),
            ("storage.k8s.io", "csinodes") => return csi_node(node, a),
            ("", "nodes") => return node_object(node, a),
            ("", "pods") => return pod(graph, node, a),
            _ => {}
        }
    }
    if node_rules().iter().any(|r| super::rules::rule_allows(a, r)) {
        NodeDecision::Allow
    } else {
        no("")
    }
}

/// Upstream `authorizeStatusUpdate`.
fn status_update(graph: &NodeGraph, node: &str, kind: Vertex, a: &Attributes) -> NodeDecision {
    if !matches!(a.verb.as_str(), "update" | "patch") {
        return no("can only get/update/patch this type");
    }
    if a.subresource != "status" {
        return no("can only update status subresource");
    }
    related(graph, node, kind, a)
}

/// Upstream `authorizeGet`.
fn get(graph: &NodeGraph, node: &str, kind: Vertex, a: &Attributes) -> NodeDecision {
    if a.verb != "get" {
        return no("can only get individual resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot get subresource");
    }
    related(graph, node, kind, a)
}

/// Upstream `authorizeReadNamespacedObject`: get, and list/watch of one object named by a
/// `metadata.name` field selector (the name [`Attributes`] takes from it).
fn read_namespaced(graph: &NodeGraph, node: &str, kind: Vertex, a: &Attributes) -> NodeDecision {
    if !matches!(a.verb.as_str(), "get" | "list" | "watch") {
        return no("can only read resources of this type");
    }
    if !a.subresource.is_empty() {
        return no("cannot read subresource");
    }
    if a.namespace.is_empty() {
        return no("can only read namespaced object of this type");
    }
    related(graph, node, kind, a)
}

/// Upstream `authorize`: the named object must have a path to the node.
fn related(graph: &NodeGraph, node: &str, kind: Vertex, a: &Attributes) -> NodeDecision {
    if a.name.is_empty() {
        return no("No Object name found");
    }
    if graph.has_path(node, kind, &a.namespace, &a.name) {
        NodeDecision::Allow
    } else {
        no(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

/// Upstream `authorizeCreateToken`.
fn create_token(graph: &NodeGraph, node: &str, a: &Attributes) -> NodeDecision {
    if a.verb != "create" || a.name.is_empty() {
        return no("can only create tokens for individual service accounts");
    }
    if a.subresource != "token" {
        return no("can only create token subresource of serviceaccount");
    }
    related(graph, node, Vertex::ServiceAccount, a)
}

/// Upstream `authorizeLease`.
fn lease(node: &str, a: &Attributes) -> NodeDecision {
    if !matches!(
        a.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return no("can only get, create, update, patch, or delete a node lease");
    }
    if a.namespace != super::node_restriction::NODE_LEASE_NAMESPACE {
        return no(format!(
            "can only access leases in the {} system namespace",
            api::status::go_quote(super::node_restriction::NODE_LEASE_NAMESPACE)
        ));
    }
    // On create the name is in the body: NodeRestriction checks it.
    if a.verb != "create" && a.name != node {
        return no("can only access node lease with the same name as the requesting node");
    }
    NodeDecision::Allow
}

/// Upstream `authorizeCSINode`.
fn csi_node(node: &str, a: &Attributes) -> NodeDecision {
    if !matches!(
        a.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return no("can only get, create, update, patch, or delete a CSINode");
    }
    if !a.subresource.is_empty() {
        return no("cannot authorize CSINode subresources");
    }
    if a.verb != "create" && a.name != node {
        return no("can only access CSINode with the same name as the requesting node");
    }
    NodeDecision::Allow
}

/// Upstream `authorizeNode` (`AuthorizeNodeWithSelectors`): a node writes Node objects (which
/// NodeRestriction limits to its own) and reads only its own.
fn node_object(node: &str, a: &Attributes) -> NodeDecision {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "create" | "update" | "patch") => NodeDecision::Allow,
        // The name, not the graph: a kubelet reads its Node before it exists.
        ("", "get" | "list" | "watch") => match a.name.as_str() {
            n if n == node => NodeDecision::Allow,
            "" => no(format!(
                "node '{node}' cannot read all nodes, only its own Node object"
            )),
            other => no(format!(
                "node '{node}' cannot read '{other}', only its own Node object"
            )),
        },
        ("status", "update" | "patch") => NodeDecision::Allow,
        _ => no(""),
    }
}

/// Upstream `authorizePod` (`AuthorizeNodeWithSelectors`): a node gets the pods bound to it,
/// lists and watches pods only with its `spec.nodeName` field selector, creates and deletes
/// (mirror) pods, updates pod status and evicts, NodeRestriction judging which pods.
fn pod(graph: &NodeGraph, node: &str, a: &Attributes) -> NodeDecision {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "get") => get(graph, node, Vertex::Pod, a),
        ("", "list" | "watch") => {
            let scoped = a
                .field_selector
                .iter()
                .any(|r| r.field == "spec.nodeName" && r.equals && r.value == node);
            if scoped {
                NodeDecision::Allow
            } else if !a.name.is_empty() {
                related(graph, node, Vertex::Pod, a)
            } else {
                no("can only list/watch pods with spec.nodeName field selector")
            }
        }
        ("", "create" | "delete") => NodeDecision::Allow,
        ("status", "update" | "patch") => NodeDecision::Allow,
        ("eviction", "create") => NodeDecision::Allow,
        _ => no(""),
    }
}
