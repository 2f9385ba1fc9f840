//! StatefulSets and DaemonSets (`apps/v1`) through kubectl: the Kubernetes docs' `web`
//! StatefulSet (without volume claim templates; its container a host command here) behind
//! the headless Service `nginx` makes `web-0` and then `web-1`, each Ready before the next is
//! created, with stable hostnames under the Service; `kubectl rollout status|history|undo`
//! work over its ControllerRevisions; `kubectl scale` removes the highest ordinal; a spec
//! field that may not change is a 422. A DaemonSet puts one pod on the node.

use k8s_openapi::api::core::v1::Pod;

use crate::support::Server;

const WEB: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  ports: [{port: 80, name: web}]
  clusterIP: None
  selector: {app: nginx}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  selector:
    matchLabels: {app: nginx}
  serviceName: nginx
  replicas: 2
  minReadySeconds: 1
  template:
    metadata:
      labels: {app: nginx}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        command: [sleep, "3600"]
        ports: [{containerPort: 80, name: web}]
        readinessProbe:
          exec: {command: ["true"]}
          initialDelaySeconds: 2
          periodSeconds: 1
"#;

const DS: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector:
    matchLabels: {name: agent}
  template:
    metadata:
      labels: {name: agent}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: agent
        image: busybox
        command: [sleep, "3600"]
"#;

fn pod(s: &Server, name: &str) -> Option<Pod> {
    let out = s.kubectl_full(&["get", "pod", name, "-o", "json"], None);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The time the pod's Ready condition became True (whole seconds).
fn ready_since(p: &Pod) -> Option<i64> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0.as_second())
}

fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect()
}

#[test]
fn statefulset_pods_come_in_order_and_scale_down_in_reverse() {
    let s = Server::up(&[]);
    s.kubectl_in(&["apply", "-f", "-"], Some(WEB));

    // web-0 first; web-1 only once web-0 is Ready.
    let web0 = s.eventually("web-0 Ready", || {
        let p = pod(&s, "web-0")?;
        ready_since(&p).map(|_| p)
    });
    let web1 = s.eventually("web-1 Ready", || {
        let p = pod(&s, "web-1")?;
        ready_since(&p).map(|_| p)
    });
    let web1_created = web1
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or_default();
    let web0_ready = ready_since(&web0).unwrap_or_default();
    assert!(
        web1_created >= web0_ready,
        "web-1 created at {web1_created}, before web-0 was Ready at {web0_ready}"
    );
    let spec = web0.spec.as_ref().expect("spec");
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let labels = web0.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("statefulset.kubernetes.io/pod-name")
            .map(String::as_str),
        Some("web-0")
    );
    assert_eq!(
        labels
            .get("apps.kubernetes.io/pod-index")
            .map(String::as_str),
        Some("0")
    );
    assert!(
        labels.contains_key("controller-revision-hash"),
        "{labels:?}"
    );

    let status = s.kubectl(&["rollout", "status", "sts/web", "--timeout=120s"]);
    assert!(
        status.contains("partitioned roll out complete: 2 new pods have been updated"),
        "{status}"
    );
    // The headless Service's endpoints carry each pod's hostname under it: what the cluster
    // DNS answers `web-0.nginx.default.svc.cluster.local` from.
    s.eventually("hostnames in the endpoint slice", || {
        let h = s.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=nginx",
            "-o",
            "jsonpath={.items[*].endpoints[*].hostname}",
        ]);
        let mut names: Vec<&str> = h.split_whitespace().collect();
        names.sort_unstable();
        (names == ["web-0", "web-1"]).then_some(())
    });
    let table = s.kubectl(&["get", "sts", "web"]);
    assert_eq!(header(&table), ["NAME", "READY", "AGE"], "{table}");
    assert!(table.contains("2/2"), "{table}");
    let revisions = s.kubectl(&["get", "controllerrevisions"]);
    assert_eq!(
        header(&revisions),
        ["NAME", "CONTROLLER", "REVISION", "AGE"],
        "{revisions}"
    );
    assert!(revisions.contains("statefulset.apps/web"), "{revisions}");

    // A new template is rolled out (highest ordinal first) and can be undone.
    s.kubectl(&["set", "env", "sts/web", "GREETING=hello"]);
    s.kubectl(&["rollout", "status", "sts/web", "--timeout=120s"]);
    let history = s.kubectl(&["rollout", "history", "sts/web"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('1'))
            && history.lines().any(|l| l.trim_start().starts_with('2')),
        "{history}"
    );
    s.eventually("both pods at the new template", || {
        let env = s.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={.items[*].spec.containers[0].env[0].value}",
        ]);
        (env == "hello hello").then_some(())
    });
    let undo = s.kubectl(&["rollout", "undo", "sts/web"]);
    assert!(undo.contains("rolled back"), "{undo}");
    s.kubectl(&["rollout", "status", "sts/web", "--timeout=120s"]);
    s.eventually("both pods back at the first template", || {
        let env = s.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=nginx",
            "-o",
            "jsonpath={.items[*].spec.containers[0].env}",
        ]);
        let names = s.kubectl(&["get", "pods", "-l", "app=nginx", "-o", "name"]);
        (env.is_empty() && names.lines().count() == 2).then_some(())
    });

    // Scale down removes web-1, web-0 stays.
    s.kubectl(&["scale", "sts", "web", "--replicas=1"]);
    s.eventually("web-1 gone", || pod(&s, "web-1").is_none().then_some(()));
    assert!(pod(&s, "web-0").is_some());
    s.kubectl(&["rollout", "status", "sts/web", "--timeout=120s"]);

    // Only some spec fields may change.
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "sts",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"serviceName":"other"}}"#,
        ],
        None,
    );
    assert!(
        err.contains("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"),
        "{err}"
    );
}

#[test]
fn a_daemonset_runs_one_pod_on_the_node() {
    let s = Server::up(&[]);
    s.kubectl_in(&["apply", "-f", "-"], Some(DS));
    let status = s.kubectl(&["rollout", "status", "ds/agent", "--timeout=120s"]);
    assert!(
        status.contains("daemon set \"agent\" successfully rolled out"),
        "{status}"
    );
    let nodes = s.kubectl(&["get", "nodes", "-o", "name"]);
    let node_count = nodes.lines().count();
    let pods = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "name=agent",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}",
    ]);
    let mut on: Vec<&str> = pods.lines().collect();
    on.sort_unstable();
    on.dedup();
    assert_eq!(on.len(), node_count, "one pod per node: {pods} / {nodes}");
    assert_eq!(pods.lines().count(), node_count, "{pods}");
    let history = s.kubectl(&["rollout", "history", "ds/agent"]);
    assert!(
        history.lines().any(|l| l.trim_start().starts_with('1')),
        "{history}"
    );
    let table = s.kubectl(&["get", "ds", "agent"]);
    assert_eq!(
        header(&table),
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "NODE",
            "SELECTOR",
            "AGE"
        ],
        "{table}"
    );
}
