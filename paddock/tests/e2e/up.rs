//! `paddock up -f`: the main job, seen from the outside.

use crate::support::{Server, manifest, run};

#[test]
fn up_applies_files_and_kubectl_sees_them() {
    let (_d, path) = manifest(
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: '1'}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n",
    );
    let s = Server::up(&[&path]);
    assert_eq!(
        s.kubectl(&["get", "cm", "cfg", "-o", "jsonpath={.data.a}"]),
        "1"
    );
    let svc = s.get_json(&["get", "svc", "web", "--show-managed-fields"]);
    assert_eq!(
        svc["spec"]["ports"][0]["targetPort"], 80,
        "server-side defaulting"
    );
    let managers: Vec<&str> = svc["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"paddock"), "{managers:?}");
}

#[test]
fn up_with_a_bad_document_names_file_document_and_field_and_applies_nothing() {
    let (dir, path) = manifest(
        "app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: main\n    image: x\n    command: [sleep, '60']\n    livenessProbe:\n      exec: {command: [cat, /tmp/x]}\n      successThreshold: 2\n",
    );
    let data = dir.path().join("data");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args([
        "up",
        "--default-runtime",
        "host",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(&data)
    .arg("-f")
    .arg(&path);
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}: document 2 (Pod \"p\"): spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
        path.display()
    );
    assert!(err.contains(&want), "want {want:?} in:\n{err}");
    assert!(err.contains("nothing was applied"), "{err}");

    let (_, garbage) = manifest("bad.yaml", "kind: [unclosed\n");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args([
        "up",
        "--default-runtime",
        "host",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(&data)
    .arg("-f")
    .arg(&garbage);
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&garbage.display().to_string()), "{err}");
}

#[test]
fn up_runs_the_example_pods_ready_and_reachable_then_cleans_up() {
    let example = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/hello.yaml"
    ));
    let s = Server::up(&[example]);
    // Both replicas become Ready: the readiness probe (httpGet on the named port) passed.
    let ready = s.eventually("two ready hello pods", || {
        let out = s.kubectl(&[
            "get", "pods", "-l", "app=hello", "-o",
            "jsonpath={range .items[*]}{.status.podIP} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        let rows: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())))
            .collect();
        (rows.len() == 2 && rows.iter().all(|(ip, r)| !ip.is_empty() && r == "True")).then_some(rows)
    });
    assert_ne!(ready[0].0, ready[1].0, "each pod has its own IP");
    for (ip, _) in &ready {
        let mut curl = s.command("curl");
        curl.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{ip}:8080/"),
        ]);
        let out = run(curl, None);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "pod {ip} serves"
        );
    }
    // The Service's ClusterIP routes to the ready pods (Endpoints, EndpointSlices, proxy).
    let cluster_ip = s.kubectl(&["get", "svc", "hello", "-o", "jsonpath={.spec.clusterIP}"]);
    let endpoints = s.eventually("both pods in the Endpoints", || {
        let out = s.kubectl(&[
            "get",
            "endpoints",
            "hello",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ]);
        (out.split_whitespace().count() == 2).then_some(out)
    });
    for (ip, _) in &ready {
        assert!(endpoints.contains(ip.as_str()), "{endpoints}");
    }
    for _ in 0..10 {
        let mut curl = s.command("curl");
        curl.args([
            "-s",
            "-m",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{cluster_ip}/"),
        ]);
        let out = run(curl, None);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "service {cluster_ip}"
        );
    }
    let node = s.kubectl(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(node, "True");

    // Deleting a pod: the ReplicaSet replaces it.
    let first = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=hello",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    let first_uid = s.kubectl(&["get", "pod", &first, "-o", "jsonpath={.metadata.uid}"]);
    s.kubectl(&["delete", "pod", &first]);
    s.eventually("a replacement pod", || {
        let out = s.kubectl(&["get", "pods", "-l", "app=hello", "-o", "name"]);
        (out.lines().count() == 2 && !out.contains(&first)).then_some(())
    });
    // The deleted pod left nothing behind: no mount of its own, no veth beyond the two
    // running pods', no process beyond the two running servers.
    s.eventually("the replacement running", || {
        let out = s.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=hello",
            "-o",
            "jsonpath={.items[*].status.phase}",
        ]);
        (out == "Running Running").then_some(())
    });
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    assert!(
        !mounts.contains(&first_uid),
        "mounts of the deleted pod remain"
    );
    let mut veths = s.command("ip");
    veths.args(["-o", "link", "show", "type", "veth"]);
    let veths = String::from_utf8_lossy(&run(veths, None).stdout)
        .lines()
        .count();
    assert_eq!(veths, 2, "one veth per running pod");
    let mut servers = std::process::Command::new("pgrep");
    servers.args(["-f", "^python3 -m http.server 8080$"]);
    let servers = String::from_utf8_lossy(&run(servers, None).stdout)
        .lines()
        .count();
    assert_eq!(servers, 2, "one server process per running pod");
    let logs = s.kubectl(&["logs", "deployment/hello", "--tail=1"]);
    assert!(logs.contains("GET / HTTP/1.1\" 200"), "{logs}");

    // kubectl exec runs in the pod (its own hostname) and returns the command's exit code.
    let pod = s.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=hello",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    assert_eq!(
        s.kubectl(&["exec", &pod, "--", "cat", "/etc/hostname"])
            .trim(),
        pod
    );
    let out = s.kubectl_full(&["exec", &pod, "--", "sh", "-c", "echo out; exit 3"], None);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(
        s.kubectl_in(&["exec", "-i", &pod, "--", "cat"], Some("piped\n")),
        "piped\n"
    );
}

#[test]
fn up_serves_the_health_check_node_port_of_a_local_load_balancer() {
    let (_d, path) = manifest(
        "lb.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: python:3.11
        # Not hello.yaml's exact command line: another test counts those processes.
        command: ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /, port: http}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"#,
    );
    let s = Server::up(&[&path]);
    let hc = s.kubectl(&[
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.healthCheckNodePort}",
    ]);
    assert!(!hc.is_empty(), "healthCheckNodePort allocated");
    // What an external load balancer asks each node: 200 with the local endpoint count once
    // the pod here is ready, 503 once it is gone (kube-proxy's health check server).
    let check = || {
        let mut curl = s.command("curl");
        curl.args([
            "-s",
            "-m",
            "5",
            "-w",
            "\n%{http_code}",
            &format!("http://127.0.0.1:{hc}/"),
        ]);
        String::from_utf8_lossy(&run(curl, None).stdout).into_owned()
    };
    let up = s.eventually("health check says 200", || {
        let out = check();
        out.ends_with("\n200").then_some(out)
    });
    assert!(
        up.starts_with("{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": 1,"),
        "{up}"
    );
    s.kubectl(&["scale", "deployment", "web", "--replicas=0"]);
    let down = s.eventually("health check says 503", || {
        let out = check();
        out.ends_with("\n503").then_some(out)
    });
    assert!(down.contains("\"localEndpoints\": 0,"), "{down}");
}

/// `paddock up` says what happens to the workloads (pods ready, the Deployment's count, where
/// the Service is) and, run again on the same data dir, which objects it left unchanged.
#[test]
fn up_shows_progress_and_says_unchanged_when_run_again() {
    // Not examples/hello.yaml: another test counts that example's server processes.
    let (_d, path) = manifest(
        "hello.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: hello}
spec:
  replicas: 2
  selector: {matchLabels: {app: hello}}
  template:
    metadata: {labels: {app: hello}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: busybox, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{port: 80, targetPort: 8080}]
"#,
    );
    let examples = path.to_str().expect("utf-8 path");
    let s = Server::up(&[&path]);
    let out = s.eventually("the deployment's progress line", || {
        let out = s.stdout();
        out.contains("deployment/hello: 2/2 ready").then_some(out)
    });
    assert!(out.contains("deployment.apps/hello created"), "{out}");
    assert!(out.contains("service/hello created"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("pod/hello-") && l.ends_with(": ready 1/1")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("service/hello: 10.96.") && l.ends_with(":80/TCP")),
        "{out}"
    );
    // Run again on the same data dir: nothing changed.
    let (dir, netns) = s.stop_keep_netns_and_dir();
    let mut args = vec!["up", "-f", examples];
    args.extend(crate::support::host_runtime_unless_chosen(&[]));
    let again = Server::launch_in(dir, &args, Some(netns));
    let out = again.eventually("the second run's apply lines", || {
        let out = again.stdout();
        (out.matches("export KUBECONFIG=").count() == 2 && out.contains("service/hello unchanged"))
            .then_some(out)
    });
    assert!(out.contains("deployment.apps/hello unchanged"), "{out}");
    // Not a terminal: plain lines, no terminal control.
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(out.contains("stopping: the node's pods first"), "{out}");
    assert!(out.contains("\nstopped\n"), "{out}");
}

/// The width the test's terminal is set to (`stty cols`).
const COLUMNS: usize = 160;

/// The lines a terminal `COLUMNS` wide shows of `raw`: the text with the control sequences
/// (CSI: cursor moves, line clears, colours, the cursor's visibility) taken out, split at
/// line ends and, as the terminal wraps, every `COLUMNS` characters (the live view fills each
/// of its lines to the width and lets the terminal wrap, as indicatif does).
fn screen_lines(raw: &str) -> Vec<String> {
    let mut text = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        text.push(c);
    }
    text.split(['\n', '\r'])
        .flat_map(|segment| {
            let chars: Vec<char> = segment.chars().collect();
            chars
                .chunks(COLUMNS)
                .map(|c| c.iter().collect::<String>().trim_end().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect()
}

/// On a terminal (a pseudo-terminal from util-linux `script`), `paddock up` prints the
/// kubeconfig line first, then draws a live block: a row per workload reaching ready/desired,
/// the Service's and the Ingress's addresses; Ctrl-C shows the pods stopping, then
/// `stopped`, and gives the cursor back.
#[test]
fn up_on_a_terminal_shows_a_live_view_and_the_stop() {
    // Each pod takes 5 s to stop after SIGTERM, so the stop has pods left to count.
    let (dir, path) = manifest(
        "live.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: live}
spec:
  replicas: 2
  selector: {matchLabels: {app: live}}
  template:
    metadata: {labels: {app: live}}
    spec:
      terminationGracePeriodSeconds: 20
      containers:
      - name: c
        image: busybox
        command: [sh, -c, 'trap "sleep 5; exit 0" TERM; while true; do sleep 1; done']
---
apiVersion: v1
kind: Service
metadata: {name: live}
spec:
  selector: {app: live}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: live}
spec:
  rules:
  - host: live.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: live, port: {number: 80}}}}
"#,
    );
    let ns = crate::support::NetNs::new();
    let shell = format!(
        "stty cols {COLUMNS} rows 50; exec {bin} up --default-runtime host --listen 127.0.0.1:0 --data-dir {data} -f {file}",
        bin = env!("CARGO_BIN_EXE_paddock"),
        data = dir.path().join("data").display(),
        file = path.display(),
    );
    let mut child = ns
        .wrap("script")
        .args(["-qfec", &shell, "/dev/null"])
        .env("PADDOCK_LOG", "info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn script");
    // What is written here is typed on the terminal.
    let mut keyboard = child.stdin.take().expect("stdin");
    let raw = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let mut pty = child.stdout.take().expect("stdout");
    let reader = {
        let raw = raw.clone();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut buf = [0u8; 8192];
            while let Ok(n) = pty.read(&mut buf) {
                if n == 0 {
                    break;
                }
                raw.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let output = || String::from_utf8_lossy(&raw.lock().unwrap()).into_owned();
    let until = |what: &str, check: &dyn Fn(&[String]) -> bool| {
        let start = std::time::SystemTime::now();
        loop {
            let lines = screen_lines(&output());
            if check(&lines) {
                return lines;
            }
            if start.elapsed().unwrap_or_default() > std::time::Duration::from_secs(120) {
                panic!("{what}: not shown; the terminal got:\n{}", lines.join("\n"));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let lines = until("the deployment 2/2 ready", &|lines| {
        lines.iter().any(|l| {
            l.starts_with("deployment/live ") && l.contains(" 2/2 ") && l.contains(" 2 ready")
        })
    });
    let raw_text = output();
    let export = raw_text
        .find("export KUBECONFIG=")
        .expect("the export line");
    let view = raw_text
        .find("\x1b[?25l")
        .expect("the view hides the cursor");
    assert!(export < view, "the export line comes before the view");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("deployment.apps/live created")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("WORKLOAD ") && l.contains("READY") && l.contains("PODS")),
        "{lines:#?}"
    );
    until("the Service's and the Ingress's addresses", &|lines| {
        lines.iter().any(|l| {
            l.starts_with("service/live ") && l.contains(" 10.96.") && l.ends_with(":80/TCP")
        }) && lines
            .iter()
            .any(|l| l.starts_with("ingress/live ") && l.contains("http://live.example/"))
    });

    // Ctrl-C, typed: the terminal sends SIGINT to paddock (its foreground process).
    use std::io::Write as _;
    keyboard.write_all(b"\x03").expect("type Ctrl-C");
    keyboard.flush().expect("type Ctrl-C");
    let status = crate::support::wait_or_kill(&mut child, std::time::Duration::from_secs(60));
    let _ = reader.join();
    let raw_text = output();
    let lines = screen_lines(&raw_text);
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}; the terminal got:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(
            |l| l.starts_with("stopping: 2 pods left") || l.starts_with("stopping: 1 pod left")
        ),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("stopping: pods stopped; controllers and API server")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l == "stopped"), "{lines:#?}");
    // The terminal echoed no `^C` into the block.
    assert!(!raw_text.contains("^C"), "{lines:#?}");
    // The screen at the end, as a terminal emulator draws it: the log lines above, the last
    // frame once below them, nothing of a misplaced redraw left over.
    let mut terminal = vt100::Parser::new(
        std::num::NonZeroU16::new(50).expect("rows"),
        std::num::NonZeroU16::new(COLUMNS as u16).expect("columns"),
        0,
    );
    terminal.process(raw_text.as_bytes());
    let screen: Vec<String> = terminal
        .screen()
        .rows(0, COLUMNS as u16)
        .map(|r| r.trim_end().to_string())
        .collect();
    let shown: Vec<&String> = screen.iter().filter(|r| !r.is_empty()).collect();
    assert!(!terminal.screen().hide_cursor(), "the cursor is shown");
    let headers = shown.iter().filter(|r| r.starts_with("WORKLOAD ")).count();
    assert_eq!(headers, 1, "{shown:#?}");
    assert_eq!(
        shown.last().map(|r| r.as_str()),
        Some("stopped"),
        "{shown:#?}"
    );
    let block = shown
        .iter()
        .position(|r| r.starts_with("WORKLOAD "))
        .expect("header");
    assert_eq!(
        shown[block..]
            .iter()
            .map(|r| r.split("  ").next().unwrap_or(""))
            .collect::<Vec<_>>(),
        [
            "WORKLOAD",
            "deployment/live",
            "service/live",
            "ingress/live",
            "stopped"
        ],
        "{shown:#?}"
    );
    // Above it, whole log lines (timestamps first), the export line among them.
    assert!(
        shown[..block]
            .iter()
            .any(|r| r.starts_with("export KUBECONFIG="))
    );
    assert!(
        shown[..block]
            .iter()
            .all(|r| !r.contains(" INFO ") || r.starts_with("20")),
        "{shown:#?}"
    );
    let hidden = raw_text.rfind("\x1b[?25l").expect("hidden");
    let shown = raw_text
        .rfind("\x1b[?25h")
        .expect("the cursor is shown again");
    assert!(shown > hidden, "the cursor is shown again at the end");
    drop(ns);
}

/// Pods get none of the descriptors `paddock up` inherited (here fd 7, opened by the shell
/// that starts it without close-on-exec), and a stop that comes while pods are still starting
/// leaves nothing of them behind: no holder process, no mount, no pod directory — whatever
/// their workers were in the middle of when the shutdown took its list of pods to stop.
#[test]
fn up_gives_pods_none_of_its_descriptors_and_a_stop_mid_start_leaves_nothing() {
    let (_d, path) = manifest(
        "fds.yaml",
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: fds}
spec:
  replicas: 1
  selector: {matchLabels: {app: fds}}
  template:
    metadata: {labels: {app: fds}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - {name: c, image: busybox, command: [sh, -c, "ls /proc/self/fd | tr '\\n' ' '; echo; exec sleep 3600"]}
"#,
    );
    let file = path.to_str().expect("utf-8 path");
    let mut args = vec!["up", "-f", file];
    args.extend(crate::support::host_runtime_unless_chosen(&[]));
    let s = Server::launch_wrapped(
        tempfile::tempdir().expect("tempdir"),
        &["sh", "-c", "exec 7</dev/null; exec \"$@\"", "sh"],
        &args,
        Some(crate::support::NetNs::new()),
    );
    let fds = s.eventually("the pod's list of its descriptors", || {
        let out = s.kubectl_full(&["logs", "deployment/fds"], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.success() && !text.trim().is_empty()).then_some(text)
    });
    // ls's own: stdin, stdout, stderr and the directory it reads.
    assert_eq!(fds.trim(), "0 1 2 3", "the container's descriptors");

    // Many pods at once, and the stop while most of them start.
    s.kubectl(&["scale", "deployment/fds", "--replicas=30"]);
    s.eventually("a second pod running", || {
        let out = s.kubectl(&[
            "get",
            "pods",
            "-l",
            "app=fds",
            "--field-selector=status.phase=Running",
            "-o",
            "name",
        ]);
        (out.lines().count() >= 2).then_some(())
    });
    let data = s.data_dir();
    let dir = s.stop();
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let data_text = data.to_string_lossy().into_owned();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(data_text.as_str()))
        .collect();
    assert!(left.is_empty(), "mounts left under the data dir: {left:#?}");
    let pods = data.join("node").join("pods");
    let dirs: Vec<String> = std::fs::read_dir(&pods)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    // A holder names its sandbox in its environment: none of this node's runs on.
    let holders: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|p| std::fs::read(p.path().join("environ")).ok())
        .filter_map(|env| {
            env.split(|b| *b == 0)
                .filter_map(|v| v.strip_prefix(b"PADDOCK_SANDBOX_ID="))
                .map(|id| String::from_utf8_lossy(id).into_owned())
                .find(|id| dirs.contains(id))
        })
        .collect();
    assert!(holders.is_empty(), "holders still running: {holders:?}");
    assert!(dirs.is_empty(), "pod directories left: {dirs:?}");
    drop(dir);
}

/// At the stop, a pod gets its own `terminationGracePeriodSeconds` when it is shorter than the
/// node's 30 s, as the kubelet's node shutdown manager gives it: a container that ignores
/// SIGTERM is killed after its pod's 2 s, and the stop does not wait out the node's budget.
#[test]
fn up_stops_each_pod_within_its_own_grace_period() {
    let (_d, path) = manifest(
        "stubborn.yaml",
        r#"apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {name: c, image: busybox, command: [sh, -c, "trap '' TERM; echo up; while true; do sleep 1; done"]}
"#,
    );
    let s = Server::up(&[&path]);
    s.eventually("the pod running", || {
        let out = s.kubectl_full(&["logs", "stubborn"], None);
        String::from_utf8_lossy(&out.stdout)
            .contains("up")
            .then_some(())
    });
    let started = tokio::time::Instant::now();
    drop(s.stop());
    let took = started.elapsed();
    // 2 s of grace, then SIGKILL; the node's 30 s budget would make it 30 s or more. The
    // margin is wide on purpose: only which of the two periods applied is checked.
    assert!(
        took < std::time::Duration::from_secs(20),
        "the stop took {took:?}"
    );
}
