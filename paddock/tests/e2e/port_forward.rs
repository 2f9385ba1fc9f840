//! `kubectl port-forward` through the API server to the node agent, over both transports
//! kubectl has (SPDY tunnelled in a WebSocket, its default since 1.31, and the plain SPDY
//! upgrade it falls back to): the far end is `localhost` inside the pod's network namespace,
//! so a server bound to 127.0.0.1 only is reachable; several connections at once; `svc/NAME`
//! picks a pod and maps the service port to the container port; a closed port is reported
//! with the runtime's error, as upstream reports it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Server, Streaming, manifest, run, wait_or_kill};

const WEB: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  runtimeClassName: paddock-host
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: python:3.11
    command:
    - sh
    - -c
    - mkdir -p /tmp/site && echo forwarded > /tmp/site/hello.txt && cd /tmp/site && exec python3 -m http.server 8080 --bind 127.0.0.1
    ports:
    - {name: http, containerPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {port: 80, targetPort: http}
"#;

/// `curl http://127.0.0.1:PORT/hello.txt` inside the server's network namespace.
fn fetch(s: &Server, port: u16) -> Option<String> {
    let mut cmd = s.command("curl");
    cmd.args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{port}/hello.txt"));
    let out = run(cmd, None);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a Python program (the official client) inside the server's network namespace.
pub fn python(s: &Server, program: &str) -> String {
    let mut cmd = s.command("python3");
    cmd.arg("-c").arg(program).env("KUBECONFIG", &s.kubeconfig);
    let out = run(cmd, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Starts `kubectl port-forward TARGET LOCAL:REMOTE` and waits for its "Forwarding from" line.
fn forward(s: &Server, target: &str, ports: &str, websockets: bool) -> Streaming {
    let mut cmd = s.kubectl_cmd(&["port-forward", target, ports]);
    cmd.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets.to_string());
    let mut pf = Streaming::spawn(cmd);
    pf.wait_for("Forwarding from", |l| {
        l.starts_with("Forwarding from 127.0.0.1:")
    });
    pf
}

#[test]
fn kubectl_port_forward_reaches_localhost_in_the_pod_over_both_transports() {
    let (_dir, path) = manifest("web.yaml", WEB);
    let s = Server::up(&[&path]);
    s.kubectl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    // The pod has a network namespace of its own, where 127.0.0.1 is not the node's.
    let pod_ip = s.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]);
    let host_ip = s.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.hostIP}"]);
    assert_ne!(pod_ip, host_ip);

    for (websockets, port) in [(true, 18080u16), (false, 18081)] {
        let _pf = forward(&s, "pod/web", &format!("{port}:8080"), websockets);
        let body = s.eventually("the pod's page through port-forward", || fetch(&s, port));
        assert_eq!(body, "forwarded\n", "websockets={websockets}");
        // Several connections at once, each its own stream pair.
        std::thread::scope(|t| {
            let handles: Vec<_> = (0..4).map(|_| t.spawn(|| fetch(&s, port))).collect();
            for h in handles {
                assert_eq!(
                    h.join().expect("thread").as_deref(),
                    Some("forwarded\n"),
                    "websockets={websockets}"
                );
            }
        });
    }

    // The Python client's `portforward` (channels in the WebSocket, no SPDY).
    let out = python(
        &s,
        r#"
from kubernetes import client, config
from kubernetes.stream import portforward
config.load_kube_config()
api = client.CoreV1Api()
pf = portforward(api.connect_get_namespaced_pod_portforward, "web", "default", ports="8080")
sock = pf.socket(8080)
sock.setblocking(True)
sock.sendall(b"GET /hello.txt HTTP/1.0\r\nHost: web\r\n\r\n")
data = b""
while True:
    chunk = sock.recv(4096)
    if not chunk:
        break
    data += chunk
assert data.endswith(b"\r\n\r\nforwarded\n"), data
assert pf.error(8080) is None, pf.error(8080)
print("python portforward ok")
"#,
    );
    assert!(out.contains("python portforward ok"), "{out}");

    // A Service: kubectl picks its pod and maps port 80 to the target port 8080.
    let _svc = forward(&s, "svc/web", "18082:80", true);
    assert_eq!(
        s.eventually("the page through svc/web", || fetch(&s, 18082)),
        "forwarded\n"
    );
}

#[test]
fn a_closed_port_is_reported_on_the_error_stream() {
    let (_dir, path) = manifest("web.yaml", WEB);
    let s = Server::up(&[&path]);
    s.kubectl(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);

    let err = tempfile::NamedTempFile::new().expect("tmp");
    let mut cmd: Command = s.kubectl_cmd(&["port-forward", "pod/web", "18083:9999"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().expect("reopen"));
    let mut child: Child = cmd.spawn().expect("kubectl port-forward");
    // The listener is up once kubectl forwards; a connection then fails at the pod's end.
    let text = s.eventually("kubectl's report of the refused port", || {
        let _ = fetch(&s, 18083);
        let text = std::fs::read_to_string(err.path()).unwrap_or_default();
        text.contains("connection refused").then_some(text)
    });
    assert!(
        text.contains("error forwarding port 9999 to pod")
            && text.contains("failed to connect to localhost:9999 inside namespace")
            && text.contains("dial tcp4 127.0.0.1:9999: connect: connection refused"),
        "{text}"
    );
    let _ = child.kill();
    wait_or_kill(&mut child, Duration::from_secs(10));
}

/// A client that vanishes (kubectl killed) takes its connections in the pod with it, even
/// when the pod's program never closes its end: no socket or task of the node is left behind.
#[test]
fn a_vanished_client_leaves_no_connection_in_the_pod() {
    let marker = format!("sink-{}", std::process::id());
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: sink}}
spec:
  runtimeClassName: paddock-host
  terminationGracePeriodSeconds: 1
  containers:
  - name: sink
    image: python:3.11
    command:
    - python3
    - -c
    - |
      import socket, sys
      # {marker}: accepts connections and never reads or closes them.
      s = socket.socket(); s.bind(("127.0.0.1", 9000)); s.listen(16)
      held = []
      while True:
          held.append(s.accept()[0])
"#
    );
    let (_dir, path) = manifest("sink.yaml", &pod);
    let s = Server::up(&[&path]);
    s.kubectl(&["wait", "--for=condition=Ready", "pod/sink", "--timeout=60s"]);
    let pid = s.eventually("the pod's process", || {
        let out = run(
            {
                let mut c = Command::new("pgrep");
                c.args(["-f", &marker]);
                c
            },
            None,
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .map(str::to_string)
    });
    // The node's sockets in the pod's network namespace.
    let node_sockets = || {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/proc/{pid}/ns/net"))
            .args(["ss", "-tnpH", "dst", "127.0.0.1:9000"]);
        let out = run(c, None);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"paddock\""))
            .count()
    };
    let pf = forward(&s, "pod/sink", "18090:9000", true);
    let mut curl = s.command("curl");
    curl.args(["-s", "--max-time", "2", "http://127.0.0.1:18090/"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut curl = curl.spawn().expect("curl");
    s.eventually("the forwarded connection in the pod", || {
        (node_sockets() > 0).then_some(())
    });
    let _ = curl.wait();
    drop(pf);
    s.eventually(
        "no node socket left in the pod after kubectl is gone",
        || (node_sockets() == 0).then_some(()),
    );
}
