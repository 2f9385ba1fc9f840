//! apps/v1 StatefulSets, DaemonSets and ControllerRevisions through the registry: upstream
//! defaults, the generation and DaemonSet template generation, 422s with upstream's field
//! paths and messages, and the status rules.

use serde_json::{Value, json};
use store::Store;

use crate::registry::{Registry, WriteOptions};

fn info(plural: &str) -> &'static api::registry::ResourceInfo {
    api::registry::lookup("apps", "v1", plural).unwrap()
}

async fn registry() -> Registry {
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
    r
}

fn sts() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
        "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx",
                    "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}}]}})
}

fn ds() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"name": "agent"}},
            "template": {"metadata": {"labels": {"name": "agent"}},
                "spec": {"containers": [{"name": "a", "image": "busybox"}]}}}})
}

/// The causes of a 422 as `field: message` lines.
fn causes(e: &api::status::ApiError) -> Vec<String> {
    assert_eq!(e.code, 422, "{e:?}");
    e.details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect()
}

async fn create_err(r: &Registry, plural: &str, obj: Value) -> Vec<String> {
    let e = r
        .create(info(plural), "d", obj, &WriteOptions::default())
        .await
        .unwrap_err();
    causes(&e)
}

#[tokio::test]
async fn a_statefulset_gets_upstream_defaults() {
    let r = registry().await;
    let s = r
        .create(info("statefulsets"), "d", sts(), &WriteOptions::default())
        .await
        .unwrap();
    let spec = &s["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["status"],
        json!({"phase": "Pending"})
    );
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(s["metadata"]["generation"], 1);
    assert_eq!(s["status"], json!({"replicas": 0, "availableReplicas": 0}));
}

#[tokio::test]
async fn statefulset_spec_updates_are_limited_as_upstream() {
    let r = registry().await;
    r.create(info("statefulsets"), "d", sts(), &WriteOptions::default())
        .await
        .unwrap();
    // Allowed: replicas, template, updateStrategy, minReadySeconds, ordinals, the policy.
    let s = r
        .update_with(info("statefulsets"), "d", "web", false, |s| {
            s["spec"]["replicas"] = json!(3);
            s["spec"]["minReadySeconds"] = json!(5);
            s["spec"]["ordinals"] = json!({"start": 1});
            s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
            Ok(true)
        })
        .await
        .unwrap();
    assert_eq!(s["metadata"]["generation"], 2);
    let e = r
        .update_with(info("statefulsets"), "d", "web", false, |s| {
            s["spec"]["serviceName"] = json!("other");
            Ok(true)
        })
        .await
        .unwrap_err();
    assert_eq!(
        causes(&e),
        [
            "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        ]
    );
}

#[tokio::test]
async fn bad_statefulsets_and_daemonsets_are_422() {
    let r = registry().await;
    let mut s = sts();
    s["spec"]["podManagementPolicy"] = json!("Random");
    s["spec"]["replicas"] = json!(-1);
    s["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    s["spec"]["persistentVolumeClaimRetentionPolicy"] = json!({"whenDeleted": "Keep"});
    let got = create_err(&r, "statefulsets", s).await;
    for want in [
        "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`",
        "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"",
    ] {
        assert!(got.iter().any(|g| g == want), "{want}\n{got:#?}");
    }
    let mut s = sts();
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}});
    let got = create_err(&r, "statefulsets", s).await;
    assert!(
        got.iter().any(
            |g| g.starts_with("spec.updateStrategy.rollingUpdate: Invalid value:")
                && g.ends_with("only allowed for updateStrategy 'RollingUpdate'")
        ),
        "{got:?}"
    );

    let mut d = ds();
    d["spec"]["updateStrategy"] = json!({"type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}});
    let got = create_err(&r, "daemonsets", d).await;
    assert_eq!(
        got,
        [
            "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, StrVal:\"\"}: may not be set when maxUnavailable is non-zero"
        ]
    );
    let mut d = ds();
    d["spec"]["selector"] = json!({});
    let got = create_err(&r, "daemonsets", d).await;
    assert!(
        got.iter()
            .any(|g| g.ends_with("empty selector is invalid for daemonset")),
        "{got:?}"
    );
    let got = create_err(
        &r,
        "controllerrevisions",
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision",
               "metadata": {"name": "r"}, "revision": -1}),
    )
    .await;
    assert!(
        got.iter()
            .any(|g| g == "revision: Invalid value: -1: must be greater than or equal to 0"),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_daemonset_gets_defaults_and_a_template_generation() {
    let r = registry().await;
    let d = r
        .create(info("daemonsets"), "d", ds(), &WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        d["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        d["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "1"
    );
    let d = r
        .update_with(info("daemonsets"), "d", "agent", false, |d| {
            d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("busybox:2");
            Ok(true)
        })
        .await
        .unwrap();
    assert_eq!(
        d["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "2"
    );
    assert_eq!(d["metadata"]["generation"], 2);
    // The selector is immutable.
    let e = r
        .update_with(info("daemonsets"), "d", "agent", false, |d| {
            d["spec"]["selector"] = json!({"matchLabels": {"name": "agent", "x": "y"}});
            d["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
            Ok(true)
        })
        .await
        .unwrap_err();
    assert!(
        causes(&e)
            .iter()
            .any(|c| c.starts_with("spec.selector: Invalid value:")
                && c.ends_with("field is immutable")),
        "{e:?}"
    );
    // Status counters are checked.
    let e = r
        .update_with(info("daemonsets"), "d", "agent", true, |d| {
            d["status"]["numberReady"] = json!(-1);
            Ok(true)
        })
        .await
        .unwrap_err();
    assert_eq!(
        causes(&e),
        ["status.numberReady: Invalid value: -1: must be greater than or equal to 0"]
    );
}
