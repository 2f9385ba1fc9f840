//! The tokio driver of a [`Machine`] [worker.go `run`]: optional jitter, else the first
//! `doProbe`'s status read as the worker is spawned, a period ticker started with the worker,
//! manual triggers that probe at once and reset the ticker, stop, and the history of attempts. Uses tokio time only, so it runs under
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
///
/// Unless the worker jitters (the agent started less than a period ago), its first `doProbe`
/// reads the pod status here, as the worker is created: the kubelet adds a pod's workers in the
/// sync that then starts its containers, and their goroutines look before the containers are
/// there. A task that only got to run once the container had started would probe it at once,
/// and again for the readiness trigger of that same start.
pub fn spawn(params: WorkerParams) -> WorkerHandle {
    let signals = Arc::new(Signals::default());
    let history = params.history.clone();
    let key = params.key.clone();
    let mut machine = Machine::new(params.config.clone());
    let jitter = params.config.agent_started.elapsed() < params.period;
    let first = (!jitter).then(|| (Instant::now(), tick(&params, &mut machine)));
    let task = tokio::spawn(run(params, signals.clone(), machine, first));
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

/// What a `doProbe` decided before probing, and the pod IP to probe.
type Ticked = (Next, String);

/// `run`: `first` is the first `doProbe`'s decision and when it was made, `None` to jitter.
async fn run(
    params: WorkerParams,
    signals: Arc<Signals>,
    mut machine: Machine,
    first: Option<(Instant, Ticked)>,
) {
    let period = params.period;
    let first = match first {
        Some(first) => Some(first),
        // Jitter only right after the agent started, so restarted agents do not probe in a herd.
        None => {
            let delay = period.mul_f64(rand::random::<f64>());
            tokio::select! {
                _ = signals.stop.notified() => None,
                _ = sleep(delay) => Some((Instant::now(), tick(&params, &mut machine))),
            }
        }
    };
    if let Some((started, mut next)) = first {
        let mut ticker = interval_at(started + period, period);
        // Go's ticker drops ticks for a slow receiver but keeps one pending.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            let (decision, pod_ip) = next;
            let keep_going = match decision {
                Next::Wait => true,
                Next::Stop => false,
                Next::Probe(id) => {
                    probe(&params, &signals, &mut machine, id, &pod_ip).await;
                    true
                }
            };
            if !keep_going {
                break;
            }
            tokio::select! {
                biased;
                _ = signals.stop.notified() => break,
                _ = ticker.tick() => {}
                _ = signals.trigger.notified() => ticker.reset(),
            }
            next = tick(&params, &mut machine);
        }
    }
    apply(&params, machine.step(Input::Stop).effects);
    signals.finished.store(true, Ordering::SeqCst);
}

/// The part of one `doProbe` before the probe: reads the pod status, writes the step's results.
fn tick(params: &WorkerParams, machine: &mut Machine) -> Ticked {
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
    (step.next, pod_ip)
}

/// The probe of one `doProbe` and what its outcome changes; a stop meanwhile interrupts it
/// (and is kept for the caller's select).
async fn probe(
    params: &WorkerParams,
    signals: &Signals,
    machine: &mut Machine,
    container_id: Arc<str>,
    pod_ip: &str,
) {
    let run = tokio::select! {
        biased;
        _ = signals.stop.notified() => {
            signals.stop.notify_one();
            return;
        }
        run = params.runner.run(pod_ip) => run,
    };
    let outcome = run.outcome.as_ref().ok().copied();
    params.history.push(Attempt::from_run(run, container_id));
    let step = machine.step(Input::Probed(outcome));
    apply(params, step.effects);
}
