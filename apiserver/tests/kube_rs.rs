//! kube-rs against the real listener: typed CRUD through `kube::Api` and a
//! `kube::runtime::watcher` that follows creates, updates and deletes.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, Config};

#[tokio::test]
async fn kube_rs_crud_and_watcher() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = apiserver::start(apiserver::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        memory_store: true,
        advertise_host: None,
        extra_sans: Vec::new(),
        max_connections: None,
    })
    .await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path())?;
    let config =
        Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await?;
    let client = Client::try_from(config)?;
    let pods: Api<Pod> = Api::namespaced(client, "default");

    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kr"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))?;
    // The watcher starts with an (empty) initial list.
    let mut seen_init_done = false;
    while !seen_init_done {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await? {
            Some(Ok(watcher::Event::InitDone)) => seen_init_done = true,
            Some(Ok(_)) => {}
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    pods.create(&PostParams::default(), &pod).await?;
    let patch = serde_json::json!({"metadata": {"labels": {"step": "2"}}});
    pods.patch("kr", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    pods.delete("kr", &DeleteParams::default()).await?;
    let mut applied = 0;
    let mut labelled = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.next()).await? {
            Some(Ok(watcher::Event::Apply(p))) => {
                applied += 1;
                labelled |= p.metadata.labels.unwrap_or_default().contains_key("step");
            }
            Some(Ok(watcher::Event::Delete(p))) => {
                assert_eq!(p.metadata.name.as_deref(), Some("kr"));
                break;
            }
            Some(Ok(_)) => {}
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!(applied, 2);
    assert!(labelled);
    assert!(pods.get_opt("kr").await?.is_none());
    server.shutdown().await;
    Ok(())
}
