//! One test per rule of the kubelet's prober worker (spec §2.3–§2.6), on paused tokio time.
//! Pure-machine tests drive [`Machine`] directly; driver tests run a real worker task against a
//! scripted prober.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};

use super::*;
use crate::error::HandlerError;
use crate::history::ProbeHistory;
use crate::prober::{ProbeRun, ProbeRunner};
use crate::results::{ResultUpdate, ResultsCache, WorkerKey};
use crate::types::HandlerResult;

const S: ProbeResult = ProbeResult::Success;
const F: ProbeResult = ProbeResult::Failure;
const U: ProbeResult = ProbeResult::Unknown;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn long_ago() -> Instant {
    Instant::now()
        .checked_sub(secs(3600))
        .unwrap_or_else(Instant::now)
}

fn cfg(ty: ProbeType, delay: i32, success: i32, failure: i32) -> WorkerConfig {
    WorkerConfig {
        probe_type: ty,
        initial_delay_seconds: delay,
        success_threshold: success,
        failure_threshold: failure,
        restartable_init: false,
        agent_started: long_ago(),
        change_status_on_agent_restart: false,
    }
}

fn container(id: &str, state: ContainerState, started: Option<bool>) -> ContainerStatusView {
    ContainerStatusView {
        name: "app".into(),
        container_id: Arc::from(id),
        state,
        started,
    }
}

fn pod(c: ContainerStatusView) -> PodStatusView {
    PodStatusView {
        pod_ip: "10.0.0.7".into(),
        containers: vec![c],
        ..Default::default()
    }
}

fn running(id: &str, started_at: Instant, started: bool) -> PodStatusView {
    pod(container(
        id,
        ContainerState::Running { started_at },
        Some(started),
    ))
}

fn id(s: &str) -> Arc<str> {
    Arc::from(s)
}

fn tick(m: &mut Machine, status: &PodStatusView, now: Instant) -> Step {
    m.step(Input::Tick {
        status: Some(status),
        container: "app",
        now,
    })
}

/// Ticks, expects a probe, feeds `result`, returns the effects of both steps.
fn probe_once(
    m: &mut Machine,
    status: &PodStatusView,
    now: Instant,
    result: ProbeResult,
) -> Vec<Effect> {
    let mut step = tick(m, status, now);
    assert!(
        matches!(step.next, Next::Probe(_)),
        "expected a probe, got {:?}",
        step.next
    );
    step.effects
        .extend(m.step(Input::Probed(Some(result))).effects);
    step.effects
}

/// The results written (not removed) by `effects`.
fn sets(effects: &[Effect]) -> Vec<ProbeResult> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Set(_, r) => Some(*r),
            Effect::Remove(_) => None,
        })
        .collect()
}

// ------------------------------------------------------------------ scripted prober + harness

#[derive(Default)]
struct Script {
    /// Results to return in order (`None` = prober error); then `default`.
    queue: Mutex<VecDeque<Option<ProbeResult>>>,
    default: Mutex<Option<ProbeResult>>,
    calls: Mutex<Vec<(Instant, String)>>,
    delay: Duration,
}

impl Script {
    fn with_default(r: ProbeResult) -> Arc<Self> {
        let s = Self::default();
        *s.default.lock() = Some(r);
        Arc::new(s)
    }

    fn set_default(&self, r: ProbeResult) {
        *self.default.lock() = Some(r);
    }

    /// Times of the probes so far, relative to `t0`.
    fn times(&self, t0: Instant) -> Vec<Duration> {
        self.calls
            .lock()
            .iter()
            .map(|(t, _)| t.duration_since(t0))
            .collect()
    }

    fn count(&self) -> usize {
        self.calls.lock().len()
    }
}

impl ProbeRunner for Script {
    fn run<'a>(&'a self, pod_ip: &'a str) -> BoxFuture<'a, ProbeRun> {
        Box::pin(async move {
            self.calls.lock().push((Instant::now(), pod_ip.to_string()));
            let next = self.queue.lock().pop_front();
            let result = next.unwrap_or(*self.default.lock());
            if !self.delay.is_zero() {
                sleep(self.delay).await;
            }
            ProbeRun {
                started_at: SystemTime::now(),
                duration: self.delay,
                outcome: result.ok_or_else(|| HandlerError::Exec("scripted error".into())),
                handler_result: match result {
                    Some(ProbeResult::Success) => HandlerResult::Success,
                    Some(_) => HandlerResult::Failure,
                    None => HandlerResult::Unknown,
                },
                output: String::new(),
                tries: 1,
            }
        })
    }
}

struct Harness {
    t0: Instant,
    status: watch::Sender<Option<Arc<PodStatusView>>>,
    results: Arc<ResultsCache>,
    updates: crate::mailbox::Receiver<ResultUpdate>,
    handle: WorkerHandle,
    script: Arc<Script>,
}

impl Harness {
    fn start(
        config: WorkerConfig,
        period: Duration,
        script: Arc<Script>,
        status: Option<PodStatusView>,
    ) -> Self {
        let t0 = Instant::now();
        let (tx, rx) = watch::channel(status.map(Arc::new));
        let (results, updates) = ResultsCache::new();
        let key = WorkerKey {
            pod_uid: id("uid-1"),
            container: id("app"),
            probe_type: config.probe_type,
        };
        let handle = spawn(WorkerParams {
            key,
            config,
            period,
            status: rx,
            runner: script.clone(),
            results: results.clone(),
            history: Arc::new(ProbeHistory::new(10)),
        });
        Self {
            t0,
            status: tx,
            results,
            updates,
            handle,
            script,
        }
    }

    fn set_status(&self, s: PodStatusView) {
        self.status.send_replace(Some(Arc::new(s)));
    }

    async fn until(&self, at: Duration) {
        sleep_until(self.t0 + at).await;
    }

    fn result(&self, ty: ProbeType, cid: &str) -> Option<ProbeResult> {
        self.results.get(ty, cid)
    }

    fn drain_updates(&mut self) -> Vec<ProbeResult> {
        let mut out = Vec::new();
        while let Ok(u) = self.updates.try_recv() {
            out.push(u.result);
        }
        out
    }
}

// ------------------------------------------------------------------ §2.3 timing

#[tokio::test(start_paused = true)]
async fn rule_2_3_no_jitter_on_a_long_running_agent_first_probe_at_once() {
    let script = Script::with_default(S);
    let t0 = Instant::now();
    let h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 3),
        secs(10),
        script,
        Some(running("c1", t0, true)),
    );
    h.until(secs(25)).await;
    assert_eq!(h.script.times(h.t0), [secs(0), secs(10), secs(20)]);
}

#[tokio::test(start_paused = true)]
async fn rule_2_3_jitter_only_while_the_agent_started_less_than_a_period_ago() {
    let t0 = Instant::now();
    let mut c = cfg(ProbeType::Readiness, 0, 1, 3);
    c.agent_started = t0;
    let mut firsts = Vec::new();
    for _ in 0..8 {
        let h = Harness::start(
            c.clone(),
            secs(10),
            Script::with_default(S),
            Some(running("c1", t0, true)),
        );
        sleep(secs(11)).await;
        let first = h.script.times(h.t0)[0];
        assert!(
            first < secs(10),
            "jitter must stay within one period, got {first:?}"
        );
        // The ticker starts after the jitter: the second probe is one period after the first.
        if let Some(second) = h.script.times(h.t0).get(1) {
            assert_eq!(*second - first, secs(10));
        }
        firsts.push(first);
        h.handle.stop();
    }
    assert!(
        firsts.iter().any(|t| *t > Duration::ZERO),
        "some worker must have been delayed: {firsts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn rule_2_3_period_ticker_counts_from_worker_start_not_container_start() {
    let script = Script::with_default(S);
    let h = Harness::start(cfg(ProbeType::Readiness, 0, 1, 3), secs(10), script, None);
    h.until(Duration::from_millis(2500)).await;
    h.set_status(running("c1", h.t0 + Duration::from_millis(2500), true));
    h.until(secs(35)).await;
    assert_eq!(h.script.times(h.t0), [secs(10), secs(20), secs(30)]);
}

#[tokio::test(start_paused = true)]
async fn rule_2_3_manual_trigger_probes_now_and_resets_the_ticker() {
    let script = Script::with_default(F);
    let t0 = Instant::now();
    let h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 3),
        secs(10),
        script,
        Some(running("c1", t0, true)),
    );
    h.until(secs(4)).await;
    // As with Go's channel of one: the first trigger wakes the waiting worker, the second is
    // buffered (one more probe right after), the third is dropped.
    h.handle.trigger();
    h.handle.trigger();
    h.handle.trigger();
    h.until(secs(20)).await;
    assert_eq!(h.script.times(h.t0), [secs(0), secs(4), secs(4), secs(14)]);
}

/// The first `doProbe` looks at the status as the worker is created, not whenever its task gets
/// to run: a container that started before that (the task scheduled late) is probed by the
/// trigger of its start alone, not also by a first look that came after it.
#[tokio::test(start_paused = true)]
async fn rule_2_3_first_look_is_at_worker_creation() {
    let script = Script::with_default(F);
    let h = Harness::start(cfg(ProbeType::Readiness, 0, 1, 3), secs(10), script, None);
    // No await since the spawn: the task has not run yet.
    h.set_status(running("c1", h.t0, true));
    h.handle.trigger();
    h.until(secs(15)).await;
    assert_eq!(h.script.times(h.t0), [secs(0), secs(10)]);
}

#[tokio::test(start_paused = true)]
async fn rule_2_3_a_probe_longer_than_the_period_is_followed_by_one_at_once() {
    let t0 = Instant::now();
    let script = Arc::new(Script {
        delay: Duration::from_millis(2300),
        ..Default::default()
    });
    script.set_default(S);
    let h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 3),
        secs(1),
        script,
        Some(running("c1", t0, true)),
    );
    h.until(secs(7)).await;
    // Go's ticker keeps one missed tick and drops the rest.
    let ms = |m| Duration::from_millis(m);
    assert_eq!(h.script.times(h.t0), [ms(0), ms(2300), ms(4600), ms(6900)]);
}

#[tokio::test(start_paused = true)]
async fn rule_2_3_initial_delay_in_whole_seconds_from_started_at() {
    let t0 = Instant::now();
    // The container started 0.5 s before the worker; delay 3 s, period 1 s.
    let started_at = t0.checked_sub(Duration::from_millis(500)).unwrap_or(t0);
    let script = Script::with_default(S);
    let h = Harness::start(
        cfg(ProbeType::Readiness, 3, 1, 3),
        secs(1),
        script,
        Some(running("c1", started_at, true)),
    );
    h.until(Duration::from_millis(4500)).await;
    // At t=2 only 2.5 s have passed (2 whole seconds): skipped; t=3 → 3.5 s → probed.
    assert_eq!(h.script.times(h.t0), [secs(3), secs(4)]);
}

#[test]
fn rule_2_3_initial_delay_truncates_fractional_seconds() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Liveness, 5, 1, 3));
    let st = running("c1", t0, true);
    assert_eq!(
        tick(&mut m, &st, t0 + Duration::from_millis(4999)).next,
        Next::Wait
    );
    assert_eq!(tick(&mut m, &st, t0 + secs(5)).next, Next::Probe(id("c1")));
}

// ------------------------------------------------------------------ §2.4 doProbe order

#[test]
fn rule_2_4_1_no_pod_status_keeps_waiting() {
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 1, 3));
    let step = m.step(Input::Tick {
        status: None,
        container: "app",
        now: Instant::now(),
    });
    assert_eq!(step, Step::wait(vec![]));
}

#[tokio::test(start_paused = true)]
async fn rule_2_4_2_terminal_pod_stops_the_worker_and_removes_its_result() {
    let t0 = Instant::now();
    let h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 3),
        secs(1),
        Script::with_default(S),
        Some(running("c1", t0, true)),
    );
    h.until(Duration::from_millis(500)).await;
    assert_eq!(h.result(ProbeType::Readiness, "c1"), Some(S));
    let mut st = running("c1", t0, true);
    st.terminal = true;
    h.set_status(st);
    h.until(secs(3)).await;
    assert!(h.handle.is_finished());
    assert_eq!(h.result(ProbeType::Readiness, "c1"), None);
    assert_eq!(h.script.count(), 1);
}

#[test]
fn rule_2_4_3_container_without_id_waits_and_init_statuses_are_searched() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 1, 3));
    let mut st = pod(container("", ContainerState::Waiting, None));
    assert_eq!(tick(&mut m, &st, t0), Step::wait(vec![]));
    // A restartable init container of the same name is found among init statuses.
    st.init_containers = vec![container(
        "sidecar1",
        ContainerState::Running { started_at: t0 },
        Some(true),
    )];
    assert_eq!(tick(&mut m, &st, t0).next, Next::Probe(id("sidecar1")));
}

#[test]
fn rule_2_4_4_new_container_id_writes_the_initial_value_per_probe_type() {
    let t0 = Instant::now();
    for (ty, initial, started) in [
        (ProbeType::Readiness, F, true),
        (ProbeType::Liveness, S, true),
        (ProbeType::Startup, U, false),
    ] {
        let mut m = Machine::new(cfg(ty, 100, 1, 3));
        let step = tick(&mut m, &running("c1", t0, started), t0);
        assert_eq!(step.effects, [Effect::Set(id("c1"), initial)], "{ty}");
        // The next ID removes the old entry first.
        let step = tick(&mut m, &running("c2", t0, started), t0);
        assert_eq!(
            step.effects,
            [Effect::Remove(id("c1")), Effect::Set(id("c2"), initial)],
            "{ty}"
        );
    }
}

#[test]
fn rule_2_4_6_not_running_is_failure_and_stops_only_if_it_will_not_restart() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Liveness, 0, 1, 3));
    let waiting = pod(container("c1", ContainerState::Waiting, None));
    let step = tick(&mut m, &waiting, t0);
    assert_eq!(
        step.effects,
        [Effect::Set(id("c1"), S), Effect::Set(id("c1"), F)]
    );
    assert_eq!(step.next, Next::Wait);
    let restarting = pod(container(
        "c1",
        ContainerState::Terminated { will_restart: true },
        None,
    ));
    assert_eq!(tick(&mut m, &restarting, t0).next, Next::Wait);
    let done = pod(container(
        "c1",
        ContainerState::Terminated {
            will_restart: false,
        },
        None,
    ));
    let step = tick(&mut m, &done, t0);
    assert_eq!(step.effects, [Effect::Set(id("c1"), F)]);
    assert_eq!(step.next, Next::Stop);
}

#[test]
fn rule_2_4_7_deleting_pod_sets_liveness_and_startup_success_and_stops() {
    let t0 = Instant::now();
    for (ty, started) in [(ProbeType::Liveness, true), (ProbeType::Startup, false)] {
        let mut m = Machine::new(cfg(ty, 0, 1, 3));
        let mut st = running("c1", t0, started);
        st.deleting = true;
        let step = tick(&mut m, &st, t0);
        assert_eq!(sets(&step.effects).last(), Some(&S), "{ty}");
        assert_eq!(step.next, Next::Stop, "{ty}");
    }
    // Readiness keeps probing a deleting pod.
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 1, 3));
    let mut st = running("c1", t0, true);
    st.deleting = true;
    assert_eq!(tick(&mut m, &st, t0).next, Next::Probe(id("c1")));
}

#[test]
fn rule_2_4_9_startup_gates_liveness_and_readiness() {
    let t0 = Instant::now();
    let not_started = running("c1", t0, false);
    let started = running("c1", t0, true);
    for ty in [ProbeType::Liveness, ProbeType::Readiness] {
        let mut m = Machine::new(cfg(ty, 0, 1, 3));
        assert_eq!(tick(&mut m, &not_started, t0).next, Next::Wait, "{ty}");
        assert_eq!(
            tick(&mut m, &started, t0).next,
            Next::Probe(id("c1")),
            "{ty}"
        );
    }
    let mut m = Machine::new(cfg(ProbeType::Startup, 0, 1, 3));
    assert_eq!(tick(&mut m, &not_started, t0).next, Next::Probe(id("c1")));
    assert_eq!(tick(&mut m, &started, t0).next, Next::Wait);
    // `started` absent counts as not started.
    let mut absent = running("c1", t0, false);
    absent.containers[0].started = None;
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 1, 3));
    assert_eq!(tick(&mut m, &absent, t0).next, Next::Wait);
}

#[test]
fn rule_2_4_10_prober_error_is_thrown_away() {
    let t0 = Instant::now();
    let st = running("c1", t0, true);
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 1, 1));
    tick(&mut m, &st, t0);
    assert_eq!(m.step(Input::Probed(None)), Step::wait(vec![]));
    assert_eq!(m.run(), (S, 0));
}

#[test]
fn rule_2_4_12_failure_threshold_needs_consecutive_failures() {
    let t0 = Instant::now();
    let st = running("c1", t0, true);
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 1, 3));
    let mut written = Vec::new();
    for r in [F, F, S, F, F, F] {
        written.push(sets(&probe_once(&mut m, &st, t0, r)));
    }
    // Initial Failure on the first tick, Success at the first success, Failure at the 3rd in a row.
    assert_eq!(written, [vec![F], vec![], vec![S], vec![], vec![], vec![F]]);
}

#[test]
fn rule_2_4_12_success_threshold_needs_consecutive_successes() {
    let t0 = Instant::now();
    let st = running("c1", t0, true);
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 3, 1));
    let mut written = Vec::new();
    for r in [S, S, F, S, S, S] {
        written.push(sets(&probe_once(&mut m, &st, t0, r)));
    }
    assert_eq!(written, [vec![F], vec![], vec![F], vec![], vec![], vec![S]]);
}

#[test]
fn rule_2_4_14_liveness_failure_holds_until_a_new_container_id() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Liveness, 0, 1, 2));
    let st = running("c1", t0, true);
    probe_once(&mut m, &st, t0, F);
    let effects = probe_once(&mut m, &st, t0, F);
    assert_eq!(sets(&effects), [F]);
    assert!(m.on_hold());
    assert_eq!(m.run(), (F, 0));
    assert_eq!(tick(&mut m, &st, t0), Step::wait(vec![]));
    // The restarted container starts at liveness Success and is probed again.
    let step = tick(&mut m, &running("c2", t0, true), t0);
    assert_eq!(
        step.effects,
        [Effect::Remove(id("c1")), Effect::Set(id("c2"), S)]
    );
    assert_eq!(step.next, Next::Probe(id("c2")));
}

#[test]
fn rule_2_4_14_liveness_success_does_not_hold() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Liveness, 0, 1, 3));
    let st = running("c1", t0, true);
    probe_once(&mut m, &st, t0, S);
    assert!(!m.on_hold());
    assert!(matches!(tick(&mut m, &st, t0).next, Next::Probe(_)));
}

#[test]
fn rule_2_4_14_startup_holds_after_either_outcome() {
    let t0 = Instant::now();
    for (outcome, threshold_runs) in [(S, 1), (F, 3)] {
        let mut m = Machine::new(cfg(ProbeType::Startup, 0, 1, 3));
        let st = running("c1", t0, false);
        let mut last = Vec::new();
        for _ in 0..threshold_runs {
            last = probe_once(&mut m, &st, t0, outcome);
        }
        assert_eq!(sets(&last).last(), Some(&outcome));
        assert!(m.on_hold(), "startup must hold after {outcome}");
        assert_eq!(tick(&mut m, &st, t0), Step::wait(vec![]));
    }
}

// ------------------------------------------------------------------ §2.5 consequences

#[test]
fn rule_2_5_readiness_never_holds() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 1, 1));
    let st = running("c1", t0, true);
    probe_once(&mut m, &st, t0, F);
    assert!(!m.on_hold());
    assert!(matches!(tick(&mut m, &st, t0).next, Next::Probe(_)));
}

#[test]
fn rule_2_5_quirk_success_streak_carries_over_to_the_next_container() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 3, 3));
    let c1 = running("c1", t0, true);
    for _ in 0..3 {
        probe_once(&mut m, &c1, t0, S);
    }
    assert_eq!(m.run(), (S, 3));
    // New container: initial Failure, then Ready on its very first success.
    let c2 = running("c2", t0, true);
    let effects = probe_once(&mut m, &c2, t0, S);
    assert_eq!(sets(&effects), [F, S]);
}

#[test]
fn rule_2_5_quirk_failure_streak_needs_the_full_success_threshold() {
    let t0 = Instant::now();
    let mut m = Machine::new(cfg(ProbeType::Readiness, 0, 3, 3));
    let c1 = running("c1", t0, true);
    probe_once(&mut m, &c1, t0, F);
    let c2 = running("c2", t0, true);
    assert_eq!(sets(&probe_once(&mut m, &c2, t0, S)), [F]);
    assert_eq!(
        sets(&probe_once(&mut m, &c2, t0, S)),
        Vec::<ProbeResult>::new()
    );
    assert_eq!(sets(&probe_once(&mut m, &c2, t0, S)), [S]);
}

#[tokio::test(start_paused = true)]
async fn rule_2_5_always_erroring_probe_never_changes_state() {
    let t0 = Instant::now();
    for (ty, started, initial) in [
        (ProbeType::Readiness, true, F),
        (ProbeType::Liveness, true, S),
        (ProbeType::Startup, false, U),
    ] {
        let script = Arc::new(Script::default()); // no default: every probe errors
        let mut h = Harness::start(
            cfg(ty, 0, 1, 1),
            secs(1),
            script,
            Some(running("c1", t0, started)),
        );
        h.until(secs(10)).await;
        assert!(h.script.count() >= 10, "{ty}");
        assert_eq!(h.result(ty, "c1"), Some(initial), "{ty}");
        assert_eq!(h.drain_updates(), [initial], "{ty}");
        h.handle.stop();
    }
}

#[tokio::test(start_paused = true)]
async fn rule_2_5_container_exit_sets_failure_at_once() {
    let t0 = Instant::now();
    let mut h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 3),
        secs(1),
        Script::with_default(S),
        Some(running("c1", t0, true)),
    );
    h.until(Duration::from_millis(500)).await;
    assert_eq!(h.drain_updates(), [F, S]);
    h.set_status(pod(container(
        "c1",
        ContainerState::Terminated { will_restart: true },
        Some(false),
    )));
    h.until(Duration::from_millis(1500)).await;
    assert_eq!(h.drain_updates(), [F]);
    assert_eq!(h.result(ProbeType::Readiness, "c1"), Some(F));
}

#[tokio::test(start_paused = true)]
async fn rule_2_5_results_publish_only_changes() {
    let t0 = Instant::now();
    let script = Script::with_default(S);
    let mut h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 1),
        secs(1),
        script,
        Some(running("c1", t0, true)),
    );
    h.until(Duration::from_millis(5500)).await;
    assert_eq!(h.drain_updates(), [F, S]);
    h.script.set_default(F);
    h.until(Duration::from_millis(7500)).await;
    assert_eq!(h.drain_updates(), [F]);
    // Eight attempts: six successes, then two failures — two records.
    let recs = h.handle.history().snapshot();
    assert_eq!(
        recs.iter()
            .map(|a| (a.outcome.clone(), a.repeats))
            .collect::<Vec<_>>(),
        [(Ok(S), 5), (Ok(F), 1)]
    );
}

#[test]
fn rule_2_2_adopted_container_after_agent_restart_keeps_its_state() {
    let now = Instant::now();
    let mut c = cfg(ProbeType::Readiness, 0, 1, 3);
    c.agent_started = now;
    let before_restart = now.checked_sub(secs(60)).unwrap_or(now);
    let mut m = Machine::new(c.clone());
    let step = tick(&mut m, &running("c1", before_restart, true), now);
    assert_eq!(step.effects, []);
    // With the (deprecated) gate on, the initial value is written as before 1.35.
    c.change_status_on_agent_restart = true;
    let mut m = Machine::new(c);
    let step = tick(&mut m, &running("c1", before_restart, true), now);
    assert_eq!(step.effects, [Effect::Set(id("c1"), F)]);
}

// ------------------------------------------------------------------ §2.6 termination

#[tokio::test(start_paused = true)]
async fn rule_2_6_readiness_keeps_probing_while_the_pod_terminates() {
    let t0 = Instant::now();
    let mut st = running("c1", t0, true);
    st.deleting = true;
    let script = Script::with_default(S);
    let mut h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 1),
        secs(1),
        script,
        Some(st),
    );
    h.until(Duration::from_millis(2500)).await;
    h.script.set_default(F);
    h.until(Duration::from_millis(3500)).await;
    assert_eq!(h.script.count(), 4);
    assert_eq!(h.drain_updates(), [F, S, F]);
    assert!(!h.handle.is_finished());
}

#[tokio::test(start_paused = true)]
async fn rule_2_6_stop_ends_liveness_and_removes_its_result() {
    let t0 = Instant::now();
    let h = Harness::start(
        cfg(ProbeType::Liveness, 0, 1, 3),
        secs(1),
        Script::with_default(S),
        Some(running("c1", t0, true)),
    );
    h.until(Duration::from_millis(1500)).await;
    assert_eq!(h.result(ProbeType::Liveness, "c1"), Some(S));
    h.handle.stop();
    h.until(secs(5)).await;
    assert!(h.handle.is_finished());
    assert_eq!(h.script.count(), 2);
    assert_eq!(h.result(ProbeType::Liveness, "c1"), None);
}

#[tokio::test(start_paused = true)]
async fn rule_2_6_stop_interrupts_a_probe_in_flight() {
    let t0 = Instant::now();
    let script = Arc::new(Script {
        delay: secs(30),
        ..Default::default()
    });
    script.set_default(F);
    let h = Harness::start(
        cfg(ProbeType::Liveness, 0, 1, 1),
        secs(60),
        script,
        Some(running("c1", t0, true)),
    );
    h.until(secs(1)).await;
    h.handle.stop();
    h.until(secs(2)).await;
    assert!(h.handle.is_finished());
    // The interrupted probe's failure was never written.
    assert_eq!(h.result(ProbeType::Liveness, "c1"), None);
    assert!(h.handle.history().is_empty());
}

#[tokio::test(start_paused = true)]
async fn rule_2_6_pod_ip_reaches_the_prober_and_history_records_attempts() {
    let t0 = Instant::now();
    let h = Harness::start(
        cfg(ProbeType::Readiness, 0, 1, 1),
        secs(1),
        Script::with_default(S),
        Some(running("c1", t0, true)),
    );
    h.until(Duration::from_millis(1500)).await;
    assert_eq!(h.script.calls.lock()[0].1, "10.0.0.7");
    let attempts = h.handle.history().snapshot();
    // Two attempts with the same outcome: one record that counts the second.
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].repeats, 1);
    assert_eq!(&*attempts[0].container_id, "c1");
    assert_eq!(attempts[0].outcome, Ok(S));
}
