//! `kubectl attach` and `kubectl run -i --rm` through the API server to the node agent: the
//! running container's live output, and the client's input on its stdin (`stdinOnce` closes it
//! when the client's input ends, so a program reading to end of input finishes, and `--rm`
//! then deletes the pod); a container that ignores its stdin never holds up its output, in
//! attach or exec.

use crate::support::{Server, Streaming, manifest};

const TICKER: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: tick
    image: busybox
    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo tick $i; echo warn $i >&2; sleep 0.2; done']
---
apiVersion: v1
kind: Pod
metadata: {name: reader}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: read
    image: busybox
    stdin: true
    stdinOnce: true
    command: [sh, -c, 'while read l; do echo "got $l"; done; echo "input ended"']
---
apiVersion: v1
kind: Pod
metadata: {name: deaf}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: deaf
    image: busybox
    stdin: true
    command: [sh, -c, 'i=0; while true; do i=$((i+1)); echo deaf $i; sleep 0.2; done']
"#;

#[test]
fn kubectl_run_interactive_feeds_stdin_prints_output_and_removes_the_pod() {
    let s = Server::up(&[]);
    let out = s.kubectl_in(
        &[
            "run",
            "catter",
            "-i",
            "--rm",
            "--restart=Never",
            "--image=busybox",
            "--command",
            "--",
            "sh",
            "-c",
            "while read l; do echo \"echo: $l\"; done",
        ],
        Some("first line\nsecond line\n"),
    );
    assert!(
        out.contains("echo: first line\necho: second line\n"),
        "kubectl run output:\n{out}"
    );
    assert!(out.contains("pod \"catter\" deleted"), "{out}");
    let (_, err) = s.kubectl_err(&["get", "pod", "catter"], None);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn kubectl_attach_follows_output_and_feeds_stdin_once() {
    let (dir, path) = manifest("pods.yaml", TICKER);
    let s = Server::up(&[&path]);
    s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/ticker",
        "pod/reader",
        "pod/deaf",
        "--timeout=60s",
    ]);

    // Output from now on, stdout and stderr.
    let mut cmd = s.kubectl_cmd(&["attach", "ticker"]);
    cmd.stderr(std::process::Stdio::null());
    let mut attached = Streaming::spawn(cmd);
    let first = attached.wait_for("a tick", |l| l.starts_with("tick "));
    let n: u32 = first["tick ".len()..].parse().expect("tick number");
    attached.wait_for("a later tick", |l| {
        l.strip_prefix("tick ")
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|m| m > n)
    });
    drop(attached);
    // The Python client's `stream` attaches the same way.
    let out = crate::port_forward::python(
        &s,
        r#"
from kubernetes import client, config
from kubernetes.stream import stream
config.load_kube_config()
api = client.CoreV1Api()
resp = stream(api.connect_get_namespaced_pod_attach, "ticker", "default",
              stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
out, err = "", ""
while "tick" not in out or "warn" not in err:
    resp.update(timeout=10)
    out += resp.read_stdout() or ""
    err += resp.read_stderr() or ""
resp.close()
print("python attach ok")
"#,
    );
    assert!(out.contains("python attach ok"), "{out}");

    // A container that never reads its stdin: the client's input fills the pipe (1 MiB
    // against the kernel's 64 KiB) and blocks only the input side; output keeps coming.
    let input = dir.path().join("input");
    let big = "x".repeat(1023) + "\n";
    std::fs::write(&input, big.repeat(1024)).expect("write input");
    let mut cmd = s.kubectl_cmd(&["attach", "-i", "deaf"]);
    cmd.stderr(std::process::Stdio::null());
    let file = std::fs::File::open(&input).expect("open input");
    let mut attached = Streaming::spawn_with_stdin(cmd, file.into());
    let first = attached.wait_for("a line", |l| l.starts_with("deaf "));
    let n: u32 = first["deaf ".len()..].parse().expect("line number");
    attached.wait_for("ten lines later, with the input still blocked", |l| {
        l.strip_prefix("deaf ")
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|m| m > n + 10)
    });
    drop(attached);
    // The same for exec: a command that writes 2 MB and never reads its 1 MiB of input
    // finishes, with all its output.
    let out = s.kubectl_in(
        &[
            "exec",
            "-i",
            "deaf",
            "--",
            "sh",
            "-c",
            "yes 0123456789 | head -c 2000000; echo; echo exec done",
        ],
        Some(&big.repeat(1024)),
    );
    assert!(out.len() > 2_000_000, "exec output: {} bytes", out.len());
    assert!(out.ends_with("exec done\n"), "{}", &out[out.len() - 100..]);

    // Input: with stdinOnce the container's stdin closes when kubectl's input ends.
    let out = s.kubectl_in(&["attach", "-i", "reader"], Some("one\ntwo\n"));
    assert!(out.contains("got one\ngot two\n"), "{out}");
    assert!(out.contains("input ended"), "{out}");
    s.eventually("the reader to complete", || {
        let phase = s.kubectl(&["get", "pod", "reader", "-o", "jsonpath={.status.phase}"]);
        (phase == "Succeeded").then_some(())
    });
}

/// Containers run from their images (runc): stdin is a pipe the agent keeps, or with `tty`
/// the terminal's input.
#[test]
fn kubectl_attach_reaches_the_stdin_of_containers_from_their_images() {
    use crate::images::{RUNC_CLASS, import, layouts, up_with_cgroups};
    let work = tempfile::tempdir().expect("tempdir");
    let layout = layouts(work.path());
    let s = up_with_cgroups();
    import(&s, &layout);
    s.kubectl_in(&["apply", "-f", "-"], Some(RUNC_CLASS));
    let pods = r#"apiVersion: v1
kind: Pod
metadata: {name: piped}
spec:
  runtimeClassName: runc
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: "example.com/demo/busybox:root"
    stdin: true
    stdinOnce: true
    command: [/bin/sh, -c, 'while read l; do echo "got $l"; done; echo input ended']
---
apiVersion: v1
kind: Pod
metadata: {name: terminal}
spec:
  runtimeClassName: runc
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: "example.com/demo/busybox:root"
    stdin: true
    tty: true
    command: [/bin/sh, -c, 'read l; echo "got $l"']
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(pods));
    s.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/piped",
        "pod/terminal",
        "--timeout=90s",
    ]);
    let out = s.kubectl_in(&["attach", "-i", "piped"], Some("one\ntwo\n"));
    assert!(
        out.contains("got one\ngot two\ninput ended"),
        "piped: {out}"
    );
    // No local terminal here: kubectl attaches without one and its input goes to the
    // container's terminal, which echoes it.
    let out = s.kubectl_in(&["attach", "-i", "terminal"], Some("three\n"));
    assert!(out.contains("got three"), "terminal: {out}");
    for pod in ["piped", "terminal"] {
        s.eventually("the pod to complete", || {
            let phase = s.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]);
            (phase == "Succeeded").then_some(())
        });
    }
}

/// `kubectl debug node/NAME`: a pod on that node with the host's filesystem at `/host`,
/// attached to as it runs.
#[test]
fn kubectl_debug_node_sees_the_hosts_filesystem() {
    // Not under /tmp: a host-process pod's private /tmp shows through a hostPath of `/`
    // (see the closing note); a container from an image sees the host's.
    let marker = tempfile::NamedTempFile::new_in("/var/tmp").expect("tmp");
    let secret = format!("debug-marker-{}", std::process::id());
    std::fs::write(marker.path(), &secret).expect("write marker");
    let s = Server::up(&[]);
    let node = s.kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let out = s.kubectl_full(
        &[
            "debug",
            &format!("node/{node}"),
            "-i",
            "--image=busybox",
            "--",
            "sh",
            "-c",
            &format!("sleep 1; cat /host{}", marker.path().display()),
        ],
        Some(""),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains(&secret), "{stdout}\n{stderr}");
}

/// `kubectl debug POD --target`: an ephemeral container added through the
/// `ephemeralcontainers` subresource runs in the pod's namespaces (it sees the target's
/// processes), kubectl attaches to it, and its status is reported apart from the pod's
/// containers, never restarted.
#[test]
fn kubectl_debug_adds_an_ephemeral_container_that_sees_the_target() {
    // A sleep of a length no other test uses: its command line marks the target's process.
    let marker = format!("sleep {}", 1_000_000 + std::process::id());
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: app}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'exec {marker}']
"#
    );
    let (_dir, path) = manifest("app.yaml", &pod);
    let s = Server::up(&[&path]);
    s.kubectl(&["wait", "--for=condition=Ready", "pod/app", "--timeout=60s"]);
    let out = s.kubectl_full(
        &[
            "debug",
            "app",
            "-i",
            "--image=busybox",
            "--target=app",
            "--container=debugger",
            "--",
            "sh",
            "-c",
            "sleep 1; echo from-debugger; ps ax -o args",
        ],
        Some(""),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("from-debugger") && stdout.contains(&marker),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = s.eventually("the ephemeral container to end", || {
        let pod = s.get_json(&["get", "pod", "app"]);
        let st = pod["status"]["ephemeralContainerStatuses"][0].clone();
        st["state"]["terminated"].is_object().then_some(pod)
    });
    assert_eq!(status["spec"]["ephemeralContainers"][0]["name"], "debugger");
    let st = &status["status"]["ephemeralContainerStatuses"][0];
    assert_eq!(st["state"]["terminated"]["exitCode"], 0, "{st}");
    assert_eq!(st["restartCount"], 0);
    assert_eq!(
        status["status"]["containerStatuses"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // Existing ephemeral containers cannot be removed (upstream's 422).
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "pod",
            "app",
            "--subresource=ephemeralcontainers",
            "--type=json",
            "-p",
            r#"[{"op": "remove", "path": "/spec/ephemeralContainers/0"}]"#,
        ],
        None,
    );
    assert!(
        err.contains("existing ephemeral containers \"debugger\" may not be removed"),
        "{err}"
    );
}
