//! The agent's fast path into a service proxy on the same node (issue 5, "beyond Kubernetes"):
//! a [`RoutingHook`] the pod workers call in-process, ahead of the API round trip.
//!
//! - **Readiness** (3c): whenever the `Ready` condition a worker is about to publish changes
//!   (ContainersReady plus readiness gates, what the endpoints controllers will see), the
//!   worker calls [`RoutingHook::set_state`] with [`RouteState::Ready`] or
//!   [`RouteState::NotReady`] *before* writing the status to the API.
//! - **Kills** (3b): before a container is signalled — pod deletion, a liveness or startup
//!   kill, a changed definition, the agent's own shutdown — the pod is set
//!   [`RouteState::Draining`] (no new connection goes to it, not even as a terminating
//!   fallback), and the kill waits until the proxy holds no connection to it
//!   ([`RoutingHook::active_connections`]) or [`drain_limit`] has passed, whichever is first,
//!   and only then sends SIGTERM. A kill's preStop hook runs during that wait; the time spent
//!   comes out of the grace period, as a preStop hook's does.
//! - While a pod is deleting, or any of its containers is being killed, it stays draining
//!   whatever its probes say; once the killed container has exited, the readiness path takes
//!   over again (a restarted container comes back through `Ready`).
//! - When the pod is finished on this node, [`RoutingHook::forget`].
//!
//! The agent does not depend on the proxy: `paddock up` adapts `proxy::Proxy` to this trait.
//! Without a hook (an agent on its own, routing only through the API) nothing here costs more
//! than an `Option` check; kills do not wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// The longest a kill waits for the proxy's connections to a draining pod to close before
/// the process gets SIGTERM. In-flight requests normally finish in milliseconds; connections
/// that stay open (keep-alive, streams) are not going to close on their own, and the
/// application closes them gracefully on SIGTERM, so waiting longer only delays it.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// How often the drain wait looks at the proxy's connection count.
pub const DRAIN_POLL: Duration = Duration::from_millis(5);

/// How a pod's endpoints should be routed right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteState {
    /// The pod is Ready: new connections may go to it.
    Ready,
    /// The pod is not Ready: no new connections (existing ones keep flowing).
    NotReady,
    /// The pod is about to be signalled: no new connections at all, not even as a
    /// serving-and-terminating fallback; existing ones finish.
    Draining,
}

/// The pod a routing call is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodEndpoint {
    /// The pod's `metadata.uid` (what EndpointSlices carry in `targetRef.uid`).
    pub uid: String,
    /// `namespace/name`, for logs.
    pub name: String,
    /// The pod IP.
    pub ip: IpAddr,
    /// Whether the IP is the pod's own (an isolated pod); false when the pod shares the
    /// node's address (hostNetwork, host mode), so the address does not identify it.
    pub own_ip: bool,
}

/// Where the agent tells a local service proxy about its pods, in-process. Implementations
/// must be quick and must not block: they are called from the pod workers.
pub trait RoutingHook: Send + Sync {
    /// The pod's endpoints are now `state`. Returns once routing reflects it, so the caller
    /// may signal a draining process right after.
    fn set_state(&self, pod: &PodEndpoint, state: RouteState);
    /// The pod is gone from this node: drop what [`RoutingHook::set_state`] said of it (the
    /// API's view, if any, applies again).
    fn forget(&self, pod: &PodEndpoint);
    /// Connections the proxy holds open to the pod (any service, any port).
    fn active_connections(&self, pod: &PodEndpoint) -> usize;
    /// Adds the proxy's metric families to the agent's `/metrics`.
    fn register_metrics(&self, _registry: &mut prometheus_client::registry::Registry) {}
}

/// The agent's routing hook plus what it last told it, per pod (so the agent's shutdown can
/// drain every pod it routes).
#[derive(Clone, Default)]
pub struct Routing {
    hook: Option<Arc<dyn RoutingHook>>,
    pods: Arc<Mutex<HashMap<String, (PodEndpoint, RouteState)>>>,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing")
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Routing {
    /// Routing through `hook` (`None`: none; every call is a no-op).
    pub fn new(hook: Option<Arc<dyn RoutingHook>>) -> Routing {
        Routing {
            hook,
            pods: Arc::default(),
        }
    }

    /// Whether there is a hook.
    pub fn enabled(&self) -> bool {
        self.hook.is_some()
    }

    /// Tells the hook `pod` is `state` unless that is what it was told last.
    /// Returns whether the hook was told something new.
    pub fn set(&self, pod: &PodEndpoint, state: RouteState) -> bool {
        let Some(hook) = &self.hook else { return false };
        {
            let mut pods = self.pods.lock();
            if pods.get(&pod.uid) == Some(&(pod.clone(), state)) {
                return false;
            }
            pods.insert(pod.uid.clone(), (pod.clone(), state));
        }
        tracing::debug!(pod = %pod.name, ip = %pod.ip, ?state, "routing");
        hook.set_state(pod, state);
        true
    }

    /// What the hook was last told of pod `uid`.
    pub fn last(&self, uid: &str) -> Option<RouteState> {
        self.pods.lock().get(uid).map(|(_, s)| *s)
    }

    /// Forgets pod `uid`.
    pub fn forget(&self, uid: &str) {
        let Some(hook) = &self.hook else { return };
        let removed = self.pods.lock().remove(uid);
        if let Some((pod, _)) = removed {
            hook.forget(&pod);
        }
    }

    /// Waits until the proxy holds no connection to `pod` or `deadline` passes; returns how
    /// many were still open then. Returns at once without a hook.
    pub async fn wait_drained(&self, pod: &PodEndpoint, deadline: Instant) -> usize {
        let Some(hook) = &self.hook else { return 0 };
        loop {
            let open = hook.active_connections(pod);
            let now = Instant::now();
            if open == 0 || now >= deadline {
                if open > 0 {
                    tracing::info!(pod = %pod.name, open, "drain limit reached; stopping with connections open");
                }
                return open;
            }
            tokio::time::sleep_until((now + DRAIN_POLL).min(deadline)).await;
        }
    }

    /// The agent is stopping every pod: drains all of them (in parallel, bounded by
    /// [`DRAIN_LIMIT`] in all).
    pub async fn drain_all(&self) {
        if self.hook.is_none() {
            return;
        }
        let pods: Vec<PodEndpoint> = self.pods.lock().values().map(|(p, _)| p.clone()).collect();
        for p in &pods {
            self.set(p, RouteState::Draining);
        }
        let deadline = Instant::now() + DRAIN_LIMIT;
        for p in &pods {
            self.wait_drained(p, deadline).await;
        }
    }
}

/// How long a kill with grace period `grace` may wait for connections to drain: at most
/// [`DRAIN_LIMIT`] and at most half the grace period (the process keeps the rest for its
/// own SIGTERM handling); nothing for a zero grace period.
pub fn drain_limit(grace: Duration) -> Duration {
    DRAIN_LIMIT.min(grace / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records calls; a pod keeps one connection open until `open_until`.
    #[derive(Default)]
    struct Hook {
        calls: Mutex<Vec<(String, RouteState)>>,
        open_until: Mutex<HashMap<String, Instant>>,
    }

    impl RoutingHook for Hook {
        fn set_state(&self, pod: &PodEndpoint, state: RouteState) {
            self.calls.lock().push((pod.uid.clone(), state));
        }
        fn forget(&self, _pod: &PodEndpoint) {}
        fn active_connections(&self, pod: &PodEndpoint) -> usize {
            let open = self.open_until.lock();
            usize::from(open.get(&pod.uid).is_some_and(|t| Instant::now() < *t))
        }
    }

    fn pod(uid: &str) -> PodEndpoint {
        PodEndpoint {
            uid: uid.into(),
            name: format!("ns/{uid}"),
            ip: IpAddr::from([10, 244, 0, 2]),
            own_ip: true,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn repeats_are_not_sent_and_shutdown_drains_every_pod_within_the_limit() {
        let hook = Arc::new(Hook::default());
        let r = Routing::new(Some(hook.clone()));
        r.set(&pod("a"), RouteState::Ready);
        r.set(&pod("a"), RouteState::Ready);
        r.set(&pod("b"), RouteState::NotReady);
        assert_eq!(r.last("a"), Some(RouteState::Ready));
        let now = Instant::now();
        hook.open_until
            .lock()
            .insert("a".into(), now + Duration::from_millis(300));
        hook.open_until
            .lock()
            .insert("b".into(), now + Duration::from_secs(60));
        r.drain_all().await;
        // a's connection closed at 300 ms; b's never does: the whole drain stops at the limit.
        assert_eq!(Instant::now() - now, DRAIN_LIMIT);
        let calls = hook.calls.lock().clone();
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert!(calls[2..].iter().all(|(_, s)| *s == RouteState::Draining));
        r.forget("a");
        assert_eq!(r.last("a"), None);
        assert_eq!(
            drain_limit(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(drain_limit(Duration::ZERO), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_hook_nothing_waits() {
        let r = Routing::new(None);
        r.set(&pod("a"), RouteState::Ready);
        assert_eq!(r.last("a"), None);
        let now = Instant::now();
        assert_eq!(r.wait_drained(&pod("a"), now + DRAIN_LIMIT).await, 0);
        r.drain_all().await;
        assert_eq!(Instant::now(), now);
    }
}
