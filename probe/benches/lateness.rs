//! Lateness of probes (actual start − scheduled start) with 1,000 and 10,000 workers at a
//! 1-second period on one core (a current-thread runtime, real time), and memory per worker.
//!
//! The probe itself is a no-op so this measures the engine: tickers, status reads, results,
//! history. Two layouts: `aligned` (all workers created at once on a long-running agent, so
//! they tick together: the worst case) and `jittered` (the agent just started, so each worker
//! first sleeps a random part of the period, as the kubelet does).
//! Memory is the RSS growth while the workers run, divided by their number; the first run keeps
//! no history, so it is the worker alone.
//! Run: `cargo bench -p probe --bench lateness`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use probe::worker::{
    self, ContainerState, ContainerStatusView, PodStatusView, WorkerConfig, WorkerParams,
};
use probe::{
    HandlerResult, ProbeHistory, ProbeResult, ProbeRun, ProbeRunner, ProbeType, ResultsCache,
    WorkerKey,
};
use tokio::sync::watch;
use tokio::time::Instant;

const PERIOD: Duration = Duration::from_secs(1);

struct Recorder {
    first: Mutex<Option<(Instant, u32)>>,
    samples: Arc<Mutex<Vec<Duration>>>,
}

impl ProbeRunner for Recorder {
    fn run<'a>(&'a self, _pod_ip: &'a str) -> BoxFuture<'a, ProbeRun> {
        let now = Instant::now();
        {
            let mut first = self.first.lock();
            match &mut *first {
                None => *first = Some((now, 0)),
                Some((t0, k)) => {
                    *k += 1;
                    let scheduled = *t0 + PERIOD * *k;
                    self.samples
                        .lock()
                        .push(now.saturating_duration_since(scheduled));
                }
            }
        }
        Box::pin(async move {
            ProbeRun {
                started_at: SystemTime::now(),
                duration: Duration::ZERO,
                outcome: Ok(ProbeResult::Success),
                handler_result: HandlerResult::Success,
                output: String::new(),
                tries: 1,
            }
        })
    }
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn run(workers: usize, jitter: bool, seconds: u64, history: usize) {
    let now = Instant::now();
    let agent_started = if jitter {
        now
    } else {
        now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
    };
    let status = PodStatusView {
        pod_ip: "127.0.0.1".into(),
        containers: vec![ContainerStatusView {
            name: "app".into(),
            container_id: Arc::from("containerd://c1"),
            state: ContainerState::Running {
                started_at: now.checked_sub(Duration::from_secs(60)).unwrap_or(now),
            },
            started: Some(true),
        }],
        ..Default::default()
    };
    let (_tx, rx) = watch::channel(Some(Arc::new(status)));
    let (results, mut updates) = ResultsCache::new();
    let samples = Arc::new(Mutex::new(Vec::with_capacity(workers * seconds as usize)));
    let rss_before = rss_bytes();
    let mut handles = Vec::with_capacity(workers);
    for i in 0..workers {
        let config = WorkerConfig {
            probe_type: ProbeType::Readiness,
            initial_delay_seconds: 0,
            success_threshold: 1,
            failure_threshold: 3,
            restartable_init: false,
            agent_started,
            change_status_on_agent_restart: false,
        };
        handles.push(worker::spawn(WorkerParams {
            key: WorkerKey {
                pod_uid: Arc::from(format!("pod-{i}")),
                container: Arc::from("app"),
                probe_type: ProbeType::Readiness,
            },
            config,
            period: PERIOD,
            status: rx.clone(),
            runner: Arc::new(Recorder {
                first: Mutex::new(None),
                samples: samples.clone(),
            }),
            results: results.clone(),
            history: Arc::new(ProbeHistory::new(history)),
        }));
    }
    let drain = tokio::spawn(async move { while updates.recv().await.is_some() {} });
    tokio::time::sleep(Duration::from_secs(seconds) + Duration::from_millis(500)).await;
    let rss_after = rss_bytes();
    let attempts: usize = handles.iter().map(|h| h.history().len()).sum();
    for h in &handles {
        h.stop();
    }
    for h in handles {
        h.join().await;
    }
    drain.abort();
    let mut s = std::mem::take(&mut *samples.lock());
    s.sort();
    let per_worker = rss_after.saturating_sub(rss_before) as f64 / workers as f64;
    println!(
        "{workers:>6} workers {:<8}: {:>6} probes  lateness p50 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}  rss/worker {:>6.0} B (incl. {:.1} attempts of history each)",
        if jitter { "jittered" } else { "aligned" },
        s.len(),
        pct(&s, 0.5),
        pct(&s, 0.99),
        s.last().copied().unwrap_or_default(),
        per_worker,
        attempts as f64 / workers as f64,
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // First, in a fresh heap: memory of a worker without history.
        run(10_000, false, 3, 0).await;
        for (workers, jitter) in [
            (1_000, false),
            (1_000, true),
            (10_000, false),
            (10_000, true),
        ] {
            run(workers, jitter, 8, probe::history::DEFAULT_HISTORY).await;
        }
    });
}
