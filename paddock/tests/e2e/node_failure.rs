//! A node dies: `paddock server` with the fast profile (node monitor grace 8 s, default
//! tolerations 10 s) and two `paddock agent` processes; the agent running a Deployment's
//! pods is killed with SIGKILL. The node lifecycle controller turns the Node `Unknown`,
//! marks its pods not ready and taints it unreachable; the taint eviction controller deletes
//! the pods after their 10 s toleration and the ReplicaSet controller's replacements run on
//! the surviving node. Prints the measured times (not asserted: they depend on the machine).
//! Also: the server allocates a pod CIDR to a Node registered without one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use crate::support::{NetNs, Server, manifest, wait_or_kill};

/// The fast profile's server flags, as the README gives them.
const FAST_SERVER: &[&str] = &[
    "server",
    "--node-monitor-period",
    "2s",
    "--node-monitor-grace-period",
    "8s",
    "--default-not-ready-toleration-seconds",
    "10",
    "--default-unreachable-toleration-seconds",
    "10",
];

/// `paddock agent` with the fast profile's lease (renewed every 2 s), pods in the host's
/// network (two agents share the server's namespace); waits for its "joined" line.
fn agent(s: &Server, dir: &std::path::Path, name: &str, cidr: &str) -> Child {
    join(
        s.command(env!("CARGO_BIN_EXE_paddock")),
        s,
        dir,
        name,
        &[
            "--pod-cidr",
            cidr,
            "--host-network-only",
            "--node-lease-duration-seconds",
            "8",
        ],
    )
}

/// `paddock agent --node-name NAME --data-dir DIR ARGS…` joining `s` (with `--default-runtime
/// host`), started through `cmd` (the paddock binary, possibly wrapped into a network
/// namespace); its log goes to `DIR/agent.log`. Waits for its "joined" line.
pub(crate) fn join(
    mut cmd: Command,
    s: &Server,
    dir: &std::path::Path,
    name: &str,
    args: &[&str],
) -> Child {
    let kubeconfig = s.kubeconfig.display().to_string();
    let log = dir.join("agent.log");
    cmd.args([
        "agent",
        "--default-runtime",
        "host",
        "--kubeconfig",
        &kubeconfig,
        "--node-name",
        name,
    ])
    .args(args)
    .arg("--data-dir")
    .arg(dir)
    .env("PADDOCK_LOG", "info")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::from(
        std::fs::File::create(&log).expect("agent log file"),
    ));
    let mut child = cmd.spawn().expect("spawn paddock agent");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) => assert!(line.starts_with("node "), "{line}"),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "paddock agent {name} did not join within 60 s; its log:\n{}",
                crate::support::tail(&std::fs::read_to_string(&log).unwrap_or_default(), 40)
            );
        }
    }
    child
}

pub(crate) fn node_ready(s: &Server, node: &str) -> String {
    s.kubectl(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ])
}

/// (name, node, Ready status, terminating) of the Deployment's pods.
fn pods(s: &Server) -> Vec<(String, String, String, bool)> {
    let list = s.get_json(&["get", "pods", "-l", "app=sleeper"]);
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    let ready = p["status"]["conditions"]
                        .as_array()
                        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                        .and_then(|c| c["status"].as_str())
                        .unwrap_or("")
                        .to_string();
                    (
                        p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                        p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                        ready,
                        !p["metadata"]["deletionTimestamp"].is_null(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn on(pods: &[(String, String, String, bool)], node: &str) -> Vec<(String, String, String, bool)> {
    pods.iter().filter(|p| p.1 == node).cloned().collect()
}

#[test]
fn a_killed_agent_s_pods_are_evicted_and_replaced_on_the_other_node() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        FAST_SERVER,
        Some(NetNs::new()),
    );
    // Node IPAM: a Node registered without a pod CIDR gets the first /24 of 10.244.0.0/16.
    s.kubectl_in(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: bare}\n"),
    );
    s.eventually("bare gets a pod CIDR", || {
        let c = s.kubectl(&[
            "get",
            "node",
            "bare",
            "-o",
            "jsonpath={.spec.podCIDR} {.spec.podCIDRs}",
        ]);
        (c == "10.244.0.0/24 [\"10.244.0.0/24\"]").then_some(())
    });
    s.kubectl(&["delete", "node", "bare"]);
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let mut a1 = agent(&s, d1.path(), "worker-1", "10.244.1.0/24");
    s.eventually("worker-1 Ready", || {
        (node_ready(&s, "worker-1") == "True").then_some(())
    });
    let marker = format!("sleep 86402.{}", std::process::id());
    let (_m, path) = manifest(
        "sleeper.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: sleeper}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: sleeper}}}}\n  template:\n    metadata: {{labels: {{app: sleeper}}}}\n    spec:\n      terminationGracePeriodSeconds: 5\n      containers:\n      - name: main\n        image: busybox\n        command: [sh, -c, 'exec {marker}']\n        readinessProbe: {{exec: {{command: ['true']}}, periodSeconds: 1}}\n"
        ),
    );
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    s.eventually("two ready pods on worker-1", || {
        let p = pods(&s);
        (on(&p, "worker-1").iter().filter(|p| p.2 == "True").count() == 2).then_some(())
    });
    // The admission plugin gave them the short tolerations.
    let tolerations = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=sleeper",
        "-o",
        "jsonpath={.items[0].spec.tolerations[?(@.key==\"node.kubernetes.io/unreachable\")].tolerationSeconds}",
    ]);
    assert_eq!(tolerations, "10");
    let mut a2 = agent(&s, d2.path(), "worker-2", "10.244.2.0/24");
    s.eventually("worker-2 Ready", || {
        (node_ready(&s, "worker-2") == "True").then_some(())
    });
    let doomed: Vec<String> = on(&pods(&s), "worker-1").into_iter().map(|p| p.0).collect();

    // The node dies.
    a1.kill().expect("SIGKILL worker-1's agent");
    let _ = a1.wait();
    let died = SystemTime::now();
    let since = || died.elapsed().unwrap_or_default();
    let (mut unknown, mut not_ready, mut tainted, mut evicted, mut replaced) =
        (None, None, None, None, None);
    let deadline = Duration::from_secs(120);
    while replaced.is_none() || evicted.is_none() {
        assert!(
            since() < deadline,
            "not done within {deadline:?}: unknown {unknown:?}, not ready {not_ready:?}, tainted {tainted:?}, evicted {evicted:?}; pods {:?}; server log:\n{}",
            pods(&s),
            crate::support::tail(&s.log(), 40)
        );
        let p = pods(&s);
        let old: Vec<_> = p.iter().filter(|x| doomed.contains(&x.0)).collect();
        if unknown.is_none() && node_ready(&s, "worker-1") == "Unknown" {
            unknown = Some(since());
        }
        if not_ready.is_none() && old.iter().all(|x| x.2 == "False" || x.3) {
            not_ready = Some(since());
        }
        if tainted.is_none() {
            let taints = s.kubectl(&["get", "node", "worker-1", "-o", "jsonpath={.spec.taints}"]);
            if taints.contains("\"node.kubernetes.io/unreachable\"") && taints.contains("NoExecute")
            {
                tainted = Some(since());
            }
        }
        if evicted.is_none() && old.iter().all(|x| x.3) {
            evicted = Some(since());
        }
        if replaced.is_none()
            && on(&p, "worker-2")
                .iter()
                .filter(|x| x.2 == "True" && !x.3)
                .count()
                == 2
        {
            replaced = Some(since());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "node death -> Unknown {unknown:?}, -> pods not Ready {not_ready:?}, -> tainted {tainted:?}, -> evicted {evicted:?}, -> replacements Ready on worker-2 {replaced:?}"
    );
    // Every step happened, in upstream's order.
    let (unknown, not_ready, tainted, evicted) = (
        unknown.expect("Unknown"),
        not_ready.expect("not ready"),
        tainted.expect("tainted"),
        evicted.expect("evicted"),
    );
    assert!(unknown <= not_ready && not_ready <= tainted && tainted <= evicted);
    let node = s.get_json(&["get", "node", "worker-1"]);
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["reason"], "NodeStatusUnknown", "{ready}");
    assert_eq!(
        ready["message"], "Kubelet stopped posting node status.",
        "{ready}"
    );
    let events = s.kubectl(&[
        "get",
        "events",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    for d in &doomed {
        let line = format!("TaintManagerEviction: Marking for deletion Pod default/{d}");
        assert!(events.contains(&line), "{line} in\n{events}");
    }
    assert!(
        events.contains("NodeNotReady: Node worker-1 status is now: NodeNotReady"),
        "{events}"
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a2.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal agent");
    wait_or_kill(&mut a2, Duration::from_secs(40));
    // worker-1's orphaned pod processes go with the test's namespace.
}
