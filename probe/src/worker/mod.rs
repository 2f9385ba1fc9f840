//! The prober worker: one per (container, probe type), as the kubelet's `worker.go`.
//!
//! [`Machine`] is the pure state machine of one `doProbe` iteration, split at the probe itself:
//! [`Machine::step`] takes a [`Input`] (a tick with the current pod status, a probe's outcome,
//! or the stop) and returns the cache [`Effect`]s and what to do [`Next`]. [`driver`] runs it on
//! tokio time: jitter, the period ticker, manual triggers, stop, history.
//!
//! The order of checks in a tick is the kubelet's [worker.go `doProbe`]:
//! 1. no pod status → wait; 2. pod `Failed`/`Succeeded` → stop; 3. container status with an ID
//!    (regular, then init) absent → wait; 4. new container ID → remove the old ID's result,
//!    write the initial value, clear the hold (`lastResult`/`resultRun` are kept: the carry-over
//!    quirk); 5. on hold → wait; 6. not running → `Failure`, stop if it will not restart;
//! 7. pod being deleted and liveness/startup → `Success`, stop; 8. within `initialDelaySeconds`
//!    (whole seconds since `startedAt`) → wait; 9. startup gating on `started`; 10. probe.
//!
//! After the probe: an error is thrown away; otherwise the run is counted, and the result is
//! written once the threshold is reached; a written liveness failure or any written startup
//! result puts the worker on hold until the next container ID.

pub mod driver;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::spec::ProbeSpec;
use crate::types::{ProbeResult, ProbeType};

pub use driver::{WorkerHandle, WorkerParams, spawn};

/// The kubelet's grace around its own start (`kubeletRestartGracePeriod`): containers started
/// more than this before the agent are treated as adopted after an agent restart.
pub const AGENT_RESTART_GRACE: Duration = Duration::from_secs(10);

/// State of a container as the worker needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerState {
    /// Created, not running yet (or waiting to restart).
    Waiting,
    /// Running since `started_at` (the CRI start time of this instance, on the tokio clock).
    Running {
        /// When this container instance started.
        started_at: Instant,
    },
    /// Exited.
    Terminated {
        /// Whether the agent will restart it (pod `restartPolicy` ≠ `Never`, a restartable init
        /// container, or the container restart rules say so).
        will_restart: bool,
    },
}

/// One container's status, as read from the agent's cached pod status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatusView {
    /// Container name.
    pub name: String,
    /// Container ID (`<runtime>://<id>`); empty when not created yet.
    pub container_id: Arc<str>,
    /// Its state.
    pub state: ContainerState,
    /// `containerStatuses[].started`.
    pub started: Option<bool>,
}

/// The pod status the worker reads on each tick (the kubelet's status-manager cache).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodStatusView {
    /// Phase is `Failed` or `Succeeded`.
    pub terminal: bool,
    /// The pod has a `deletionTimestamp`.
    pub deleting: bool,
    /// `status.podIP` (empty if none yet).
    pub pod_ip: String,
    /// `containerStatuses`.
    pub containers: Vec<ContainerStatusView>,
    /// `initContainerStatuses`.
    pub init_containers: Vec<ContainerStatusView>,
}

impl PodStatusView {
    /// The status of `name` with a non-empty ID: regular containers first, then init containers.
    pub fn container(&self, name: &str) -> Option<&ContainerStatusView> {
        let find = |list: &[ContainerStatusView]| {
            list.iter()
                .position(|c| c.name == name && !c.container_id.is_empty())
        };
        match find(&self.containers) {
            Some(i) => self.containers.get(i),
            None => find(&self.init_containers).and_then(|i| self.init_containers.get(i)),
        }
    }
}

/// Static configuration of a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Which probe.
    pub probe_type: ProbeType,
    /// `initialDelaySeconds`.
    pub initial_delay_seconds: i32,
    /// `successThreshold`.
    pub success_threshold: i32,
    /// `failureThreshold`.
    pub failure_threshold: i32,
    /// The container is a restartable init container (sidecar).
    pub restartable_init: bool,
    /// When the agent started (jitter, adoption after an agent restart).
    pub agent_started: Instant,
    /// Feature gate `ChangeContainerStatusOnKubeletRestart` (deprecated and off by default in
    /// 1.35): when off, a container that was running before the agent started does not get the
    /// initial value written, so an agent restart does not flap readiness.
    pub change_status_on_agent_restart: bool,
}

impl WorkerConfig {
    /// The configuration of a worker for `spec`, with the 1.35 gate defaults.
    pub fn from_spec(spec: &ProbeSpec, restartable_init: bool, agent_started: Instant) -> Self {
        Self {
            probe_type: spec.probe_type,
            initial_delay_seconds: spec.initial_delay_seconds,
            success_threshold: spec.success_threshold,
            failure_threshold: spec.failure_threshold,
            restartable_init,
            agent_started,
            change_status_on_agent_restart: false,
        }
    }
}

/// A change to the results cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Write this result for this container ID.
    Set(Arc<str>, ProbeResult),
    /// Forget the result of this container ID.
    Remove(Arc<str>),
}

/// What the driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Wait for the next tick, trigger or stop.
    Wait,
    /// Run the probe against this container instance, then feed [`Input::Probed`].
    Probe(Arc<str>),
    /// The worker is done.
    Stop,
}

/// An input to the state machine.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A `doProbe` iteration with the current pod status (`None`: no status yet).
    Tick {
        /// The pod status.
        status: Option<&'a PodStatusView>,
        /// The container this worker probes.
        container: &'a str,
        /// Now, on the tokio clock.
        now: Instant,
    },
    /// The probe ran: `Some(result)`, or `None` when it errored (result thrown away).
    Probed(Option<ProbeResult>),
    /// The worker is stopping (stop signal or [`Next::Stop`]).
    Stop,
}

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Cache changes, in order.
    pub effects: Vec<Effect>,
    /// What to do next.
    pub next: Next,
}

impl Step {
    fn wait(effects: Vec<Effect>) -> Self {
        Self {
            effects,
            next: Next::Wait,
        }
    }
}

/// The worker's mutable state (`containerID`, `lastResult`, `resultRun`, `onHold`).
#[derive(Debug, Clone)]
pub struct Machine {
    cfg: WorkerConfig,
    container_id: Option<Arc<str>>,
    last_result: ProbeResult,
    result_run: i32,
    on_hold: bool,
}

impl Machine {
    /// A fresh worker. `lastResult` starts at Go's zero value, `Success`, with a run of 0.
    pub fn new(cfg: WorkerConfig) -> Self {
        Self {
            cfg,
            container_id: None,
            last_result: ProbeResult::Success,
            result_run: 0,
            on_hold: false,
        }
    }

    /// The worker's configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.cfg
    }

    /// The container ID last seen.
    pub fn container_id(&self) -> Option<&Arc<str>> {
        self.container_id.as_ref()
    }

    /// Whether probing is on hold until a new container ID.
    pub fn on_hold(&self) -> bool {
        self.on_hold
    }

    /// `(lastResult, resultRun)`.
    pub fn run(&self) -> (ProbeResult, i32) {
        (self.last_result, self.result_run)
    }

    /// Advances the state machine by one input.
    pub fn step(&mut self, input: Input<'_>) -> Step {
        match input {
            Input::Tick {
                status,
                container,
                now,
            } => self.tick(status, container, now),
            Input::Probed(outcome) => self.probed(outcome),
            Input::Stop => {
                let effects = self
                    .container_id
                    .iter()
                    .cloned()
                    .map(Effect::Remove)
                    .collect();
                Step {
                    effects,
                    next: Next::Stop,
                }
            }
        }
    }

    fn tick(&mut self, status: Option<&PodStatusView>, name: &str, now: Instant) -> Step {
        let mut effects = Vec::new();
        let Some(status) = status else {
            return Step::wait(effects);
        };
        if status.terminal {
            return Step {
                effects,
                next: Next::Stop,
            };
        }
        let Some(c) = status.container(name) else {
            return Step::wait(effects);
        };
        let ty = self.cfg.probe_type;
        if self.container_id.as_deref() != Some(&*c.container_id) {
            if let Some(old) = self.container_id.take() {
                effects.push(Effect::Remove(old));
            }
            let id = c.container_id.clone();
            self.container_id = Some(id.clone());
            if self.cfg.change_status_on_agent_restart {
                effects.push(Effect::Set(id, ty.initial_result()));
            } else {
                // An adopted container (running since before the agent's start − grace) keeps
                // its state: no initial value.
                let adopted = match c.state {
                    ContainerState::Running { started_at } => self
                        .cfg
                        .agent_started
                        .checked_sub(AGENT_RESTART_GRACE)
                        .is_some_and(|limit| started_at < limit),
                    _ => false,
                };
                if self.cfg.restartable_init && ty == ProbeType::Startup && c.started == Some(true)
                {
                    effects.push(Effect::Set(id.clone(), ProbeResult::Success));
                }
                if !adopted {
                    effects.push(Effect::Set(id, ty.initial_result()));
                }
            }
            self.on_hold = false;
        }
        if self.on_hold {
            return Step::wait(effects);
        }
        let id = c.container_id.clone();
        let started_at = match c.state {
            ContainerState::Running { started_at } => started_at,
            ContainerState::Waiting => {
                effects.push(Effect::Set(id, ProbeResult::Failure));
                return Step::wait(effects);
            }
            ContainerState::Terminated { will_restart } => {
                effects.push(Effect::Set(id, ProbeResult::Failure));
                let next = if will_restart { Next::Wait } else { Next::Stop };
                return Step { effects, next };
            }
        };
        if status.deleting && matches!(ty, ProbeType::Liveness | ProbeType::Startup) {
            effects.push(Effect::Set(id, ProbeResult::Success));
            return Step {
                effects,
                next: Next::Stop,
            };
        }
        // Whole seconds since the container started, as `int32(time.Since(...).Seconds())`.
        let elapsed = now.saturating_duration_since(started_at).as_secs();
        if elapsed < u64::try_from(self.cfg.initial_delay_seconds).unwrap_or(0) {
            return Step::wait(effects);
        }
        let started = c.started == Some(true);
        if started == (ty == ProbeType::Startup) {
            // Startup is done once started; the others wait for it.
            return Step::wait(effects);
        }
        Step {
            effects,
            next: Next::Probe(id),
        }
    }

    fn probed(&mut self, outcome: Option<ProbeResult>) -> Step {
        let mut effects = Vec::new();
        let Some(result) = outcome else {
            // Prober error: throw the result away.
            return Step::wait(effects);
        };
        if self.last_result == result {
            self.result_run += 1;
        } else {
            self.last_result = result;
            self.result_run = 1;
        }
        if (result == ProbeResult::Failure && self.result_run < self.cfg.failure_threshold)
            || (result == ProbeResult::Success && self.result_run < self.cfg.success_threshold)
        {
            return Step::wait(effects);
        }
        if let Some(id) = &self.container_id {
            effects.push(Effect::Set(id.clone(), result));
        }
        let ty = self.cfg.probe_type;
        if (ty == ProbeType::Liveness && result == ProbeResult::Failure) || ty == ProbeType::Startup
        {
            self.on_hold = true;
            self.result_run = 0;
        }
        Step::wait(effects)
    }
}
