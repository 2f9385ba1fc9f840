//! Restart and crash durability: objects, resourceVersions and watches survive a restart on the
//! same data dir; every write acknowledged with a 2xx survives `kill -9`.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};

use crate::support::Server;

pub(crate) async fn client(s: &Server) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(&s.kubeconfig).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .expect("kube config");
    kube::Client::try_from(cfg).expect("kube client")
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name}, "data": {"n": name}
    }))
    .unwrap()
}

#[test]
fn restart_keeps_objects_resource_versions_and_watch_position() {
    let s = Server::start();
    s.kubectl_in(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one}\ndata: {a: '1'}\n"),
    );
    s.kubectl_in(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: two}\ndata: {b: '2'}\n"),
    );
    let before = s.get_json(&["get", "configmaps"]);
    let raw: serde_json::Value = serde_json::from_str(&s.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/configmaps",
    ]))
    .unwrap();
    let list_rv = raw["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = s.stop();

    let s = Server::start_in(dir);
    let after = s.get_json(&["get", "configmaps"]);
    let key = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["metadata"]["name"].as_str().unwrap().to_string(),
                    i["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    i["metadata"]["uid"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(key(&before), key(&after));

    // A watch from the pre-restart list revision sees exactly the later change.
    s.kubectl_in(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: three}\n"),
    );
    let (code, body) = s.curl(
        "GET",
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={list_rv}&timeoutSeconds=1"),
        Some(&s.token),
        None,
        None,
    );
    assert_eq!(code, 200, "{body}");
    let events: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["type"] != "BOOKMARK")
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(names, [("ADDED", "three")], "{body}");
}

#[test]
fn kill_9_during_a_burst_loses_no_acknowledged_write() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let c = rt.block_on(client(&s));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
        let acked = acked.clone();
        tasks.push(rt.spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                match api.create(&PostParams::default(), &cm(&name)).await {
                    Ok(_) => acked.lock().unwrap().push(name),
                    Err(_) => break,
                }
            }
        }));
    }
    // Kill mid-burst, once a good number of writes were acknowledged.
    while acked.lock().unwrap().len() < 400 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let dir = s.kill9();
    for t in tasks {
        let _ = rt.block_on(t);
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 400);

    let s = Server::start_in(dir);
    let names = s.kubectl(&[
        "get",
        "configmaps",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
    ]);
    let present: std::collections::HashSet<&str> = names.lines().collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|n| !present.contains(n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// Names of temporary files anywhere under `dir`.
fn temporaries(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(".tmp") {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Runs `paddock server` on `data` until it exits or prints its kubeconfig line (then stops
/// it); true if it started.
fn try_start(data: &std::path::Path) -> bool {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn paddock server");
    let stdout = child.stdout.take().expect("stdout");
    let started = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("export KUBECONFIG="));
    if started {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    crate::support::wait_or_kill(&mut child, std::time::Duration::from_secs(30));
    started
}

#[test]
fn a_full_disk_fails_writes_and_readyz_then_recovers_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The data dir is a small file system of its own; the server's log stays outside it.
    let fs = testkit::fs::SmallFs::mount_on(&dir.path().join("data"), "32m").expect("tmpfs");
    let s = Server::start_in(dir);
    let create = |name: &str| {
        s.curl(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(&s.token),
            Some("application/json"),
            Some(
                serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name}, "data": {"pad": "x".repeat(200_000)}})
                .to_string()
                .as_bytes(),
            ),
        )
    };
    assert_eq!(create("before").0, 201);
    let filler = fs.fill().expect("fill");

    // Writes fail with a Status naming the cause; reads go on.
    let (code, text) = create("during");
    assert_eq!(code, 500, "{text}");
    let st: serde_json::Value = serde_json::from_str(&text).expect("Status body");
    assert_eq!(st["reason"], "InternalError");
    let msg = st["message"].as_str().unwrap_or_default();
    assert!(msg.contains("No space left on device"), "{msg}");
    let (code, _) = create("during");
    assert_eq!(code, 500, "still refused while the disk is full");
    assert_eq!(
        s.kubectl(&["get", "cm", "before", "-o", "jsonpath={.metadata.name}"]),
        "before"
    );
    // Health says so, in upstream's format.
    for ep in ["/readyz", "/livez", "/healthz"] {
        let (code, body) = s.curl("GET", ep, None, None, None);
        assert_eq!(code, 500, "{ep}: {body}");
        assert!(
            body.contains("[-]etcd failed: reason withheld\n"),
            "{ep}: {body}"
        );
        assert!(body.ends_with(" check failed\n"), "{ep}: {body}");
    }
    let (code, body) = s.curl("GET", "/readyz/etcd", Some(&s.token), None, None);
    assert_eq!(code, 500);
    assert!(
        body.starts_with("internal server error: ") && body.contains("No space left on device"),
        "{body}"
    );

    // Room again: writes resume and /readyz turns ok, without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    s.eventually("/readyz ok after space was freed", || {
        let (code, body) = s.curl("GET", "/readyz", None, None, None);
        (code == 200 && body == "ok").then_some(())
    });
    assert_eq!(create("during").0, 201);
    let names = s.kubectl(&["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert!(
        names.contains("before") && names.contains("during"),
        "{names}"
    );

    // Full again at a restart: the server cannot write its kubeconfig and exits, leaving no
    // temporary file; with room it starts and has every acknowledged write.
    let dir = s.stop();
    let filler = fs.fill().expect("fill");
    let data = dir.path().join("data");
    assert!(!try_start(&data), "started on a full disk");
    assert_eq!(temporaries(fs.path()), Vec::<String>::new());
    std::fs::remove_file(&filler).expect("remove filler");
    let s = Server::start_in(dir);
    let names = s.kubectl(&["get", "cm", "-o", "jsonpath={.items[*].metadata.name}"]);
    assert!(
        names.contains("before") && names.contains("during"),
        "{names}"
    );
    assert_eq!(temporaries(fs.path()), Vec::<String>::new());
    drop(s);
}
