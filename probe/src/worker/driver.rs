//! The tokio driver of a [`Machine`] [worker.go `run`]: optional jitter, a
//! period ticker started with the worker, manual triggers that probe at once and reset the
//! ticker, stop, and the history of attempts. Uses tokio time only, so it runs under
//! `tokio::time::pause()`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep};

use super::{Effect, Input, Machine, Next, PodStatusView, WorkerConfig};
use crate::history::{Attempt, ProbeHistory};
use crate::prober::ProbeRunner;
use crate::results::{ResultsCache, WorkerKey};

/// Everything a worker needs.
pub struct WorkerParams {
    /// Whose worker this is.
    pub key: WorkerKey,
    /// Thresholds, delays, gates.
    pub config: WorkerConfig,
    /// `periodSeconds`.
    pub period: Duration,
    /// The agent's cached status of the pod (`None` until it has one).
    pub status: watch::Receiver<Option<Arc<PodStatusView>>>,
    /// Runs the probe.
    pub runner: Arc<dyn ProbeRunner>,
    /// Where results go.
    pub results: Arc<ResultsCache>,
    /// Where attempts go.
    pub history: Arc<ProbeHistory>,
}

impl std::fmt::Debug for WorkerParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerParams")
            .field("key", &self.key)
            .field("config", &self.config)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Signals {
    trigger: Notify,
    stop: Notify,
    finished: AtomicBool,
}

/// Controls a running worker. Dropping the handle does not stop the worker; call
/// [`WorkerHandle::stop`].
#[derive(Debug)]
pub struct WorkerHandle {
    key: WorkerKey,
    signals: Arc<Signals>,
    history: Arc<ProbeHistory>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Whose worker this is.
    pub fn key(&self) -> &WorkerKey {
        &self.key
    }

    /// Probes now and restarts the period from now; a trigger arriving while one is pending is
    /// dropped (the kubelet's buffered channel of one).
    pub fn trigger(&self) {
        self.signals.trigger.notify_one();
    }

    /// Asks the worker to stop; it removes its cached result and exits. Safe to call twice.
    pub fn stop(&self) {
        self.signals.stop.notify_one();
    }

    /// The attempts of this worker.
    pub fn history(&self) -> &Arc<ProbeHistory> {
        &self.history
    }

    /// Whether the worker has exited (stopped, or decided to stop).
    pub fn is_finished(&self) -> bool {
        self.signals.finished.load(Ordering::SeqCst)
    }

    /// Waits until the worker task has exited.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Starts a worker task on the current runtime.
pub fn spawn(params: WorkerParams) -> WorkerHandle {
    let signals = Arc::new(Signals::default());
    let history = params.history.clone();
    let key = params.key.clone();
    let task = tokio::spawn(run(params, signals.clone()));
    WorkerHandle {
        key,
        signals,
        history,
        task,
    }
}

fn apply(params: &WorkerParams, effects: Vec<Effect>) {
    for e in effects {
        match e {
            Effect::Set(id, r) => params.results.set(&params.key, &id, r),
            Effect::Remove(id) => params.results.remove(params.key.probe_type, &id),
        }
    }
}

async fn run(params: WorkerParams, signals: Arc<Signals>) {
    let mut machine = Machine::new(params.config.clone());
    let period = params.period;
    // Jitter only right after the agent started, so restarted agents do not probe in a herd.
    let jitter = params.config.agent_started.elapsed() < period;
    let stopped_early = jitter && {
        let delay = period.mul_f64(rand::random::<f64>());
        tokio::select! {
            _ = signals.stop.notified() => true,
            _ = sleep(delay) => false,
        }
    };
    if !stopped_early {
        let mut ticker = interval_at(Instant::now() + period, period);
        // Go's ticker drops ticks for a slow receiver but keeps one pending.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            if !do_probe(&params, &signals, &mut machine).await {
                break;
            }
            tokio::select! {
                biased;
                _ = signals.stop.notified() => break,
                _ = ticker.tick() => {}
                _ = signals.trigger.notified() => ticker.reset(),
            }
        }
    }
    apply(&params, machine.step(Input::Stop).effects);
    signals.finished.store(true, Ordering::SeqCst);
}

/// One `doProbe`; false when the worker should stop.
async fn do_probe(params: &WorkerParams, signals: &Signals, machine: &mut Machine) -> bool {
    let (step, pod_ip) = {
        let status = params.status.borrow();
        let status = status.as_deref();
        let step = machine.step(Input::Tick {
            status,
            container: &params.key.container,
            now: Instant::now(),
        });
        (step, status.map(|s| s.pod_ip.clone()).unwrap_or_default())
    };
    apply(params, step.effects);
    let container_id = match step.next {
        Next::Wait => return true,
        Next::Stop => return false,
        Next::Probe(id) => id,
    };
    let run = tokio::select! {
        biased;
        _ = signals.stop.notified() => {
            // Keep the stop for the caller's select.
            signals.stop.notify_one();
            return true;
        }
        run = params.runner.run(&pod_ip) => run,
    };
    let outcome = run.outcome.as_ref().ok().copied();
    params.history.push(Attempt::from_run(run, container_id));
    let step = machine.step(Input::Probed(outcome));
    apply(params, step.effects);
    true
}
