//! `nodes/{name}/proxy/…` through the API server to the node agent, as kubectl users read a
//! kubelet's endpoints: `/healthz`, `/metrics` (`kubelet_running_pods`,
//! `kubelet_running_containers`), `/metrics/probes` (`prober_probe_total` by result,
//! `prober_probe_duration_seconds`), `/pods` and `/configz`; only who may `get nodes/proxy`
//! gets through.

use crate::support::Server;

const PROBED: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: probed}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'sleep 3600']
    readinessProbe:
      exec: {command: [sh, -c, 'true']}
      periodSeconds: 1
    livenessProbe:
      exec: {command: [sh, -c, 'true']}
      periodSeconds: 1
"#;

#[test]
fn node_proxy_reaches_the_agents_health_and_metrics() {
    let s = Server::up(&[]);
    s.kubectl_in(&["apply", "-f", "-"], Some(PROBED));
    s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/probed",
        "--timeout=60s",
    ]);
    let node = s.kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let base = format!("/api/v1/nodes/{node}/proxy");

    assert_eq!(
        s.kubectl(&["get", "--raw", &format!("{base}/healthz")]),
        "ok"
    );
    let main = s.kubectl(&["get", "--raw", &format!("{base}/metrics")]);
    assert!(main.contains("kubelet_running_pods 1"), "{main}");
    // The readiness flip was timed from its probe result to routing, and the service proxy's
    // table swaps are timed as kube-proxy times its syncs.
    for family in [
        "paddock_readiness_routing_duration_seconds_count 1",
        "kubeproxy_sync_proxy_rules_duration_seconds_count ",
        "kubeproxy_sync_proxy_rules_last_timestamp_seconds ",
        "kubeproxy_network_programming_duration_seconds_count ",
    ] {
        assert!(main.contains(family), "{family}: {main}");
    }
    assert!(
        main.contains(r#"kubelet_running_containers{container_state="running"} 1"#),
        "{main}"
    );
    let line = |kind: &str| {
        format!(
            r#"prober_probe_total{{probe_type="{kind}",result="successful",container="main",pod="probed",namespace="default""#
        )
    };
    // The liveness worker starts with its own jitter: wait for its first count too.
    let probes = s.eventually("two readiness successes and a liveness one counted", || {
        let text = s.kubectl(&["get", "--raw", &format!("{base}/metrics/probes")]);
        let count = text
            .lines()
            .find(|l| l.starts_with(&line("Readiness")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        (count >= 2 && text.contains(&line("Liveness"))).then_some(text)
    });
    assert!(
        probes.contains(r#"prober_probe_duration_seconds_count{probe_type="Readiness",container="main",pod="probed",namespace="default"}"#),
        "{probes}"
    );

    // `/pods`: the kubelet's PodList of what it runs, with the status it computed.
    let pods: serde_json::Value =
        serde_json::from_str(&s.kubectl(&["get", "--raw", &format!("{base}/pods")]))
            .expect("a PodList");
    assert_eq!(pods["kind"], "PodList", "{pods}");
    let probed = pods["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["metadata"]["name"] == "probed"))
        .unwrap_or_else(|| panic!("probed in {pods}"));
    assert_eq!(probed["kind"], "Pod");
    assert_eq!(probed["spec"]["containers"][0]["name"], "main");
    assert_eq!(probed["status"]["phase"], "Running", "{probed}");
    assert_eq!(
        probed["status"]["containerStatuses"][0]["ready"], true,
        "{probed}"
    );
    // `/configz`: the settings under the kubelet's configuration field names.
    let configz: serde_json::Value =
        serde_json::from_str(&s.kubectl(&["get", "--raw", &format!("{base}/configz")]))
            .expect("configz JSON");
    let kc = &configz["kubeletconfig"];
    assert_eq!(kc["maxPods"], 110, "{configz}");
    assert_eq!(kc["readOnlyPort"], 0, "{configz}");
    assert_eq!(kc["nodeLeaseDurationSeconds"], 40, "{configz}");
    assert_eq!(kc["nodeStatusUpdateFrequency"], "10s", "{configz}");
    assert_eq!(
        kc["authentication"]["anonymous"]["enabled"], false,
        "{configz}"
    );
    assert!(kc.get("kind").is_none(), "{configz}");

    // The pod's series go with it.
    s.kubectl(&["delete", "pod", "probed", "--wait=true"]);
    s.eventually("the pod's probe series to go", || {
        let text = s.kubectl(&["get", "--raw", &format!("{base}/metrics/probes")]);
        (!text.contains("pod=\"probed\"")).then_some(())
    });

    // An unknown node is a 404; a user without nodes/proxy is refused.
    let (_, err) = s.kubectl_err(
        &["get", "--raw", "/api/v1/nodes/nowhere/proxy/metrics"],
        None,
    );
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let (_, err) = s.kubectl_err(
        &[
            "get",
            "--raw",
            &format!("{base}/metrics"),
            "--as=system:serviceaccount:default:default",
        ],
        None,
    );
    assert!(err.to_lowercase().contains("forbidden"), "{err}");
}
