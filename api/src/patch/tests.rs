use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

fn y(s: &str) -> Value {
    crate::yaml::from_str(s).expect("test YAML")
}

// ---------------------------------------------------------------------------------------------
// Content types, merge patch, JSON patch
// ---------------------------------------------------------------------------------------------

#[test]
fn content_types() {
    assert_eq!(
        PatchType::from_content_type("application/json-patch+json"),
        Some(PatchType::Json)
    );
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("Application/Strategic-Merge-Patch+JSON"),
        Some(PatchType::StrategicMerge)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        Some(PatchType::Apply)
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
    assert_eq!(PatchType::from_content_type(""), None);
}

#[test]
fn parse_bodies() {
    assert_eq!(
        PatchType::Merge.parse_body(br#"{"a":1}"#).unwrap(),
        json!({"a": 1})
    );
    let err = PatchType::StrategicMerge.parse_body(b"{nope").unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(err.reason(), "BadRequest");
    let yaml = PatchType::Apply
        .parse_body(b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n")
        .unwrap();
    assert_eq!(
        yaml,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}})
    );
    // kubectl sends JSON as the YAML body.
    let as_json = PatchType::Apply
        .parse_body(br#"{"apiVersion":"v1","kind":"ConfigMap"}"#)
        .unwrap();
    assert_eq!(as_json, json!({"apiVersion": "v1", "kind": "ConfigMap"}));
}

#[test]
fn merge_patch_scale_label_annotate() {
    let deploy = json!({"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {"replicas": 1, "paused": true}});
    let scaled = merge_patch(&deploy, &json!({"spec": {"replicas": 3}}));
    assert_eq!(scaled["spec"], json!({"replicas": 3, "paused": true}));
    let labelled = merge_patch(
        &deploy,
        &json!({"metadata": {"labels": {"tier": "fe", "app": null}}}),
    );
    assert_eq!(labelled["metadata"]["labels"], json!({"tier": "fe"}));
    // Lists are replaced wholesale.
    let with_list = json!({"l": [1, 2, 3]});
    assert_eq!(
        merge_patch(&with_list, &json!({"l": [4]})),
        json!({"l": [4]})
    );
}

#[test]
fn json_patch_ops_and_errors() {
    let doc = json!({"metadata": {"annotations": {"a": "1"}}, "spec": {"template": {"x": 1}}});
    let undo = json!([
        {"op": "replace", "path": "/spec/template", "value": {"y": 2}},
        {"op": "replace", "path": "/metadata/annotations", "value": {"b": "2"}}
    ]);
    let out = json_patch(&doc, &undo).unwrap();
    assert_eq!(
        out,
        json!({"metadata": {"annotations": {"b": "2"}}, "spec": {"template": {"y": 2}}})
    );

    let failed_test = json!([{"op": "test", "path": "/spec/template/x", "value": 2}]);
    let err = json_patch(&doc, &failed_test).unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(
        err.to_string(),
        "testing value /spec/template/x failed: test failed"
    );
    assert_eq!(err.reason(), "Invalid");
    assert_eq!(
        err.status_message(),
        "the server rejected our request due to an error in our request"
    );
    assert!(err.cause().is_some());

    let missing = json!([{"op": "replace", "path": "/nope/deeper", "value": 1}]);
    let err = json_patch(&doc, &missing).unwrap_err();
    assert_eq!(err.code(), 422);
    assert_eq!(
        err.to_string(),
        "replace operation does not apply: doc is missing key: /nope/deeper: missing value"
    );
    let add = json!([{"op": "add", "path": "/a/b", "value": 1}]);
    assert_eq!(
        json_patch(&doc, &add).unwrap_err().to_string(),
        "add operation does not apply: doc is missing path: \"/a/b\": missing value"
    );

    let not_a_list = json!({"op": "add"});
    assert_eq!(json_patch(&doc, &not_a_list).unwrap_err().code(), 400);
    let bad_op = json!([{"op": "frobnicate", "path": "/a"}]);
    assert_eq!(json_patch(&doc, &bad_op).unwrap_err().code(), 400);

    let many: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
        .map(|_| json!({"op": "test", "path": "/spec/template/x", "value": 1}))
        .collect();
    let err = json_patch(&doc, &Value::Array(many)).unwrap_err();
    assert_eq!(err.code(), 413);
    assert_eq!(
        err.to_api_error().message,
        "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn empty_patch() {
    assert!(is_empty_patch(&json!({})));
    assert!(is_empty_patch(&json!({"spec": {}})));
    assert!(!is_empty_patch(&json!({"spec": {"replicas": 1}})));
    assert!(!is_empty_patch(
        &json!({"$setElementOrder/containers": [{"name": "a"}]})
    ));
    assert!(!is_empty_patch(&json!({"a": null})));
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch on built-in kinds
// ---------------------------------------------------------------------------------------------

fn live_deployment() -> Value {
    y(r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: ns
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: "{}"
spec:
  replicas: 2
  selector:
    matchLabels: {app: api}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata:
      labels: {app: api}
    spec:
      containers:
      - name: main
        image: busybox
        command: [sh, -c, sleep 1000]
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        ports:
        - {containerPort: 80, protocol: TCP}
        imagePullPolicy: Always
        terminationMessagePath: /dev/termination-log
      - name: side
        image: busybox
      restartPolicy: Always
      dnsPolicy: ClusterFirst
"#)
}

/// The patch kubectl 1.32 sent (kubectl-wire.md §3.4) when the manifest dropped env var A,
/// container "side" and `command`, and changed B.
fn kubectl_patch() -> Value {
    json!({
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "main"}],
            "containers": [
                {"name": "main", "$setElementOrder/env": [{"name": "B"}], "command": null,
                 "env": [{"name": "B", "value": "3"}, {"$patch": "delete", "name": "A"}]},
                {"$patch": "delete", "name": "side"}
            ]
        }}}
    })
}

#[test]
fn kubectl_apply_drops_env_and_container() {
    let out = strategic_merge(&live_deployment(), &kubectl_patch(), "Deployment").unwrap();
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    let main = &containers[0];
    assert_eq!(main["name"], "main");
    assert_eq!(main["env"], json!([{"name": "B", "value": "3"}]));
    assert!(main.get("command").is_none());
    // Fields the patch does not mention survive (merge patch would have wiped them).
    assert_eq!(main["image"], "busybox");
    assert_eq!(
        main["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(main["imagePullPolicy"], "Always");
    assert_eq!(out["spec"]["replicas"], 2);
    assert_eq!(out["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert!(
        out.to_string().find('$').is_none(),
        "directives left in {out}"
    );
}

#[test]
fn three_way_reproduces_kubectl_patch() {
    let last_applied = y(r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: ns}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: main
        image: busybox
        command: [sh, -c, sleep 1000]
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
      - name: side
        image: busybox
"#);
    let modified = y(r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: ns}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - name: main
        image: busybox
        env:
        - {name: B, value: "3"}
"#);
    let patch = three_way_strategic(
        Some(&last_applied),
        &modified,
        &live_deployment(),
        "Deployment",
    )
    .unwrap();
    assert_eq!(patch, kubectl_patch());
    // Go's encoder sorts keys; so do we (kubectl's bytes started `{"$patch":"delete","name":…}`).
    let side = &patch["spec"]["template"]["spec"]["containers"][1];
    assert_eq!(side.to_string(), r#"{"$patch":"delete","name":"side"}"#);

    // Re-applying the same manifest against the patched object changes nothing.
    let patched = strategic_merge(&live_deployment(), &patch, "Deployment").unwrap();
    let again = three_way_strategic(Some(&modified), &modified, &patched, "Deployment").unwrap();
    assert!(is_empty_patch(&again), "{again}");
}

#[test]
fn three_way_keeps_server_side_changes() {
    // `kubectl scale` set replicas on the server; the manifest never mentioned it.
    let cfg =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
    let mut live = cfg.clone();
    live["spec"]["replicas"] = json!(5);
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    let modified =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:2"}]}}}});
    let patch = three_way_strategic(Some(&cfg), &modified, &live, "Deployment").unwrap();
    assert_eq!(
        patch,
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"image": "x:2", "name": "a"}]
        }}}})
    );
    let out = strategic_merge(&live, &patch, "Deployment").unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["image"],
        "x:2"
    );
}

#[test]
fn set_image_and_rollout_restart() {
    let live = live_deployment();
    let set_image = json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "nginx:2"}]}}}});
    let out = strategic_merge(&live, &set_image, "Deployment").unwrap();
    let containers = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["name"], "main");
    assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
    assert_eq!(containers[1], json!({"name": "side", "image": "nginx:2"}));

    let restart = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-11-25T19:00:00Z"}}}}});
    let out = strategic_merge(&live, &restart, "Deployment").unwrap();
    assert_eq!(
        out["spec"]["template"]["metadata"],
        json!({"labels": {"app": "api"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-25T19:00:00Z"}})
    );
    assert_eq!(
        out["spec"]["template"]["spec"],
        live["spec"]["template"]["spec"]
    );
}

#[test]
fn new_list_items_are_appended_and_ports_merge_by_container_port() {
    let pod = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 81, "name": "x"}]}]}});
    let patch = json!({"spec": {"containers": [
        {"name": "a", "ports": [{"containerPort": 81, "name": "y"}]},
        {"name": "b", "image": "i", "command": null}
    ]}});
    let out = strategic_merge(&pod, &patch, "Pod").unwrap();
    assert_eq!(
        out,
        json!({"spec": {"containers": [
            {"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 81, "name": "y"}]},
            {"name": "b", "image": "i"}
        ]}})
    );
}

#[test]
fn tolerations_have_no_merge_key_and_are_replaced() {
    let pod =
        json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}], "containers": []}});
    let patch = json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}});
    let out = strategic_merge(&pod, &patch, "Pod").unwrap();
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
}

#[test]
fn finalizers_merge_as_a_set_and_delete_from_primitive_list() {
    let obj = json!({"metadata": {"finalizers": ["a", "b"]}});
    let out = strategic_merge(
        &obj,
        &json!({"metadata": {"finalizers": ["c", "a"]}}),
        "ConfigMap",
    )
    .unwrap();
    // Upstream's ordering: patch items in patch order, server-only items placed by the live
    // order relative to items both know ("c" is unknown to the server, so it goes first).
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    let out = strategic_merge(
        &obj,
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        "ConfigMap",
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    let err = strategic_merge(
        &obj,
        &json!({"metadata": {"$deleteFromPrimitiveList": ["a"]}}),
        "ConfigMap",
    )
    .unwrap_err();
    assert_eq!(err.code(), 400);
    assert_eq!(err.to_string(), "invalid patch format of primitive list");
}

#[test]
fn owner_references_merge_by_uid() {
    let obj = json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}});
    let patch = json!({"metadata": {"ownerReferences": [{"uid": "2", "$patch": "delete"}, {"uid": "3", "name": "c"}]}});
    let out = strategic_merge(&obj, &patch, "ReplicaSet").unwrap();
    // Without `$setElementOrder` (old clients), new items land before server-only ones.
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([{"uid": "3", "name": "c"}, {"uid": "1", "name": "a"}])
    );
}

#[test]
fn service_ports_merge_by_port() {
    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
    let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
    let out = strategic_merge(&svc, &patch, "Service").unwrap();
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
    );
}

#[test]
fn volumes_retain_keys_switch_source() {
    let last =
        json!({"spec": {"template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}}});
    let live =
        json!({"spec": {"template": {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}}});
    let modified = json!({"spec": {"template": {"spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}]}}}});
    let patch = three_way_strategic(Some(&last), &modified, &live, "Deployment").unwrap();
    assert_eq!(
        patch["spec"]["template"]["spec"]["volumes"],
        json!([{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}, "emptyDir": null, "name": "v"}])
    );
    let out = strategic_merge(&live, &patch, "Deployment").unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "cm"}}])
    );
}

#[test]
fn deployment_strategy_retain_keys() {
    let live =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let out = strategic_merge(&live, &patch, "Deployment").unwrap();
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    let bad = json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}});
    let err = strategic_merge(&live, &bad, "Deployment").unwrap_err();
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        (400, "invalid patch format of retainKeys")
    );
    let three = three_way_strategic(
        Some(&json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}})),
        &json!({"spec": {"strategy": {"type": "Recreate"}}}),
        &live,
        "Deployment",
    )
    .unwrap();
    assert_eq!(
        three,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": null, "type": "Recreate"}}})
    );
}

#[test]
fn map_directives() {
    let obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    let out = strategic_merge(
        &obj,
        &json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
        "Pod",
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    let out = strategic_merge(
        &obj,
        &json!({"metadata": {"labels": {"$patch": "delete"}}}),
        "Pod",
    )
    .unwrap();
    assert_eq!(out["metadata"]["labels"], json!({}));
    let err = strategic_merge(
        &obj,
        &json!({"metadata": {"labels": {"$patch": "explode"}}}),
        "Pod",
    )
    .unwrap_err();
    assert_eq!(err.code(), 500);
    assert!(
        err.to_string()
            .starts_with("unknown patch type: explode in map:"),
        "{err}"
    );
}

#[test]
fn list_replace_directive_and_errors() {
    let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "c"}]}});
    let out = strategic_merge(&pod, &patch, "Pod").unwrap();
    assert_eq!(out["spec"]["containers"], json!([{"name": "c"}]));

    let missing_key = json!({"spec": {"containers": [{"image": "x"}]}});
    let err = strategic_merge(&pod, &missing_key, "Pod").unwrap_err();
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.to_string(),
        "map: map[image:x] does not contain declared merge key: name"
    );

    let merge_directive = json!({"spec": {"containers": [{"$patch": "merge", "name": "a"}]}});
    assert!(strategic_merge(&pod, &merge_directive, "Pod").is_err());

    let list_of_lists = json!({"metadata": {"finalizers": [["x"]]}});
    let err = strategic_merge(
        &json!({"metadata": {"finalizers": [["y"]]}}),
        &list_of_lists,
        "Pod",
    )
    .unwrap_err();
    assert_eq!((err.code(), err.reason()), (422, "Invalid"));
}

#[test]
fn unknown_kinds_are_refused_and_bodies_must_be_objects() {
    let err = strategic_merge(&json!({}), &json!({}), "Widget").unwrap_err();
    assert_eq!((err.code(), err.reason()), (415, "UnsupportedMediaType"));
    assert!(!has_strategic_schema("Widget"));
    assert!(has_strategic_schema("Deployment"));
    // Every served kind a client may patch has a schema (kubectl patch defaults to strategic).
    for kind in [
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ControllerRevision",
        "ReplicationController",
        "Ingress",
        "IngressClass",
        "PodDisruptionBudget",
    ] {
        assert!(has_strategic_schema(kind), "{kind}");
    }
    let err = strategic_merge(&json!({}), &json!([1]), "Pod").unwrap_err();
    assert_eq!(err.code(), 400);
}

// ---------------------------------------------------------------------------------------------
// Upstream behaviour on upstream's MergeItem test type (cases re-expressed from
// strategicpatch/patch_test.go): the two-way patch, applying it, the three-way patch against a
// drifted live object, and applying that.
// ---------------------------------------------------------------------------------------------

/// One scenario; absent fields are not checked.
#[derive(Debug, Default)]
struct Case {
    name: &'static str,
    original: &'static str,
    modified: &'static str,
    two_way: &'static str,
    current: &'static str,
    three_way: &'static str,
    result: &'static str,
    /// Result of applying `two_way` to `original` when not `modified` (nulls in `modified`).
    two_way_result: &'static str,
}

fn doc(s: &str) -> Value {
    if s.trim().is_empty() { json!({}) } else { y(s) }
}

fn check(c: &Case) {
    let original = doc(c.original);
    let modified = doc(c.modified);
    let two_way = doc(c.two_way);
    let got = two_way_strategic(&original, &modified, "MergeItem").unwrap();
    assert_eq!(got, two_way, "{}: two-way patch", c.name);
    let applied = strategic_merge(&original, &two_way, "MergeItem").unwrap();
    let expected = if c.two_way_result.is_empty() {
        modified.clone()
    } else {
        doc(c.two_way_result)
    };
    assert_eq!(applied, expected, "{}: applying the two-way patch", c.name);
    if !c.current.is_empty() {
        let current = doc(c.current);
        let three = three_way_strategic(Some(&original), &modified, &current, "MergeItem").unwrap();
        assert_eq!(three, doc(c.three_way), "{}: three-way patch", c.name);
        let result = strategic_merge(&current, &three, "MergeItem").unwrap();
        assert_eq!(
            result,
            doc(c.result),
            "{}: applying the three-way patch",
            c.name
        );
    }
}

#[test]
fn upstream_scenarios() {
    let cases = [
        Case {
            name: "add a field while another one was added on the server",
            original: "name: 1",
            modified: "{name: 1, value: 1}",
            two_way: "value: 1",
            current: "{name: 1, other: a}",
            three_way: "value: 1",
            result: "{name: 1, value: 1, other: a}",
            ..Default::default()
        },
        Case {
            name: "add a field, the server changed one we set",
            original: "name: 1",
            modified: "{name: 1, value: 1}",
            two_way: "value: 1",
            current: "{name: a, other: a}",
            three_way: "{name: 1, value: 1}",
            result: "{name: 1, value: 1, other: a}",
            ..Default::default()
        },
        Case {
            name: "delete a field and add one",
            original: "name: 1",
            modified: "value: 1",
            two_way: "{name: null, value: 1}",
            current: "{name: 1, other: a}",
            three_way: "{name: null, value: 1}",
            result: "{value: 1, other: a}",
            ..Default::default()
        },
        Case {
            name: "delete from a nested map",
            original: "simpleMap: {key1: 1, key2: 1}",
            modified: "simpleMap: {key1: 1}",
            two_way: "simpleMap: {key2: null}",
            current: "simpleMap: {key1: a, key2: 1, other: a}",
            three_way: "simpleMap: {key1: 1, key2: null}",
            result: "simpleMap: {key1: 1, other: a}",
            ..Default::default()
        },
        Case {
            name: "replace a list of scalars",
            original: "nonMergingIntList: [1, 2]",
            modified: "nonMergingIntList: [2, 3]",
            two_way: "nonMergingIntList: [2, 3]",
            current: "nonMergingIntList: [1, 4]",
            three_way: "nonMergingIntList: [2, 3]",
            result: "nonMergingIntList: [2, 3]",
            ..Default::default()
        },
        Case {
            name: "delete every item of a merging list",
            original: "mergingList: [{name: 1}, {name: 2}]",
            modified: "mergingList: []",
            two_way: "mergingList: [{name: 1, $patch: delete}, {name: 2, $patch: delete}]",
            current: "mergingList: [{name: 1, other: a}, {name: 2, other: b}]",
            three_way: "mergingList: [{name: 1, $patch: delete}, {name: 2, $patch: delete}]",
            result: "mergingList: []",
            ..Default::default()
        },
        Case {
            name: "explicit nulls in the new config delete",
            original: "name: 2",
            modified: "{name: 1, value: 1, other: null}",
            two_way: "{name: 1, value: 1, other: null}",
            two_way_result: "{name: 1, value: 1}",
            current: "{name: a, other: a}",
            three_way: "{name: 1, value: 1, other: null}",
            result: "{name: 1, value: 1}",
        },
        Case {
            name: "delete from a merging int list",
            original: "mergingIntList: [1, 2, 3]",
            modified: "mergingIntList: [1, 2]",
            two_way: "{$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}",
            current: "mergingIntList: [1, 2, 3, 4]",
            three_way: "{$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}",
            result: "mergingIntList: [1, 2, 4]",
            ..Default::default()
        },
        Case {
            name: "add and delete in a merging int list",
            original: "mergingIntList: [1, 2, 3]",
            modified: "mergingIntList: [1, 2, 4]",
            two_way: "{$setElementOrder/mergingIntList: [1, 2, 4], $deleteFromPrimitiveList/mergingIntList: [3], mergingIntList: [4]}",
            current: "mergingIntList: [1, 2, 3, 4]",
            three_way: "{$setElementOrder/mergingIntList: [1, 2, 4], $deleteFromPrimitiveList/mergingIntList: [3]}",
            result: "mergingIntList: [1, 2, 4]",
            ..Default::default()
        },
        Case {
            name: "add items around existing ones in a merging list",
            original: "mergingList: [{name: 1}, {name: 2, value: 2}]",
            modified: "mergingList: [{name: 4, value: 4}, {name: 1}, {name: 2, value: 2}, {name: 3, value: 3}]",
            two_way: "{$setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}], mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]}",
            current: "mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]",
            three_way: "{$setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}], mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]}",
            result: "mergingList: [{name: 4, value: 4}, {name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]",
            ..Default::default()
        },
        Case {
            name: "merging list item changed on the server",
            original: "mergingList: [{name: 1}, {name: 2, value: 2}]",
            modified: "mergingList: [{name: 1}, {name: 2, value: 2}, {name: 3, value: 3}]",
            two_way: "{$setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}], mergingList: [{name: 3, value: 3}]}",
            current: "mergingList: [{name: 1, other: a}, {name: 2, value: 3, other: b}]",
            three_way: "{$setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}], mergingList: [{name: 2, value: 2}, {name: 3, value: 3}]}",
            result: "mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]",
            ..Default::default()
        },
        Case {
            name: "delete a field inside a merging list item",
            original: "mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]",
            modified: "mergingList: [{name: 1}, {name: 2, value: 2}]",
            two_way: "{$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1, value: null}]}",
            current: "mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2, other: b}]",
            three_way: "{$setElementOrder/mergingList: [{name: 1}, {name: 2}], mergingList: [{name: 1, value: null}]}",
            result: "mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]",
            ..Default::default()
        },
        Case {
            name: "reorder a merging list",
            original: "mergingList: [{name: 1}, {name: 2}, {name: 3}]",
            modified: "mergingList: [{name: 3}, {name: 1}, {name: 2}]",
            two_way: "$setElementOrder/mergingList: [{name: 3}, {name: 1}, {name: 2}]",
            current: "mergingList: [{name: 1}, {name: 2}, {name: 4}, {name: 3}]",
            three_way: "$setElementOrder/mergingList: [{name: 3}, {name: 1}, {name: 2}]",
            // The server-only item 4 sat before 3 in the live list, so it stays before it.
            result: "mergingList: [{name: 4}, {name: 3}, {name: 1}, {name: 2}]",
            ..Default::default()
        },
        Case {
            name: "delete one item and reorder the rest",
            original: "mergingList: [{name: 1}, {name: 3, value: 3}, {name: 2, value: 2}]",
            modified: "mergingList: [{name: 2, value: 2}, {name: 1}]",
            two_way: "{$setElementOrder/mergingList: [{name: 2}, {name: 1}], mergingList: [{name: 3, $patch: delete}]}",
            current: "mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]",
            three_way: "{$setElementOrder/mergingList: [{name: 2}, {name: 1}], mergingList: [{name: 3, $patch: delete}]}",
            result: "mergingList: [{name: 2, value: 2, other: b}, {name: 1, other: a}]",
            ..Default::default()
        },
        Case {
            name: "reorder around server-only items in the middle",
            original: "mergingList: [{name: 1}, {name: 2, value: 2}, {name: 3, value: 3}, {name: 4, value: 4}]",
            modified: "mergingList: [{name: 2, value: 2}, {name: 1}, {name: 4, value: 4}, {name: 3, value: 3}]",
            two_way: "$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]",
            current: "mergingList: [{name: 1, other: a}, {name: 2, value: 2}, {name: 7}, {name: 9}, {name: 8}, {name: 3, value: 3}, {name: 4, value: 4}]",
            three_way: "$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]",
            result: "mergingList: [{name: 2, value: 2}, {name: 1, other: a}, {name: 7}, {name: 9}, {name: 8}, {name: 4, value: 4}, {name: 3, value: 3}]",
            ..Default::default()
        },
        Case {
            name: "reorder an int list around server-only items",
            original: "mergingIntList: [1, 2, 3, 4]",
            modified: "mergingIntList: [2, 1, 4, 3]",
            two_way: "$setElementOrder/mergingIntList: [2, 1, 4, 3]",
            current: "mergingIntList: [1, 2, 9, 3, 4]",
            three_way: "$setElementOrder/mergingIntList: [2, 1, 4, 3]",
            result: "mergingIntList: [2, 1, 9, 4, 3]",
            ..Default::default()
        },
        Case {
            name: "add and delete in an int list keeping order",
            original: "mergingIntList: [1, 3, 2]",
            modified: "mergingIntList: [4, 2, 1]",
            two_way: "{$setElementOrder/mergingIntList: [4, 2, 1], mergingIntList: [4], $deleteFromPrimitiveList/mergingIntList: [3]}",
            current: "mergingIntList: [1, 2, 3]",
            three_way: "{$setElementOrder/mergingIntList: [4, 2, 1], mergingIntList: [4], $deleteFromPrimitiveList/mergingIntList: [3]}",
            result: "mergingIntList: [4, 2, 1]",
            ..Default::default()
        },
        Case {
            name: "retainKeys clears a field the server defaulted",
            original: "",
            modified: "retainKeysMap: {name: type2, other: bar}",
            two_way: "retainKeysMap: {name: type2, other: bar}",
            current: "retainKeysMap: {name: type1, value: foo}",
            three_way: "retainKeysMap: {$retainKeys: [name, other], name: type2, other: bar}",
            result: "retainKeysMap: {name: type2, other: bar}",
            ..Default::default()
        },
        Case {
            name: "retainKeys map deletes a field and clears an unknown one",
            original: "retainKeysMap: {name: foo, value: bar}",
            modified: "retainKeysMap: {name: foo}",
            two_way: "retainKeysMap: {$retainKeys: [name], value: null}",
            current: "retainKeysMap: {name: foo, value: bar, other: a}",
            three_way: "retainKeysMap: {$retainKeys: [name], value: null}",
            result: "retainKeysMap: {name: foo}",
            ..Default::default()
        },
        Case {
            name: "duplicates in a merging list follow $setElementOrder",
            original: "mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]",
            modified: "mergingList: [{name: 2, value: dup1}, {name: 1}, {name: 4}, {name: 3}, {name: 2, value: dup2}]",
            two_way: "$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]",
            two_way_result: "mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]",
            current: "mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]",
            three_way: "$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]",
            result: "mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]",
        },
        Case {
            name: "nested merging lists",
            original: "mergingList: [{name: 1, mergingList: [{name: a}, {name: b, value: x}]}]",
            modified: "mergingList: [{name: 1, mergingList: [{name: b, value: y}]}]",
            two_way: "{$setElementOrder/mergingList: [{name: 1}], mergingList: [{name: 1, $setElementOrder/mergingList: [{name: b}], mergingList: [{name: b, value: y}, {name: a, $patch: delete}]}]}",
            ..Default::default()
        },
        Case {
            name: "retainKeys list items get a $retainKeys directive",
            original: "retainKeysMergingList: [{name: foo, value: a}]",
            modified: "retainKeysMergingList: [{name: foo, other: b}]",
            two_way: "{$setElementOrder/retainKeysMergingList: [{name: foo}], retainKeysMergingList: [{$retainKeys: [name, other], name: foo, other: b, value: null}]}",
            current: "retainKeysMergingList: [{name: foo, value: a, extra: c}]",
            three_way: "{$setElementOrder/retainKeysMergingList: [{name: foo}], retainKeysMergingList: [{$retainKeys: [name, other], name: foo, other: b, value: null}]}",
            result: "retainKeysMergingList: [{name: foo, other: b}]",
            ..Default::default()
        },
        Case {
            name: "unchanged retainKeys map produces no patch",
            original: "{name: a, retainKeysMap: {name: foo}}",
            modified: "{name: a, value: b, retainKeysMap: {name: foo}}",
            two_way: "value: b",
            current: "{name: a, other: c, retainKeysMap: {name: foo}}",
            three_way: "value: b",
            result: "{name: a, value: b, other: c, retainKeysMap: {name: foo}}",
            ..Default::default()
        },
        Case {
            name: "replace strategy maps are sent whole",
            original: "replacingItem: {a: 1, b: 2}",
            modified: "replacingItem: {a: 1}",
            two_way: "replacingItem: {a: 1}",
            ..Default::default()
        },
    ];
    for c in &cases {
        check(c);
    }
}

#[test]
fn upstream_apply_only_scenarios() {
    let apply =
        |original: &str, patch: &str| strategic_merge(&doc(original), &doc(patch), "MergeItem");
    // Duplicate scalars collapse; patch order wins.
    assert_eq!(
        apply("mergingIntList: [1, 2]", "mergingIntList: [2, 3]").unwrap(),
        doc("mergingIntList: [1, 2, 3]")
    );
    assert_eq!(
        apply("mergingIntList: [1, 2, 3]", "mergingIntList: [3, 1]").unwrap(),
        doc("mergingIntList: [2, 3, 1]")
    );
    // Patch order is kept for patched items, server-only items keep their place.
    assert_eq!(
        apply(
            "mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]",
            "mergingList: [{name: 3, value: c}, {name: 1, value: a}]"
        )
        .unwrap(),
        doc("mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]")
    );
    // Deleting removes every duplicate.
    assert_eq!(
        apply(
            "mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}]",
            "mergingList: [{name: 1, $patch: delete}]"
        )
        .unwrap(),
        doc("mergingList: [{name: 2, value: a}]")
    );
    // $setElementOrder may name items the list does not have.
    assert_eq!(
        apply(
            "mergingList: [{name: 1}, {name: 3}]",
            "{$setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}], mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}"
        )
        .unwrap(),
        doc("mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]")
    );
    // …but must agree with the patch list's order.
    let err = apply(
        "mergingList: [{name: 1}, {name: 3}, {name: 2}]",
        "{$setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}], mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}",
    )
    .unwrap_err();
    assert!(err.to_string().contains("doesn't match"), "{err}");
    // Items of a new list lose their directives.
    assert_eq!(
        apply(
            "{}",
            "mergingList: [{name: 1, mergingList: [{name: x, $patch: delete}]}]"
        )
        .unwrap(),
        doc("mergingList: [{name: 1, mergingList: []}]")
    );
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// An RFC 7396 merge patch turning `a` into `b` (`b` must hold no nulls).
fn merge_diff(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(am), Value::Object(bm)) => {
            let mut out = serde_json::Map::new();
            for (k, bv) in bm {
                match am.get(k) {
                    Some(av) if av == bv => {}
                    Some(av) => {
                        out.insert(k.clone(), merge_diff(av, bv));
                    }
                    None => {
                        out.insert(k.clone(), bv.clone());
                    }
                }
            }
            for k in am.keys().filter(|k| !bm.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => b.clone(),
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::String),
    ]
}

/// Objects with keys from a small alphabet (so documents overlap), no nulls, no lists.
fn object(depth: u32) -> BoxedStrategy<Value> {
    let leaf = scalar();
    let value = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![3 => leaf, 1 => object(depth - 1)].boxed()
    };
    prop::collection::btree_map("[a-d]", value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

/// Objects that may also hold lists of scalars (replaced by both patch kinds).
fn object_with_lists(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![3 => scalar(), 1 => prop::collection::vec(scalar(), 0..3).prop_map(Value::Array)];
    let value = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![3 => leaf, 1 => object_with_lists(depth - 1)].boxed()
    };
    prop::collection::btree_map("[a-d]", value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

fn named_items() -> impl Strategy<Value = Value> {
    prop::collection::btree_map("[a-e]", prop::option::of("[xy]"), 0..5).prop_map(|m| {
        Value::Array(
            m.into_iter()
                .map(|(name, value)| match value {
                    Some(v) => json!({"name": name, "value": v}),
                    None => json!({"name": name}),
                })
                .collect(),
        )
    })
}

proptest! {
    #[test]
    fn merge_patch_of_diff_reaches_target(a in object_with_lists(2), b in object_with_lists(2)) {
        prop_assert_eq!(merge_patch(&a, &merge_diff(&a, &b)), b);
    }

    #[test]
    fn merge_patch_is_idempotent(a in object(2), p in object(2)) {
        let once = merge_patch(&a, &p);
        prop_assert_eq!(merge_patch(&once, &p), once);
    }

    #[test]
    fn smp_without_lists_equals_merge_patch(a in object(2), b in object(2), nulls in object(1)) {
        // Patches with deletions (nulls) and additions, on a kind whose known fields are
        // untouched by these keys.
        let mut patch = merge_diff(&a, &b);
        if let (Value::Object(p), Value::Object(n)) = (&mut patch, &nulls) {
            for k in n.keys() {
                p.entry(k.clone()).or_insert(Value::Null);
            }
        }
        let smp = strategic_merge(&a, &patch, "ConfigMap").unwrap();
        prop_assert_eq!(smp, merge_patch(&a, &patch));
    }

    #[test]
    fn smp_two_way_reaches_target(a in named_items(), b in named_items(), ints_a in prop::collection::btree_set(0i64..6, 0..4), ints_b in prop::collection::btree_set(0i64..6, 0..4)) {
        let a = json!({"mergingList": a, "mergingIntList": ints_a.into_iter().collect::<Vec<_>>()});
        let b = json!({"mergingList": b, "mergingIntList": ints_b.into_iter().collect::<Vec<_>>()});
        let patch = two_way_strategic(&a, &b, "MergeItem").unwrap();
        let out = strategic_merge(&a, &patch, "MergeItem").unwrap();
        prop_assert_eq!(out, b);
    }

    #[test]
    fn smp_three_way_reaches_target_on_untouched_live(a in named_items(), b in named_items()) {
        let a = json!({"spec": {"containers": a}});
        let b = json!({"spec": {"containers": b}});
        let patch = three_way_strategic(Some(&a), &b, &a, "Pod").unwrap();
        let out = strategic_merge(&a, &patch, "Pod").unwrap();
        prop_assert_eq!(out, b);
    }
}

// ---------------------------------------------------------------------------------------------
// Server-side apply and managed fields
// ---------------------------------------------------------------------------------------------

const T0: &str = "2026-11-25T10:00:00Z";
const T1: &str = "2026-11-25T11:00:00Z";
const T2: &str = "2026-11-25T12:00:00Z";

fn web_manifest(replicas: i64, env: &[(&str, &str)], sidecar: bool) -> Value {
    let env: Vec<Value> = env
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    let mut containers = vec![
        json!({"name": "web", "image": "nginx", "ports": [{"containerPort": 80}], "env": env}),
    ];
    if sidecar {
        containers.push(json!({"name": "side", "image": "busybox"}));
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}
        }
    })
}

fn managed(obj: &Value) -> &Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
}

fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

#[test]
fn ssa_create_records_the_applied_fields() {
    let applied = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}
            ]}}
        },
        "status": {"replicas": 9}
    });
    let out = server_side_apply(None, &applied, "Deployment", "kubectl", false, T0).unwrap();
    assert!(
        out.get("status").is_none(),
        "status is not applied through the main resource"
    );
    assert_eq!(out["spec"], applied["spec"]);
    let entries = managed(&out);
    assert_eq!(entries.len(), 1);
    // Exactly what a 1.32 API server records for this manifest.
    let expected: Value = serde_json::from_str(
        r#"{"manager":"kubectl","operation":"Apply","apiVersion":"apps/v1","time":"2026-11-25T10:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{},"f:ports":{"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}}}}"#,
    )
    .unwrap();
    assert_eq!(entries[0], expected);
    assert_eq!(
        entries[0].to_string(),
        expected.to_string(),
        "key order as upstream"
    );
}

#[test]
fn ssa_reapply_removes_what_the_manager_stopped_applying() {
    let v1 = web_manifest(2, &[("A", "1"), ("B", "2")], true);
    let live = server_side_apply(None, &v1, "Deployment", "kubectl", false, T0).unwrap();

    let same = server_side_apply(Some(&live), &v1, "Deployment", "kubectl", false, T1).unwrap();
    assert_eq!(same["spec"], live["spec"]);

    let v2 = web_manifest(2, &[("B", "3")], false);
    let out = server_side_apply(Some(&live), &v2, "Deployment", "kubectl", false, T1).unwrap();
    let containers = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0]["env"], json!([{"name": "B", "value": "3"}]));
    assert_eq!(containers[0]["image"], "nginx");
    let fields = entry(&out, "kubectl", "Apply").unwrap()["fieldsV1"].to_string();
    assert!(
        !fields.contains("side") && !fields.contains(r#"\"A\""#),
        "{fields}"
    );
    assert_eq!(entry(&out, "kubectl", "Apply").unwrap()["time"], T1);
}

#[test]
fn ssa_keeps_fields_another_manager_owns() {
    let a = web_manifest(2, &[("A", "1")], false);
    let live = server_side_apply(None, &a, "Deployment", "alice", false, T0).unwrap();
    // bob applies the same env var (same value: shared ownership, no conflict).
    let bob_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "A", "value": "1"}]}]}}}});
    let live = server_side_apply(Some(&live), &bob_cfg, "Deployment", "bob", false, T1).unwrap();
    // alice drops it; bob still owns it, so it stays.
    let a2 = web_manifest(2, &[], false);
    let out = server_side_apply(Some(&live), &a2, "Deployment", "alice", false, T2).unwrap();
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([{"name": "A", "value": "1"}])
    );
}

#[test]
fn ssa_conflicts_with_other_managers_unless_forced() {
    // Created by client-side apply (a POST recorded as an Update by kubectl-client-side-apply).
    let mut live = web_manifest(1, &[], false);
    record_update(
        None,
        &mut live,
        "Deployment",
        "kubectl-client-side-apply",
        T0,
    );
    let e = entry(&live, "kubectl-client-side-apply", "Update").unwrap();
    assert_eq!(e["apiVersion"], "apps/v1");

    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let err = server_side_apply(Some(&live), &cfg, "Deployment", "argo", false, T1).unwrap_err();
    assert_eq!((err.code(), err.reason()), (409, "Conflict"));
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#
    );
    let PatchError::ApplyConflict(conflicts) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(conflicts[0].field, ".spec.replicas");

    // Same value: no conflict, shared ownership.
    let same = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}});
    assert!(server_side_apply(Some(&live), &same, "Deployment", "argo", false, T1).is_ok());

    let forced = server_side_apply(Some(&live), &cfg, "Deployment", "argo", true, T1).unwrap();
    assert_eq!(forced["spec"]["replicas"], 3);
    let csa =
        entry(&forced, "kubectl-client-side-apply", "Update").unwrap()["fieldsV1"].to_string();
    assert!(!csa.contains("f:replicas"), "ownership moved: {csa}");
    assert!(
        entry(&forced, "argo", "Apply").unwrap()["fieldsV1"]
            .to_string()
            .contains("f:replicas")
    );
}

#[test]
fn ssa_multiple_conflicts_message() {
    let mut live = web_manifest(1, &[], false);
    record_update(None, &mut live, "Deployment", "kubectl-create", T0);
    let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
    let err = server_side_apply(Some(&live), &cfg, "Deployment", "argo", false, T1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-create\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
}

#[test]
fn ssa_kubectl_takes_over_client_side_applied_fields() {
    // kubectl apply (client side) then kubectl apply --server-side with a changed manifest:
    // the fields still as last applied are not conflicts for manager "kubectl".
    let mut live = web_manifest(1, &[], false);
    let last = web_manifest(1, &[], false).to_string();
    live["metadata"]["annotations"] =
        json!({"kubectl.kubernetes.io/last-applied-configuration": format!("{last}\n")});
    record_update(
        None,
        &mut live,
        "Deployment",
        "kubectl-client-side-apply",
        T0,
    );
    let cfg = web_manifest(4, &[], false);
    let out = server_side_apply(Some(&live), &cfg, "Deployment", "kubectl", false, T1).unwrap();
    assert_eq!(out["spec"]["replicas"], 4);
    let annotation =
        out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap();
    assert!(annotation.ends_with('\n'));
    let synced: Value = serde_json::from_str(annotation).unwrap();
    assert_eq!(synced["spec"]["replicas"], 4);

    // A field someone else changed since (kubectl scale) is still a conflict.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(7);
    record_update_with(
        Some(&live),
        &mut scaled,
        "Deployment",
        "kubectl",
        "scale",
        T1,
    );
    let err =
        server_side_apply(Some(&scaled), &cfg, "Deployment", "kubectl", false, T2).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#
    );
}

#[test]
fn ssa_rejects_bad_configurations() {
    let mut cfg = web_manifest(1, &[], false);
    cfg["metadata"]["managedFields"] = json!([]);
    let err = server_side_apply(None, &cfg, "Deployment", "kubectl", false, T0).unwrap_err();
    assert_eq!(
        (err.code(), err.to_string().as_str()),
        (400, "metadata.managedFields must be nil")
    );
    let err = server_side_apply(
        None,
        &web_manifest(1, &[], false),
        "ReplicaSet",
        "kubectl",
        false,
        T0,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid object type: apps/v1, Kind=Deployment"
    );
    let err = server_side_apply(None, &json!([]), "Pod", "kubectl", false, T0).unwrap_err();
    assert_eq!(err.code(), 400);
    let no_key = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [{"image": "x"}]}});
    let err = server_side_apply(None, &no_key, "Pod", "kubectl", false, T0).unwrap_err();
    assert_eq!((err.code(), err.reason()), (500, ""));
    assert_eq!(
        err.to_string(),
        "failed to create typed patch object (ns/p; /v1, Kind=Pod): .spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
    );
    let dup = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "foo", "value": "x"}, {"name": "foo", "value": "y"}]}]}}}});
    let err = server_side_apply(None, &dup, "Deployment", "kubectl", false, T0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to create typed patch object (/d; apps/v1, Kind=Deployment): .spec.template.spec.containers[name=\"app\"].env: duplicate entries for key [name=\"foo\"]"
    );
}

#[test]
fn record_update_tracks_changes() {
    let mut created = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}});
    record_update(None, &mut created, "ConfigMap", "kubectl-create", T0);
    let e = entry(&created, "kubectl-create", "Update").unwrap();
    assert_eq!(e["time"], T0);
    assert_eq!(
        e["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
    );

    // kubectl label by another manager: the label moves to it.
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["a"] = json!("2");
    labelled["metadata"]["labels"]["b"] = json!("x");
    record_update(
        Some(&created),
        &mut labelled,
        "ConfigMap",
        "kubectl-label",
        T1,
    );
    let create = entry(&labelled, "kubectl-create", "Update").unwrap();
    // A member without children is `{}` (the "." marker only accompanies children).
    assert_eq!(
        create["fieldsV1"],
        json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {}}})
    );
    assert_eq!(create["time"], T0);
    let label = entry(&labelled, "kubectl-label", "Update").unwrap();
    assert_eq!(
        label["fieldsV1"],
        json!({"f:metadata": {"f:labels": {"f:a": {}, "f:b": {}}}})
    );

    // A no-op write changes nothing (and keeps times).
    let mut again = labelled.clone();
    record_update(
        Some(&labelled),
        &mut again,
        "ConfigMap",
        "kubectl-label",
        T2,
    );
    assert_eq!(again, labelled);

    // Status writes on the main resource are not owned.
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}});
    record_update(None, &mut pod, "Pod", "kubectl", T0);
    assert!(!managed(&pod)[0]["fieldsV1"].to_string().contains("status"));
    let mut running = pod.clone();
    running["status"]["phase"] = json!("Running");
    record_update_with(Some(&pod), &mut running, "Pod", "kubelet", "status", T1);
    let kubelet = entry(&running, "kubelet", "Update").unwrap();
    assert_eq!(kubelet["subresource"], "status");
    assert_eq!(kubelet["fieldsV1"], json!({"f:status": {"f:phase": {}}}));

    // Untracked objects stay untracked; `managedFields: [{}]` resets.
    let mut bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}});
    let old = bare.clone();
    bare["data"]["k"] = json!("2");
    record_update(Some(&old), &mut bare, "ConfigMap", "m", T1);
    assert!(bare["metadata"].get("managedFields").is_none());
    let mut reset = labelled.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    reset["data"]["k"] = json!("w");
    record_update(Some(&labelled), &mut reset, "ConfigMap", "m", T2);
    assert_eq!(managed(&reset).len(), 1);
    assert_eq!(
        managed(&reset)[0]["fieldsV1"],
        json!({"f:data": {"f:k": {}}})
    );
}

#[test]
fn ssa_sets_merge_and_associative_lists_keep_applied_order() {
    let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]},
        "spec": {"containers": [{"name": "x", "image": "1"}, {"name": "y", "image": "2"}]}});
    let mut live = live;
    record_update(None, &mut live, "Pod", "creator", T0);
    let cfg = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["c"]},
        "spec": {"containers": [{"name": "z", "image": "3"}, {"name": "y", "image": "2"}]}});
    let out = server_side_apply(Some(&live), &cfg, "Pod", "applier", false, T1).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let names: Vec<&str> = out["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x", "z", "y"]);
}

#[test]
fn record_update_on_create_marks_like_upstream() {
    // A Deployment as stored after `kubectl create deployment nginx --image=nginx` (defaulted).
    let mut d = y(r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: default, labels: {app: nginx}}
spec:
  progressDeadlineSeconds: 600
  replicas: 1
  revisionHistoryLimit: 10
  selector: {matchLabels: {app: nginx}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: nginx
        imagePullPolicy: Always
        resources: {}
        terminationMessagePath: /dev/termination-log
        terminationMessagePolicy: File
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status: {}
"#);
    record_update(None, &mut d, "Deployment", "kubectl-create", T0);
    let fields = &managed(&d)[0]["fieldsV1"];
    let expected: Value = serde_json::from_str(
        r#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#,
    )
    .unwrap();
    assert_eq!(fields.to_string(), expected.to_string());
}

#[test]
fn user_agent_manager() {
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07"),
        "kubectl"
    );
    assert_eq!(
        manager_from_user_agent("OpenAPI-Generator/32.0.0/python"),
        "OpenAPI-Generator"
    );
    assert_eq!(manager_from_user_agent(&"x".repeat(300)).len(), 128);
}

fn pod_config() -> impl Strategy<Value = Value> {
    let env = prop::collection::btree_map("[A-C]", "[xy]", 0..3).prop_map(|m| {
        Value::Array(
            m.into_iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect(),
        )
    });
    let container = (
        prop::option::of("[ab]"),
        prop::option::of(env),
        prop::option::of(prop::collection::vec("[pq]", 0..3)),
    );
    let containers = prop::collection::btree_map("[a-d]", container, 1..4).prop_map(|m| {
        Value::Array(
            m.into_iter()
                .map(|(name, (image, env, args))| {
                    let mut c = json!({"name": name});
                    if let Some(i) = image {
                        c["image"] = json!(i);
                    }
                    if let Some(e) = env {
                        c["env"] = e;
                    }
                    if let Some(a) = args {
                        c["args"] = json!(a);
                    }
                    c
                })
                .collect(),
        )
    });
    let labels = prop::collection::btree_map("[kl]", "[uv]", 0..3);
    let finalizers = prop::collection::btree_set("[fg]", 0..3);
    (containers, labels, finalizers).prop_map(|(containers, labels, finalizers)| {
        let mut meta = json!({"name": "p"});
        if !labels.is_empty() {
            meta["labels"] = json!(labels);
        }
        if !finalizers.is_empty() {
            meta["finalizers"] = json!(finalizers);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": containers}})
    })
}

/// The object without managedFields and without empty lists (which upstream's typed objects
/// cannot tell from absent ones, so SSA may drop them).
fn without_managed(mut v: Value) -> Value {
    fn drop_empty(v: &mut Value) {
        match v {
            Value::Object(m) => {
                m.retain(|_, c| !matches!(c, Value::Array(a) if a.is_empty()));
                m.values_mut().for_each(drop_empty);
            }
            Value::Array(a) => a.iter_mut().for_each(drop_empty),
            _ => {}
        }
    }
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    drop_empty(&mut v);
    v
}

proptest! {
    #[test]
    fn ssa_sole_manager_reapply_converges_to_config(c1 in pod_config(), c2 in pod_config()) {
        let live = server_side_apply(None, &c1, "Pod", "m", false, T0).unwrap();
        prop_assert_eq!(without_managed(live.clone()), without_managed(c1.clone()));
        let out = server_side_apply(Some(&live), &c2, "Pod", "m", false, T1).unwrap();
        prop_assert_eq!(without_managed(out.clone()), without_managed(c2.clone()));
        let again = server_side_apply(Some(&out), &c2, "Pod", "m", false, T2).unwrap();
        prop_assert_eq!(without_managed(again), without_managed(c2));
    }

    #[test]
    fn fields_v1_round_trips(c in pod_config()) {
        let live = server_side_apply(None, &c, "Pod", "m", false, T0).unwrap();
        let entries = managed(&live).clone();
        // Re-encoding what we decoded gives the same bytes.
        let mut copy = live.clone();
        record_update(Some(&live), &mut copy, "Pod", "other", T1);
        prop_assert_eq!(managed(&copy).clone(), entries);
    }
}

#[test]
fn update_managers_are_capped_into_ancient_changes() {
    let mut obj =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
    record_update(
        None,
        &mut obj,
        "ConfigMap",
        "creator",
        "2026-11-25T00:00:00Z",
    );
    for i in 0..12 {
        let old = obj.clone();
        obj["data"][format!("k{i}")] = json!("v");
        record_update(
            Some(&old),
            &mut obj,
            "ConfigMap",
            &format!("m{i:02}"),
            &format!("2026-11-25T01:{i:02}:00Z"),
        );
    }
    let entries = managed(&obj);
    assert_eq!(entries.len(), 10, "{entries:#?}");
    let ancient = entries
        .iter()
        .find(|e| e["manager"] == "ancient-changes")
        .expect("bucket");
    // creator, m00, m01 and m02 were the oldest: merged, with the newest merged time.
    assert_eq!(ancient["time"], "2026-11-25T01:02:00Z");
    let fields = ancient["fieldsV1"].to_string();
    for k in ["f:k0", "f:k1", "f:k2"] {
        assert!(fields.contains(k), "{fields}");
    }
    assert!(
        entries
            .iter()
            .all(|e| e["manager"] != "m00" && e["manager"] != "creator")
    );
}

#[test]
fn kubectl_apply_flow_with_modified_configuration() {
    let manifest = y(r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: default}
data: {b: "2", a: "1"}
"#);
    let modified = kubectl_modified_configuration(&manifest);
    let annotation = modified["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
        .as_str()
        .unwrap();
    // What kubectl 1.32 writes for this manifest.
    assert_eq!(
        annotation,
        "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\",\"b\":\"2\"},\"kind\":\"ConfigMap\",\"metadata\":{\"annotations\":{},\"name\":\"c\",\"namespace\":\"default\"}}\n"
    );
    // Created with that object; re-applying the same manifest is "unchanged".
    let mut live = modified.clone();
    live["metadata"]["uid"] = json!("u1");
    live["metadata"]["resourceVersion"] = json!("5");
    let patch =
        three_way_strategic(last_applied(&live).as_ref(), &modified, &live, "ConfigMap").unwrap();
    assert!(is_empty_patch(&patch), "{patch}");
    // Dropping a key deletes it and rewrites the annotation.
    let mut smaller = manifest.clone();
    smaller["data"].as_object_mut().unwrap().remove("b");
    let modified2 = kubectl_modified_configuration(&smaller);
    let patch =
        three_way_strategic(last_applied(&live).as_ref(), &modified2, &live, "ConfigMap").unwrap();
    assert_eq!(patch["data"], json!({"b": null}));
    let out = strategic_merge(&live, &patch, "ConfigMap").unwrap();
    assert_eq!(out["data"], json!({"a": "1"}));
    assert_eq!(last_applied(&out).unwrap()["data"], json!({"a": "1"}));
}

#[test]
fn atomic_items_and_selectors_are_owned_whole() {
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]},
        "spec": {"imagePullSecrets": [{"name": "reg"}], "containers": [{"name": "c", "image": "i",
            "env": [{"name": "IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}]}]}});
    record_update(None, &mut pod, "Pod", "kube-controller-manager", T0);
    let fields = &managed(&pod)[0]["fieldsV1"];
    assert_eq!(
        fields["f:metadata"]["f:ownerReferences"],
        json!({".": {}, "k:{\"uid\":\"u1\"}": {}})
    );
    assert_eq!(
        fields["f:spec"]["f:imagePullSecrets"],
        json!({".": {}, "k:{\"name\":\"reg\"}": {}})
    );
    assert_eq!(
        fields["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:env"]["k:{\"name\":\"IP\"}"],
        json!({".": {}, "f:name": {}, "f:valueFrom": {".": {}, "f:fieldRef": {}}})
    );
}

/// Arbitrary JSON with the keys and directives strategic merge and apply care about.
fn wild_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("spec".to_string()),
        Just("template".to_string()),
        Just("containers".to_string()),
        Just("env".to_string()),
        Just("name".to_string()),
        Just("finalizers".to_string()),
        Just("metadata".to_string()),
        Just("ports".to_string()),
        Just("containerPort".to_string()),
        Just("$patch".to_string()),
        Just("$retainKeys".to_string()),
        Just("$setElementOrder/containers".to_string()),
        Just("$setElementOrder/env".to_string()),
        Just("$deleteFromPrimitiveList/finalizers".to_string()),
        Just("$deleteFromPrimitiveList".to_string()),
        "[a-c]".prop_map(|s| s),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..3).prop_map(Value::from),
        prop_oneof![
            Just("delete"),
            Just("replace"),
            Just("merge"),
            Just("a"),
            Just("b")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 40, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn patches_never_panic(original in wild_json(), patch in wild_json()) {
        for kind in ["Deployment", "Pod", "MergeItem", "ConfigMap"] {
            let _ = strategic_merge(&original, &patch, kind);
            let _ = three_way_strategic(Some(&original), &patch, &original, kind);
            let _ = two_way_strategic(&original, &patch, kind);
        }
        let _ = json_patch(&original, &patch);
        let _ = merge_patch(&original, &patch);
        let mut applied = patch.clone();
        if let Value::Object(m) = &mut applied {
            m.insert("apiVersion".into(), json!("v1"));
            m.insert("kind".into(), json!("Pod"));
            if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
        let mut live = original.clone();
        if let Value::Object(m) = &mut live {
            m.insert("apiVersion".into(), json!("v1"));
        }
        let _ = server_side_apply(Some(&live), &applied, "Pod", "m", false, T0);
        let _ = server_side_apply(None, &applied, "Pod", "m", true, T0);
        let mut new = applied.clone();
        record_update(Some(&live), &mut new, "Pod", "m", T1);
    }
}
