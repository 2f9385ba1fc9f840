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
    let node = node_identity(user)?;
    // The admission operations NodeRestriction handles (CREATE, UPDATE, DELETE; a patch is an
    // UPDATE). Exec, attach, port-forward and proxy are CONNECT, which it does not handle.
    let op = match a.verb.as_str() {
        "create" => "CREATE",
        "update" | "patch" => "UPDATE",
        "delete" | "deletecollection" => "DELETE",
        _ => return None,
    };
    let connect = matches!(
        a.subresource.as_str(),
        "exec" | "attach" | "portforward" | "proxy"
    );
    if !a.resource_request || connect {
        return None;
    }
    if node.is_empty() {
        // A node user without a name: nothing it asks can be matched to a node.
        return Some(forbidden(
            a,
            format!(
                "could not determine node from user {}",
                api::status::go_quote(&user.name)
            ),
        ));
    }
    let core = a.api_group.is_empty();
    let unexpected_op = || {
        Some(forbidden(
            a,
            format!("unexpected operation {}", api::status::go_quote(op)),
        ))
    };
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
        // Mirror pods are created (checked on the body) and deleted, never updated.
        (true, "pods", "") if op == "UPDATE" => Some(forbidden(
            a,
            format!(
                "unexpected operation {}, node {} can only create and delete mirror pods",
                api::status::go_quote(op),
                api::status::go_quote(node)
            ),
        )),
        (true, "pods", "status") if op != "UPDATE" => unexpected_op(),
        (true, "pods", "eviction") => Some(forbidden(a, format!("unexpected operation {op}"))),
        (true, "pods", "") => None,
        (true, "pods", sub) => Some(forbidden(
            a,
            format!(
                "unexpected pod subresource {}, only 'status' and 'eviction' are allowed",
                api::status::go_quote(sub)
            ),
        )),
        (true, "persistentvolumeclaims", "status") if op != "UPDATE" => unexpected_op(),
        (true, "persistentvolumeclaims", "status") => None,
        (true, "persistentvolumeclaims", _) => {
            Some(forbidden(a, "may only update PVC status".into()))
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
        // A node changes pods only through their status (`admit` refuses the rest).
        ("", "pods", Some(old)) => {
            let labels = |o: &Value| {
                o.pointer("/metadata/labels")
                    .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
                    .cloned()
            };
            if labels(new) != labels(old) {
                return no(format!(
                    "node {} cannot update labels through pod status",
                    q(node)
                ));
            }
            // Upstream compares names and claim names only, and spells it "statues".
            let claims = |o: &Value| -> Vec<(Value, Value)> {
                o.pointer("/status/resourceClaimStatuses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        (
                            c.get("name").cloned().unwrap_or(Value::Null),
                            c.get("resourceClaimName").cloned().unwrap_or(Value::Null),
                        )
                    })
                    .collect()
            };
            if claims(new) != claims(old) {
                return no(format!(
                    "node {} cannot update resource claim statues",
                    q(node)
                ));
            }
            Ok(())
        }
        // And PVCs only through their status, in the fields a volume expansion reports.
        ("", "persistentvolumeclaims", Some(old)) => {
            let changed = pvc_fields_changed(old, new);
            if changed.is_empty() {
                return Ok(());
            }
            no(format!(
                "node {} is not allowed to update fields other than status.capacity and status.conditions: {}",
                q(node),
                changed.join(", ")
            ))
        }
        _ => Ok(()),
    }
}

/// The fields in which two PVCs differ, leaving out what a node may change in a status update
/// (upstream `admitPVCStatus`: `status.capacity`, `status.conditions`, and with
/// RecoverVolumeExpansionFailure, on by default since 1.32, `status.allocatedResources` and
/// `status.allocatedResourceStatuses`) and what every write changes (`resourceVersion`,
/// `managedFields`). Upstream prints a Go `cmp.Diff`; this names the fields.
fn pvc_fields_changed(old: &Value, new: &Value) -> Vec<String> {
    let strip = |o: &Value| {
        let mut o = o.clone();
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        if let Some(st) = o.get_mut("status").and_then(Value::as_object_mut) {
            for f in [
                "capacity",
                "conditions",
                "allocatedResources",
                "allocatedResourceStatuses",
            ] {
                st.remove(f);
            }
            if st.is_empty() {
                o.as_object_mut().map(|m| m.remove("status"));
            }
        }
        o
    };
    let (old, new) = (strip(old), strip(new));
    let mut out = Vec::new();
    diff_paths(&old, &new, String::new(), &mut out);
    out
}

/// JSON paths (`metadata.labels`, `spec`) at which `a` and `b` differ, down through objects.
fn diff_paths(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff_paths(p, q, path, out),
                    (p, q) if p != q => out.push(path),
                    _ => {}
                }
            }
        }
        _ if a != b => out.push(if at.is_empty() { "object".into() } else { at }),
        _ => {}
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
            ..Attributes::default()
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

    fn message(e: Option<ApiError>) -> String {
        e.map(|e| e.to_string()).unwrap_or_default()
    }

    #[tokio::test]
    async fn pods_and_pvcs_only_through_the_subresources_upstream_allows() {
        let reg = registry_with_pod("mine", "me").await;
        let me = node("me");
        let refused = |verb: &str, resource: &str, sub: &str| {
            message(admit(
                &reg,
                &me,
                &attrs(verb, "", resource, sub, "default", "mine"),
            ))
        };
        assert!(
            refused("patch", "pods", "").contains(
                r#"unexpected operation "UPDATE", node "me" can only create and delete mirror pods"#
            ),
            "{}",
            refused("patch", "pods", "")
        );
        assert!(
            refused("patch", "pods", "ephemeralcontainers")
                .contains(r#"unexpected pod subresource "ephemeralcontainers", only 'status' and 'eviction' are allowed"#)
        );
        assert!(refused("create", "pods", "binding").contains("unexpected pod subresource"));
        assert!(refused("delete", "pods", "status").contains(r#"unexpected operation "DELETE""#));
        // CONNECT requests are not NodeRestriction's.
        assert_eq!(refused("create", "pods", "exec"), "");
        assert_eq!(refused("create", "pods", "portforward"), "");
        assert_eq!(refused("patch", "pods", "status"), "");
        for (verb, sub) in [
            ("create", ""),
            ("update", ""),
            ("delete", ""),
            ("patch", "x"),
        ] {
            assert!(
                refused(verb, "persistentvolumeclaims", sub).contains("may only update PVC status"),
                "{verb} {sub}"
            );
        }
        assert_eq!(refused("patch", "persistentvolumeclaims", "status"), "");
    }

    #[tokio::test]
    async fn a_node_user_without_a_name_is_refused_everything_it_writes() {
        let reg = registry_with_pod("mine", "me").await;
        let nameless = node("");
        for (verb, resource, sub) in [
            ("patch", "nodes", "status"),
            ("delete", "pods", ""),
            ("patch", "pods", "status"),
            ("create", "pods", "eviction"),
        ] {
            let m = message(admit(
                &reg,
                &nameless,
                &attrs(verb, "", resource, sub, "default", "mine"),
            ));
            assert!(
                m.contains(r#"could not determine node from user "system:node:""#),
                "{verb} {resource}/{sub}: {m}"
            );
        }
        // Reads are not admission's.
        assert!(
            admit(
                &reg,
                &nameless,
                &attrs("get", "", "pods", "", "default", "mine")
            )
            .is_none()
        );
    }

    #[tokio::test]
    async fn pod_and_pvc_status_updates_change_only_status() {
        let reg = registry_with_pod("mine", "me").await;
        let me = node("me");
        let pods = pods_info();
        let pod: Value = (*reg.get(pods, "default", "mine").unwrap()).clone();
        let mut relabelled = pod.clone();
        relabelled["metadata"]["labels"] = serde_json::json!({"role": "db"});
        relabelled["status"]["phase"] = "Running".into();
        let e = admit_object(&reg, Some(&me), pods, &relabelled, Some(&pod)).unwrap_err();
        assert!(
            e.to_string()
                .contains(r#"node "me" cannot update labels through pod status"#),
            "{e}"
        );
        let mut claimed = pod.clone();
        claimed["status"]["resourceClaimStatuses"] =
            serde_json::json!([{"name": "gpu", "resourceClaimName": "other"}]);
        let e = admit_object(&reg, Some(&me), pods, &claimed, Some(&pod)).unwrap_err();
        assert!(
            e.to_string()
                .contains("cannot update resource claim statues"),
            "{e}"
        );
        let mut running = pod.clone();
        running["status"]["phase"] = "Running".into();
        assert!(admit_object(&reg, Some(&me), pods, &running, Some(&pod)).is_ok());

        let pvcs = api::registry::lookup("", "v1", "persistentvolumeclaims").unwrap();
        let pvc = serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default", "resourceVersion": "5"},
            "spec": {"resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
        let mut expanded = pvc.clone();
        expanded["metadata"]["resourceVersion"] = "6".into();
        expanded["status"]["capacity"]["storage"] = "2Gi".into();
        expanded["status"]["conditions"] =
            serde_json::json!([{"type": "Resizing", "status": "True"}]);
        expanded["status"]["allocatedResources"] = serde_json::json!({"storage": "2Gi"});
        assert!(admit_object(&reg, Some(&me), pvcs, &expanded, Some(&pvc)).is_ok());
        let mut sneaky = expanded.clone();
        sneaky["metadata"]["finalizers"] = serde_json::json!(["x"]);
        sneaky["status"]["phase"] = "Lost".into();
        let e = admit_object(&reg, Some(&me), pvcs, &sneaky, Some(&pvc)).unwrap_err();
        assert!(
            e.to_string().contains(
                r#"node "me" is not allowed to update fields other than status.capacity and status.conditions: metadata.finalizers, status.phase"#
            ),
            "{e}"
        );
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
