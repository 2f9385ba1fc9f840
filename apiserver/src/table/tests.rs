use api::registry::{ResourceInfo, lookup};
use serde_json::{Value, json};

use super::test_support::{cells, names, now};
use super::{column_definitions, row_cells, row_conditions};

#[test]
fn configmaps() {
    assert_eq!(
        names("", "configmaps"),
        [("Name", 0), ("Data", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
    );
    assert_eq!(
        cells(
            "",
            "configmaps",
            json!({"metadata": {"name": "cfg", "creationTimestamp": "2024-05-01T11:00:00Z"},
                   "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})
        ),
        [json!("cfg"), json!(3), json!("60m")]
    );
}

#[test]
fn certificate_signing_requests() {
    assert_eq!(
        names("certificates.k8s.io", "certificatesigningrequests"),
        [
            ("Name", 0),
            ("Age", 0),
            ("SignerName", 0),
            ("Requestor", 0),
            ("RequestedDuration", 0),
            ("Condition", 0)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let csr = |spec: serde_json::Value, status: serde_json::Value| {
        json!({"metadata": {"name": "node-csr-1", "creationTimestamp": "2024-05-01T11:00:00Z"},
               "spec": spec, "status": status})
    };
    assert_eq!(
        cells(
            "certificates.k8s.io",
            "certificatesigningrequests",
            csr(
                json!({"signerName": "kubernetes.io/kubelet-serving", "username": "system:node:n1",
                       "expirationSeconds": 86400}),
                json!({"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Y2VydA=="})
            )
        ),
        [
            json!("node-csr-1"),
            json!("60m"),
            json!("kubernetes.io/kubelet-serving"),
            json!("system:node:n1"),
            json!("24h"),
            json!("Approved,Issued")
        ]
    );
    let c = cells(
        "certificates.k8s.io",
        "certificatesigningrequests",
        csr(json!({}), json!({})),
    );
    assert_eq!(c[2], "<none>");
    assert_eq!(c[4], "<none>");
    assert_eq!(c[5], "Pending");
    let c = cells(
        "certificates.k8s.io",
        "certificatesigningrequests",
        csr(
            json!({}),
            json!({"conditions": [{"type": "Approved"}, {"type": "Denied"}, {"type": "Failed"}]}),
        ),
    );
    assert_eq!(c[5], "Denied,Failed");
}

#[test]
fn default_table_for_unprinted_resources() {
    let info = ResourceInfo {
        group: "example.com",
        kind: "Widget",
        plural: "widgets",
        ..*lookup("", "v1", "pods").unwrap()
    };
    let defs = column_definitions(&info);
    assert_eq!(defs[1]["name"], "Created At");
    assert_eq!(defs[1]["type"], "date");
    let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2024-05-01T11:00:00Z"}});
    assert_eq!(
        row_cells(&info, &obj, now()),
        [json!("w"), json!("2024-05-01T11:00:00Z")]
    );
    assert_eq!(
        row_cells(&info, &json!({"metadata": {"name": "w"}}), now())[1],
        "0001-01-01T00:00:00Z"
    );
}

#[test]
fn deployments() {
    assert_eq!(
        names("apps", "deployments")
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let template = json!({"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]}});
    let deploy = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-04-29T09:00:00Z"},
        "spec": {"replicas": 3, "template": template,
                 "selector": {"matchLabels": {"app": "web", "tier": "fe"},
                              "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                                                   {"key": "canary", "operator": "DoesNotExist"}]}},
        "status": {"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    });
    assert_eq!(
        cells("apps", "deployments", deploy),
        [
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("2d3h"),
            json!("web,sidecar"),
            json!("nginx:1.27,busybox"),
            json!("app=web,!canary,env in (dev,prod),tier=fe")
        ]
    );
    let fresh = json!({"metadata": {"name": "new", "creationTimestamp": "2024-05-01T11:59:59Z"},
                       "spec": {"replicas": 0, "selector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}}});
    let c = cells("apps", "deployments", fresh);
    assert_eq!(c[1], "0/0");
    assert_eq!(c[4], "1s");
    assert_eq!(c[7], "<invalid>");
}

#[test]
fn endpoints() {
    assert_eq!(
        names("", "endpoints"),
        [("Name", 0), ("Endpoints", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
    );
    assert_eq!(
        cells(
            "",
            "endpoints",
            json!({"metadata": {"name": "web"}, "subsets": []})
        )[1],
        "<none>"
    );
    let ep = json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
    "subsets": [
        {"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.0.6"}],
         "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}]},
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}
    ]});
    assert_eq!(
        cells("", "endpoints", ep),
        [
            json!("web"),
            json!("10.244.0.5:8080,10.244.0.6:8080,10.244.0.5:9090 + 2 more..."),
            json!("60m")
        ]
    );
    let headless = json!({"metadata": {"name": "h"},
        "subsets": [{"addresses": [{"ip": "10.244.0.5"}, {"ip": "fd00::2"}]}]});
    assert_eq!(cells("", "endpoints", headless)[1], "10.244.0.5,fd00::2");
    let ep6 = json!({"metadata": {"name": "v6"},
        "subsets": [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
    assert_eq!(cells("", "endpoints", ep6)[1], "[fd00::1]:80");
}

#[test]
fn endpoint_slices() {
    assert_eq!(
        names("discovery.k8s.io", "endpointslices"),
        [
            ("Name", 0),
            ("AddressType", 0),
            ("Ports", 0),
            ("Endpoints", 0),
            ("Age", 0)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let slice = json!({"metadata": {"name": "web-abc12", "creationTimestamp": "2024-05-01T11:59:00Z"},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "named"}, {}, {"port": 1}],
        "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": true}},
                      {"addresses": ["10.244.0.6"]}]});
    assert_eq!(
        cells("discovery.k8s.io", "endpointslices", slice),
        [
            json!("web-abc12"),
            json!("IPv4"),
            json!("8080,named,* + 1 more..."),
            json!("10.244.0.5,10.244.0.6"),
            json!("60s")
        ]
    );
    let empty =
        json!({"metadata": {"name": "e"}, "addressType": "IPv4", "ports": null, "endpoints": []});
    let c = cells("discovery.k8s.io", "endpointslices", empty);
    assert_eq!(c[2], "<unset>");
    assert_eq!(c[3], "<unset>");
}

#[test]
fn events() {
    assert_eq!(
        names("", "events"),
        [
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let defs = column_definitions(lookup("", "v1", "events").unwrap());
    assert_eq!(defs[9]["format"], "name");
    let ev = json!({
        "metadata": {"name": "web-x.17c8a", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-x", "fieldPath": "spec.containers{web}"},
        "reason": "Unhealthy", "type": "Warning",
        "message": "Readiness probe failed: HTTP probe failed with statuscode: 503\n",
        "source": {"component": "kubelet", "host": "node1"},
        "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 12
    });
    assert_eq!(
        cells("", "events", ev),
        [
            json!("60s"),
            json!("Warning"),
            json!("Unhealthy"),
            json!("pod/web-x"),
            json!("spec.containers{web}"),
            json!("kubelet, node1"),
            json!("Readiness probe failed: HTTP probe failed with statuscode: 503"),
            json!("10m"),
            json!(12),
            json!("web-x.17c8a")
        ]
    );
    // An events.k8s.io-style event: eventTime, reporting fields, no count.
    let ev = json!({
        "metadata": {"name": "e2"},
        "involvedObject": {"kind": "Node"},
        "reason": "Starting", "type": "Normal", "message": "",
        "eventTime": "2024-05-01T11:57:00.123456Z",
        "reportingComponent": "paddock-agent", "reportingInstance": ""
    });
    let c = cells("", "events", ev);
    assert_eq!(c[0], "2m59s");
    assert_eq!(c[3], "node");
    assert_eq!(c[5], "paddock-agent");
    assert_eq!(c[7], "2m59s");
    assert_eq!(c[8], 1);
    let series = json!({
        "metadata": {"name": "e3"}, "involvedObject": {"kind": "Pod", "name": "p"},
        "eventTime": "2024-05-01T10:00:00.000000Z",
        "series": {"count": 7, "lastObservedTime": "2024-05-01T11:59:55.000000Z"}
    });
    let c = cells("", "events", series);
    assert_eq!(c[0], "5s");
    assert_eq!(c[7], "120m");
    assert_eq!(c[8], 7);
    let unknown = json!({"metadata": {"name": "e4"}, "involvedObject": {}});
    let c = cells("", "events", unknown);
    assert_eq!(c[0], "<unknown>");
    assert_eq!(c[7], "<unknown>");
}

#[test]
fn leases() {
    assert_eq!(
        names("coordination.k8s.io", "leases"),
        [("Name", 0), ("Holder", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
    );
    assert_eq!(
        cells(
            "coordination.k8s.io",
            "leases",
            json!({"metadata": {"name": "node1", "creationTimestamp": "2024-05-01T11:00:00Z"},
                   "spec": {"holderIdentity": "node1", "leaseDurationSeconds": 40}})
        ),
        [json!("node1"), json!("node1"), json!("60m")]
    );
    assert_eq!(
        cells(
            "coordination.k8s.io",
            "leases",
            json!({"metadata": {"name": "l"}, "spec": {}})
        )[1],
        ""
    );
}

#[test]
fn namespaces() {
    assert_eq!(
        names("", "namespaces"),
        [("Name", 0), ("Status", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
    );
    assert_eq!(
        cells(
            "",
            "namespaces",
            json!({"metadata": {"name": "default", "creationTimestamp": "2024-05-01T12:00:01Z"},
                   "status": {"phase": "Active"}})
        ),
        [json!("default"), json!("Active"), json!("0s")]
    );
    assert_eq!(
        cells(
            "",
            "namespaces",
            json!({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T12:00:02Z"}})
        ),
        [json!("x"), json!(""), json!("<invalid>")]
    );
}

#[test]
fn nodes() {
    assert_eq!(
        names("", "nodes"),
        [
            ("Name", 0),
            ("Status", 0),
            ("Roles", 0),
            ("Age", 0),
            ("Version", 0),
            ("Internal-IP", 1),
            ("External-IP", 1),
            ("OS-Image", 1),
            ("Kernel-Version", 1),
            ("Container-Runtime", 1)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let node = json!({
        "metadata": {"name": "node1", "creationTimestamp": "2024-04-01T12:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge",
                       "node-role.kubernetes.io/": "x", "kubernetes.io/hostname": "node1"}},
        "spec": {"unschedulable": true},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "node1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
            "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "paddock://0.1.0"}
        }
    });
    assert_eq!(
        cells("", "nodes", node),
        [
            json!("node1"),
            json!("Ready,SchedulingDisabled"),
            json!("control-plane,edge"),
            json!("30d"),
            json!("v1.32.4"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0-18-amd64"),
            json!("paddock://0.1.0")
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}, "status": {}});
    let c = cells("", "nodes", bare);
    assert_eq!(c[1], "Unknown");
    assert_eq!(c[2], "<none>");
    assert_eq!(c[4], "");
    assert_eq!(c[7], "<unknown>");
    let not_ready = json!({"metadata": {"name": "n3"},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
    assert_eq!(cells("", "nodes", not_ready)[1], "NotReady");
}

#[test]
fn pod_columns_and_running_pod() {
    assert_eq!(
        names("", "pods"),
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let defs = column_definitions(lookup("", "v1", "pods").unwrap());
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(defs[1]["format"], "");
    assert_eq!(defs[3]["type"], "string");
    assert!(
        defs[4]["description"]
            .as_str()
            .unwrap()
            .starts_with("CreationTimestamp")
    );

    let pod = json!({
        "metadata": {"name": "web-7d4b9c-x2x", "creationTimestamp": "2024-05-01T11:55:00Z"},
        "spec": {"nodeName": "node1", "containers": [{"name": "web"}, {"name": "log"}]},
        "status": {
            "phase": "Running",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "web", "ready": true, "restartCount": 3, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:58:00Z"}}},
                {"name": "log", "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]
        }
    });
    assert_eq!(
        cells("", "pods", pod),
        [
            json!("web-7d4b9c-x2x"),
            json!("2/2"),
            json!("Running"),
            json!("3 (2m ago)"),
            json!("5m"),
            json!("10.244.0.5"),
            json!("node1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn pod_status_reasons() {
    let base = |status: Value| {
        json!({
            "metadata": {"name": "p", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": {"containers": [{"name": "c"}],
                     "initContainers": [{"name": "init"}],
                     "readinessGates": [{"conditionType": "example.com/gate"}]},
            "status": status
        })
    };
    // Running the first init container.
    let c = cells(
        "",
        "pods",
        base(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init", "restartCount": 0, "state": {"running": {}}}],
            "containerStatuses": [{"name": "c", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]})),
    );
    assert_eq!(c[1], "0/1");
    assert_eq!(c[2], "Init:0/1");
    assert_eq!(c[3], "0");
    assert_eq!(c[4], "120m");
    assert_eq!(c[5], "<none>");
    assert_eq!(c[8], "0/1");
    // A crash-looping init container.
    let c = cells(
        "",
        "pods",
        base(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init", "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:30Z"}}}]})),
    );
    assert_eq!(c[2], "Init:CrashLoopBackOff");
    assert_eq!(c[3], "2 (30s ago)");
    let c = cells(
        "",
        "pods",
        base(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 3}}}]})),
    );
    assert_eq!(c[2], "Init:ExitCode:3");
    let c = cells(
        "",
        "pods",
        base(json!({"phase": "Pending",
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]})),
    );
    assert_eq!(c[2], "Init:Signal:9");
    // Main container crash-looping after init succeeded; the readiness gate is true.
    let c = cells(
        "",
        "pods",
        base(json!({"phase": "Running",
            "conditions": [{"type": "example.com/gate", "status": "True"}],
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            "containerStatuses": [{"name": "c", "restartCount": 5, "ready": false,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:00:00Z"}}}]})),
    );
    assert_eq!(c[1], "0/1");
    assert_eq!(c[2], "CrashLoopBackOff");
    assert_eq!(c[3], "5 (60m ago)");
    assert_eq!(c[8], "1/1");
    // A completed pod.
    let c = cells(
        "",
        "pods",
        base(json!({"phase": "Succeeded",
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]})),
    );
    assert_eq!(c[2], "Completed");
    // Exited without a reason.
    let c = cells(
        "",
        "pods",
        base(json!({"phase": "Running",
            "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 2}}}]})),
    );
    assert_eq!(c[2], "ExitCode:2");
    // One container completed, another still running and the pod not ready.
    let two = json!({
        "metadata": {"name": "p2"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
        "status": {"phase": "Running",
            "containerStatuses": [
                {"name": "a", "ready": true, "state": {"running": {}}},
                {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    });
    let c = cells("", "pods", two);
    assert_eq!(c[1], "1/2");
    assert_eq!(c[2], "NotReady");
}

#[test]
fn pod_terminating_unknown_gated_and_sidecars() {
    let mut pod = json!({
        "metadata": {"name": "p", "creationTimestamp": "2024-05-01T11:59:58Z",
                     "deletionTimestamp": "2024-05-01T12:00:30Z"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running",
            "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]}
    });
    let c = cells("", "pods", pod.clone());
    assert_eq!(c[2], "Terminating");
    assert_eq!(c[4], "2s");
    pod["status"]["reason"] = json!("NodeLost");
    assert_eq!(cells("", "pods", pod.clone())[2], "Unknown");
    pod["status"] = json!({"phase": "Succeeded"});
    assert_eq!(cells("", "pods", pod)[2], "Succeeded");

    let gated = json!({
        "metadata": {"name": "g"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}
    });
    let c = cells("", "pods", gated);
    assert_eq!(c[2], "SchedulingGated");
    assert_eq!(c[4], "<unknown>");

    // A started sidecar counts as a container; its restarts count once initialized.
    let sidecar = json!({
        "metadata": {"name": "s", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"containers": [{"name": "c"}],
                 "initContainers": [{"name": "proxy", "restartPolicy": "Always"}]},
        "status": {"phase": "Running", "podIPs": [{"ip": "fd00::5"}],
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true, "restartCount": 1,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:50:00Z"}}}],
            "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]}
    });
    let c = cells("", "pods", sidecar);
    assert_eq!(c[1], "2/2");
    assert_eq!(c[2], "Running");
    assert_eq!(c[3], "1 (10m ago)");
    assert_eq!(c[5], "fd00::5");
}

#[test]
fn completed_pods_carry_row_conditions() {
    let pods = lookup("", "v1", "pods").unwrap();
    let pod = |phase: &str| json!({"metadata": {"name": "p"}, "status": {"phase": phase}});
    assert_eq!(
        row_conditions(pods, &pod("Succeeded")),
        [
            json!({"type": "Completed", "status": "True", "reason": "Succeeded",
                "message": "The pod has completed successfully."})
        ]
    );
    assert_eq!(row_conditions(pods, &pod("Failed"))[0]["reason"], "Failed");
    assert!(row_conditions(pods, &pod("Running")).is_empty());
    let ns = lookup("", "v1", "namespaces").unwrap();
    assert!(row_conditions(ns, &pod("Succeeded")).is_empty());
}

#[test]
fn replicasets() {
    assert_eq!(
        names("apps", "replicasets"),
        [
            ("Name", 0),
            ("Desired", 0),
            ("Current", 0),
            ("Ready", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let template = json!({"spec": {"containers": [
        {"name": "web", "image": "nginx:1.27"}, {"name": "sidecar", "image": "busybox"}]}});
    let rs = json!({
        "metadata": {"name": "web-5d8f7", "creationTimestamp": "2024-05-01T11:40:00Z"},
        "spec": {"replicas": 3, "template": template,
                 "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7"}}},
        "status": {"replicas": 3, "readyReplicas": 1}
    });
    assert_eq!(
        cells("apps", "replicasets", rs),
        [
            json!("web-5d8f7"),
            json!(3),
            json!(3),
            json!(1),
            json!("20m"),
            json!("web,sidecar"),
            json!("nginx:1.27,busybox"),
            json!("app=web,pod-template-hash=5d8f7")
        ]
    );
    let empty = json!({"metadata": {"name": "e"}, "spec": {"selector": {}}});
    let c = cells("apps", "replicasets", empty);
    assert_eq!(c[1], 1, "defaulted replicas");
    assert_eq!(c[2], 0);
    assert_eq!(c[7], "<none>");
    let bad = json!({"metadata": {"name": "e"},
                     "spec": {"selector": {"matchLabels": {"bad key!": "x"}}}});
    assert_eq!(cells("apps", "replicasets", bad)[7], "<error>");
}

#[test]
fn secrets() {
    assert_eq!(
        names("", "secrets"),
        [("Name", 0), ("Type", 0), ("Data", 0), ("Age", 0)].map(|(n, p)| (n.to_string(), p))
    );
    assert_eq!(
        cells(
            "",
            "secrets",
            json!({"metadata": {"name": "tls", "creationTimestamp": "2024-05-01T11:00:00Z"},
                   "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}})
        ),
        [
            json!("tls"),
            json!("kubernetes.io/tls"),
            json!(2),
            json!("60m")
        ]
    );
}

#[test]
fn services() {
    assert_eq!(
        names("", "services"),
        [
            ("Name", 0),
            ("Type", 0),
            ("Cluster-IP", 0),
            ("External-IP", 0),
            ("Port(s)", 0),
            ("Age", 0),
            ("Selector", 1)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let svc = |spec: Value, status: Value| {
        json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T06:00:00Z"},
               "spec": spec, "status": status})
    };
    assert_eq!(
        cells(
            "",
            "services",
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                       "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080},
                                 {"port": 53, "protocol": "UDP"}],
                       "selector": {"app": "web"}}),
                json!({})
            )
        ),
        [
            json!("web"),
            json!("ClusterIP"),
            json!("10.96.0.12"),
            json!("<none>"),
            json!("80/TCP,53/UDP"),
            json!("6h"),
            json!("app=web")
        ]
    );
    let c = cells(
        "",
        "services",
        svc(
            json!({"type": "NodePort", "clusterIP": "10.96.0.13", "externalIPs": ["192.0.2.1"],
                   "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
            json!({}),
        ),
    );
    assert_eq!(c[2], "10.96.0.13");
    assert_eq!(c[3], "192.0.2.1");
    assert_eq!(c[4], "80:30080/TCP");
    assert_eq!(c[6], "<none>");
    let c = cells(
        "",
        "services",
        svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.14"],
                   "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
            json!({}),
        ),
    );
    assert_eq!(c[3], "<pending>");
    let c = cells(
        "",
        "services",
        svc(
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.14"], "externalIPs": ["192.0.2.9"]}),
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.7"}]}}),
        ),
    );
    assert_eq!(c[3], "203.0.113.7,lb.example.com,192.0.2.9");
    assert_eq!(c[4], "<none>");
    let c = cells(
        "",
        "services",
        svc(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({}),
        ),
    );
    assert_eq!(c[2], "<none>");
    assert_eq!(c[3], "db.example.com");
    let c = cells(
        "",
        "services",
        svc(
            json!({"clusterIP": "None", "clusterIPs": ["None"]}),
            json!({}),
        ),
    );
    assert_eq!(c[2], "None");
}

#[test]
fn storage_tables_as_upstream() {
    let names = |g: &str, p: &str| -> Vec<String> {
        names(g, p)
            .into_iter()
            .map(|(n, prio)| if prio == 1 { format!("{n}*") } else { n })
            .collect()
    };
    assert_eq!(
        names("", "persistentvolumes"),
        [
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
            "VolumeMode*"
        ]
    );
    assert_eq!(
        names("", "persistentvolumeclaims"),
        [
            "Name",
            "Status",
            "Volume",
            "Capacity",
            "Access Modes",
            "StorageClass",
            "VolumeAttributesClass",
            "Age",
            "VolumeMode*"
        ]
    );
    assert_eq!(
        names("storage.k8s.io", "storageclasses"),
        [
            "Name",
            "Provisioner",
            "ReclaimPolicy",
            "VolumeBindingMode",
            "AllowVolumeExpansion",
            "Age"
        ]
    );
    let pv = json!({"metadata": {"name": "v", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "local-path",
                 "claimRef": {"namespace": "default", "name": "data"}, "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"}});
    let c = cells("", "persistentvolumes", pv);
    assert_eq!(
        c[..9],
        [
            json!("v"),
            json!("1Gi"),
            json!("RWO,RWX"),
            json!("Delete"),
            json!("Bound"),
            json!("default/data"),
            json!("local-path"),
            json!("<unset>"),
            json!("")
        ]
    );
    assert_eq!(c[10], json!("Filesystem"));
    // Pending claims show no capacity or modes; a deleted one is Terminating.
    let pvc = json!({"metadata": {"name": "data", "creationTimestamp": "2026-01-01T00:00:00Z",
                                  "deletionTimestamp": "2026-01-02T00:00:00Z"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
                 "resources": {"requests": {"storage": "1Gi"}}},
        "status": {"phase": "Pending"}});
    let c = cells("", "persistentvolumeclaims", pvc);
    assert_eq!(
        c[..7],
        [
            json!("data"),
            json!("Terminating"),
            json!(""),
            json!(""),
            json!(""),
            json!("local-path"),
            json!("<unset>")
        ]
    );
    assert_eq!(c[8], json!("<unset>"));
    let sc = json!({"metadata": {"name": "local-path", "creationTimestamp": "2026-01-01T00:00:00Z",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"});
    let c = cells("storage.k8s.io", "storageclasses", sc);
    assert_eq!(
        c[..5],
        [
            json!("local-path (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );
}

#[test]
fn statefulsets_daemonsets_and_controllerrevisions() {
    let pairs = |v: &[(&str, i64)]| -> Vec<(String, i64)> {
        v.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    };
    assert_eq!(
        names("apps", "statefulsets"),
        pairs(&[
            ("Name", 0),
            ("Ready", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1)
        ])
    );
    let template = json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}],
        "nodeSelector": {"disk": "ssd", "arch": "amd64"}}});
    let sts = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:40:00Z"},
        "spec": {"replicas": 3, "template": template},
        "status": {"replicas": 3, "readyReplicas": 2}
    });
    assert_eq!(
        cells("apps", "statefulsets", sts),
        [
            json!("web"),
            json!("2/3"),
            json!("20m"),
            json!("nginx"),
            json!("nginx:1.27")
        ]
    );
    assert_eq!(
        names("apps", "daemonsets"),
        pairs(&[
            ("Name", 0),
            ("Desired", 0),
            ("Current", 0),
            ("Ready", 0),
            ("Up-to-date", 0),
            ("Available", 0),
            ("Node Selector", 0),
            ("Age", 0),
            ("Containers", 1),
            ("Images", 1),
            ("Selector", 1)
        ])
    );
    let ds = json!({
        "metadata": {"name": "agent", "creationTimestamp": "2024-05-01T11:40:00Z"},
        "spec": {"template": template, "selector": {"matchLabels": {"name": "agent"}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 1}
    });
    assert_eq!(
        cells("apps", "daemonsets", ds),
        [
            json!("agent"),
            json!(2),
            json!(2),
            json!(1),
            json!(2),
            json!(1),
            json!("arch=amd64,disk=ssd"),
            json!("20m"),
            json!("nginx"),
            json!("nginx:1.27"),
            json!("name=agent")
        ]
    );
    let cr = json!({
        "metadata": {"name": "web-6d4cf56db6", "creationTimestamp": "2024-05-01T11:40:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                                 "uid": "u", "controller": true}]},
        "revision": 2
    });
    assert_eq!(
        cells("apps", "controllerrevisions", cr),
        [
            json!("web-6d4cf56db6"),
            json!("statefulset.apps/web"),
            json!(2),
            json!("20m")
        ]
    );
}

#[test]
fn pod_disruption_budgets() {
    assert_eq!(
        names("policy", "poddisruptionbudgets"),
        [
            ("Name", 0),
            ("Min Available", 0),
            ("Max Unavailable", 0),
            ("Allowed Disruptions", 0),
            ("Age", 0)
        ]
        .map(|(n, p)| (n.to_string(), p))
    );
    let pdb = |spec: Value| {
        json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:00:00Z"},
               "spec": spec, "status": {"disruptionsAllowed": 1}})
    };
    assert_eq!(
        cells(
            "policy",
            "poddisruptionbudgets",
            pdb(json!({"minAvailable": 2}))
        ),
        [
            json!("web"),
            json!("2"),
            json!("N/A"),
            json!(1),
            json!("60m")
        ]
    );
    assert_eq!(
        cells(
            "policy",
            "poddisruptionbudgets",
            pdb(json!({"maxUnavailable": "25%"}))
        ),
        [
            json!("web"),
            json!("N/A"),
            json!("25%"),
            json!(1),
            json!("60m")
        ]
    );
}

#[test]
fn ingress_tables_as_upstream() {
    let g = "networking.k8s.io";
    let col_names = |p: &str| -> Vec<String> { names(g, p).into_iter().map(|(n, _)| n).collect() };
    assert_eq!(
        col_names("ingresses"),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    );
    assert_eq!(
        col_names("ingressclasses"),
        ["Name", "Controller", "Parameters", "Age"]
    );
    let created = "2024-05-01T11:59:00Z";
    // No class, no host, no address, no TLS.
    let bare = json!({"metadata": {"name": "web", "creationTimestamp": created},
        "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}},
        "status": {"loadBalancer": {}}});
    assert_eq!(
        cells(g, "ingresses", bare),
        [
            json!("web"),
            json!("<none>"),
            json!("*"),
            json!(""),
            json!("80"),
            json!("60s")
        ]
    );
    // Hosts: the first three, then "+ N more..." counting rules; addresses sorted, unique,
    // IP before hostname, never clipped (the server prints wide); TLS adds 443.
    let rule = |h: &str| json!({"host": h});
    let full = json!({"metadata": {"name": "web", "creationTimestamp": created},
        "spec": {"ingressClassName": "paddock",
                 "rules": [rule("a.example.com"), rule(""), rule("b.example.com"),
                           rule("c.example.com"), rule("d.example.com")],
                 "tls": [{"hosts": ["a.example.com"]}]},
        "status": {"loadBalancer": {"ingress": [
            {"ip": "10.0.0.2", "hostname": "ignored.example.com"},
            {"hostname": "lb.some-long-domain.example.com"},
            {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {}]}}});
    assert_eq!(
        cells(g, "ingresses", full),
        [
            json!("web"),
            json!("paddock"),
            json!("a.example.com,b.example.com,c.example.com + 2 more..."),
            json!("10.0.0.1,10.0.0.2,lb.some-long-domain.example.com"),
            json!("80, 443"),
            json!("60s"),
        ]
    );
    let class = json!({"metadata": {"name": "paddock", "creationTimestamp": created},
        "spec": {"controller": "paddock.dev/ingress-controller"}});
    assert_eq!(
        cells(g, "ingressclasses", class),
        [
            json!("paddock"),
            json!("paddock.dev/ingress-controller"),
            json!("<none>"),
            json!("60s")
        ]
    );
    let with_params = json!({"metadata": {"name": "x", "creationTimestamp": created},
        "spec": {"controller": "a.io/b", "parameters": {"apiGroup": "k8s.example.com",
            "kind": "IngressParameters", "name": "external-lb", "scope": "Cluster"}}});
    assert_eq!(
        cells(g, "ingressclasses", with_params)[2],
        json!("IngressParameters.k8s.example.com/external-lb")
    );
    let core_params = json!({"metadata": {"name": "y", "creationTimestamp": created},
        "spec": {"controller": "a.io/b", "parameters": {"kind": "ConfigMap", "name": "cfg",
            "scope": "Namespace", "namespace": "kube-system"}}});
    assert_eq!(
        cells(g, "ingressclasses", core_params)[2],
        json!("ConfigMap/cfg")
    );
}
