//! The default policy the server reconciles at start (upstream `bootstrappolicy` and the
//! `rbac/bootstrap-roles` post-start hook): `cluster-admin`, the aggregated `admin`, `edit`
//! and `view` roles with the `system:aggregate-to-*` roles that feed them,
//! `system:discovery`, `system:basic-user`, `system:public-info-viewer`,
//! `system:service-account-issuer-discovery`, and their
//! ClusterRoleBindings. Each carries the `kubernetes.io/bootstrapping: rbac-defaults` label
//! and the `rbac.authorization.kubernetes.io/autoupdate: "true"` annotation; an existing
//! object with that annotation gets what is missing (rules, aggregation selectors, subjects,
//! labels) added back, one set to `"false"` is left alone, as upstream's reconciliation
//! without removal of extra permissions does.

use api::status::ApiError;
use serde_json::{Value, json};

use super::rules::covers;
use crate::registry::{Registry, WriteOptions};

const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
const GROUP: &str = api::registry::RBAC_GROUP;

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

pub(super) fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn urls(urls: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
}

pub(super) fn meta(name: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/bootstrapping".into(), json!("rbac-defaults"));
    for (k, v) in extra_labels {
        labels.insert((*k).into(), json!(v));
    }
    json!({"name": name, "labels": labels, "annotations": {AUTOUPDATE: "true"}})
}

pub(super) fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta(name, labels),
        "rules": rules,
    })
}

fn aggregated(name: &str, labels: &[(&str, &str)], selector: &str) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta(name, labels),
        "aggregationRule": {"clusterRoleSelectors": [
            {"matchLabels": {format!("rbac.authorization.k8s.io/{selector}"): "true"}}
        ]},
        "rules": [],
    })
}

/// The default ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let to_admin = [("rbac.authorization.k8s.io/aggregate-to-admin", "true")];
    let to_edit = [("rbac.authorization.k8s.io/aggregate-to-edit", "true")];
    let to_view = [("rbac.authorization.k8s.io/aggregate-to-view", "true")];
    let read_write: Vec<&str> = WRITE.iter().chain(READ).copied().collect();
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        aggregated("admin", &[], "aggregate-to-admin"),
        aggregated("edit", &to_admin, "aggregate-to-edit"),
        aggregated("view", &to_edit, "aggregate-to-view"),
        cluster_role(
            "system:aggregate-to-admin",
            &to_admin,
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                    &["create"],
                ),
                rule(&[GROUP], &["rolebindings", "roles"], &read_write),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &to_edit,
            vec![
                rule(
                    &[""],
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                    READ,
                ),
                rule(&[""], &["serviceaccounts"], &["impersonate"]),
                rule(
                    &[""],
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                    ],
                    WRITE,
                ),
                rule(&[""], &["pods/eviction"], &["create"]),
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                    WRITE,
                ),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
                rule(
                    &["apps"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                    WRITE,
                ),
                rule(&["autoscaling"], &["horizontalpodautoscalers"], WRITE),
                rule(&["batch"], &["cronjobs", "jobs"], WRITE),
                rule(
                    &["extensions"],
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "ingresses",
                        "networkpolicies",
                        "replicasets",
                        "replicasets/scale",
                        "replicationcontrollers/scale",
                    ],
                    WRITE,
                ),
                rule(&["policy"], &["poddisruptionbudgets"], WRITE),
                rule(
                    &["networking.k8s.io"],
                    &["ingresses", "networkpolicies"],
                    WRITE,
                ),
            ],
        ),
        cluster_role(
            "system:aggregate-to-view",
            &to_view,
            vec![
                rule(
                    &[""],
                    &[
                        "configmaps",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                    ],
                    READ,
                ),
                rule(
                    &[""],
                    &[
                        "bindings",
                        "events",
                        "limitranges",
                        "namespaces/status",
                        "pods/log",
                        "pods/status",
                        "replicationcontrollers/status",
                        "resourcequotas",
                        "resourcequotas/status",
                    ],
                    READ,
                ),
                rule(&[""], &["namespaces"], READ),
                rule(&["discovery.k8s.io"], &["endpointslices"], READ),
                rule(
                    &["apps"],
                    &[
                        "controllerrevisions",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "statefulsets",
                        "statefulsets/scale",
                        "statefulsets/status",
                    ],
                    READ,
                ),
                rule(
                    &["autoscaling"],
                    &[
                        "horizontalpodautoscalers",
                        "horizontalpodautoscalers/status",
                    ],
                    READ,
                ),
                rule(
                    &["batch"],
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                    READ,
                ),
                rule(
                    &["extensions"],
                    &[
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "ingresses",
                        "ingresses/status",
                        "networkpolicies",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "replicationcontrollers/scale",
                    ],
                    READ,
                ),
                rule(
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                    READ,
                ),
                rule(
                    &["networking.k8s.io"],
                    &["ingresses", "ingresses/status", "networkpolicies"],
                    READ,
                ),
            ],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                &["get"],
            )],
        ),
        // ServiceAccount issuer discovery, bound to every service account as upstream does.
        cluster_role(
            "system:service-account-issuer-discovery",
            &[],
            vec![urls(
                &[
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
                &["get"],
            )],
        ),
        // What metrics-server installs for its API: reading the resource metrics, aggregated
        // into view, edit and admin.
        cluster_role(
            "system:aggregated-metrics-reader",
            &[
                ("rbac.authorization.k8s.io/aggregate-to-view", "true"),
                ("rbac.authorization.k8s.io/aggregate-to-edit", "true"),
                ("rbac.authorization.k8s.io/aggregate-to-admin", "true"),
            ],
            vec![rule(&["metrics.k8s.io"], &["pods", "nodes"], READ)],
        ),
    ]
}

fn cluster_binding(name: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": GROUP, "kind": "Group", "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(name, &[]),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
        "subjects": subjects,
    })
}

/// The default ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        cluster_binding("cluster-admin", &["system:masters"]),
        cluster_binding("system:discovery", &["system:authenticated"]),
        cluster_binding("system:basic-user", &["system:authenticated"]),
        cluster_binding(
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
        cluster_binding(
            "system:service-account-issuer-discovery",
            &["system:serviceaccounts"],
        ),
    ]
}

/// Adds to `existing` what `expected` has and it lacks; `true` if anything changed.
fn reconcile(existing: &mut Value, expected: &Value) -> bool {
    let mut changed = false;
    for field in ["labels", "annotations"] {
        let Some(want) = expected["metadata"][field].as_object() else {
            continue;
        };
        let Some(m) = existing.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        let have = m.entry(field).or_insert_with(|| json!({}));
        if !have.is_object() {
            *have = json!({});
        }
        if let Some(have) = have.as_object_mut() {
            for (k, v) in want {
                if !have.contains_key(k) {
                    have.insert(k.clone(), v.clone());
                    changed = true;
                }
            }
        }
    }
    if let Some(want_rules) = expected.get("rules") {
        let parse = |v: &Value| -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
            serde_json::from_value(v.clone()).unwrap_or_default()
        };
        let have = parse(existing.get("rules").unwrap_or(&Value::Null));
        let (_, missing) = covers(&have, &parse(want_rules));
        if !missing.is_empty() {
            let mut rules = have;
            rules.extend(missing);
            existing["rules"] = serde_json::to_value(rules).unwrap_or_else(|_| json!([]));
            changed = true;
        }
    }
    if let Some(want) = expected.pointer("/aggregationRule/clusterRoleSelectors") {
        let want = want.as_array().cloned().unwrap_or_default();
        if existing
            .pointer("/aggregationRule/clusterRoleSelectors")
            .is_none()
        {
            existing["aggregationRule"] = json!({"clusterRoleSelectors": []});
        }
        if let Some(have) = existing
            .pointer_mut("/aggregationRule/clusterRoleSelectors")
            .and_then(Value::as_array_mut)
        {
            for s in want {
                if !have.contains(&s) {
                    have.push(s);
                    changed = true;
                }
            }
        }
    }
    if let Some(want) = expected.get("subjects").and_then(Value::as_array) {
        if !existing.get("subjects").is_some_and(Value::is_array) {
            existing["subjects"] = json!([]);
        }
        if let Some(have) = existing.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in want {
                if !have.contains(s) {
                    have.push(s.clone());
                    changed = true;
                }
            }
        }
    }
    changed
}

/// Creates the default policy objects that are missing and reconciles the ones marked for
/// automatic update.
pub async fn ensure(registry: &Registry) -> Result<(), ApiError> {
    let lookup = |plural| {
        api::registry::lookup(GROUP, "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))
    };
    let roles = lookup("clusterroles")?;
    let bindings = lookup("clusterrolebindings")?;
    let all = cluster_roles()
        .into_iter()
        .chain(super::node_policy::cluster_roles())
        .map(|o| (roles, o))
        .chain(
            cluster_role_bindings()
                .into_iter()
                .chain(super::node_policy::cluster_role_bindings())
                .map(|o| (bindings, o)),
        );
    for (info, expected) in all {
        let name = expected["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match registry.get(info, "", &name) {
            Err(_) => match registry
                .create(info, "", expected, &WriteOptions::default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            },
            Ok(existing) => {
                let auto = existing
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(AUTOUPDATE))
                    .and_then(Value::as_str);
                if auto != Some("true") {
                    continue;
                }
                registry
                    .update_with(info, "", &name, false, |obj| Ok(reconcile(obj, &expected)))
                    .await?;
            }
        }
    }
    super::node_policy::retire_legacy(registry).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_adds_missing_rules_subjects_and_labels_only() {
        let expected = cluster_roles().remove(0);
        let mut existing = json!({
            "metadata": {"name": "cluster-admin", "labels": {"mine": "x"}},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        });
        assert!(reconcile(&mut existing, &expected));
        assert_eq!(existing["rules"].as_array().unwrap().len(), 3);
        assert_eq!(existing["metadata"]["labels"]["mine"], "x");
        assert_eq!(
            existing["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "rbac-defaults"
        );
        assert!(!reconcile(&mut existing, &expected));
        let b = cluster_role_bindings().remove(3);
        let mut have = json!({"metadata": {"name": "x"}, "subjects": [b["subjects"][0].clone()]});
        assert!(reconcile(&mut have, &b));
        assert_eq!(have["subjects"].as_array().unwrap().len(), 2);
    }
}
