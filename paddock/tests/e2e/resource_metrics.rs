//! Resource metrics end to end: the node agent's `/metrics/resource` (the kubelet's families,
//! read from the containers' cgroups), the API server's `metrics.k8s.io` API scraped from it
//! every second here (`--metric-resolution 1s`), and real `kubectl top` on top of both; who
//! may read them (the `view` role, through `system:aggregated-metrics-reader`).

use crate::images::{RUNC_CLASS, import, layouts, up_with_cgroups_in};
use crate::support::{NetNs, Server};

/// A pod that burns CPU (a shell busy loop), requesting a tenth of a core.
pub const BURN: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: burn}
spec:
  replicas: 1
  selector: {matchLabels: {app: burn}}
  template:
    metadata: {labels: {app: burn}}
    spec:
      runtimeClassName: runc
      terminationGracePeriodSeconds: 1
      containers:
      - name: loop
        image: "example.com/demo/busybox:root"
        command: [/bin/sh, -c, "while :; do :; done"]
        resources: {requests: {cpu: 100m}}
"#;

/// `paddock up` with cgroups, the busybox images imported and scrapes every second.
pub fn metrics_server(extra: &[&str]) -> (Server, tempfile::TempDir) {
    // The layout first, as the image tests do: a server's image GC may take blobs that an
    // import has not recorded yet.
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = layouts(tmp.path());
    // No image GC: on a full disk it would take the imported image before it runs.
    let mut args = vec![
        "--metric-resolution",
        "1s",
        "--image-gc-high-threshold",
        "100",
    ];
    args.extend(extra);
    let s = up_with_cgroups_in(tempfile::tempdir().expect("tempdir"), NetNs::new(), &args);
    import(&s, &layout);
    s.kubectl_in(&["apply", "-f", "-"], Some(RUNC_CLASS));
    (s, tmp)
}

/// The CPU column of `kubectl top pod --no-headers` for the first pod, in millicores.
pub fn top_cpu_milli(line: &str) -> Option<u64> {
    line.split_whitespace()
        .nth(1)?
        .strip_suffix('m')?
        .parse()
        .ok()
}

#[test]
fn kubectl_top_reads_the_nodes_cgroups() {
    let (s, _tmp) = metrics_server(&[]);
    s.kubectl_in(&["apply", "-f", "-"], Some(BURN));
    let out = s.kubectl_full(
        &[
            "wait",
            "--for=condition=Available",
            "deployment/burn",
            "--timeout=50s",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "not available: {}\n{}",
        s.kubectl(&["describe", "pods"]),
        crate::support::tail(&s.log(), 40)
    );
    let pod = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=burn",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let node = s.kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);

    // The agent's endpoint, through the node proxy.
    let text = s.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/metrics/resource"),
    ]);
    let series = format!(r#"{{container="loop",namespace="default",pod="{pod}"}}"#);
    for family in [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_start_time_seconds",
    ] {
        assert!(
            text.contains(&format!("{family}{series} ")),
            "{family}: {text}"
        );
    }
    assert!(
        text.contains(&format!(
            r#"pod_cpu_usage_seconds_total{{namespace="default",pod="{pod}"}} "#
        )),
        "{text}"
    );
    assert!(text.contains("\nnode_cpu_usage_seconds_total "), "{text}");
    assert!(text.contains("\nnode_memory_working_set_bytes "), "{text}");
    assert!(text.contains("\nscrape_error 0\n"), "{text}");

    // kubectl top, unmodified: the loop uses most of a core (at least 200m here).
    let line = s.eventually("kubectl top pod to show the busy loop", || {
        let out = s.kubectl_full(&["top", "pod", "--no-headers"], None);
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        let line = out.lines().find(|l| l.starts_with(&pod))?.to_string();
        (top_cpu_milli(&line)? >= 200).then_some(line)
    });
    assert!(
        line.split_whitespace()
            .nth(2)
            .is_some_and(|m| m.ends_with("Mi")),
        "{line}"
    );
    let header = s.kubectl(&["top", "pod"]);
    assert!(header.starts_with("NAME"), "{header}");
    assert!(
        header.contains("CPU(cores)") && header.contains("MEMORY(bytes)"),
        "{header}"
    );
    let containers = s.kubectl(&["top", "pod", "--containers", "--no-headers"]);
    assert!(
        containers.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&pod.as_str()) && f.get(1) == Some(&"loop")
        }),
        "{containers}"
    );
    let all = s.kubectl(&["top", "pod", "-A", "--no-headers"]);
    assert!(
        all.lines()
            .any(|l| l.starts_with("default ") && l.contains(&pod)),
        "{all}"
    );
    let selected = s.kubectl(&["top", "pod", "-l", "app=other", "--no-headers"]);
    assert!(!selected.contains(&pod), "{selected}");
    let nodes = s.eventually("kubectl top node", || {
        let out = s.kubectl_full(&["top", "node", "--no-headers"], None);
        let out = String::from_utf8_lossy(&out.stdout).to_string();
        out.lines().any(|l| l.starts_with(&node)).then_some(out)
    });
    let f: Vec<&str> = nodes.split_whitespace().collect();
    assert!(
        f[1].ends_with('m') && f[2].ends_with('%') && f[3].ends_with("Mi"),
        "{nodes}"
    );

    // The raw API, as metrics-server answers it.
    let raw = |path: &str| -> serde_json::Value {
        serde_json::from_str(&s.kubectl(&["get", "--raw", path])).expect("json")
    };
    let list = raw("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods");
    assert_eq!(list["kind"], "PodMetricsList", "{list}");
    let item = &list["items"][0];
    assert_eq!(item["metadata"]["name"], pod.as_str(), "{list}");
    assert_eq!(item["metadata"]["labels"]["app"], "burn", "{list}");
    assert_eq!(item["containers"][0]["name"], "loop", "{list}");
    let cpu = item["containers"][0]["usage"]["cpu"].as_str().unwrap_or("");
    assert!(
        cpu.ends_with('n') || cpu.ends_with('m') || cpu.ends_with('u'),
        "{list}"
    );
    let mem = item["containers"][0]["usage"]["memory"]
        .as_str()
        .unwrap_or("");
    assert!(mem.ends_with("Ki") || mem.ends_with("Mi"), "{list}");
    assert!(
        item["window"].as_str().is_some_and(|w| w.ends_with('s')),
        "{list}"
    );
    let one = raw(&format!("/apis/metrics.k8s.io/v1beta1/nodes/{node}"));
    assert_eq!(one["kind"], "NodeMetrics", "{one}");
    let (_, err) = s.kubectl_err(
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nosuch",
        ],
        None,
    );
    assert!(err.contains("not found"), "{err}");

    // Reading metrics needs metrics.k8s.io pods get/list: the view role has them.
    let sa = "--as=system:serviceaccount:default:default";
    let (_, err) = s.kubectl_err(&["top", "pod", sa], None);
    assert!(err.to_lowercase().contains("forbidden"), "{err}");
    s.kubectl(&[
        "create",
        "rolebinding",
        "viewers",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ]);
    let seen = s.kubectl(&["top", "pod", sa, "--no-headers"]);
    assert!(seen.contains(&pod), "{seen}");
}

const HPA: &str = r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burn}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burn}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
"#;

/// A Deployment whose pod burns far more than its 100m request is scaled up to the HPA's
/// maximum (two steps at most: 1 → 3), with upstream's event, conditions and table.
#[test]
fn an_hpa_scales_a_busy_deployment_up() {
    let (s, _tmp) = metrics_server(&["--horizontal-pod-autoscaler-sync-period", "2s"]);
    s.kubectl_in(&["apply", "-f", "-"], Some(BURN));
    s.kubectl_in(&["apply", "-f", "-"], Some(HPA));
    let row = s.kubectl(&["get", "hpa", "burn", "--no-headers"]);
    let f: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&f[..2], ["burn", "Deployment/burn"], "{row}");
    assert_eq!(&f[2..4], ["cpu:", "<unknown>/50%"], "{row}");
    let hpa = s.get_json(&["get", "hpa", "burn"]);
    assert_eq!(hpa["apiVersion"], "autoscaling/v2", "{hpa}");
    assert_eq!(hpa["spec"]["minReplicas"], 1, "{hpa}");

    s.eventually("the deployment scaled to 3", || {
        let n = s.kubectl(&[
            "get",
            "deployment",
            "burn",
            "-o",
            "jsonpath={.spec.replicas}",
        ]);
        (n == "3").then_some(())
    });
    let hpa = s.eventually("the HPA status", || {
        let h = s.get_json(&["get", "hpa", "burn"]);
        (h["status"]["desiredReplicas"] == 3).then_some(h)
    });
    let conditions = hpa["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let cond = |t: &str| {
        conditions
            .iter()
            .find(|c| c["type"] == t)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(cond("AbleToScale")["status"], "True", "{hpa}");
    assert_eq!(cond("ScalingActive")["reason"], "ValidMetricFound", "{hpa}");
    assert_eq!(
        cond("ScalingActive")["message"],
        "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
        "{hpa}"
    );
    let util = hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
        .as_i64()
        .unwrap_or(0);
    assert!(util > 50, "{hpa}");
    let events = s.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=HorizontalPodAutoscaler,reason=SuccessfulRescale",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        events.contains("reason: cpu resource utilization (percentage of request) above target"),
        "{events}"
    );
    assert!(events.contains("New size: "), "{events}");
    let row = s.kubectl(&["get", "hpa", "burn", "--no-headers"]);
    assert!(
        row.contains(&format!("cpu: {util}%/50%")) || row.contains("%/50%"),
        "{row}"
    );
    let top = s.kubectl(&["top", "pod", "-l", "app=burn", "--no-headers"]);
    assert!(top.lines().count() >= 1, "{top}");
}
