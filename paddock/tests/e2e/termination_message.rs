//! Termination messages as the kubelet reports them, modelled on the "should report
//! termination message …" conformance cases of kubernetes test/e2e/common/node/runtime.go: the
//! file at `terminationMessagePath` (default and custom paths), `FallbackToLogsOnError` taking
//! the end of the log only when the file is empty and the container failed, and `lastState`
//! keeping the previous instance's message (each instance gets a file of its own).

use crate::support::{Server, manifest};

/// One `restartPolicy: Never` pod running `script` in busybox, with extra container fields.
fn pod(name: &str, script: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: termination-message-container\n    image: busybox\n    command: [/bin/sh, -c]\n    args: ['{script}']\n{extra}---\n"
    )
}

const FALLBACK: &str = "    terminationMessagePolicy: FallbackToLogsOnError\n";

/// Every instance writes `run-<n>-<bytes it found in its file>`; the first fails, the second
/// succeeds, so the pod (OnFailure) ends with both messages in its status.
const RESTARTED: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: restarted}
spec:
  restartPolicy: OnFailure
  volumes: [{name: data, emptyDir: {}}]
  containers:
  - name: main
    image: busybox
    volumeMounts: [{name: data, mountPath: /data}]
    command: [/bin/sh, -c]
    args: ['n=$(cat /data/n 2>/dev/null || echo 0); echo $((n+1)) > /data/n; echo -n "run-$n-$(wc -c < /dev/termination-log)" > /dev/termination-log; [ "$n" -ge 1 ]']
"#;

#[test]
fn termination_messages_are_reported_like_the_kubelet_does() {
    let cases = [
        // (pod, script, extra fields, phase, message)
        (
            "default-path",
            "/bin/echo -n DONE > /dev/termination-log",
            "",
            "Succeeded",
            "DONE",
        ),
        (
            "custom-path",
            "/bin/echo -n DONE > /dev/termination-custom-log",
            "    terminationMessagePath: /dev/termination-custom-log\n    securityContext: {runAsUser: 10000}\n",
            "Succeeded",
            "DONE",
        ),
        (
            "from-logs",
            "/bin/echo -n DONE; /bin/false",
            FALLBACK,
            "Failed",
            "DONE",
        ),
        (
            "empty-on-success",
            "/bin/echo -n DONE; /bin/true",
            FALLBACK,
            "Succeeded",
            "",
        ),
        (
            "file-on-success",
            "/bin/echo -n OK > /dev/termination-log; /bin/echo DONE; /bin/true",
            FALLBACK,
            "Succeeded",
            "OK",
        ),
        // The file wins over the log on failure too (the logs are read only when it is empty).
        (
            "file-on-failure",
            "/bin/echo -n OK > /dev/termination-log; /bin/echo DONE; /bin/false",
            FALLBACK,
            "Failed",
            "OK",
        ),
    ];
    let mut doc: String = cases
        .iter()
        .map(|(name, script, extra, _, _)| pod(name, script, extra))
        .collect();
    doc.push_str(RESTARTED);
    let (_d, path) = manifest("pods.yaml", &doc);
    let s = Server::up(&[&path]);

    for (name, _, _, phase, want) in cases {
        let got = s.eventually(&format!("{name} finished"), || {
            let out = s.kubectl(&[
                "get",
                "pod",
                name,
                "-o",
                "jsonpath={.status.phase}|{.status.containerStatuses[0].state.terminated.message}",
            ]);
            let (p, m) = out.split_once('|')?;
            (p == "Succeeded" || p == "Failed").then(|| (p.to_string(), m.to_string()))
        });
        assert_eq!(
            (got.0.as_str(), got.1.as_str()),
            (phase, want),
            "pod {name}"
        );
    }

    let got = s.eventually("restarted succeeded on its second run", || {
        let out = s.kubectl(&[
            "get",
            "pod",
            "restarted",
            "-o",
            "jsonpath={.status.phase}|{.status.containerStatuses[0].state.terminated.message}|{.status.containerStatuses[0].lastState.terminated.message}|{.status.containerStatuses[0].lastState.terminated.exitCode}",
        ]);
        out.starts_with("Succeeded|").then_some(out)
    });
    assert_eq!(got, "Succeeded|run-1-0|run-0-0|1");
    assert!(
        !std::path::Path::new("/dev/termination-log").exists()
            && !std::path::Path::new("/dev/termination-custom-log").exists(),
        "nothing is written to the node's /dev"
    );

    // Deleting the pods leaves no termination-log file behind (checked after a SIGKILL, so
    // the agent's shutdown cleans nothing up).
    s.kubectl(&["delete", "pod", "--all", "--wait=true"]);
    let dir = s.kill9();
    let mut left = Vec::new();
    let mut stack = vec![dir.path().join("data")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            if p.to_string_lossy().contains("termination") {
                left.push(p);
            }
        }
    }
    assert_eq!(left, Vec::<std::path::PathBuf>::new());
}
