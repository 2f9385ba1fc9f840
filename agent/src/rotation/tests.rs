//! The rotation schedule under paused time: deadlines within 70–90 % of each certificate's
//! life, upstream's back-off after failures, immediate renewal of a certificate that does not
//! fit, and one round a second when the deadline is already past at issuance.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::*;

/// Wall-clock time that moves with tokio's (paused) clock.
struct TestClock {
    base: SystemTime,
    start: tokio::time::Instant,
}

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        self.base + self.start.elapsed()
    }
}

/// A certificate store whose renewals fail `fail_next` times, then issue a certificate of
/// `life` backdated by `backdate`; it records when each renewal was tried.
struct Fake {
    clock: Arc<TestClock>,
    life: Duration,
    backdate: Duration,
    state: Mutex<State>,
}

struct State {
    current: Option<Validity>,
    fail_next: u32,
    attempts: Vec<Duration>,
}

impl Rotate for Fake {
    fn current(&self) -> Option<Validity> {
        self.state.lock().current
    }

    async fn renew(&self) -> Result<(), String> {
        let now = self.clock.now();
        let mut s = self.state.lock();
        s.attempts.push(self.clock.start.elapsed());
        if s.fail_next > 0 {
            s.fail_next -= 1;
            return Err("the signer is away".into());
        }
        s.current = Some((now - self.backdate, now + self.life));
        Ok(())
    }
}

fn fake(current: Option<Validity>, life: Duration, backdate: Duration, fail: u32) -> Arc<Fake> {
    let clock = Arc::new(TestClock {
        base: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        start: tokio::time::Instant::now(),
    });
    Arc::new(Fake {
        clock,
        life,
        backdate,
        state: Mutex::new(State {
            current,
            fail_next: fail,
            attempts: Vec::new(),
        }),
    })
}

/// The rotation schedule of `f` on a task of its own, until `stop`.
fn spawn_run(f: &Arc<Fake>, stop: &CancellationToken) -> tokio::task::JoinHandle<()> {
    let (f, stop) = (f.clone(), stop.clone());
    tokio::spawn(async move {
        let clock = f.clock.clone();
        run(&*f, "test", &*clock, &stop).await;
    })
}

/// Runs the schedule for `how_long` of (paused) time and returns the attempts' times.
async fn attempts_within(f: &Arc<Fake>, how_long: Duration) -> Vec<Duration> {
    let stop = CancellationToken::new();
    let task = spawn_run(f, &stop);
    tokio::time::sleep(how_long).await;
    stop.cancel();
    task.await.unwrap();
    f.state.lock().attempts.clone()
}

fn gaps(at: &[Duration]) -> Vec<f64> {
    at.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect()
}

#[tokio::test(start_paused = true)]
async fn renewals_fall_between_70_and_90_percent_of_each_certificates_life() {
    let life = Duration::from_secs(1000);
    let f = fake(None, life, Duration::ZERO, 0);
    let now = f.clock.now();
    f.state.lock().current = Some((now, now + life));
    let at = attempts_within(&f, Duration::from_secs(20_000)).await;
    // 20,000 s of certificates renewed every 700–900 s.
    assert!((22..=29).contains(&at.len()), "{at:?}");
    let first = at[0].as_secs_f64();
    assert!((700.0..=900.0).contains(&first), "{first}");
    for g in gaps(&at) {
        // The next deadline counts from the new certificate's notBefore, which is the
        // renewal itself; the round's 1 s pause lies inside it.
        assert!((700.0..=900.0).contains(&g), "{g}");
    }
    // Not all at one share of the life: the deadline is drawn anew each time.
    let spread = gaps(&at)
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), g| (lo.min(*g), hi.max(*g)));
    assert!(spread.1 - spread.0 > 10.0, "{spread:?}");
}

#[tokio::test(start_paused = true)]
async fn failed_renewals_back_off_as_upstream_then_poll_every_32_seconds() {
    let life = Duration::from_secs(100_000);
    let f = fake(None, life, Duration::ZERO, 7);
    let at = attempts_within(&f, Duration::from_secs(300)).await;
    // No fitting certificate: the first try is at once.
    assert_eq!(at[0], Duration::ZERO);
    // 5 tries 2, 4, 8, 16 s apart (each up to 10 % more), then every 32 s; the 8th succeeds
    // and the next deadline is far away.
    assert_eq!(at.len(), 8, "{at:?}");
    let g = gaps(&at);
    for (i, base) in [2.0, 4.0, 8.0, 16.0].iter().enumerate() {
        assert!(g[i] >= *base && g[i] <= base * 1.1, "gap {i}: {}", g[i]);
    }
    assert_eq!(&g[4..], &[32.0, 32.0, 32.0]);
    assert!(f.state.lock().current.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_deadline_already_past_at_issuance_renews_once_a_second() {
    // 20 s certificates backdated 5 minutes (the signer's rule): the deadline is before the
    // certificate is even issued, every time.
    let f = fake(None, Duration::from_secs(20), Duration::from_secs(300), 0);
    let at = attempts_within(&f, Duration::from_millis(10_500)).await;
    assert_eq!(at.len(), 11, "{at:?}");
    assert!(gaps(&at).iter().all(|g| *g == 1.0), "{at:?}");
}

#[tokio::test(start_paused = true)]
async fn stopping_ends_the_wait_and_a_renewal_under_way() {
    let f = fake(None, Duration::from_secs(1000), Duration::ZERO, u32::MAX);
    let stop = CancellationToken::new();
    let task = spawn_run(&f, &stop);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    task.await.unwrap();
    let tries = f.state.lock().attempts.len();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(f.state.lock().attempts.len(), tries);
    assert_eq!(tries, 2);
}

#[test]
fn deadlines_fall_between_70_and_90_percent_of_the_life() {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    let end = start + Duration::from_secs(365 * 24 * 3600);
    let mut shares = Vec::new();
    for _ in 0..1000 {
        let d = rotation_deadline(start, end).duration_since(start).unwrap();
        let share = d.as_secs_f64() / (365.0 * 24.0 * 3600.0);
        assert!((0.7..=0.9).contains(&share), "{share}");
        shares.push(share);
    }
    assert!(shares.iter().any(|s| *s < 0.75) && shares.iter().any(|s| *s > 0.85));
}
