use serde_json::{Value, json};

use super::*;
use crate::testutil::{cluster, create, eventually, get};

fn role(name: &str, labels: Value, rules: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn aggregated(name: &str, labels: Value, key: &str) -> Value {
    json!({"metadata": {"name": name, "labels": labels},
           "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {key: "true"}}]}})
}

#[tokio::test(start_paused = true)]
async fn aggregated_roles_take_the_union_of_the_selected_roles_rules_through_chains() {
    let registry = apiserver::Registry::new(store::Store::memory());
    let r1 = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    let r2 = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}]);
    create(
        &registry,
        "clusterroles",
        "",
        role("b-viewer", json!({"to-view": "true"}), r1),
    )
    .await;
    create(
        &registry,
        "clusterroles",
        "",
        role("a-editor", json!({"to-edit": "true"}), r2),
    )
    .await;
    create(
        &registry,
        "clusterroles",
        "",
        role(
            "other",
            json!({}),
            json!([{"apiGroups": ["x"], "resources": ["y"], "verbs": ["z"]}]),
        ),
    )
    .await;
    create(
        &registry,
        "clusterroles",
        "",
        aggregated("view", json!({"to-edit": "true"}), "to-view"),
    )
    .await;
    create(
        &registry,
        "clusterroles",
        "",
        aggregated("edit", json!({}), "to-edit"),
    )
    .await;
    let stop = CancellationToken::new();
    tokio::spawn(run(cluster(&registry), stop.clone()));
    let rules = |name: &str| get(&registry, "clusterroles", "", name).map(|o| o["rules"].clone());
    eventually("view aggregates b-viewer", || {
        rules("view") == Some(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]))
    })
    .await;
    // edit: a-editor's two rules, then view's (already there: once).
    eventually("edit aggregates a-editor and view", || {
        rules("edit")
            == Some(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
                           {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create"]}]))
    })
    .await;
    // A new selected role flows through the chain.
    create(
        &registry,
        "clusterroles",
        "",
        role(
            "c-more",
            json!({"to-view": "true"}),
            json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]),
        ),
    )
    .await;
    eventually("edit picks up c-more through view", || {
        rules("edit").is_some_and(|r| r.as_array().is_some_and(|a| a.len() == 3))
    })
    .await;
    stop.cancel();
}
