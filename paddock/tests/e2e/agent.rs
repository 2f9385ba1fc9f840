//! `paddock agent`: a node joining a `paddock server` that runs in another process, by
//! kubeconfig or by `--server`/`--token`/`--certificate-authority`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{NetNs, Server, manifest, run, wait_or_kill};

/// Starts `paddock agent <args>` inside the server's namespace; waits for its "joined" line.
fn agent(s: &Server, dir: &std::path::Path, args: &[&str]) -> Child {
    let mut cmd = s.command(env!("CARGO_BIN_EXE_paddock"));
    cmd.arg("agent")
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
    cmd.args(["agent", "--data-dir"])
        .arg(dir.path())
        .env_remove("KUBECONFIG");
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pass --kubeconfig FILE, or --server URL --token TOKEN"),
        "{err}"
    );
}
