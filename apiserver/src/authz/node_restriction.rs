//! The NodeRestriction admission plugin's checks that the request's path and the stored
//! objects decide (upstream `plugin/pkg/admission/noderestriction/admission.go`), for users
//! `system:node:<name>` in `system:nodes`, after authorization allowed the request: a node
//! may modify (update, patch, delete) only its own Node object; update only the status of
//! pods bound to it; delete and evict only pods bound to it; and modify only its own Lease in
//! `kube-node-lease`. A refusal is upstream's 403 (`nodes "other" is forbidden: node "me" is
//! not allowed to modify node "other"`).
//!
//! The checks that need the request's object run where the object is: [`admit_object`] in
//! the registry's create and update (a node creates only mirror pods bound to itself that
//! reference no Secret, ConfigMap, ServiceAccount or claim; registers and updates its Node
//! without `node-restriction.kubernetes.io/` labels or unknown `kubernetes.io`/`k8s.io`
//! ones, without changing taints or setting a configSource; creates only its own Lease) and
//! [`admit_token_request`] before a TokenRequest (a node's tokens are bound to a pod on it).

use api::status::ApiError;
use serde_json::Value;

use super::Attributes;
use crate::registry::Registry;
use crate::user::UserInfo;

/// The group of nodes (upstream `user.NodesGroup`).
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of node user names.
pub const NODE_USER_PREFIX: &str = "system:node:";
/// The annotation of mirror pods (upstream `MirrorPodAnnotationKey`).
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
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

/// Upstream `kubeletapis.IsKubeletLabel`: the labels a kubelet sets on its Node.
fn is_kubelet_label(key: &str) -> bool {
    const LABELS: [&str; 11] = [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    ];
    if LABELS.contains(&key) {
        return true;
    }
    let ns = label_namespace(key);
    ["kubelet.kubernetes.io", "node.kubernetes.io"]
        .iter()
        .any(|allowed| ns == *allowed || ns.ends_with(&format!(".{allowed}")))
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_domain(ns: &str, domain: &str) -> bool {
    ns == domain || ns.ends_with(&format!(".{domain}"))
}

/// Upstream `getForbiddenLabels` of the labels that differ between `new` and `old`, sorted.
fn forbidden_labels(new: &Value, old: Option<&Value>) -> Vec<String> {
    let labels = |o: Option<&Value>| {
        o.and_then(|o| o.pointer("/metadata/labels"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let (a, b) = (labels(Some(new)), labels(old));
    let mut modified: std::collections::BTreeSet<&String> = std::collections::BTreeSet::new();
    for (k, v) in &a {
        if b.get(k) != Some(v) {
            modified.insert(k);
        }
    }
    for (k, v) in &b {
        if a.get(k) != Some(v) {
            modified.insert(k);
        }
    }
    modified
        .into_iter()
        .filter(|k| {
            let ns = label_namespace(k);
            in_domain(ns, "node-restriction.kubernetes.io")
                || ((in_domain(ns, "kubernetes.io") || in_domain(ns, "k8s.io"))
                    && !is_kubelet_label(k))
        })
        .cloned()
        .collect()
}

fn object_forbidden(info: &api::registry::ResourceInfo, name: &str, msg: String) -> ApiError {
    super::forbidden_status(info.group, info.plural, name, &msg)
}

/// NodeRestriction's checks of the objects a node writes (upstream `admitPodCreate`,
/// `admitNode`, `admitLease`): `old` is the stored object of an update, `None` on create.
/// Runs after the strategy prepared `new`, before validation.
pub fn admit_object(
    registry: &Registry,
    user: Option<&UserInfo>,
    info: &api::registry::ResourceInfo,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let Some(node) = user.and_then(node_name) else {
        return Ok(());
    };
    let name = new
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let no = |msg: String| Err(object_forbidden(info, name, msg));
    let q = api::status::go_quote;
    match (info.group, info.plural, old) {
        ("", "pods", None) => {
            let annotations = new.pointer("/metadata/annotations");
            if annotations
                .and_then(|a| a.get(MIRROR_POD_ANNOTATION))
                .is_none()
            {
                return no(format!(
                    "pod does not have {} annotation, node {} can only create mirror pods",
                    q(MIRROR_POD_ANNOTATION),
                    q(node)
                ));
            }
            let s = |p: &str| new.pointer(p).and_then(Value::as_str).unwrap_or_default();
            if s("/spec/nodeName") != node {
                return no(format!(
                    "node {} can only create pods with spec.nodeName set to itself",
                    q(node)
                ));
            }
            let owners = new
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            match owners.as_slice() {
                [] => {
                    return no(format!(
                        "node {} can only create pods with an owner reference set to itself",
                        q(node)
                    ));
                }
                [owner] => {
                    let f = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or_default();
                    if f("apiVersion") != "v1" || f("kind") != "Node" || f("name") != node {
                        return no(format!(
                            "node {} can only create pods with an owner reference set to itself",
                            q(node)
                        ));
                    }
                    if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                        return no(format!(
                            "node {} can only create pods with a controller owner reference set to itself",
                            q(node)
                        ));
                    }
                    if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                        return no(format!(
                            "node {} must not set blockOwnerDeletion on an owner reference",
                            q(node)
                        ));
                    }
                    let nodes = api::registry::lookup("", "v1", "nodes")
                        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
                    let stored = registry.get(nodes, "", node)?;
                    let uid = stored
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if f("uid") != uid {
                        return no(format!(
                            "node {node} UID mismatch: expected {} got {uid}",
                            f("uid")
                        ));
                    }
                }
                _ => {
                    return no(format!(
                        "node {} can only create pods with a single owner reference set to itself",
                        q(node)
                    ));
                }
            }
            if !s("/spec/serviceAccountName").is_empty() {
                return no(format!(
                    "node {} can not create pods that reference a service account",
                    q(node)
                ));
            }
            let refs = super::node_graph::pod_references(new);
            if refs.secrets {
                return no(format!(
                    "node {} can not create pods that reference secrets",
                    q(node)
                ));
            }
            if refs.config_maps {
                return no(format!(
                    "node {} can not create pods that reference configmaps",
                    q(node)
                ));
            }
            if refs.cluster_trust_bundles {
                return no(format!(
                    "node {} can not create pods that reference clustertrustbundles",
                    q(node)
                ));
            }
            if refs.claims {
                return no(format!(
                    "node {} can not create pods that reference persistentvolumeclaims",
                    q(node)
                ));
            }
            Ok(())
        }
        ("", "nodes", None) => {
            if name != node {
                return no(format!(
                    "node {} is not allowed to modify node {}",
                    q(node),
                    q(name)
                ));
            }
            if new
                .pointer("/spec/configSource")
                .is_some_and(|c| !c.is_null())
            {
                return no(format!(
                    "node {} is not allowed to create pods with a non-nil configSource",
                    q(node)
                ));
            }
            let bad = forbidden_labels(new, None);
            if !bad.is_empty() {
                return no(format!(
                    "node {} is not allowed to set the following labels: {}",
                    q(node),
                    bad.join(", ")
                ));
            }
            Ok(())
        }
        ("", "nodes", Some(old)) => {
            let config = new.pointer("/spec/configSource").filter(|c| !c.is_null());
            if config.is_some() && config != old.pointer("/spec/configSource") {
                return no(format!(
                    "node {} is not allowed to update configSource to a new non-nil configSource",
                    q(node)
                ));
            }
            let taints = |o: &Value| {
                o.pointer("/spec/taints")
                    .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                    .cloned()
            };
            if taints(new) != taints(old) {
                return no(format!("node {} is not allowed to modify taints", q(node)));
            }
            let bad = forbidden_labels(new, Some(old));
            if !bad.is_empty() {
                return no(format!(
                    "is not allowed to modify labels: {}",
                    bad.join(", ")
                ));
            }
            Ok(())
        }
        ("coordination.k8s.io", "leases", None) if name != node => {
            no("can only access node lease with the same name as the requesting node".into())
        }
        _ => Ok(()),
    }
}

/// NodeRestriction's check of a node's TokenRequest for the service account `sa` in
/// `namespace` (upstream `admitServiceAccount`): it must be bound to a pod (by name and uid)
/// scheduled on that node.
pub fn admit_token_request(
    registry: &Registry,
    user: Option<&UserInfo>,
    namespace: &str,
    sa: &str,
    request: &Value,
) -> Result<(), ApiError> {
    let Some(node) = user.and_then(node_name) else {
        return Ok(());
    };
    let no = |msg: String| Err(super::forbidden_status("", "serviceaccounts", sa, &msg));
    let r = request.pointer("/spec/boundObjectRef");
    let f = |k: &str| {
        r.and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if r.is_none_or(Value::is_null)
        || f("apiVersion") != "v1"
        || f("kind") != "Pod"
        || f("name").is_empty()
    {
        return no("node requested token not bound to a pod".into());
    }
    if f("uid").is_empty() {
        return no("node requested token with a pod binding without a uid".into());
    }
    let pods = api::registry::lookup("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods are not served"))?;
    let pod = registry.get(pods, namespace, f("name"))?;
    let s = |p: &str| pod.pointer(p).and_then(Value::as_str).unwrap_or_default();
    if s("/metadata/uid") != f("uid") {
        return no(format!(
            "the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated",
            f("uid")
        ));
    }
    if s("/spec/nodeName") != node {
        return no("node requested token bound to a pod scheduled on a different node".into());
    }
    Ok(())
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

    fn pods_info() -> &'static api::registry::ResourceInfo {
        api::registry::lookup("", "v1", "pods").unwrap()
    }

    #[tokio::test]
    async fn nodes_create_only_bare_mirror_pods_of_their_own() {
        let reg = registry_with_pod("theirs", "other").await;
        let nodes = api::registry::lookup("", "v1", "nodes").unwrap();
        let n = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "me"}});
        let stored = reg.create(nodes, "", n, &Default::default()).await.unwrap();
        let uid = stored["metadata"]["uid"].as_str().unwrap().to_string();
        let me = node("me");
        let mirror = |extra: Value| {
            let mut p = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "static-me", "namespace": "default",
                    "annotations": {"kubernetes.io/config.mirror": "x"},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "me",
                                         "uid": uid, "controller": true}]},
                "spec": {"nodeName": "me", "containers": [{"name": "c", "image": "i"}]}});
            json_patch_merge(&mut p, extra);
            p
        };
        let msg = |extra: Value| {
            admit_object(&reg, Some(&me), pods_info(), &mirror(extra), None)
                .err()
                .map(|e| e.message)
        };
        assert_eq!(msg(serde_json::json!({})), None);
        assert_eq!(
            msg(serde_json::json!({"metadata": {"annotations": null}})).unwrap(),
            r#"pods "static-me" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "me" can only create mirror pods"#
        );
        assert_eq!(
            msg(serde_json::json!({"spec": {"nodeName": "other"}})).unwrap(),
            r#"pods "static-me" is forbidden: node "me" can only create pods with spec.nodeName set to itself"#
        );
        assert_eq!(
            msg(serde_json::json!({"metadata": {"ownerReferences": null}})).unwrap(),
            r#"pods "static-me" is forbidden: node "me" can only create pods with an owner reference set to itself"#
        );
        assert_eq!(
            msg(serde_json::json!({"spec": {"serviceAccountName": "default"}})).unwrap(),
            r#"pods "static-me" is forbidden: node "me" can not create pods that reference a service account"#
        );
        // The attacker's pod: bound to itself, naming a Secret to read it through the graph.
        assert_eq!(
            msg(serde_json::json!({"spec": {"volumes": [{"name": "v", "secret": {"secretName": "db"}}]}})).unwrap(),
            r#"pods "static-me" is forbidden: node "me" can not create pods that reference secrets"#
        );
        assert_eq!(
            msg(
                serde_json::json!({"spec": {"containers": [{"name": "c", "image": "i",
                "envFrom": [{"configMapRef": {"name": "cm"}}]}]}})
            )
            .unwrap(),
            r#"pods "static-me" is forbidden: node "me" can not create pods that reference configmaps"#
        );
        assert_eq!(
            msg(serde_json::json!({"spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]}})).unwrap(),
            r#"pods "static-me" is forbidden: node "me" can not create pods that reference persistentvolumeclaims"#
        );
        // Not a node: not this plugin's business.
        assert!(
            admit_object(
                &reg,
                None,
                pods_info(),
                &mirror(serde_json::json!({"metadata": {"annotations": null}})),
                None
            )
            .is_ok()
        );
    }

    fn json_patch_merge(target: &mut Value, patch: Value) {
        match (target, patch) {
            (Value::Object(t), Value::Object(p)) => {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        json_patch_merge(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
            (t, p) => *t = p,
        }
    }

    #[tokio::test]
    async fn nodes_keep_their_labels_taints_and_leases_as_upstream() {
        let reg = Registry::new(store::Store::memory());
        crate::bootstrap(&reg).await.unwrap();
        let nodes = api::registry::lookup("", "v1", "nodes").unwrap();
        let me = node("me");
        let n = |labels: Value, taints: Value| {
            serde_json::json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "me", "labels": labels}, "spec": {"taints": taints}})
        };
        let old = n(
            serde_json::json!({"kubernetes.io/hostname": "me", "team": "a"}),
            serde_json::json!([]),
        );
        let update = |new: Value| {
            admit_object(&reg, Some(&me), nodes, &new, Some(&old))
                .err()
                .map(|e| e.message)
        };
        // Kubelet labels, node.kubernetes.io and unprefixed ones are fine.
        assert_eq!(
            update(n(
                serde_json::json!({"kubernetes.io/hostname": "me", "team": "b",
                    "node.kubernetes.io/exclude-from-external-load-balancers": "",
                    "kubernetes.io/arch": "amd64"}),
                serde_json::json!(null)
            )),
            None
        );
        assert_eq!(
            update(n(
                serde_json::json!({"kubernetes.io/hostname": "me",
                    "node-restriction.kubernetes.io/x": "y", "node-role.kubernetes.io/control-plane": "",
                    "example.k8s.io/z": "1"}),
                serde_json::json!([])
            ))
            .unwrap(),
            r#"nodes "me" is forbidden: is not allowed to modify labels: example.k8s.io/z, node-restriction.kubernetes.io/x, node-role.kubernetes.io/control-plane"#
        );
        assert_eq!(
            update(n(
                serde_json::json!({"kubernetes.io/hostname": "me", "team": "a"}),
                serde_json::json!([{"key": "k", "effect": "NoSchedule"}])
            ))
            .unwrap(),
            r#"nodes "me" is forbidden: node "me" is not allowed to modify taints"#
        );
        let create = |new: Value| {
            admit_object(&reg, Some(&me), nodes, &new, None)
                .err()
                .map(|e| e.message)
        };
        assert_eq!(
            create(n(
                serde_json::json!({"node-restriction.kubernetes.io/x": "y"}),
                serde_json::json!([])
            ))
            .unwrap(),
            r#"nodes "me" is forbidden: node "me" is not allowed to set the following labels: node-restriction.kubernetes.io/x"#
        );
        let mut other = n(serde_json::json!({}), serde_json::json!([]));
        other["metadata"]["name"] = serde_json::json!("other");
        assert_eq!(
            create(other).unwrap(),
            r#"nodes "other" is forbidden: node "me" is not allowed to modify node "other""#
        );
        let leases = api::registry::lookup("coordination.k8s.io", "v1", "leases").unwrap();
        let lease = |name: &str| {
            serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"}})
        };
        assert!(admit_object(&reg, Some(&me), leases, &lease("me"), None).is_ok());
        assert_eq!(
            admit_object(&reg, Some(&me), leases, &lease("other"), None)
                .unwrap_err()
                .message,
            r#"leases.coordination.k8s.io "other" is forbidden: can only access node lease with the same name as the requesting node"#
        );
    }

    #[tokio::test]
    async fn a_nodes_tokens_are_bound_to_its_own_pods() {
        let reg = registry_with_pod("theirs", "other").await;
        let pod = reg.get(pods_info(), "default", "theirs").unwrap();
        let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
        let req = |r: Value| serde_json::json!({"spec": {"audiences": [], "boundObjectRef": r}});
        let msg = |who: &str, r: Value| {
            admit_token_request(&reg, Some(&node(who)), "default", "default", &req(r))
                .err()
                .map(|e| e.message)
        };
        let bound =
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "name": "theirs", "uid": uid});
        assert_eq!(msg("other", bound.clone()), None);
        assert_eq!(
            msg("me", bound).unwrap(),
            r#"serviceaccounts "default" is forbidden: node requested token bound to a pod scheduled on a different node"#
        );
        assert_eq!(
            msg("me", Value::Null).unwrap(),
            r#"serviceaccounts "default" is forbidden: node requested token not bound to a pod"#
        );
        assert_eq!(
            msg(
                "other",
                serde_json::json!({"apiVersion": "v1", "kind": "Pod", "name": "theirs"})
            )
            .unwrap(),
            r#"serviceaccounts "default" is forbidden: node requested token with a pod binding without a uid"#
        );
        assert_eq!(
            msg(
                "other",
                serde_json::json!({"apiVersion": "v1", "kind": "Pod", "name": "theirs", "uid": "u"})
            )
            .unwrap(),
            r#"serviceaccounts "default" is forbidden: the UID in the bound object reference (u) does not match the UID in record. The object might have been deleted and then recreated"#
        );
    }
}
