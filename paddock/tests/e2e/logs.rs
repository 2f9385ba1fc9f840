//! Container logs end to end: a pod writing as fast as it can (`yes`) neither stalls the
//! control plane nor fills the node's disk (the kubelet's 10 MiB × 5 files bound, applied as
//! it writes), and `kubectl logs` serves terminated instances as the kubelet does — a completed
//! `restartPolicy: Never` pod until it is deleted, `--previous` after a restart, the last
//! terminated instance while a container waits in CrashLoopBackOff.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::support::{Server, manifest};

/// Bytes allocated on disk (not apparent sizes: a hole-punched file counts what it holds).
fn disk_usage(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = e.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total += meta.blocks() * 512;
            }
        }
    }
    total
}

fn wait_phase(s: &Server, pod: &str, phase: &str) {
    s.eventually(&format!("{pod} {phase}"), || {
        let got = s.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]);
        (got == phase).then_some(())
    });
}

const FLOOD: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: flood}
spec:
  restartPolicy: Never
  containers:
  - name: flood
    image: busybox
    command: [timeout, "120", "yes"]
"#;

/// What the kubelet keeps per container: `containerLogMaxFiles` × `containerLogMaxSize`.
const LOG_BOUND: u64 = 5 * 10 * 1024 * 1024;

#[test]
fn a_pod_writing_as_fast_as_it_can_neither_stalls_the_api_nor_fills_the_disk() {
    let (_d, path) = manifest("flood.yaml", FLOOD);
    let s = Server::up(&[&path]);
    wait_phase(&s, "flood", "Running");
    let node = s.data_dir().join("node");
    // Sample the node's disk use in the background while the API is asked.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let node = node.clone();
        std::thread::spawn(move || {
            let mut max = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(disk_usage(&node));
                if max > LOG_BOUND + 10 * 1024 * 1024 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            max
        })
    };
    // Each round asks twice: a raw `GET /api/v1/pods` and `kubectl get pods` (what the
    // finding measured: a new TLS connection, discovery from its cache, the list).
    let mut took = Vec::new();
    for _ in 0..20 {
        let start = SystemTime::now();
        let (code, body) = s.curl("GET", "/api/v1/pods", Some(&s.token), None, None);
        assert_eq!(code, 200, "GET /api/v1/pods: {body}");
        let curl = start.elapsed().unwrap_or_default();
        let start = SystemTime::now();
        s.kubectl(&["get", "pods"]);
        took.push((curl, start.elapsed().unwrap_or_default()));
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let max = sampler.join().expect("sampler");
    let bound = Duration::from_secs(5);
    let slow = took
        .iter()
        .filter(|(a, b)| *a > bound || *b > bound)
        .count();
    assert_eq!(
        slow, 0,
        "requests slower than 5 s while a pod floods its log: {took:?}"
    );
    assert!(
        max <= LOG_BOUND + 10 * 1024 * 1024,
        "the node's runtime dir reached {max} bytes on disk (bound {LOG_BOUND} + slack)"
    );
    // The bound was reached and held by rotation, not by a slow copier: older files exist.
    let uid = s.kubectl(&["get", "pod", "flood", "-o", "jsonpath={.metadata.uid}"]);
    let dir = node.join("logs").join(&uid).join("flood");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("log dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("0.log.") && f.ends_with(".gz")),
        "rotated and compressed files in {files:?}"
    );
    assert!(files.len() <= 5, "at most 5 files: {files:?}");
    // And the log is served as it is written. A read that lands just after a rotation finds
    // the new file still empty and gets nothing, as from the kubelet (which reads only the
    // current file), or only the one line written so far; a later one has both.
    let tail = s.eventually("the last two lines of the flood", || {
        let out = s.kubectl(&["logs", "flood", "--tail=2"]);
        // Just after a rotation the new file may hold one line yet.
        (out.lines().count() == 2).then_some(out)
    });
    assert_eq!(tail, "y\ny\n");
}

/// The `once` pod (`counting_pod("once", …)`) has succeeded and its log reads as the kubelet
/// serves a finished container's: plain, followed (prints and returns), and no `--previous`.
fn finished_once_logs_as_the_kubelet_serves_them(s: &Server) {
    wait_phase(s, "once", "Succeeded");
    assert_eq!(s.kubectl(&["logs", "once"]), "finished-line\n");
    // Following a finished container prints what it wrote and returns.
    assert_eq!(s.kubectl(&["logs", "-f", "once"]), "finished-line\n");
    let (_, err) = s.kubectl_err(&["logs", "once", "--previous"], None);
    assert!(
        err.contains("previous terminated container \"main\" in pod \"once\" not found"),
        "{err}"
    );
}

/// A pod of restart policy Always whose every instance prints `instance <n>` (n counted in an
/// emptyDir from 0), then runs `then`.
fn counting_pod(name: &str, then: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  volumes: [{{name: data, emptyDir: {{}}}}]
  containers:
  - name: main
    image: busybox
    volumeMounts: [{{name: data, mountPath: /data}}]
    command: [sh, -c, 'n=$(cat /data/n 2>/dev/null || echo 0); echo $((n+1)) > /data/n; echo "instance $n"; {then}']
---
"#
    )
}

const FINISHED: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "echo finished-line"]
---
"#;

#[test]
fn logs_of_terminated_instances_are_served_like_the_kubelet_does() {
    let doc = [
        FINISHED.to_string(),
        // Fails once, then runs on.
        counting_pod("restarted", r#"[ "$n" -ge 1 ] && exec sleep 1000; exit 1"#),
        counting_pod("crashing", "exit 1"),
    ]
    .concat();
    let (_d, path) = manifest("pods.yaml", &doc);
    let s = Server::up(&[&path]);
    finished_once_logs_as_the_kubelet_serves_them(&s);

    // Running again after one failure: --previous is the failed instance.
    s.eventually("restarted runs its second instance", || {
        let out = s.kubectl(&[
            "get",
            "pod",
            "restarted",
            "-o",
            "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt}",
        ]);
        let (count, started) = out.split_once(' ')?;
        (count == "1" && !started.is_empty()).then_some(())
    });
    assert_eq!(
        s.kubectl(&["logs", "restarted", "--previous"]),
        "instance 0\n"
    );
    assert_eq!(s.kubectl(&["logs", "restarted"]), "instance 1\n");

    // Waiting in CrashLoopBackOff: both the current and the previous log are the last
    // terminated instance (the status's lastState), as the kubelet's validateContainerLogStatus
    // picks them.
    let (count, current, previous) = s.eventually("crashing backs off", || {
        let status = || {
            s.kubectl(&[
                "get",
                "pod",
                "crashing",
                "-o",
                "jsonpath={.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.waiting.reason}",
            ])
        };
        let before = status();
        let (count, reason) = before.split_once(' ')?;
        if reason != "CrashLoopBackOff" {
            return None;
        }
        let current = s.kubectl(&["logs", "crashing"]);
        let previous = s.kubectl(&["logs", "crashing", "--previous"]);
        // Only an answer given during one back-off counts.
        (status() == before).then(|| (count.to_string(), current, previous))
    });
    assert_eq!(current, format!("instance {count}\n"));
    assert_eq!(previous, format!("instance {count}\n"));

    // Deleting a pod removes its logs.
    let uid = s.kubectl(&["get", "pod", "once", "-o", "jsonpath={.metadata.uid}"]);
    let logs = s.data_dir().join("node").join("logs").join(&uid);
    assert!(
        logs.exists(),
        "{} kept until the pod is deleted",
        logs.display()
    );
    s.kubectl(&["delete", "pod", "once", "--wait=true"]);
    s.eventually("once's logs removed", || (!logs.exists()).then_some(()));
}

/// A node agent that starts again (here after a crash) serves the logs of pods that had
/// finished before it started, as a kubelet does, until they are deleted; the logs of pods
/// that are gone are removed at its first listing (the kubelet's housekeeping).
#[test]
fn a_restarted_node_serves_finished_pods_logs_until_they_are_deleted() {
    let (_d, path) = manifest("once.yaml", FINISHED);
    let file = path.display().to_string();
    let s = Server::up(&[&path]);
    wait_phase(&s, "once", "Succeeded");
    let uid = s.kubectl(&["get", "pod", "once", "-o", "jsonpath={.metadata.uid}"]);
    let (dir, netns) = s.kill9_keep_netns();
    // What a pod deleted while no agent ran would leave.
    let logs = dir.path().join("data").join("node").join("logs");
    let orphan = logs.join("0b6c0e0e-0000-4000-8000-000000000000");
    std::fs::create_dir_all(orphan.join("main")).expect("orphan dir");
    std::fs::write(orphan.join("main").join("0.log"), "x\n").expect("orphan log");

    let s = Server::launch_in(
        dir,
        &["up", "--default-runtime", "host", "-f", &file],
        Some(netns),
    );
    finished_once_logs_as_the_kubelet_serves_them(&s);
    s.eventually("the orphan's logs removed", || {
        (!orphan.exists()).then_some(())
    });
    let kept = logs.join(&uid);
    assert!(
        kept.exists(),
        "{} kept until the pod is deleted",
        kept.display()
    );
    s.kubectl(&["delete", "pod", "once", "--wait=true"]);
    s.eventually("once's logs removed", || (!kept.exists()).then_some(()));
}
