//! PodDisruptionBudgets, the Eviction subresource and `kubectl cordon/drain/uncordon` with
//! two nodes (`paddock server` and two `paddock agent`s in its network namespace): a
//! Deployment of 2 under `kubectl create pdb --min-available=2` cannot be drained (kubectl
//! keeps retrying the 429 until `--timeout`, the node stays cordoned and tainted), a raw
//! eviction gets upstream's 429 text; with `minAvailable: 1` the drain evicts the pods one at
//! a time, their replacements run on the other node, the DaemonSet's pod is left alone, and
//! `kubectl uncordon` makes the node schedulable again.

use crate::node_failure::{join, node_ready};
use crate::support::{NetNs, Server, manifest};

const WORKLOAD: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'exec sleep 86403']
        readinessProbe: {exec: {command: ['true']}, periodSeconds: 1}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'exec sleep 86404']
"#;

/// `paddock agent` named `name` in the server's network namespace (host-network pods).
fn agent(s: &Server, dir: &std::path::Path, name: &str, cidr: &str) -> std::process::Child {
    let cmd = s.command(env!("CARGO_BIN_EXE_paddock"));
    join(
        cmd,
        s,
        dir,
        name,
        &["--pod-cidr", cidr, "--host-network-only"],
    )
}

/// (name, node, ready) of the Deployment's pods not being deleted.
fn web_pods(s: &Server) -> Vec<(String, String, bool)> {
    let v = s.get_json(&["get", "pods", "-l", "app=web", "-o", "json"]);
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            let ready = p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                ready,
            )
        })
        .collect()
}

fn pdb_row(s: &Server) -> Vec<String> {
    s.kubectl(&["get", "pdb", "web", "--no-headers"])
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Kills the agents (and their pods' processes) whatever happens.
struct Agents(Vec<std::process::Child>);

impl Drop for Agents {
    fn drop(&mut self) {
        for a in &mut self.0 {
            let _ = a.kill();
            let _ = a.wait();
        }
    }
}

#[test]
fn drain_honours_the_disruption_budget() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server"],
        Some(NetNs::new()),
    );
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let mut agents = Agents(vec![agent(&s, d1.path(), "worker-1", "10.244.1.0/24")]);
    s.eventually("worker-1 Ready", || {
        (node_ready(&s, "worker-1") == "True").then_some(())
    });
    let (_m, path) = manifest("web.yaml", WORKLOAD);
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    s.eventually("two ready pods on worker-1", || {
        let p = web_pods(&s);
        (p.len() == 2 && p.iter().all(|p| p.1 == "worker-1" && p.2)).then_some(())
    });

    // kubectl create pdb; the table as upstream prints it.
    let out = s.kubectl(&[
        "create",
        "pdb",
        "web",
        "--selector=app=web",
        "--min-available=2",
    ]);
    assert_eq!(out.trim(), "poddisruptionbudget.policy/web created");
    let table = s.kubectl(&["get", "pdb"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ],
        "{table}"
    );
    s.eventually("the budget observed", || {
        let st = s.get_json(&["get", "pdb", "web", "-o", "json"])["status"].clone();
        (st["observedGeneration"] == 1 && st["currentHealthy"] == 2).then_some(())
    });
    assert_eq!(pdb_row(&s)[..4], ["web", "2", "N/A", "0"]);

    // A raw eviction: 429 with upstream's message.
    let victim = web_pods(&s)[0].0.clone();
    let body = format!(
        r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{victim}","namespace":"default"}}}}"#
    );
    let (code, err) = s.kubectl_err(
        &[
            "create",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{victim}/eviction"),
            "-f",
            "-",
        ],
        Some(&body),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );

    // The drain cordons the node, then keeps retrying until its timeout.
    let (code, err) = s.kubectl_err(
        &[
            "drain",
            "worker-1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=5s",
        ],
        None,
    );
    assert_ne!(code, 0, "{err}");
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget.")
            && err.contains("(will retry after 5s)"),
        "{err}"
    );
    assert!(err.contains("global timeout reached: 5s"), "{err}");
    assert_eq!(
        s.kubectl(&[
            "get",
            "node",
            "worker-1",
            "-o",
            "jsonpath={.spec.unschedulable}"
        ]),
        "true"
    );
    s.eventually("worker-1 tainted unschedulable", || {
        let t = s.kubectl(&[
            "get",
            "node",
            "worker-1",
            "-o",
            "jsonpath={.spec.taints[*].key}",
        ]);
        t.contains("node.kubernetes.io/unschedulable").then_some(())
    });
    let nodes = s.kubectl(&["get", "nodes"]);
    assert!(nodes.contains("Ready,SchedulingDisabled"), "{nodes}");
    assert_eq!(web_pods(&s).len(), 2, "nothing was evicted");

    // Room for one disruption and a second node: the drain moves the pods one at a time.
    agents
        .0
        .push(agent(&s, d2.path(), "worker-2", "10.244.2.0/24"));
    s.eventually("worker-2 Ready", || {
        (node_ready(&s, "worker-2") == "True").then_some(())
    });
    s.kubectl(&[
        "patch",
        "pdb",
        "web",
        "-p",
        r#"{"spec":{"minAvailable":1}}"#,
    ]);
    s.eventually("one disruption allowed", || {
        (pdb_row(&s)[..4] == ["web", "1", "N/A", "1"]).then_some(())
    });
    // A server-side dry run evicts nothing and spends nothing.
    let out = s.kubectl(&[
        "drain",
        "worker-1",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--dry-run=server",
    ]);
    assert!(
        out.contains("node/worker-1 drained (server dry run)"),
        "{out}"
    );
    assert_eq!(out.matches("evicting pod default/web-").count(), 2, "{out}");
    assert!(out.contains("(server dry run)"), "{out}");
    assert_eq!(web_pods(&s).len(), 2);
    assert_eq!(pdb_row(&s)[..4], ["web", "1", "N/A", "1"]);
    let drained = s.kubectl_full(
        &[
            "drain",
            "worker-1",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=50s",
            "-v=6",
        ],
        None,
    );
    let out = String::from_utf8_lossy(&drained.stdout).into_owned();
    let log = String::from_utf8_lossy(&drained.stderr).into_owned();
    assert!(drained.status.success(), "{out}\n{log}");
    // Every API call kubectl made succeeded, but the evictions refused while the budget
    // had no room (429, retried every 5 s) and the polls that find an evicted pod gone.
    let calls: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("round_trippers") && l.contains(" https://"))
        .collect();
    assert!(calls.iter().any(|l| l.contains("/eviction 201")), "{log}");
    for call in &calls {
        let gone = call.contains("GET https://") && call.contains(" 404 Not Found");
        let ok = gone
            || [" 200 OK", " 201 Created", " 429 Too Many Requests"]
                .iter()
                .any(|c| call.contains(c));
        assert!(ok, "{call}\n{log}");
    }
    assert!(out.contains("node/worker-1 drained"), "{out}");
    assert!(out.contains("evicting pod default/web-"), "{out}");
    let evicted = out.lines().filter(|l| l.ends_with(" evicted")).count();
    assert_eq!(evicted, 2, "{out}");
    s.eventually("both replicas ready on worker-2", || {
        let p = web_pods(&s);
        (p.len() == 2 && p.iter().all(|p| p.1 == "worker-2" && p.2)).then_some(())
    });
    // The DaemonSet's pod stays on the drained node.
    let ds = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "--field-selector=spec.nodeName=worker-1",
        "-o",
        "name",
    ]);
    assert_eq!(ds.lines().count(), 1, "{ds}");

    // Uncordon: schedulable and untainted again.
    let out = s.kubectl(&["uncordon", "worker-1"]);
    assert_eq!(out.trim(), "node/worker-1 uncordoned");
    assert_eq!(
        s.kubectl(&[
            "get",
            "node",
            "worker-1",
            "-o",
            "jsonpath={.spec.unschedulable}"
        ]),
        ""
    );
    s.eventually("the unschedulable taint removed", || {
        let t = s.kubectl(&[
            "get",
            "node",
            "worker-1",
            "-o",
            "jsonpath={.spec.taints[*].key}",
        ]);
        (!t.contains("node.kubernetes.io/unschedulable")).then_some(())
    });
    drop(agents);
}
