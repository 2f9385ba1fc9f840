//! Container logs end to end: a pod writing as fast as it can (`yes`) neither stalls the
//! control plane nor fills the node's disk (the kubelet's 10 MiB × 5 files bound, applied as
//! it writes).

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
    s.eventually("flood running", || {
        let phase = s.kubectl(&["get", "pod", "flood", "-o", "jsonpath={.status.phase}"]);
        (phase == "Running").then_some(())
    });
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
    // And the log is served as it is written.
    assert_eq!(s.kubectl(&["logs", "flood", "--tail=2"]), "y\ny\n");
}
