//! The pod network between nodes, in a lab of network namespaces: `paddock server` in one
//! (it holds the lab's bridge, 10.99.0.1/24), two `paddock agent` processes in two others
//! (10.99.0.2 and .3 on that bridge, pods in their own namespaces), started without
//! `--pod-cidr`. The server's node IPAM gives each its pod CIDR; each agent routes the other's
//! (host-gw) and says so in `NetworkUnavailable`; a Deployment spread over both nodes is
//! reached pod to pod by pod IP (source address kept) and through its ClusterIP from either
//! node; pod traffic to an address outside the cluster CIDR (the server's, on the lab bridge:
//! not a node) is masqueraded to the node's address. Stopped agents take their routes and
//! rules with them.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::Duration;

use crate::node_failure::join;
use crate::support::{NetNs, Server, manifest, run, wait_or_kill};

const APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 4
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      terminationGracePeriodSeconds: 2
      # The nodes measure this machine's disk: a busy test machine may be under the kubelet's
      # 10 % nodefs threshold, which must not keep these tiny pods from being scheduled.
      tolerations: [{key: node.kubernetes.io/disk-pressure, operator: Exists, effect: NoSchedule}]
      containers:
      - name: web
        image: python
        command: [python3, -m, http.server, '8080', --directory, /etc]
        ports: [{name: http, containerPort: 8080}]
        resources: {requests: {cpu: 100m, memory: 32Mi}}
        readinessProbe: {httpGet: {path: /hostname, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: spread}
spec:
  selector: {app: spread}
  ports: [{name: http, port: 80, targetPort: http}]
";

/// `ip ARGS`, which must succeed; its stdout.
fn ip(args: &[&str]) -> String {
    let mut c = Command::new("ip");
    c.args(args);
    let out = run(c, None);
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Plugs `ns` into the lab bridge of `switch` with `addr` (a /24 on `eth0`).
fn plug(switch: &NetNs, ns: &NetNs, port: &str, addr: &str) {
    ip(&[
        "-n",
        &switch.name,
        "link",
        "add",
        port,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        &ns.name,
    ]);
    ip(&[
        "-n",
        &switch.name,
        "link",
        "set",
        port,
        "master",
        "lab0",
        "up",
    ]);
    ip(&["-n", &ns.name, "addr", "add", addr, "dev", "eth0"]);
    ip(&["-n", &ns.name, "link", "set", "eth0", "up"]);
}

/// (name, node, pod IP) of the ready `app=spread` pods.
fn ready_pods(s: &Server) -> Vec<(String, String, String)> {
    let out = s.kubectl(&[
        "get", "pods", "-l", "app=spread", "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() == 4 && w[3] == "True")
                .then(|| (w[0].to_string(), w[1].to_string(), w[2].to_string()))
        })
        .collect()
}

/// The body of `url` fetched from inside pod `pod` (Python's urllib; empty on failure).
fn fetch_from_pod(s: &Server, pod: &str, url: &str) -> String {
    let out = s.kubectl_full(
        &[
            "exec",
            pod,
            "--",
            "python3",
            "-c",
            &format!(
                "import urllib.request as u; print(u.urlopen('{url}', timeout=5).read().decode().strip())"
            ),
        ],
        None,
    );
    if out.status.success() {
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    } else {
        String::new()
    }
}

fn stop_agent(mut a: Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal agent");
    assert!(
        wait_or_kill(&mut a, Duration::from_secs(40)).is_some(),
        "the agent did not stop within 40 s"
    );
}

#[test]
fn pods_on_two_nodes_reach_each_other_and_the_outside_through_the_server_s_pod_cidrs() {
    let nft = Command::new("nft").arg("--version").output();
    assert!(
        nft.is_ok_and(|o| o.status.success()),
        "this test needs the nft program: install the Debian package nftables"
    );
    // The lab: the server's namespace holds the bridge; each node is a namespace on it.
    let switch = NetNs::new();
    ip(&["-n", &switch.name, "link", "add", "lab0", "type", "bridge"]);
    ip(&[
        "-n",
        &switch.name,
        "addr",
        "add",
        "10.99.0.1/24",
        "dev",
        "lab0",
    ]);
    ip(&["-n", &switch.name, "link", "set", "lab0", "up"]);
    let (n1, n2) = (NetNs::new(), NetNs::new());
    plug(&switch, &n1, "port1", "10.99.0.2/24");
    plug(&switch, &n2, "port2", "10.99.0.3/24");
    let switch_name = switch.name.clone();
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server", "--listen", "10.99.0.1:0"],
        Some(switch),
    );
    let bin = env!("CARGO_BIN_EXE_paddock");
    let (d1, d2) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    // No --pod-cidr: each waits for the server's allocation.
    let t0 = std::time::SystemTime::now();
    let a1 = join(
        n1.wrap(bin),
        &s,
        d1.path(),
        "node-1",
        &["--node-ip", "10.99.0.2"],
    );
    let joined = t0.elapsed().unwrap_or_default();
    s.eventually("node-1 Ready", || {
        let ready = s.kubectl(&[
            "get",
            "node",
            "node-1",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (ready == "True").then_some(())
    });
    // Measured, not asserted (the machine's load decides).
    println!(
        "agent start -> joined (pod CIDR allocated, node started) {joined:?}, -> Node Ready {:?}",
        t0.elapsed().unwrap_or_default()
    );
    let a2 = join(
        n2.wrap(bin),
        &s,
        d2.path(),
        "node-2",
        &["--node-ip", "10.99.0.3"],
    );
    let log1 = std::fs::read_to_string(d1.path().join("agent.log")).unwrap_or_default();
    assert!(
        log1.contains("waiting for the server to allocate this node's pod CIDR"),
        "{log1}"
    );

    // Distinct pod CIDRs from the cluster CIDR.
    let cidr = |node: &str| s.kubectl(&["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]);
    let (c1, c2) = (cidr("node-1"), cidr("node-2"));
    assert!(c1.starts_with("10.244.") && c1.ends_with(".0/24"), "{c1}");
    assert!(c2.starts_with("10.244.") && c2.ends_with(".0/24"), "{c2}");
    assert_ne!(c1, c2);
    println!("{}", s.kubectl(&["get", "nodes", "-o", "wide"]));

    // Both nodes routed: NetworkUnavailable False as upstream's route controller says it.
    for node in ["node-1", "node-2"] {
        s.eventually(&format!("{node} NetworkUnavailable=False"), || {
            let c = s.kubectl(&[
                "get", "node", node, "-o",
                "jsonpath={.status.conditions[?(@.type==\"NetworkUnavailable\")].status}/{.status.conditions[?(@.type==\"NetworkUnavailable\")].reason}/{.status.conditions[?(@.type==\"NetworkUnavailable\")].message}",
            ]);
            (c == "False/RouteCreated/RouteController created a route").then_some(())
        });
    }
    let routes1 = ip(&["-n", &n1.name, "-4", "route", "show", "proto", "77"]);
    assert!(
        routes1.contains(&format!("{c2} via 10.99.0.3 ")),
        "{routes1}"
    );
    let routes2 = ip(&["-n", &n2.name, "-4", "route", "show", "proto", "77"]);
    assert!(
        routes2.contains(&format!("{c1} via 10.99.0.2 ")),
        "{routes2}"
    );

    // A Deployment spread over both nodes.
    let (_m, app) = manifest("spread.yaml", APP);
    s.kubectl(&["apply", "-f", &app.display().to_string()]);
    let started = std::time::SystemTime::now();
    let pods = loop {
        let p = ready_pods(&s);
        if p.len() == 4 {
            break p;
        }
        assert!(
            started.elapsed().unwrap_or_default() < Duration::from_secs(90),
            "four ready pods: not within 90 s:\n{}\n{}\n{}\nnode-1:\n{}\nnode-2:\n{}",
            s.kubectl(&["get", "pods", "-o", "wide"]),
            s.kubectl(&["get", "nodes", "-o", "jsonpath={.items[*].spec.taints}"]),
            s.kubectl(&["get", "events"]),
            crate::support::tail(
                &std::fs::read_to_string(d1.path().join("agent.log")).unwrap_or_default(),
                30
            ),
            crate::support::tail(
                &std::fs::read_to_string(d2.path().join("agent.log")).unwrap_or_default(),
                30
            ),
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let on = |node: &str| -> Vec<(String, String, String)> {
        pods.iter().filter(|p| p.1 == node).cloned().collect()
    };
    let (p1, p2) = (on("node-1"), on("node-2"));
    assert!(
        !p1.is_empty() && !p2.is_empty(),
        "not spread over both nodes: {pods:?}"
    );
    for (name, node, ip) in &pods {
        let c = if node == "node-1" { &c1 } else { &c2 };
        let prefix = c.trim_end_matches("0/24");
        assert!(
            ip.starts_with(prefix),
            "pod {name} on {node} has {ip}, not in {c}"
        );
    }

    // Pod to pod across nodes by pod IP, both ways; the receiving pod sees the sender's pod IP.
    for (from, to) in [(&p1[0], &p2[0]), (&p2[0], &p1[0])] {
        let url = format!("http://{}:8080/hostname", to.2);
        let body = s.eventually(&format!("{} reaches {} at {}", from.0, to.0, to.2), || {
            let b = fetch_from_pod(&s, &from.0, &url);
            (!b.is_empty()).then_some(b)
        });
        assert_eq!(body, to.0);
        let logs = s.kubectl(&["logs", &to.0]);
        assert!(
            logs.contains(&format!("{} - - [", from.2)),
            "{} should see {}'s pod IP {}:\n{logs}",
            to.0,
            from.0,
            from.2
        );
    }

    // The ClusterIP from each node reaches pods on both nodes.
    let cluster_ip = s.kubectl(&["get", "svc", "spread", "-o", "jsonpath={.spec.clusterIP}"]);
    for ns in [&n1, &n2] {
        let mut seen = BTreeSet::new();
        s.eventually(
            &format!("{}: the ClusterIP reaches pods on both nodes", ns.name),
            || {
                let mut curl = ns.wrap("curl");
                curl.args(["-s", "-m", "5", &format!("http://{cluster_ip}/hostname")]);
                let out = run(curl, None);
                let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if let Some(p) = pods.iter().find(|p| p.0 == name) {
                    seen.insert(p.1.clone());
                }
                (seen.len() == 2).then_some(())
            },
        );
    }

    // Outbound NAT: a listener outside the cluster CIDR (the server's namespace, 10.99.0.1,
    // not a node) sees the node's address, not the pod's.
    let www = tempfile::tempdir().expect("tempdir");
    std::fs::write(www.path().join("index.html"), "outside\n").expect("write");
    let listener_log = www.path().join("listener.log");
    let mut listener = Command::new("ip");
    listener
        .args([
            "netns",
            "exec",
            &switch_name,
            "python3",
            "-m",
            "http.server",
            "9099",
        ])
        .args(["--bind", "10.99.0.1", "--directory"])
        .arg(www.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&listener_log).expect("listener log"));
    let mut listener = listener.spawn().expect("spawn the outside listener");
    let body = s.eventually(&format!("{} reaches 10.99.0.1:9099", p1[0].0), || {
        let b = fetch_from_pod(&s, &p1[0].0, "http://10.99.0.1:9099/index.html");
        (!b.is_empty()).then_some(b)
    });
    assert_eq!(body, "outside");
    let seen = std::fs::read_to_string(&listener_log).unwrap_or_default();
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(
        seen.contains("10.99.0.2 - - [") && !seen.contains(&format!("{} - - [", p1[0].2)),
        "the outside should see node-1's address 10.99.0.2, not the pod's {}:\n{seen}",
        p1[0].2
    );
    let table = ip_netns_nft(&n1.name);
    assert!(
        table.contains("ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade"),
        "{table}"
    );

    // Peers come and go: one on the lab's segment is routed; one only reachable through a
    // gateway is not, and node-1 says why (log and condition); once both Nodes are deleted
    // the route goes and the condition is back to RouteCreated.
    ip(&[
        "-n",
        &n1.name,
        "route",
        "add",
        "default",
        "via",
        "10.99.0.1",
    ]);
    for (name, cidr, addr) in [
        ("peer-near", "10.244.200.0/24", "10.99.0.9"),
        ("peer-far", "10.244.201.0/24", "10.98.0.5"),
    ] {
        s.kubectl_in(
            &["create", "-f", "-"],
            Some(&format!(
                "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\nspec: {{podCIDR: {cidr}, podCIDRs: [{cidr}]}}\n"
            )),
        );
        s.kubectl(&[
            "patch",
            "node",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!("{{\"status\":{{\"addresses\":[{{\"type\":\"InternalIP\",\"address\":\"{addr}\"}}]}}}}"),
        ]);
    }
    s.eventually("node-1 routes peer-near", || {
        ip(&["-n", &n1.name, "-4", "route", "show", "proto", "77"])
            .contains("10.244.200.0/24 via 10.99.0.9 ")
            .then_some(())
    });
    let far = "node peer-far's InternalIP 10.98.0.5 is not on a directly connected subnet (this node reaches it via 10.99.0.1): no route to its pod CIDR 10.244.201.0/24";
    let condition = |node: &str| {
        s.kubectl(&[
            "get", "node", node, "-o",
            "jsonpath={.status.conditions[?(@.type==\"NetworkUnavailable\")].status}/{.status.conditions[?(@.type==\"NetworkUnavailable\")].reason}/{.status.conditions[?(@.type==\"NetworkUnavailable\")].message}",
        ])
    };
    s.eventually("node-1 NetworkUnavailable=True naming peer-far", || {
        let c = condition("node-1");
        (c.starts_with("True/NoRouteCreated/RouteController failed to create a route: ")
            && c.contains(far))
        .then_some(())
    });
    let log1 = std::fs::read_to_string(d1.path().join("agent.log")).unwrap_or_default();
    assert!(log1.contains(far), "{log1}");
    assert!(
        !ip(&["-n", &n1.name, "-4", "route", "show", "proto", "77"]).contains("10.244.201.0/24"),
        "no route to peer-far"
    );
    s.kubectl(&["delete", "node", "peer-near", "peer-far"]);
    s.eventually("peer-near's route removed", || {
        (!ip(&["-n", &n1.name, "-4", "route", "show", "proto", "77"]).contains("10.244.200.0/24"))
            .then_some(())
    });
    s.eventually("node-1 NetworkUnavailable=False again", || {
        (condition("node-1") == "False/RouteCreated/RouteController created a route").then_some(())
    });

    // A stopped agent takes its routes and its table with it.
    stop_agent(a1);
    assert_eq!(
        ip(&["-n", &n1.name, "-4", "route", "show", "proto", "77"]),
        ""
    );
    assert_eq!(ip_netns_nft(&n1.name), "");
    stop_agent(a2);
}

/// `nft list table ip paddock` in namespace `ns` (empty when there is no such table).
fn ip_netns_nft(ns: &str) -> String {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, "nft", "list", "table", "ip", "paddock"]);
    let out = run(c, None);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No such file or directory"),
            "nft (Debian package nftables) failed: {err}"
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}
