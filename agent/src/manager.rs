//! The pod manager: watches the pods bound to this node (`fieldSelector=spec.nodeName=<node>`)
//! and hands each pod UID to its [`PodWorker`]; on the first complete listing it settles what a
//! previous agent run left behind (see [`crate`] docs, "Agent restart").

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::watcher;
use tokio_util::sync::CancellationToken;

use crate::pod::worker::{PodMsg, PodWorker, Shared};
use crate::runtime::Recovered;

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Dispatches pod events to workers.
pub struct Manager {
    shared: Shared,
    workers: HashMap<String, PodWorker>,
    recovered: Option<HashMap<String, Recovered>>,
}

impl Manager {
    /// A manager; `recovered` are the sandboxes a previous run left (adopted when their pod
    /// is still bound here, stopped otherwise once the first listing is complete).
    pub fn new(shared: Shared, recovered: Vec<Recovered>) -> Self {
        Self {
            shared,
            workers: HashMap::new(),
            recovered: Some(
                recovered
                    .into_iter()
                    .map(|r| (r.pod_uid.clone(), r))
                    .collect(),
            ),
        }
    }

    fn apply(&mut self, mut pod: Pod) {
        // Nothing the agent does reads managedFields (status is written as a patch, the
        // downward API has no access to them), and they are often the biggest part of a pod:
        // dropped, as client-go informers do with a transform, to keep an idle pod small.
        pod.metadata.managed_fields = None;
        let id = uid(&pod);
        self.workers.retain(|_, w| !w.is_finished());
        let pod = Arc::new(pod);
        if let Some(w) = self.workers.get(&id) {
            w.send(PodMsg::Update(pod));
            return;
        }
        let adopt = self.recovered.as_mut().and_then(|r| r.remove(&id));
        if adopt.is_some()
            && let Some(images) = &self.shared.images
        {
            // Its containers' images are in use before image GC first runs (the worker
            // adopts them later, on its own task); `imageID` is `name@<repo digest>`.
            for cs in pod.status.iter().flat_map(|s| {
                s.container_statuses
                    .iter()
                    .flatten()
                    .chain(s.init_container_statuses.iter().flatten())
            }) {
                if let Some((_, digest)) = cs.image_id.rsplit_once('@') {
                    images.in_use.add(&id, digest);
                }
            }
        }
        if terminal(&pod) && adopt.is_none() {
            // Finished before we saw it (or before an agent restart): only remove it when it
            // is being deleted; until then its logs are served.
            if pod.metadata.deletion_timestamp.is_none() {
                self.shared.directory.record_finished(&pod);
                return;
            }
        }
        self.workers
            .insert(id, PodWorker::spawn(self.shared.clone(), pod, adopt));
    }

    fn delete(&mut self, pod: &Pod) {
        if let Some(w) = self.workers.get(&uid(pod)) {
            w.send(PodMsg::Removed);
            return;
        }
        // A pod that had finished before this agent started has no worker: its logs go with it.
        let id = uid(pod);
        self.shared.directory.forget(
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
            &id,
        );
        let runtime = self.shared.runtime.clone();
        tokio::spawn(async move {
            if let Err(e) = runtime.remove_pod_logs(&id).await {
                tracing::warn!(uid = %id, error = %e, "cannot remove a deleted pod's logs");
            }
        });
    }

    /// Removes the logs of pods that are neither listed nor run here: deleted while no agent
    /// ran (the kubelet's housekeeping removes orphaned pod logs too).
    async fn remove_orphaned_logs(&self, listed: &std::collections::HashSet<String>) {
        for id in self.shared.runtime.pods_with_logs().await {
            if listed.contains(&id) || self.workers.contains_key(&id) {
                continue;
            }
            tracing::info!(uid = %id, "removing the logs of a pod that is gone");
            if let Err(e) = self.shared.runtime.remove_pod_logs(&id).await {
                tracing::warn!(uid = %id, error = %e, "cannot remove a deleted pod's logs");
            }
        }
    }

    /// Stops sandboxes left by a previous run whose pods are not bound here any more.
    async fn settle_recovered(&mut self) {
        let Some(left) = self.recovered.take() else {
            return;
        };
        for (uid, r) in left {
            tracing::info!(%uid, pod = %format!("{}/{}", r.namespace, r.name), "stopping containers of a pod no longer bound to this node");
            for c in &r.containers {
                let _ = self
                    .shared
                    .runtime
                    .stop_container(&c.id, crate::pod::worker::MIN_GRACE)
                    .await;
            }
            if let Err(e) = self.shared.runtime.stop_sandbox(&r.sandbox).await {
                tracing::warn!(%uid, error = %e, "cannot stop a recovered sandbox");
            }
        }
    }

    /// Watches pods of `node` until `stop`, then lets running pods be (the caller decides
    /// whether to stop the runtime).
    pub async fn run(mut self, client: kube::Client, node: String, stop: CancellationToken) {
        let pods: Api<Pod> = Api::all(client);
        let cfg = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let mut stream = watcher(pods, cfg).boxed();
        let mut listed: Option<Vec<Pod>> = None;
        loop {
            let ev = tokio::select! {
                _ = stop.cancelled() => break,
                ev = stream.next() => ev,
            };
            let Some(ev) = ev else { break };
            match ev {
                Ok(watcher::Event::Apply(p)) => self.apply(p),
                Ok(watcher::Event::Delete(p)) => self.delete(&p),
                Ok(watcher::Event::Init) => listed = Some(Vec::new()),
                Ok(watcher::Event::InitApply(p)) => {
                    if let Some(l) = listed.as_mut() {
                        l.push(p);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    let pods = listed.take().unwrap_or_default();
                    let seen: std::collections::HashSet<String> = pods.iter().map(uid).collect();
                    for (id, w) in &self.workers {
                        if !seen.contains(id) {
                            w.send(PodMsg::Removed);
                        }
                    }
                    for p in pods {
                        self.apply(p);
                    }
                    self.settle_recovered().await;
                    if let Some(images) = &self.shared.images {
                        reconcile_pins(images).await;
                        images.in_use.settle();
                    }
                    self.remove_orphaned_logs(&seen).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "pod watch failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

/// After a (re)list: pins of pods this agent no longer has are removed (their containers
/// went while it was down), and adopted pods pinned by an agent that kept no pins get theirs.
/// The pins are read before what is in use: a worker marks its image in use before pinning,
/// so a pin written meanwhile is never taken for a stale one.
async fn reconcile_pins(images: &crate::images::NodeImages) {
    let store = images.service.store().clone();
    let in_use = images.in_use.clone();
    let done = tokio::task::spawn_blocking(move || -> Result<(), image::Error> {
        let pinned = store.pins()?;
        let used = in_use.by_pod();
        for name in &pinned {
            if !used.contains_key(name) {
                store.unpin(name)?;
            }
        }
        let mut records = None;
        for (uid, digests) in &used {
            if uid.is_empty() || pinned.contains(uid) {
                continue;
            }
            let list = match &records {
                Some(l) => l,
                None => records.insert(store.list()?),
            };
            for (_, r) in list.iter().filter(|(_, r)| {
                digests.contains(&r.config.to_string())
                    || digests.contains(&r.repo_digest.to_string())
            }) {
                if let Err(e) = store.pin(uid, r) {
                    tracing::warn!(pod_uid = %uid, error = %e, "cannot pin an adopted pod's image");
                }
            }
        }
        Ok(())
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot reconcile the image pins"),
        Err(e) => tracing::warn!(error = %e, "cannot reconcile the image pins"),
    }
}
