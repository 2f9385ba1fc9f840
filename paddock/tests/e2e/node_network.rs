//! A node owns its network namespace's network: one node per namespace (a second one is
//! refused and names the holder, nodes in other namespaces start fine), its bridge survives
//! being deleted under running pods and is never deleted while something else is plugged in,
//! and the service addresses a killed node left are reclaimed by the next start.

use std::process::Command;

use crate::support::{NetNs, Server, manifest, run};

/// Two web pods behind a Service (its own command line: tests that count the example's
/// server processes on the machine must not see these).
const APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 2
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      containers:
      - name: web
        image: python
        command: [python3, -m, http.server, '8080', --directory, /etc]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /hostname, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: http}]
";

/// The pod IPs of the ready `app=hello` pods, once both are ready.
fn ready_hello_pods(s: &Server) -> Vec<String> {
    s.eventually("two ready hello pods", || {
        let out = s.kubectl(&[
            "get", "pods", "-l", "app=hello", "-o",
            "jsonpath={range .items[*]}{.status.podIP} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        let ips: Vec<String> = out
            .lines()
            .filter_map(|l| l.strip_suffix(" True"))
            .filter(|ip| !ip.is_empty())
            .map(str::to_string)
            .collect();
        (ips.len() == 2).then_some(ips)
    })
}

/// Whether the pod at `ip` answers HTTP on 8080 from the node.
fn serves(s: &Server, ip: &str) -> bool {
    let mut curl = s.command("curl");
    curl.args([
        "-s",
        "-m",
        "2",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://{ip}:8080/"),
    ]);
    String::from_utf8_lossy(&run(curl, None).stdout) == "200"
}

/// `ip ARGS` inside the namespace `ns`: (success, stdout).
fn ip_in(ns: &str, args: &[&str]) -> (bool, String) {
    let mut c = Command::new("ip");
    c.args(["-n", ns]).args(args);
    let out = run(c, None);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_second_node_in_the_same_network_namespace_is_refused_and_the_first_keeps_working() {
    let (_m, app) = manifest("app.yaml", APP);
    let first = Server::up(&[&app]);
    let ips = ready_hello_pods(&first);
    let ns = first.netns_name();
    let holder = format!(
        "node {:?} (pid {}, state in {})",
        first
            .kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"])
            .trim(),
        first.pid(),
        first.data_dir().join("node").display()
    );

    // `paddock up` on another data dir and port, in the same namespace.
    let other = tempfile::tempdir().expect("tempdir");
    let mut up = first.command(env!("CARGO_BIN_EXE_paddock"));
    up.args([
        "up",
        "--default-runtime",
        "host",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(other.path().join("data"))
    .arg("-f")
    .arg(&app);
    let out = run(up, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second node started:\n{err}");
    assert!(
        err.contains(&holder) && err.contains("already runs in this network namespace"),
        "want {holder:?} in:\n{err}"
    );

    // `paddock agent` joining the first one's server from the same namespace: refused alike.
    let mut agent = first.command(env!("CARGO_BIN_EXE_paddock"));
    agent
        .args([
            "agent",
            "--default-runtime",
            "host",
            "--node-name",
            "second",
            "--kubeconfig",
        ])
        .arg(&first.kubeconfig)
        .arg("--data-dir")
        .arg(other.path().join("agent"));
    let out = run(agent, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "agent started:\n{err}");
    assert!(err.contains(&holder), "want {holder:?} in:\n{err}");

    // The first node's pods kept their addresses and their bridge.
    assert_eq!(ready_hello_pods(&first), ips);
    for ip in &ips {
        assert!(serves(&first, ip), "pod {ip} serves");
    }
    let (ok, ports) = ip_in(&ns, &["-o", "link", "show", "master", "paddock0"]);
    assert!(ok && ports.lines().count() == 2, "{ports}");

    // A node in another namespace of this host is no competitor: same bridge name, same
    // pod CIDR, its own network.
    let second = Server::up(&[&app]);
    let second_ips = ready_hello_pods(&second);
    for ip in &second_ips {
        assert!(serves(&second, ip), "pod {ip} of the second node serves");
    }
    for ip in &ips {
        assert!(
            serves(&first, ip),
            "pod {ip} of the first node still serves"
        );
    }
}

#[test]
fn the_bridge_comes_back_under_running_pods_and_stays_while_other_links_use_it() {
    let (_m, app) = manifest("app.yaml", APP);
    let s = Server::up(&[&app]);
    let ips = ready_hello_pods(&s);
    let ns = s.netns_name();

    // Deleted under the running pods: recreated with their veths plugged back in.
    assert!(ip_in(&ns, &["link", "del", "paddock0"]).0);
    s.eventually("both pods reachable again", || {
        ips.iter().all(|ip| serves(&s, ip)).then_some(())
    });
    let (_, ports) = ip_in(&ns, &["-o", "link", "show", "master", "paddock0"]);
    assert_eq!(ports.lines().count(), 2, "{ports}");
    // The pods reach the node through it too (their probes, and a ClusterIP on the node).
    let cluster_ip = s.kubectl(&["get", "svc", "hello", "-o", "jsonpath={.spec.clusterIP}"]);
    let out = s.kubectl(&[
        "exec",
        "deployment/hello",
        "--",
        "python3",
        "-c",
        &format!(
            "import urllib.request as u; print(u.urlopen('http://{cluster_ip}/', timeout=5).status)"
        ),
    ]);
    assert_eq!(out.trim(), "200");

    // Something else plugged into the bridge keeps it when the node stops.
    assert!(
        ip_in(
            &ns,
            &[
                "link", "add", "foreign0", "type", "veth", "peer", "name", "foreign1"
            ]
        )
        .0
    );
    assert!(ip_in(&ns, &["link", "set", "foreign0", "master", "paddock0"]).0);
    let netns = s.stop_keep_netns();
    let (ok, ports) = ip_in(&netns.name, &["-o", "link", "show", "master", "paddock0"]);
    assert!(ok, "the bridge was deleted under foreign0");
    assert_eq!(
        ports
            .lines()
            .map(|l| l.split(": ").nth(1).unwrap_or_default())
            .collect::<Vec<_>>(),
        ["foreign0@foreign1"],
        "only the foreign link is left"
    );
}

#[test]
fn a_killed_nodes_service_addresses_are_reclaimed_at_the_next_start_and_only_those() {
    let (_m, path) = manifest(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    );
    let path = path.display().to_string();
    let args = ["up", "--default-runtime", "host", "-f", path.as_str()];
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &args,
        Some(NetNs::new()),
    );
    let ns = s.netns_name();
    let addrs = || ip_in(&ns, &["-o", "addr"]).1;
    let held = |ip: &str| addrs().contains(&format!(" inet {ip}/"));
    // Someone else's service-looking address on the node.
    assert!(ip_in(&ns, &["addr", "add", "10.96.200.200/32", "dev", "lo"]).0);
    let web = s.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    s.eventually("both ClusterIPs held", || {
        (held(&web) && held("10.96.0.1")).then_some(())
    });

    // SIGKILL: the addresses stay behind.
    let (dir, netns) = s.kill9_keep_netns();
    assert!(held(&web) && held("10.96.0.1"), "{}", addrs());

    // The next start owns what the record lists: a deleted service's address goes, and all
    // of them at stop; someone else's stays throughout.
    let s = Server::launch_in(dir, &args, Some(netns));
    s.eventually("the ClusterIPs held again", || {
        (held(&web) && held("10.96.0.1")).then_some(())
    });
    s.kubectl(&["delete", "svc", "web"]);
    s.eventually("the deleted service's address gone", || {
        (!held(&web)).then_some(())
    });
    // Recorded in the node's state, private to it.
    let record = s.data_dir().join("node/service-ips");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&record)
            .expect("service address record")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let netns = s.stop_keep_netns();
    let left = ip_in(&netns.name, &["-o", "addr"]).1;
    assert!(
        !left.contains(" inet 10.96.0.1/") && left.contains(" inet 10.96.200.200/"),
        "{left}"
    );
    assert!(!record.exists(), "nothing left to record");
}
