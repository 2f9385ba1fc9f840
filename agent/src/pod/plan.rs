//! The pure decision of one pod sync: what to start, what to kill, what to wait for — the
//! kubelet's `computePodActions` + `doBackOff` + the terminating path, over [`PodState`].
//!
//! Order of decisions:
//! 1. pod being deleted: stop liveness/startup, kill running containers (regular and plain init
//!    first, sidecars once no regular container runs), then finish (sandbox stopped, pod
//!    removed from the API);
//! 2. pod terminal (Succeeded/Failed): kill what still runs (sidecars), stop the sandbox;
//! 3. no sandbox, or one whose namespaces are gone: create it (re-creating kills what is left
//!    of the pod first and runs the init containers again; with `restartPolicy: Never` a pod
//!    whose containers have run gets no new sandbox, as `computePodActions`);
//! 4. init containers in order (until a regular container has started): start, wait for it,
//!    restart it on failure (subject to back-off), or fail the pod (`restartPolicy: Never`);
//!    sidecars must be `started` before the next one;
//! 5. sidecars and regular containers: kill on liveness/startup failure (restart per policy),
//!    start the ones that never ran, restart exited ones per policy subject to back-off.
//!
//! Ephemeral containers (`kubectl debug`) start once the sandbox is there, before step 4,
//! are never restarted, and are stopped with the pod.

use std::time::Duration;

use probe::{ProbeResult, ProbeType};
use tokio::time::Instant;

use super::model::{KillReason, PodState, Probes, SpecRef};
use crate::runtime::ContainerId;

/// One thing the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the sandbox.
    CreateSandbox,
    /// Start container `name` (an init container when `init`).
    Start {
        /// Container name.
        name: String,
    },
    /// Kill a running instance.
    Kill {
        /// The instance.
        id: ContainerId,
        /// Container name.
        name: String,
        /// Why.
        reason: KillReason,
        /// Whether it will be restarted (message suffix).
        restart: bool,
    },
    /// Restart held back: record the waiting reason and a `BackOff` event, retry after.
    BackOff {
        /// Container name.
        name: String,
        /// Remaining wait.
        remaining: Duration,
        /// The `back-off …` message.
        message: String,
    },
    /// Stop the liveness and startup workers (termination).
    StopLivenessAndStartup,
    /// The pod is finished on this node: stop the sandbox and workers, post the final status,
    /// remove the pod object when it is being deleted.
    Finish,
    /// The pod reached a terminal phase without deletion: stop the sandbox.
    StopSandbox,
}

/// What a sync decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Actions in order.
    pub actions: Vec<Action>,
    /// Sync again after this long (back-off expiry).
    pub requeue: Option<Duration>,
}

impl Plan {
    fn push(&mut self, a: Action) {
        self.actions.push(a);
    }
    fn requeue(&mut self, d: Duration) {
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }
}

fn running_id(state: &PodState, name: &str) -> Option<ContainerId> {
    state
        .latest(name)
        .filter(|i| i.running())
        .map(|i| i.id.clone())
}

/// Computes the actions of one sync at `now`.
pub fn plan(state: &PodState, probes: &dyn Probes, now: Instant) -> Plan {
    let mut p = Plan::default();
    let containers = state.containers();
    // Every container that may be running, ephemeral ones included (what a stop kills).
    let all: Vec<SpecRef<'_>> = containers
        .iter()
        .copied()
        .chain(state.ephemeral_containers())
        .collect();
    if state.deleting() {
        if containers
            .iter()
            .any(|c| !state.quiet.contains(&c.container.name))
        {
            p.push(Action::StopLivenessAndStartup);
        }
        let mut any_running = false;
        let regular_running = all
            .iter()
            .any(|c| !c.sidecar() && running_id(state, &c.container.name).is_some());
        for c in &all {
            let name = &c.container.name;
            let Some(id) = running_id(state, name) else {
                continue;
            };
            any_running = true;
            if c.sidecar() && regular_running {
                continue;
            }
            if !state.killing.contains_key(&id) {
                p.push(Action::Kill {
                    id,
                    name: name.clone(),
                    reason: KillReason::Stop,
                    restart: false,
                });
            }
        }
        if !any_running {
            p.push(Action::Finish);
        }
        return p;
    }
    if state.terminal_phase.is_some() {
        let mut any = false;
        for c in &all {
            if let Some(id) = running_id(state, &c.container.name) {
                any = true;
                if !state.killing.contains_key(&id) {
                    p.push(Action::Kill {
                        id,
                        name: c.container.name.clone(),
                        reason: KillReason::Stop,
                        restart: false,
                    });
                }
            }
        }
        if !any && state.sandbox.is_some() {
            p.push(Action::StopSandbox);
        }
        return p;
    }
    if state.sandbox.is_some() && !state.sandbox_ready {
        let never = state
            .pod
            .spec
            .as_ref()
            .is_some_and(|s| s.restart_policy.as_deref() == Some("Never"));
        if never && !state.instances.is_empty() {
            for c in &all {
                if let Some(id) = running_id(state, &c.container.name)
                    && !state.killing.contains_key(&id)
                {
                    p.push(Action::Kill {
                        id,
                        name: c.container.name.clone(),
                        reason: KillReason::Stop,
                        restart: false,
                    });
                }
            }
            return p;
        }
    }
    if state.sandbox.is_none() || !state.sandbox_ready {
        p.push(Action::CreateSandbox);
        return p;
    }
    // Ephemeral containers start once, before the init containers are looked at, so they can
    // debug a pod whose init containers fail (the kubelet's SyncPod step 5); never restarted.
    for c in state.ephemeral_containers() {
        if state.latest(&c.container.name).is_none() {
            p.push(Action::Start {
                name: c.container.name.clone(),
            });
        }
    }
    let regular_started = !state.reinit
        && containers
            .iter()
            .any(|c| !c.init && state.latest(&c.container.name).is_some());
    if !regular_started {
        for c in containers.iter().filter(|c| c.init) {
            let name = &c.container.name;
            match state.latest(name) {
                None => {
                    start_or_backoff(state, *c, now, &mut p);
                    return p;
                }
                Some(inst) if inst.running() => {
                    if c.sidecar() {
                        if probe_kill(state, *c, probes, &mut p) {
                            return p;
                        }
                        if !state.started(*c, probes) {
                            return p;
                        }
                    } else {
                        return p;
                    }
                }
                Some(inst) => {
                    let code = inst.exit.as_ref().map_or(0, |e| e.exit_code);
                    if c.sidecar() {
                        start_or_backoff(state, *c, now, &mut p);
                        return p;
                    }
                    if code == 0 {
                        continue;
                    }
                    if state.should_restart(*c, code) {
                        start_or_backoff(state, *c, now, &mut p);
                    }
                    return p;
                }
            }
        }
    }
    for c in containers.iter().filter(|c| !c.init || c.sidecar()) {
        let name = &c.container.name;
        match state.latest(name) {
            None => {
                // A sidecar that never ran here is started by the init loop above; after
                // initialization it is started like a regular container.
                start_or_backoff(state, *c, now, &mut p);
            }
            Some(inst) if inst.running() => {
                probe_kill(state, *c, probes, &mut p);
            }
            Some(inst) => {
                let code = inst.exit.as_ref().map_or(0, |e| e.exit_code);
                if state.killing.contains_key(&inst.id) {
                    continue;
                }
                if state.should_restart(*c, code) {
                    start_or_backoff(state, *c, now, &mut p);
                }
            }
        }
    }
    p
}

/// Kills `c` when its spec changed or on a liveness or startup failure (in that order, as
/// `computePodActions`); true when it did.
fn probe_kill(state: &PodState, c: SpecRef<'_>, probes: &dyn Probes, p: &mut Plan) -> bool {
    let name = &c.container.name;
    let Some(inst) = state.latest(name).filter(|i| i.running()) else {
        return false;
    };
    if state.killing.contains_key(&inst.id) {
        return false;
    }
    let id = inst.status_id();
    let changed = inst
        .spec_hash
        .is_some_and(|h| h != super::model::spec_hash(c.container));
    let reason = if changed {
        KillReason::DefinitionChanged
    } else if probes.result(ProbeType::Liveness, &id) == Some(ProbeResult::Failure) {
        KillReason::Liveness
    } else if probes.result(ProbeType::Startup, &id) == Some(ProbeResult::Failure) {
        KillReason::Startup
    } else {
        return false;
    };
    p.push(Action::Kill {
        id: inst.id.clone(),
        name: name.clone(),
        reason,
        // A changed definition always restarts [computePodActions].
        restart: changed || state.restart_after_kill(c),
    });
    true
}

/// Starts `c` now, or records the back-off when its last exit is too recent.
fn start_or_backoff(state: &PodState, c: SpecRef<'_>, now: Instant, p: &mut Plan) {
    let name = &c.container.name;
    if let Some(exit) = state.latest(name).and_then(|i| i.exit.as_ref())
        && let Some(remaining) = state.backoff.remaining(name, exit.finished, now)
    {
        let backoff = state.backoff.current(name).unwrap_or_default();
        p.push(Action::BackOff {
            name: name.clone(),
            remaining,
            message: format!(
                "back-off {} restarting failed container={} pod={}",
                gofmt::duration(backoff),
                name,
                state.format_pod()
            ),
        });
        p.requeue(remaining);
        return;
    }
    p.push(Action::Start { name: name.clone() });
}
