//! Probe wiring of a pod worker: the probe workers of the `probe` crate, one per container ×
//! probe type, their shared results ([`PodProbes`], what the planner reads), exec probes run in
//! whichever instance of the container is current ([`CurrentExec`]), and the readiness
//! triggers a pod sync sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use probe::{
    ExecError, ExecOutput, ExecRunner, ProbeHistory, ProbeResult, ProbeSpec, ProbeType, Prober,
    ResultsCache, WorkerConfig, WorkerHandle, WorkerKey, WorkerParams,
};

use super::super::model::Probes;
use super::Driver;
use crate::events::ObjectRef;
use crate::runtime::{ContainerId, Runtime};

/// Probe workers and their results for one pod.
pub(super) struct PodProbes {
    pub(super) results: Arc<ResultsCache>,
    pub(super) workers: HashMap<(String, ProbeType), WorkerHandle>,
}

impl Probes for PodProbes {
    fn result(&self, ty: ProbeType, id: &str) -> Option<ProbeResult> {
        self.results.get(ty, id)
    }
    fn has(&self, name: &str, ty: ProbeType) -> bool {
        self.workers.contains_key(&(name.to_string(), ty))
    }
}

/// Runs exec probes in whatever instance of a container is current.
struct CurrentExec {
    runtime: Arc<dyn Runtime>,
    current: Arc<Mutex<Option<ContainerId>>>,
}

impl ExecRunner for CurrentExec {
    fn run<'a>(
        &'a self,
        argv: &'a [String],
        timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
        let id = self.current.lock().clone();
        Box::pin(async move {
            let id = id.ok_or_else(|| ExecError::Runtime("container is not running".into()))?;
            self.runtime.exec_runner(&id).run(argv, timeout).await
        })
    }
}

impl Driver {
    /// Manual readiness triggers [prober_manager.go `UpdatePodStatus`], once per pod sync: for
    /// started containers not yet ready that the sync saw running (`seen`).
    pub(super) fn trigger_readiness(&self, seen: &[ContainerId]) {
        for c in self.state.containers() {
            let name = &c.container.name;
            if let Some(w) = self
                .probes
                .workers
                .get(&(name.clone(), ProbeType::Readiness))
                && let Some(inst) = self
                    .state
                    .latest(name)
                    .filter(|i| i.running() && seen.contains(&i.id))
                && self.state.started(c, &self.probes)
                && self.probes.result(ProbeType::Readiness, &inst.status_id())
                    != Some(ProbeResult::Success)
            {
                w.trigger();
            }
        }
    }

    /// Spawns one probe worker per container and configured probe (startup, readiness,
    /// liveness; regular containers and sidecars), and publishes their histories.
    pub(super) fn start_probe_workers(&mut self) {
        let pod = self.pod();
        let uid: Arc<str> = Arc::from(pod.metadata.uid.as_deref().unwrap_or(""));
        let format_pod = self.state.format_pod();
        let specs: Vec<(k8s_openapi::api::core::v1::Container, bool, bool)> = self
            .state
            .containers()
            .into_iter()
            .filter(|c| !c.init || c.sidecar())
            .map(|c| (c.container.clone(), c.init, c.sidecar()))
            .collect();
        let mut histories = Vec::new();
        for (c, init, sidecar) in specs {
            for ty in [
                ProbeType::Startup,
                ProbeType::Readiness,
                ProbeType::Liveness,
            ] {
                let probe = match ty {
                    ProbeType::Startup => c.startup_probe.as_ref(),
                    ProbeType::Readiness => c.readiness_probe.as_ref(),
                    ProbeType::Liveness => c.liveness_probe.as_ref(),
                };
                let Some(probe) = probe else { continue };
                let spec = Arc::new(ProbeSpec::new(ty, probe, &c, &format_pod));
                let exec = Arc::new(CurrentExec {
                    runtime: self.shared.runtime.clone(),
                    current: self.current_slot(&c.name),
                });
                let sink = self
                    .shared
                    .events
                    .sink(ObjectRef::container(&pod, &c.name, init));
                let prober = Prober::new(spec.clone(), self.shared.handler_env.clone(), exec, sink);
                let params = WorkerParams {
                    key: WorkerKey {
                        pod_uid: uid.clone(),
                        container: Arc::from(c.name.as_str()),
                        probe_type: ty,
                    },
                    config: WorkerConfig::from_spec(&spec, sidecar, self.shared.agent_started),
                    period: spec.period,
                    status: self.view.subscribe(),
                    runner: self.shared.metrics.metered(
                        Arc::new(prober),
                        crate::metrics::ProbeLabels {
                            probe_type: ty,
                            container: c.name.clone(),
                            pod: pod.metadata.name.clone().unwrap_or_default(),
                            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                            pod_uid: uid.to_string(),
                        },
                    ),
                    results: self.probes.results.clone(),
                    history: Arc::new(ProbeHistory::new(probe::history::DEFAULT_HISTORY)),
                };
                histories.push((c.name.clone(), ty, params.history.clone()));
                self.probes
                    .workers
                    .insert((c.name.clone(), ty), probe::worker::spawn(params));
            }
        }
        self.shared.directory.set_histories(
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
            histories,
        );
    }
}
