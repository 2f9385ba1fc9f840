//! A node dies: `paddock server` with the fast profile (node monitor grace 8 s, default
//! tolerations 10 s) and two `paddock agent` processes; the agent running a Deployment's
//! pods is killed with SIGKILL. The node lifecycle controller turns the Node `Unknown`,
//! marks its pods not ready and taints it unreachable; the taint eviction controller deletes
//! the pods after their 10 s toleration and the ReplicaSet controller's replacements run on
//! the surviving node. Prints the measured times (not asserted: they depend on the machine).
//! Also: the server allocates a pod CIDR to a Node registered without one.
//!
//! The story under load (`a_node_dies_under_load_and_comes_back`): two nodes in network
//! namespaces of their own, linked by a veth pair with routes between their pod CIDRs, a
//! Service's ClusterIP asked 10 times a second; one node dies with its pods (all but one, a
//! straggler evicted meanwhile, whose process outlives the agent) and comes back: the
//! straggler is stopped, and the pods still bound to it get new sandboxes, as the kubelet's
//! after a reboot.

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
    agent_in(s, None, dir, name, cidr, &["--host-network-only"])
}

/// [`agent`] in network namespace `netns` (the server's when `None`) with `extra` flags.
fn agent_in(
    s: &Server,
    netns: Option<&NetNs>,
    dir: &std::path::Path,
    name: &str,
    cidr: &str,
    extra: &[&str],
) -> Child {
    let bin = env!("CARGO_BIN_EXE_paddock");
    let cmd = match netns {
        Some(ns) => ns.wrap(bin),
        None => s.command(bin),
    };
    let mut args = vec!["--pod-cidr", cidr, "--node-lease-duration-seconds", "8"];
    args.extend_from_slice(extra);
    join(cmd, s, dir, name, &args)
}

/// `paddock agent --node-name NAME --data-dir DIR ARGS…` joining `s` (with `--default-runtime
/// host`), started through `cmd` (the paddock binary, possibly wrapped into a network
/// namespace); its log is appended to `DIR/agent.log` (kept across restarts, read by failure
/// messages). Waits for its "joined" line.
pub(crate) fn join(
    mut cmd: Command,
    s: &Server,
    dir: &std::path::Path,
    name: &str,
    args: &[&str],
) -> Child {
    let kubeconfig = s.kubeconfig.display().to_string();
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
    .stderr(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .map_or_else(|_| Stdio::null(), Stdio::from),
    );
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
                crate::support::tail(
                    &std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default(),
                    40
                )
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
    pods_labeled(s, "app=sleeper")
}

/// [`pods`] of the pods `selector` selects.
fn pods_labeled(s: &Server, selector: &str) -> Vec<(String, String, String, bool)> {
    let list = s.get_json(&["get", "pods", "-l", selector]);
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

/// The story's pods: a Deployment of web servers (two, then four) behind a Service; on
/// worker-1, `keeper` (tolerates the unreachable taint for good: stays bound) and `straggler`
/// (tolerates it for 1 s: evicted while the node is away). The web pods tolerate DiskPressure:
/// a build machine's disk is often more than 90 % full (the kubelet's `nodefs.available<10%`),
/// which is not what this test is about.
const STORY_APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
      containers:
      - name: web
        image: python
        command: [python3, -m, http.server, '8080', --directory, /etc]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /hostname, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: keeper, labels: {app: keeper}}
spec:
  nodeName: worker-1
  terminationGracePeriodSeconds: 2
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute}
  containers:
  - name: main
    image: busybox
    command: [sleep, '86403']
---
apiVersion: v1
kind: Pod
metadata: {name: straggler, labels: {app: straggler}}
spec:
  nodeName: worker-1
  terminationGracePeriodSeconds: 2
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 1}
  containers:
  - name: main
    image: busybox
    command: [sleep, '86404']
";

/// The load: a request to `ip:port` every 100 ms (each on its own thread, 10 s timeout), one
/// line per request: `<start> <end> ok <pod name>` or `<start> <end> fail <error>` (Unix
/// seconds).
const LOAD: &str = r#"
import socket, sys, threading, time
ip, port = sys.argv[1], int(sys.argv[2])
lock = threading.Lock()
def one(t):
    try:
        s = socket.create_connection((ip, port), timeout=10)
        s.sendall(b"GET /hostname HTTP/1.0\r\nHost: web\r\n\r\n")
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        res = "ok " + body.decode().strip() if b" 200 " in head.split(b"\r\n")[0] else "fail bad-answer"
    except Exception as e:
        res = "fail " + type(e).__name__
    with lock:
        print("%.3f %.3f %s" % (t, time.time(), res), flush=True)
while True:
    threading.Thread(target=one, args=(time.time(),), daemon=True).start()
    time.sleep(0.1)
"#;

/// One request of [`LOAD`]: start, end (Unix seconds), answered, by which pod (or the error).
type Request = (f64, f64, bool, String);

fn unix(t: SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `ip` in namespace `ns` (the root namespace when `None`); panics with its error.
fn ip(ns: Option<&str>, args: &[&str]) {
    let mut cmd = std::process::Command::new("ip");
    if let Some(ns) = ns {
        cmd.args(["netns", "exec", ns, "ip"]);
    }
    let out = crate::support::run(
        {
            cmd.args(args);
            cmd
        },
        None,
    );
    assert!(
        out.status.success(),
        "ip {args:?} in {ns:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// SIGKILLs the pods an agent left (as the machine's death would), except pod `spare` (whose
/// processes outlive the agent, as after a crash of the agent alone): the namespace holder of
/// each sandbox recorded under its data dir and each recorded container process, each checked
/// by its start time so no other process is hit.
fn kill_pods(data: &std::path::Path, spare: &str) -> usize {
    let mut killed = 0;
    let mut procs = Vec::new();
    let mut spared = Vec::new();
    for (dir, field) in [("sandboxes", "holder"), ("containers", "process")] {
        let Ok(entries) = std::fs::read_dir(data.join("node").join(dir)) else {
            continue;
        };
        // Records only: the directory also holds the containers' output FIFOs.
        for e in entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        {
            let Ok(text) = std::fs::read_to_string(e.path()) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if v["name"] == spare && field == "holder" {
                spared.push(v["id"].clone());
                continue;
            }
            if field == "process" && spared.contains(&v["sandbox_id"]) {
                continue;
            }
            if let (Some(pid), Some(ticks)) =
                (v[field]["pid"].as_u64(), v[field]["start_ticks"].as_u64())
            {
                procs.push((pid, ticks));
            }
        }
    }
    for (pid, ticks) in procs {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let start = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(19))
            .and_then(|t| t.parse::<u64>().ok());
        if start == Some(ticks) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            killed += 1;
        }
    }
    killed
}

/// The pids of live processes whose environment says `HOSTNAME=<pod>` (a pod's containers).
fn pod_processes(pod: &str) -> Vec<u32> {
    let want = format!("HOSTNAME={pod}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if env.split(|b| *b == 0).any(|v| v == want.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// Whatever the story leaves if it fails midway: its agents and the load (SIGKILL, each
/// checked to still be what it was) and the pods recorded in the agents' data dirs
/// ([`kill_pods`]).
struct Leftovers {
    processes: std::cell::RefCell<Vec<u32>>,
    dirs: Vec<std::path::PathBuf>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in self.processes.borrow().iter() {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("paddock") || cmd.contains("python3") {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        for d in &self.dirs {
            kill_pods(d, "");
        }
    }
}

#[test]
fn a_node_dies_under_load_and_comes_back() {
    let t0 = SystemTime::now();
    let step = |what: &str| eprintln!("[{:?}] {what}", t0.elapsed().unwrap_or_default());
    // Two namespaces: the server and worker-2 in one, worker-1 in the other, a veth pair
    // between them (192.168.213.0/24) and routes to each other's pod CIDR.
    let tag = std::process::id() % 100_000;
    let (veth_s, veth_1) = (format!("h13s{tag}"), format!("h13w{tag}"));
    let ns_s = NetNs::new();
    let ns_1 = NetNs::new();
    ip(
        None,
        &[
            "link", "add", &veth_s, "type", "veth", "peer", "name", &veth_1,
        ],
    );
    ip(None, &["link", "set", &veth_s, "netns", &ns_s.name]);
    ip(None, &["link", "set", &veth_1, "netns", &ns_1.name]);
    for (ns, dev, addr) in [
        (&ns_s, &veth_s, "192.168.213.1/24"),
        (&ns_1, &veth_1, "192.168.213.2/24"),
    ] {
        ip(Some(&ns.name), &["addr", "add", addr, "dev", dev]);
        ip(Some(&ns.name), &["link", "set", dev, "up"]);
    }
    // The agents route each other's pod CIDRs themselves (host-gw, from their --node-ip).
    let mut args = FAST_SERVER.to_vec();
    args.extend([
        "--listen",
        "0.0.0.0:0",
        "--advertise-address",
        "192.168.213.1",
    ]);
    let s = Server::launch_in(tempfile::tempdir().expect("tempdir"), &args, Some(ns_s));
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let leftovers = Leftovers {
        processes: Default::default(),
        dirs: vec![d1.path().to_path_buf(), d2.path().to_path_buf()],
    };
    let mut a1 = agent_in(
        &s,
        Some(&ns_1),
        d1.path(),
        "worker-1",
        "10.244.1.0/24",
        &["--node-ip", "192.168.213.2"],
    );
    leftovers.processes.borrow_mut().push(a1.id());
    step("worker-1 Ready");
    s.eventually("worker-1 Ready", || {
        (node_ready(&s, "worker-1") == "True").then_some(())
    });
    let (_m, path) = manifest("web.yaml", STORY_APP);
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    let ready_on = |node: &str| {
        on(&pods_labeled(&s, "app=web"), node)
            .iter()
            .filter(|p| p.2 == "True" && !p.3)
            .count()
    };
    let story = |what: &str| {
        let log = |d: &tempfile::TempDir| {
            crate::support::tail(
                &std::fs::read_to_string(d.path().join("agent.log")).unwrap_or_default(),
                30,
            )
        };
        format!(
            "{what}; pods:\n{}\nevents:\n{}\nworker-1's log:\n{}\nworker-2's log:\n{}",
            s.kubectl(&["get", "pods", "-o", "wide"]),
            crate::support::tail(&s.kubectl(&["get", "events"]), 30),
            log(&d1),
            log(&d2),
        )
    };
    let until = |what: &str, ok: &dyn Fn() -> bool| {
        let start = SystemTime::now();
        while !ok() {
            assert!(
                start.elapsed().unwrap_or_default() < Duration::from_secs(90),
                "{}",
                story(what)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    step("two ready web pods on worker-1");
    until("two ready web pods on worker-1", &|| {
        ready_on("worker-1") == 2
    });
    let mut a2 = agent_in(
        &s,
        None,
        d2.path(),
        "worker-2",
        "10.244.2.0/24",
        &["--node-ip", "192.168.213.1"],
    );
    leftovers.processes.borrow_mut().push(a2.id());
    step("worker-2 Ready");
    s.eventually("worker-2 Ready", || {
        (node_ready(&s, "worker-2") == "True").then_some(())
    });
    s.kubectl(&["scale", "deployment", "web", "--replicas", "4"]);
    step("four ready web pods");
    until("four ready web pods", &|| {
        ready_on("worker-1") + ready_on("worker-2") == 4 && ready_on("worker-2") > 0
    });
    step("straggler runs");
    until("straggler runs", &|| {
        pods_labeled(&s, "app=straggler")
            .first()
            .is_some_and(|k| k.2 == "True")
    });
    step("keeper runs");
    until("keeper runs", &|| {
        pods_labeled(&s, "app=keeper")
            .first()
            .is_some_and(|k| k.2 == "True")
    });
    let doomed: Vec<String> = on(&pods_labeled(&s, "app=web"), "worker-1")
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert!(!doomed.is_empty(), "no web pod on worker-1");
    let cluster_ip = s.kubectl(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"]);

    // The load, from the server's namespace (served by worker-2's proxy).
    let mut load = s.command("python3");
    load.args(["-c", LOAD, &cluster_ip, "80"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut load = load.spawn().expect("python3 (the load)");
    leftovers.processes.borrow_mut().push(load.id());
    let requests: std::sync::Arc<std::sync::Mutex<Vec<Request>>> = Default::default();
    {
        let requests = requests.clone();
        let out = load.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut f = line.splitn(4, ' ');
                let (Some(a), Some(b), Some(r), who) = (f.next(), f.next(), f.next(), f.next())
                else {
                    continue;
                };
                let (Ok(a), Ok(b)) = (a.parse::<f64>(), b.parse::<f64>()) else {
                    continue;
                };
                if let Ok(mut v) = requests.lock() {
                    v.push((a, b, r == "ok", who.unwrap_or("").to_string()));
                }
            }
        });
    }
    let answered_by = |pods: &[String]| {
        requests
            .lock()
            .map(|v| v.iter().filter(|r| r.2 && pods.contains(&r.3)).count())
            .unwrap_or(0)
    };
    step("the load reaches worker-1's pods");
    until("the load reaches worker-1's pods", &|| {
        answered_by(&doomed) > 0
    });
    std::thread::sleep(Duration::from_secs(2));

    // The node dies with its pods.
    step("killing worker-1");
    a1.kill().expect("SIGKILL worker-1's agent");
    let _ = a1.wait();
    step("worker-1's agent is dead");
    let killed = kill_pods(d1.path(), "straggler");
    assert_eq!(
        pod_processes("straggler").len(),
        1,
        "straggler outlives its agent"
    );
    let died = SystemTime::now();
    step(&format!("{killed} pod processes killed"));
    assert!(killed > 0, "no pod process of worker-1 was found to kill");
    let since = || died.elapsed().unwrap_or_default();
    let (mut unknown, mut shifted, mut replaced) = (None, None, None);
    while replaced.is_none() || shifted.is_none() {
        assert!(
            since() < Duration::from_secs(120),
            "not done within 120 s: unknown {unknown:?}, shifted {shifted:?}; pods {:?}",
            pods_labeled(&s, "app=web")
        );
        if unknown.is_none() && node_ready(&s, "worker-1") == "Unknown" {
            unknown = Some(since());
        }
        if shifted.is_none() {
            let ready = s.kubectl(&[
                "get",
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                "jsonpath={range .items[*].endpoints[?(@.conditions.ready==true)]}{.targetRef.name} {end}",
            ]);
            if !ready
                .split_whitespace()
                .any(|n| doomed.iter().any(|d| d == n))
            {
                shifted = Some(since());
            }
        }
        if replaced.is_none() && ready_on("worker-2") == 4 {
            replaced = Some(since());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let shifted_at = unix(died) + shifted.expect("shifted").as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<Request> = requests.lock().map(|v| v.clone()).unwrap_or_default();
    let death = unix(died);
    let failed: Vec<&Request> = after
        .iter()
        .filter(|r| r.0 >= death - 10.0 && !r.2)
        .collect();
    let last_to_dead = after
        .iter()
        .filter(|r| r.0 >= death && !r.2)
        .map(|r| r.0 - death)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    let slowest = after
        .iter()
        .filter(|r| r.0 >= death && r.2)
        .map(|r| r.1 - r.0)
        .fold(0.0, f64::max);
    println!(
        "node death -> Unknown {unknown:?}; -> dead pods out of the ready endpoints {shifted:?}; last failed request started {last_to_dead:?} s after; {} requests failed (started from 10 s before the death on: in flight to a dead pod) of {} started since ({:?}); slowest answered request {slowest:.3} s; -> replacements Ready on worker-2 {replaced:?}",
        failed.len(),
        after.iter().filter(|r| r.0 >= death).count(),
        failed.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(),
    );
    // Once the endpoints moved (and the proxy heard of it), every request is answered.
    let late_failures: Vec<&Request> = after
        .iter()
        .filter(|r| r.0 > shifted_at + 2.0 && !r.2)
        .collect();
    assert!(
        late_failures.is_empty(),
        "requests failed after the shift: {late_failures:?}"
    );
    assert!(
        after
            .iter()
            .filter(|r| r.0 > shifted_at + 2.0)
            .all(|r| !doomed.contains(&r.3)),
        "a dead pod answered"
    );

    // The node comes back with the same data dir, its pods' sandboxes gone.
    let mut a1 = agent_in(
        &s,
        Some(&ns_1),
        d1.path(),
        "worker-1",
        "10.244.1.0/24",
        &["--node-ip", "192.168.213.2"],
    );
    leftovers.processes.borrow_mut().push(a1.id());
    let back = SystemTime::now();
    step("worker-1 Ready again");
    s.eventually("worker-1 Ready again", || {
        (node_ready(&s, "worker-1") == "True").then_some(())
    });
    step("worker-1's taints gone");
    s.eventually("worker-1's taints gone", || {
        let taints = s.kubectl(&["get", "node", "worker-1", "-o", "jsonpath={.spec.taints}"]);
        (!taints.contains("unreachable") && !taints.contains("not-ready")).then_some(())
    });
    // The evicted pods are finished and removed; none of their processes runs.
    step("the evicted pods are gone");
    until("the evicted pods are gone", &|| {
        !pods_labeled(&s, "app=web")
            .iter()
            .any(|p| doomed.contains(&p.0))
    });
    // The pod evicted while its processes outlived the agent: stopped, then removed; no second
    // copy of it anywhere.
    step("straggler stopped and removed");
    until("straggler stopped and removed", &|| {
        pods_labeled(&s, "app=straggler").is_empty() && pod_processes("straggler").is_empty()
    });
    for d in &doomed {
        assert!(
            pod_processes(d).is_empty(),
            "a process of deleted pod {d} runs"
        );
    }
    // The pod that stayed bound runs again in a new sandbox, one copy of it.
    let keeper = s.eventually("keeper Ready again", || {
        let k = s.get_json(&["get", "pod", "keeper"]);
        let ready = k["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .is_some_and(|c| c["status"] == "True");
        ready.then_some(k)
    });
    let cs = &keeper["status"]["containerStatuses"][0];
    assert_eq!(cs["restartCount"], 1, "{cs}");
    assert_eq!(
        cs["lastState"]["terminated"]["reason"], "ContainerStatusUnknown",
        "{cs}"
    );
    let events = s.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=keeper",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains("SandboxChanged: Pod sandbox changed, it will be killed and re-created."),
        "{events}"
    );
    assert_eq!(
        pod_processes("keeper").len(),
        1,
        "one copy of keeper's process"
    );
    println!(
        "node back -> Ready, taints gone, keeper Ready again: {:?}",
        back.elapsed().unwrap_or_default()
    );
    // The load was answered all along since the shift.
    let all: Vec<Request> = requests.lock().map(|v| v.clone()).unwrap_or_default();
    let late: Vec<&Request> = all
        .iter()
        .filter(|r| r.0 > shifted_at + 2.0 && r.1 > 0.0 && !r.2)
        .collect();
    assert!(late.is_empty(), "requests failed after the shift: {late:?}");

    let _ = load.kill();
    let _ = load.wait();
    for a in [&mut a1, &mut a2] {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(a.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal agent");
        wait_or_kill(a, Duration::from_secs(40));
    }
    drop(ns_1);
}

/// A StatefulSet's pod on a node that dies is not replaced while the node may still run it
/// (upstream's at-most-one guarantee): it is marked for deletion by the taint eviction and
/// stays `Terminating`. The non-graceful node shutdown procedure of the Kubernetes docs
/// (taint the node `node.kubernetes.io/out-of-service=nodeshutdown:NoExecute`) lets the pod
/// garbage collector force-delete it, and the StatefulSet recreates it, same name, on the
/// surviving node.
#[test]
fn a_statefulset_pod_of_a_dead_node_waits_for_the_out_of_service_taint() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        FAST_SERVER,
        Some(NetNs::new()),
    );
    let d1 = tempfile::tempdir().expect("tempdir");
    let d2 = tempfile::tempdir().expect("tempdir");
    let mut a1 = agent(&s, d1.path(), "worker-1", "10.244.1.0/24");
    s.eventually("worker-1 Ready", || {
        (node_ready(&s, "worker-1") == "True").then_some(())
    });
    let marker = format!("sleep 86403.{}", std::process::id());
    let (_m, path) = manifest(
        "db.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: db}}\nspec:\n  serviceName: db\n  replicas: 1\n  selector: {{matchLabels: {{app: db}}}}\n  template:\n    metadata: {{labels: {{app: db}}}}\n    spec:\n      terminationGracePeriodSeconds: 5\n      containers:\n      - name: main\n        image: busybox\n        command: [sh, -c, 'exec {marker}']\n        readinessProbe: {{exec: {{command: ['true']}}, periodSeconds: 1}}\n"
        ),
    );
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    s.eventually("db-0 ready on worker-1", || {
        let p = pods_labeled(&s, "app=db");
        (on(&p, "worker-1")
            .iter()
            .any(|p| p.0 == "db-0" && p.2 == "True"))
        .then_some(())
    });
    let mut a2 = agent(&s, d2.path(), "worker-2", "10.244.2.0/24");
    s.eventually("worker-2 Ready", || {
        (node_ready(&s, "worker-2") == "True").then_some(())
    });

    a1.kill().expect("SIGKILL worker-1's agent");
    let _ = a1.wait();
    // Evicted by the taint (after the 10 s toleration), but never confirmed by a kubelet.
    s.eventually("db-0 terminating", || {
        let p = pods_labeled(&s, "app=db");
        (p.len() == 1 && p[0].1 == "worker-1" && p[0].3).then_some(())
    });
    // It stays so: no second db-0 anywhere while worker-1 might still run it.
    std::thread::sleep(Duration::from_secs(25));
    let p = pods_labeled(&s, "app=db");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!((p[0].1.as_str(), p[0].3), ("worker-1", true), "{p:?}");

    // The administrator declares the node shut down.
    s.kubectl(&[
        "taint",
        "node",
        "worker-1",
        "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute",
    ]);
    s.eventually("db-0 recreated and ready on worker-2", || {
        let p = pods_labeled(&s, "app=db");
        (p.len() == 1 && p[0].0 == "db-0" && p[0].1 == "worker-2" && p[0].2 == "True" && !p[0].3)
            .then_some(())
    });

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a2.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal agent");
    wait_or_kill(&mut a2, Duration::from_secs(40));
}
