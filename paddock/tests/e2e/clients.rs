//! The official Python client and kube-rs against a real server.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

use crate::durability::client;
use crate::support::{Server, run};

#[test]
fn python_client_lists_creates_reads_patches_deletes_and_watches() {
    let s = Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/python_client.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script).env("KUBECONFIG", &s.kubeconfig);
    let out = run(cmd, None);
    assert!(
        out.status.success(),
        "python client script failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: all checks passed"));
}

#[test]
fn kube_rs_watcher_follows_creates_updates_and_deletes() {
    let s = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = client(&s).await;
        let api: Api<ConfigMap> = Api::namespaced(c, "default");
        // The root CA publisher's ConfigMap comes first (it would be an event of its own).
        for _ in 0..300 {
            if api.get_opt("kube-root-ca.crt").await.ok().flatten().is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let mut events: Events = watcher(api.clone(), watcher::Config::default()).boxed();
        // The watcher's initial list completes before we change anything.
        loop {
            if let watcher::Event::InitDone = next_event(&mut events).await {
                break;
            }
        }

        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"v": "1"}
        }))
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
        let seen = applied(&mut events, "watched").await;
        assert_eq!(seen.data.unwrap()["v"], "1");

        let patch = serde_json::json!({"data": {"v": "2"}});
        api.patch("watched", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        let seen = applied(&mut events, "watched").await;
        assert_eq!(seen.data.unwrap()["v"], "2", "the update, exactly the next event");

        api.delete("watched", &DeleteParams::default()).await.unwrap();
        match next_event(&mut events).await {
            watcher::Event::Delete(obj) => assert_eq!(obj.metadata.name.as_deref(), Some("watched")),
            other => panic!("expected the delete, got {other:?}"),
        }
    });
}

type Events =
    futures::stream::BoxStream<'static, Result<watcher::Event<ConfigMap>, watcher::Error>>;

async fn next_event(events: &mut Events) -> watcher::Event<ConfigMap> {
    tokio::time::timeout(std::time::Duration::from_secs(30), events.try_next())
        .await
        .expect("watch event in time")
        .expect("watch ok")
        .expect("stream open")
}

async fn applied(events: &mut Events, name: &str) -> ConfigMap {
    match next_event(events).await {
        watcher::Event::Apply(obj) if obj.metadata.name.as_deref() == Some(name) => obj,
        other => panic!("expected an apply of {name}, got {other:?}"),
    }
}
