//! `paddock agent`: a node joining a `paddock server` that runs in another process, by
//! kubeconfig (`token:` or `tokenFile:`) or by `--server`/`--certificate-authority` with
//! `--token-file`, `$PADDOCK_TOKEN` or `--token`; its own API (logs, exec) lets in only the
//! API server's client certificate and the node's token.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{NetNs, Server, manifest, run, wait_or_kill};

/// Starts `paddock agent <args>` inside the server's namespace; waits for its "joined" line.
fn agent(s: &Server, dir: &std::path::Path, args: &[&str]) -> Child {
    let mut cmd = s.command(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["agent", "--default-runtime", "host"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("PADDOCK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
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
            panic!("paddock agent did not join within 60 s");
        }
    }
    child
}

fn running(marker: &str) -> usize {
    let out = run(
        {
            let mut c = std::process::Command::new("pgrep");
            c.args(["-f", marker]);
            c
        },
        None,
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn an_agent_in_its_own_process_runs_pods_of_a_separate_server() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server"],
        Some(NetNs::new()),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = s.kubeconfig.display().to_string();
    let mut a = agent(
        &s,
        dir.path(),
        &["--kubeconfig", &kubeconfig, "--node-name", "worker-1"],
    );
    s.eventually("node worker-1 Ready", || {
        let st = s.kubectl(&[
            "get",
            "node",
            "worker-1",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (st == "True").then_some(())
    });
    // A command line no other test runs, to find the pod's processes on the machine.
    let marker = format!("sleep 86401.{}", std::process::id());
    let (_m, path) = manifest(
        "agent.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: sleeper}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: sleeper}}}}\n  template:\n    metadata: {{labels: {{app: sleeper}}}}\n    spec:\n      terminationGracePeriodSeconds: 5\n      containers:\n      - name: main\n        image: busybox\n        command: [sh, -c, 'echo started; exec {marker}']\n        readinessProbe: {{exec: {{command: ['true']}}, periodSeconds: 1}}\n"
        ),
    );
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    s.eventually("two ready pods on worker-1", || {
        let out = s.kubectl(&[
            "get", "pods", "-l", "app=sleeper", "-o",
            "jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        (out.lines().filter(|l| *l == "worker-1 True").count() == 2).then_some(())
    });
    assert_eq!(running(&marker), 2);
    // Logs and exec go from the API server to this agent's own API.
    assert_eq!(s.kubectl(&["logs", "deployment/sleeper"]).trim(), "started");
    let (code, _) = s.kubectl_err(
        &["exec", "deployment/sleeper", "--", "sh", "-c", "exit 3"],
        None,
    );
    assert_eq!(code, 3);

    // SIGTERM: the agent stops its pods gracefully and exits.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal agent");
    let status = wait_or_kill(&mut a, Duration::from_secs(40)).expect("agent exited");
    assert!(status.success(), "{status:?}");
    assert_eq!(
        running(&marker),
        0,
        "pods left running after the agent stopped"
    );

    // Rejoined with --server/--token/--certificate-authority, the node runs the pods again.
    let ca = s.kubeconfig.with_file_name("ca.crt").display().to_string();
    let mut a = agent(
        &s,
        dir.path(),
        &[
            "--server",
            &s.url,
            "--token",
            &s.token,
            "--certificate-authority",
            &ca,
            "--node-name",
            "worker-1",
        ],
    );
    s.eventually("the pods run again", || {
        (running(&marker) == 2).then_some(())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal agent");
    wait_or_kill(&mut a, Duration::from_secs(40));
    assert_eq!(running(&marker), 0);
}

#[test]
fn an_agent_with_a_wrong_token_says_so_and_exits() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = s.kubeconfig.with_file_name("ca.crt").display().to_string();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args([
        "agent",
        "--server",
        &s.url,
        "--token",
        "wrong",
        "--certificate-authority",
        &ca,
    ])
    .arg("--data-dir")
    .arg(dir.path());
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot reach the API server at {}", s.url)) && err.contains("401"),
        "{err}"
    );
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["agent", "--default-runtime", "host", "--data-dir"])
        .arg(dir.path())
        .env_remove("KUBECONFIG");
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "pass --kubeconfig FILE, or --server URL with --token-file FILE or $PADDOCK_TOKEN"
        ),
        "{err}"
    );
}

/// The agent's port as its Node reports it.
fn agent_port(s: &Server, node: &str) -> String {
    s.kubectl(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ])
}

/// `curl` of the agent API at 127.0.0.1:`port` inside the server's namespace, verifying its
/// certificate with the cluster CA; `extra` are more curl arguments. Returns the HTTP code
/// (0: no HTTP answer, e.g. the agent does not speak TLS) and the body.
fn curl_agent(s: &Server, port: &str, path: &str, extra: &[&str]) -> (u16, String) {
    let mut cmd = s.command("curl");
    cmd.args([
        "-sS",
        "--http1.1",
        "-m",
        "10",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "--cacert",
    ])
    .arg(s.data_dir().join("ca.crt"))
    .args(extra)
    .arg(format!("https://127.0.0.1:{port}{path}"));
    let out = run(cmd, None);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A kubeconfig whose user is a `tokenFile:` (a normal kubeconfig form): the agent must read
/// the token from the file for its own API, and never serve that API without credentials —
/// an unauthenticated exec into a pod was a root shell.
#[test]
fn an_agent_with_a_token_file_kubeconfig_lets_no_one_in_without_credentials() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server"],
        Some(NetNs::new()),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &s.token).expect("token file");
    let text = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    let ca = crate::support::yaml_field(&text, "certificate-authority-data:").expect("ca");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: u\n  user:\n    tokenFile: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            s.url,
            token_file.display()
        ),
    )
    .expect("kubeconfig");
    let mut a = agent(
        &s,
        &dir.path().join("data"),
        &[
            "--kubeconfig",
            &kubeconfig.display().to_string(),
            "--node-name",
            "worker-1",
        ],
    );
    let (_m, path) = manifest(
        "p.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: shell}\nspec:\n  nodeName: worker-1\n  terminationGracePeriodSeconds: 1\n  containers:\n  - {name: main, image: busybox, command: [sh, -c, 'echo up; exec sleep 3600']}\n",
    );
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    s.eventually("pod shell running", || {
        let phase = s.kubectl(&["get", "pod", "shell", "-o", "jsonpath={.status.phase}"]);
        (phase == "Running").then_some(())
    });
    let port = agent_port(&s, "worker-1");
    // No plain HTTP at all.
    let mut plain = s.command("curl");
    plain
        .args(["-sS", "-m", "10", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/healthz"));
    let out = String::from_utf8_lossy(&run(plain, None).stdout).into_owned();
    assert!(!out.ends_with("200"), "plain HTTP answered: {out}");
    // Nothing without credentials: not health, not logs, not an exec upgrade.
    let upgrade = [
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "-H",
        "Sec-WebSocket-Protocol: v5.channel.k8s.io",
    ];
    for (path, extra) in [
        ("/healthz", &[][..]),
        ("/containerLogs/default/shell/main", &[][..]),
        (
            "/exec/default/shell/main?command=id&stdout=true",
            &upgrade[..],
        ),
    ] {
        let (code, body) = curl_agent(&s, &port, path, extra);
        assert_eq!(code, 401, "{path}: {body}");
    }
    let wrong = ["-H", "Authorization: Bearer wrong"];
    assert_eq!(curl_agent(&s, &port, "/healthz", &wrong).0, 401);
    // The token from the file is accepted (the agent's own credential).
    let bearer = format!("Authorization: Bearer {}", s.token);
    let (code, body) = curl_agent(
        &s,
        &port,
        "/containerLogs/default/shell/main",
        &["-H", &bearer],
    );
    assert_eq!((code, body.as_str()), (200, "up\n"));
    // And the API server gets in with its client certificate, no token needed.
    assert_eq!(s.kubectl(&["logs", "shell"]), "up\n");
    assert_eq!(s.kubectl(&["exec", "shell", "--", "echo", "in"]), "in\n");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal agent");
    wait_or_kill(&mut a, Duration::from_secs(40));
}

/// `--token-file` and `$PADDOCK_TOKEN` keep the token off the command line (where every user
/// sees it in `ps`); `--help` says so; no error prints the token.
#[test]
fn the_agent_token_comes_from_a_file_or_the_environment_and_is_never_shown() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server"],
        Some(NetNs::new()),
    );
    let help = run(
        {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"));
            c.args(["agent", "--help"]);
            c
        },
        None,
    );
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--token-file <FILE>") && help.contains("PADDOCK_TOKEN"),
        "{help}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = s.data_dir().join("ca.crt").display().to_string();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &s.token).expect("token file");
    let common = |name: &str| -> Vec<String> {
        [
            "--server",
            &s.url,
            "--certificate-authority",
            &ca,
            "--node-name",
            name,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let mut args = common("from-file");
    args.extend(["--token-file".to_string(), token_file.display().to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut a = agent(&s, &dir.path().join("a"), &args);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", a.id())).expect("cmdline");
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&s.token),
        "the token is on the command line"
    );
    s.eventually("node from-file registered", || {
        s.kubectl(&["get", "nodes", "-o", "name"])
            .contains("node/from-file")
            .then_some(())
    });
    let _ = a.kill();
    let _ = a.wait();

    // From the environment.
    let args = common("from-env");
    let mut cmd = s.command(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["agent", "--default-runtime", "host"])
        .args(&args)
        .arg("--data-dir")
        .arg(dir.path().join("b"))
        .env("PADDOCK_TOKEN", &s.token)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut b = cmd.spawn().expect("spawn agent");
    s.eventually("node from-env registered", || {
        s.kubectl(&["get", "nodes", "-o", "name"])
            .contains("node/from-env")
            .then_some(())
    });
    let _ = b.kill();
    let _ = b.wait();

    // A wrong token is reported without being shown; so is a missing file.
    let secret = "wrong-secret-4c1b";
    std::fs::write(&token_file, secret).expect("token file");
    for extra in [
        vec!["--token-file".to_string(), token_file.display().to_string()],
        vec!["--token-file".to_string(), "/nonexistent/token".to_string()],
    ] {
        let mut cmd = s.command(env!("CARGO_BIN_EXE_paddock"));
        cmd.args(["agent", "--default-runtime", "host"])
            .args(common("bad"))
            .args(&extra)
            .arg("--data-dir")
            .arg(dir.path().join("c"));
        let out = run(cmd, None);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains(secret), "{err}");
        assert!(
            err.contains("401") || err.contains("/nonexistent/token"),
            "{err}"
        );
    }
}
