use serde_json::json;

use super::*;
use crate::object::{FieldValidation, decode};
use crate::registry::by_kind;

fn decoded(api_version: &str, kind: &str, v: serde_json::Value) -> serde_json::Value {
    decode(
        by_kind(api_version, kind).unwrap(),
        v,
        FieldValidation::Strict,
    )
    .unwrap()
    .value
}

#[test]
fn image_tags() {
    assert_eq!(image_tag("nginx"), "latest");
    assert_eq!(image_tag("nginx:1.25"), "1.25");
    assert_eq!(image_tag("localhost:5000/app"), "latest");
    assert_eq!(image_tag("localhost:5000/app:v2"), "v2");
    assert_eq!(image_tag("app@sha256:abc"), "");
    assert_eq!(image_tag("app:latest@sha256:abc"), "latest");
}

#[test]
fn pod_defaults() {
    let p = decoded(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{
            "name": "c", "image": "nginx:1.25",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1"}},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
            "startupProbe": {"grpc": {"port": 9000}}
        }], "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}}),
    );
    let spec = &p["spec"];
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    let c = &spec["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(c["resources"]["requests"]["cpu"], "1");
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(c["startupProbe"]["grpc"]["service"], "");
    assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
    assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
}

#[test]
fn host_network_ports() {
    let p = decoded(
        "v1",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true, "containers": [{
            "name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]}}),
    );
    assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
}

#[test]
fn service_defaults() {
    let s = decoded(
        "v1",
        "Service",
        json!({"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"},
            "ports": [{"port": 80}, {"port": 81, "targetPort": "http", "name": "x"}]}}),
    );
    let spec = &s["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    // Filled in by the API server's allocator, not by defaulting.
    assert!(spec.get("ipFamilyPolicy").is_none());
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], 80);
    assert_eq!(spec["ports"][1]["targetPort"], "http");
    assert!(spec.get("externalTrafficPolicy").is_none());
    let lb = decoded(
        "v1",
        "Service",
        json!({"metadata": {"name": "s"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}],
            "sessionAffinity": "ClientIP"}}),
    );
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        lb["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
}

#[test]
fn deployment_and_replicaset_defaults() {
    let d = decoded(
        "apps/v1",
        "Deployment",
        json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}),
    );
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let tspec = &spec["template"]["spec"];
    assert_eq!(tspec["restartPolicy"], "Always");
    assert!(tspec.get("enableServiceLinks").is_none());
    assert_eq!(tspec["containers"][0]["imagePullPolicy"], "IfNotPresent");
    let r = decoded(
        "apps/v1",
        "Deployment",
        json!({"metadata": {"name": "d"}, "spec": {"strategy": {"type": "Recreate"}}}),
    );
    assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
    let rs = decoded(
        "apps/v1",
        "ReplicaSet",
        json!({"metadata": {"name": "r"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}),
    );
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
}

#[test]
fn small_kind_defaults() {
    let ns = decoded("v1", "Namespace", json!({"metadata": {"name": "team"}}));
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    assert_eq!(ns["status"]["phase"], "Active");
    let s = decoded(
        "v1",
        "Secret",
        json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    );
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"]["k"], "dg==");
    assert!(s.get("stringData").is_none());
    let e = decoded(
        "v1",
        "Endpoints",
        json!({"metadata": {"name": "e"}, "subsets": [{"ports": [{"port": 80}]}]}),
    );
    assert_eq!(e["subsets"][0]["ports"][0]["protocol"], "TCP");
    let sl = decoded(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        json!({"metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]}),
    );
    assert_eq!(
        sl["ports"][0],
        json!({"name": "", "port": 80, "protocol": "TCP"})
    );
    let n = decoded(
        "v1",
        "Node",
        json!({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2"}}}),
    );
    assert_eq!(n["status"]["allocatable"]["cpu"], "2");
}
