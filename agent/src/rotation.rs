//! When a node renews a certificate: the schedule of the kubelet's certificate manager
//! (client-go `util/certificate/certificate_manager.go`, `manager.Start`), shared by the
//! agent API's serving certificate ([`crate::certificate`]) and the node's client certificate
//! (the binary's join code). What a renewal does is the caller's ([`Rotate`]); this module
//! owns only when it happens.
//!
//! One round: wait until the rotation deadline — `notBefore` plus a random 70–90 % of the
//! certificate's life ([`rotation_deadline`], upstream `nextRotationDeadline` with
//! `jitteryDuration`), or now when the current certificate no longer fits what the node needs
//! —, then renew with upstream's back-off (`wait.ExponentialBackoff` of 2 s, factor 2, 10 %
//! jitter, 5 tries; then `wait.PollInfinite` every 32 s until one succeeds). Rounds follow each
//! other with upstream's `wait.Until` period of 1 s, so a certificate whose deadline has
//! already passed when it is issued (a lifetime shorter than the signer's 5-minute backdate
//! makes one) is renewed once a second, not in a busy loop.
//!
//! All waiting is `tokio::time`, and the wall clock (certificates carry wall-clock times) comes
//! from a [`Clock`], so a test with paused time runs a year of rotations in an instant.
//! Start at [`run`].

use std::future::Future;
use std::time::{Duration, SystemTime};

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// `wait.Until`'s period between rounds.
pub const ROUND_PERIOD: Duration = Duration::from_secs(1);
/// The first retry of a failed renewal (`wait.Backoff.Duration`).
pub const FIRST_RETRY: Duration = Duration::from_secs(2);
/// Tries of the exponential back-off (`wait.Backoff.Steps`).
pub const BACKOFF_STEPS: u32 = 5;
/// The retry period once the back-off is exhausted (`wait.PollInfinite`'s 32 s).
pub const POLL_PERIOD: Duration = Duration::from_secs(32);

/// The wall clock the certificates' validity is compared with.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A certificate's validity: `notBefore`, `notAfter`.
pub type Validity = (SystemTime, SystemTime);

/// The kubelet certificate manager's deadline: `not_before` plus a random 70–90 % of the
/// certificate's life (upstream `wait.Jitter(total, 0.2) - 0.3 * total`).
pub fn rotation_deadline(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    let share: f64 = 0.7 + rand::rng().random::<f64>() * 0.2;
    not_before + life.mul_f64(share)
}

/// `wait.Jitter(d, factor)`: `d` plus up to `factor` of it, at random.
fn jitter(d: Duration, factor: f64) -> Duration {
    d + d.mul_f64(rand::rng().random::<f64>() * factor)
}

/// What [`run`] rotates.
pub trait Rotate: Send + Sync {
    /// The current certificate's validity, `None` when there is none or it no longer fits
    /// what the node needs (then the round renews at once, as upstream does when the
    /// certificate does not satisfy its template).
    fn current(&self) -> Option<Validity>;

    /// Requests, waits for and installs a new certificate; an error is logged and retried.
    fn renew(&self) -> impl Future<Output = Result<(), String>> + Send;
}

/// Renews `what` at each rotation deadline until `stop` (upstream `manager.Start`'s loop).
pub async fn run<R: Rotate>(what: &R, name: &str, clock: &dyn Clock, stop: &CancellationToken) {
    loop {
        if !round(what, name, clock, stop).await {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(ROUND_PERIOD) => {}
        }
    }
}

/// One round: the wait for the deadline, then renewals until one succeeds. `false` when
/// stopped.
async fn round<R: Rotate>(
    what: &R,
    name: &str,
    clock: &dyn Clock,
    stop: &CancellationToken,
) -> bool {
    let deadline = match what.current() {
        Some((not_before, not_after)) => {
            let d = rotation_deadline(not_before, not_after);
            tracing::debug!(
                certificate = name,
                expiration = %humantime(not_after),
                deadline = %humantime(d),
                "certificate expiration and rotation deadline"
            );
            d
        }
        None => clock.now(),
    };
    if let Ok(wait) = deadline.duration_since(clock.now())
        && !wait.is_zero()
    {
        tracing::debug!(
            certificate = name,
            ?wait,
            "waiting for the next certificate rotation"
        );
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    let attempt = || async {
        tokio::select! {
            _ = stop.cancelled() => None,
            r = what.renew() => Some(r),
        }
    };
    let mut retry = FIRST_RETRY;
    for step in 1..=BACKOFF_STEPS {
        match attempt().await {
            None => return false,
            Some(Ok(())) => return true,
            Some(Err(e)) => {
                tracing::warn!(certificate = name, error = %e, "certificate rotation failed");
            }
        }
        if step == BACKOFF_STEPS {
            break;
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(jitter(retry, 0.1)) => {}
        }
        retry *= 2;
    }
    tracing::warn!(
        certificate = name,
        "reached backoff limit, still unable to rotate certs; retrying every {POLL_PERIOD:?}"
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => return false,
            _ = tokio::time::sleep(POLL_PERIOD) => {}
        }
        match attempt().await {
            None => return false,
            Some(Ok(())) => return true,
            Some(Err(e)) => {
                tracing::warn!(certificate = name, error = %e, "certificate rotation failed");
            }
        }
    }
}

/// A wall-clock time as RFC 3339, for logs.
fn humantime(t: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("{t:?}"))
}

#[cfg(test)]
mod tests;
