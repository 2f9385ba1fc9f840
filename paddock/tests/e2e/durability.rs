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
