//! describe, label, annotate, scale, api-resources, raw health, deletion with dependents.

use crate::support::{Server, loaded};

#[test]
fn describe_pod_deployment_service_node() {
    let (s, _d) = loaded();
    let uid = s.get_json(&["get", "pod", "alpha"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let event = format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: alpha.2}}\ninvolvedObject: {{kind: Pod, name: alpha, namespace: default, apiVersion: v1, uid: {uid}}}\nreason: Testing\nmessage: hello from the test\ntype: Normal\nsource: {{component: e2e}}\nfirstTimestamp: '2026-01-01T00:00:00Z'\nlastTimestamp: '2026-01-01T00:00:00Z'\ncount: 1\n"
    );
    s.kubectl_in(&["create", "-f", "-"], Some(&event));
    let pod = s.kubectl(&["describe", "pod", "alpha"]);
    for want in [
        "Name:",
        "alpha",
        "Namespace:",
        "default",
        "Labels:",
        "app=web",
        "Status:",
        "Pending",
        "Containers:",
        "main:",
        "example/web:1.0",
        "Events:",
        "Testing",
        "hello from the test",
        "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s",
    ] {
        assert!(pod.contains(want), "describe pod lacks {want:?}:\n{pod}");
    }
    let dep = s.kubectl(&["describe", "deployment", "api"]);
    for want in [
        "Name:",
        "api",
        "Selector:",
        "app=api",
        "Replicas:",
        "0 desired",
        "StrategyType:",
        "RollingUpdate",
        "25% max unavailable, 25% max surge",
    ] {
        assert!(
            dep.contains(want),
            "describe deployment lacks {want:?}:\n{dep}"
        );
    }
    let svc = s.kubectl(&["describe", "service", "web"]);
    for want in [
        "Name:",
        "web",
        "Selector:",
        "app=web",
        "Type:",
        "ClusterIP",
        "Port:",
        "80/TCP",
        "TargetPort:",
        "8080/TCP",
    ] {
        assert!(
            svc.contains(want),
            "describe service lacks {want:?}:\n{svc}"
        );
    }
    let node = s.kubectl(&["describe", "node", "node-1"]);
    for want in ["Name:", "node-1", "Lease:", "HolderIdentity:"] {
        assert!(node.contains(want), "describe node lacks {want:?}:\n{node}");
    }
}

#[test]
fn label_annotate_scale() {
    let (s, _d) = loaded();
    assert_eq!(
        s.kubectl(&["label", "pod", "alpha", "color=blue"]).trim(),
        "pod/alpha labeled"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "pod",
            "alpha",
            "-o",
            "jsonpath={.metadata.labels.color}"
        ]),
        "blue"
    );
    let (_, err) = s.kubectl_err(&["label", "pod", "alpha", "color=red"], None);
    assert!(err.contains("already has a value (blue)"), "{err}");
    assert_eq!(
        s.kubectl(&["label", "pod", "alpha", "color-"]).trim(),
        "pod/alpha unlabeled"
    );

    assert_eq!(
        s.kubectl(&["annotate", "deployment", "api", "note=hi there"])
            .trim(),
        "deployment.apps/api annotated"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "deploy",
            "api",
            "-o",
            "jsonpath={.metadata.annotations.note}"
        ]),
        "hi there"
    );

    let gen_before = s.get_json(&["get", "deploy", "api"])["metadata"]["generation"]
        .as_i64()
        .unwrap();
    assert_eq!(
        s.kubectl(&["scale", "deployment", "api", "--replicas=3"])
            .trim(),
        "deployment.apps/api scaled"
    );
    let live = s.get_json(&["get", "deploy", "api"]);
    assert_eq!(live["spec"]["replicas"], 3);
    assert_eq!(
        live["metadata"]["generation"].as_i64().unwrap(),
        gen_before + 1
    );
    let (_, err) = s.kubectl_err(
        &[
            "scale",
            "deployment",
            "api",
            "--current-replicas=1",
            "--replicas=2",
        ],
        None,
    );
    assert!(err.contains("Expected replicas to be 1, was 3"), "{err}");
    assert_eq!(
        s.kubectl(&["scale", "rs", "worker", "--replicas=2"]).trim(),
        "replicaset.apps/worker scaled"
    );
}

#[test]
fn api_resources_and_health_endpoints() {
    let s = Server::start();
    let out = s.kubectl(&["api-resources"]);
    for (name, short, group, namespaced, kind) in [
        ("pods", "po", "v1", "true", "Pod"),
        ("services", "svc", "v1", "true", "Service"),
        ("nodes", "no", "v1", "false", "Node"),
        ("deployments", "deploy", "apps/v1", "true", "Deployment"),
        ("replicasets", "rs", "apps/v1", "true", "ReplicaSet"),
        (
            "endpointslices",
            "",
            "discovery.k8s.io/v1",
            "true",
            "EndpointSlice",
        ),
        ("leases", "", "coordination.k8s.io/v1", "true", "Lease"),
        // The preferred version of a group served in two.
        (
            "horizontalpodautoscalers",
            "hpa",
            "autoscaling/v2",
            "true",
            "HorizontalPodAutoscaler",
        ),
        (
            "certificatesigningrequests",
            "csr",
            "certificates.k8s.io/v1",
            "false",
            "CertificateSigningRequest",
        ),
    ] {
        let row = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("api-resources lacks {name}:\n{out}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        let expect: Vec<&str> = [name, short, group, namespaced, kind]
            .into_iter()
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells, expect, "{row}");
    }
    let versions = s.kubectl(&["api-versions"]);
    for gv in ["autoscaling/v1", "autoscaling/v2", "apps/v1", "v1"] {
        assert!(versions.lines().any(|l| l == gv), "{gv}: {versions}");
    }
    for path in ["/readyz", "/livez", "/healthz"] {
        assert_eq!(s.kubectl(&["get", "--raw", path]), "ok");
    }
    // The api-resources run above was counted, with upstream's metric and label names.
    let metrics = s.kubectl(&["get", "--raw", "/metrics"]);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("apiserver_request_total{verb=\"GET\"")
                && l.contains("code=\"200\"")),
        "{metrics}"
    );
    let version = s.kubectl(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(v["serverVersion"]["major"], "1");
    assert_eq!(v["serverVersion"]["minor"], "32");
}

#[test]
fn delete_waits_and_collects_dependents() {
    let (s, _d) = loaded();
    let deploy = |name: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  replicas: 1\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers: [{{name: main, image: x, command: [sleep, '60']}}]\n"
        )
    };
    // The controllers build Deployment -> ReplicaSet -> Pod; wait for the chain.
    let chain = |name: &str| -> (String, String) {
        s.kubectl_in(&["apply", "-f", "-"], Some(&deploy(name)));
        let rs = s.eventually(&format!("replicaset of {name}"), || {
            let out = s.kubectl(&["get", "rs", "-l", &format!("app={name}"), "-o", "name"]);
            (!out.trim().is_empty()).then(|| out.trim().to_string())
        });
        let pod = s.eventually(&format!("pod of {name}"), || {
            let out = s.kubectl(&["get", "pods", "-l", &format!("app={name}"), "-o", "name"]);
            (!out.trim().is_empty()).then(|| out.trim().to_string())
        });
        (rs, pod)
    };

    // Orphan: the ReplicaSet stays, without its owner reference; its pod stays.
    let (rs, pod) = chain("orph");
    s.kubectl(&["delete", "deployment", "orph", "--cascade=orphan"]);
    let live = s.get_json(&["get", &rs]);
    assert!(
        live["metadata"]
            .get("ownerReferences")
            .is_none_or(|r| r.as_array().is_some_and(|a| a.is_empty())),
        "{live:#}"
    );
    s.kubectl(&["get", &pod]);

    // Foreground: kubectl waits until the ReplicaSet is gone, and its pod went first.
    assert!(
        s.kubectl(&["delete", &rs, "--cascade=foreground"])
            .contains("deleted")
    );
    let (_, err) = s.kubectl_err(&["get", &pod], None);
    assert!(err.contains("not found"), "{err}");

    // Background: the deployment goes at once, its ReplicaSet and pod follow.
    let (rs, pod) = chain("back");
    s.kubectl(&["delete", "deployment", "back"]);
    for what in [&rs, &pod] {
        s.eventually(&format!("{what} collected"), || {
            let out = s.kubectl_full(&["get", what], None);
            (!out.status.success()).then_some(())
        });
    }

    // A namespace takes everything in it; the built-in ones cannot be deleted.
    s.kubectl(&["delete", "namespace", "team-a"]);
    let (_, err) = s.kubectl_err(&["get", "namespace", "team-a"], None);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(
        s.kubectl(&["get", "pods", "-n", "team-a", "-o", "name"])
            .trim(),
        ""
    );
    let (_, err) = s.kubectl_err(&["delete", "namespace", "default"], None);
    assert!(err.contains("Forbidden"), "{err}");
}

#[test]
fn imperative_creates_send_protobuf_and_work() {
    let s = Server::start();
    let cases: [(&[&str], &str); 6] = [
        (
            &["create", "namespace", "team-b"],
            "namespace/team-b created",
        ),
        (
            &["create", "configmap", "cfg", "--from-literal=a=1"],
            "configmap/cfg created",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "pw",
                "--from-literal=p=hunter2",
            ],
            "secret/pw created",
        ),
        (
            &[
                "create",
                "deployment",
                "web",
                "--image=example/web:1",
                "--replicas=0",
            ],
            "deployment.apps/web created",
        ),
        (
            &["create", "service", "clusterip", "web", "--tcp=80:8080"],
            "service/web created",
        ),
        (
            &[
                "create",
                "service",
                "nodeport",
                "np",
                "--tcp=80:8080",
                "--node-port=30080",
            ],
            "service/np created",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(s.kubectl(args).trim(), want, "{args:?}");
    }
    assert_eq!(
        s.kubectl(&["get", "cm", "cfg", "-o", "jsonpath={.data.a}"]),
        "1"
    );
    assert_eq!(
        s.kubectl(&["get", "secret", "pw", "-o", "jsonpath={.data.p}"]),
        "aHVudGVyMg=="
    );
    assert_eq!(
        s.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "0"
    );
    assert_eq!(
        s.kubectl(&[
            "get",
            "svc",
            "np",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}"
        ]),
        "30080"
    );
    let (_, err) = s.kubectl_err(
        &["create", "deployment", "bad", "--image=x", "--replicas=-1"],
        None,
    );
    assert!(
        err.contains("spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
        "{err}"
    );
}

const HPA_V1: &str = "apiVersion: autoscaling/v1
kind: HorizontalPodAutoscaler
metadata: {name: from-manifest}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  maxReplicas: 3
";

/// `kubectl autoscale` creates through autoscaling/v1; the object is the same one v2 shows,
/// and v1 manifests apply, validate and explain.
#[test]
fn kubectl_autoscale_and_autoscaling_v1_manifests() {
    let (s, _d) = loaded();
    let out = s.kubectl(&[
        "autoscale",
        "deployment",
        "api",
        "--min=2",
        "--max=5",
        "--cpu-percent=60",
    ]);
    assert_eq!(
        out.trim(),
        "horizontalpodautoscaler.autoscaling/api autoscaled"
    );
    let row = s.kubectl(&["get", "hpa", "api", "--no-headers"]);
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &f[..6],
        ["api", "Deployment/api", "cpu:", "<unknown>/60%", "2", "5"],
        "{row}"
    );
    let v2 = s.get_json(&["get", "hpa", "api"]);
    assert_eq!(v2["apiVersion"], "autoscaling/v2", "{v2}");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    // The full resource name: kubectl expands the short name `hpa` to the preferred version.
    let v1 = s.get_json(&["get", "horizontalpodautoscalers.v1.autoscaling", "api"]);
    assert_eq!(v1["apiVersion"], "autoscaling/v1", "{v1}");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60, "{v1}");
    assert_eq!(v1["spec"]["minReplicas"], 2, "{v1}");

    // A v1 manifest: client-side validation against v1's schema, v1's implicit 80% target.
    let out = s.kubectl_in(&["apply", "-f", "-"], Some(HPA_V1));
    assert!(
        out.contains("horizontalpodautoscaler.autoscaling/from-manifest created"),
        "{out}"
    );
    let v2 = s.get_json(&["get", "hpa", "from-manifest"]);
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80,
        "{v2}"
    );
    let out = s.kubectl_in(&["apply", "-f", "-"], Some(HPA_V1));
    assert!(out.contains("from-manifest unchanged"), "{out}");
    let bad = HPA_V1.replace("maxReplicas: 3", "maxReplicas: 3\n  maxReplica: 4");
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(&bad));
    assert!(err.contains("unknown field \"spec.maxReplica\""), "{err}");
    let explain = s.kubectl(&[
        "explain",
        "hpa.spec.targetCPUUtilizationPercentage",
        "--api-version=autoscaling/v1",
    ]);
    assert!(explain.contains("GROUP:      autoscaling"), "{explain}");
    assert!(explain.contains("VERSION:    v1"), "{explain}");
    s.kubectl(&["delete", "hpa", "api", "from-manifest"]);
}
