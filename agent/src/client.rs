//! The agent's API client: kube-rs's default stack, with at most [`MAX_IN_FLIGHT`] requests in
//! flight at once (watches and followed logs excepted: they stay open).
//!
//! Why: kube-rs speaks HTTP/1.1 through a connection pool that opens one connection per
//! concurrent request and keeps idle ones for 90 s. A node starting a thousand pods has a
//! thousand workers writing status and events at once, so it opened hundreds of TLS
//! connections — after the ramp, their buffers were the agent's biggest per-pod memory cost, and
//! as much again in the API server. The kubelet bounds itself too (`kubeAPIQPS`/`kubeAPIBurst`);
//! a bound on concurrency does it without slowing a quiet node down.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Request, Response};
use kube::client::{Body, ClientBuilder};
use tokio::sync::Semaphore;
use tower::buffer::BufferLayer;
use tower::{Layer, Service, ServiceExt};

/// Requests the agent has in flight at once at most (long-running ones not counted).
pub const MAX_IN_FLIGHT: usize = 16;

/// A client for `config` that keeps at most [`MAX_IN_FLIGHT`] requests in flight.
pub fn client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    // kube's stack is a `BoxService`, which cannot be cloned into a waiting call: a buffer in
    // front of it can (its capacity only needs to cover the requests past the limit).
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&BufferLayer::new(4 * MAX_IN_FLIGHT))
        .with_layer(&InFlightLimit::new(MAX_IN_FLIGHT))
        .build())
}

/// A tower layer bounding the requests in flight (see the module docs).
#[derive(Debug, Clone)]
pub struct InFlightLimit {
    permits: Arc<Semaphore>,
}

impl InFlightLimit {
    /// At most `n` requests in flight.
    pub fn new(n: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(n.max(1))),
        }
    }
}

impl<S> Layer<S> for InFlightLimit {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            permits: self.permits.clone(),
        }
    }
}

/// The service [`InFlightLimit`] makes.
#[derive(Debug, Clone)]
pub struct Limited<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B> Service<Request<Body>> for Limited<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    /// Always ready: readiness of the inner stack is awaited in the call, once a permit is held.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let limited = !long_running(&req);
        let permits = self.permits.clone();
        // The inner stack is only readied and called once a permit is held: a waiting request
        // is just its bytes, not a connection checkout and the stack's futures (a node starting
        // a thousand pods has thousands of requests waiting at once, and the memory they took
        // stayed fragmented after the ramp).
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let _permit = if limited {
                permits.acquire_owned().await.ok()
            } else {
                None
            };
            inner.ready().await?.call(req).await
        })
    }
}

/// Watches and followed logs hold their connection for as long as they run.
fn long_running(req: &Request<Body>) -> bool {
    req.uri().query().is_some_and(|q| {
        q.split('&')
            .any(|kv| matches!(kv, "watch=true" | "watch=1" | "follow=true"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// A service that counts requests in flight and answers after a while.
    #[derive(Clone, Default)]
    struct Slow {
        now: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Service<Request<Body>> for Slow {
        type Response = Response<()>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<'static, Result<Response<()>, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: Request<Body>) -> Self::Future {
            let (now, most) = (self.now.clone(), self.most.clone());
            Box::pin(async move {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                Ok(Response::new(()))
            })
        }
    }

    fn req(uri: &str) -> Request<Body> {
        Request::get(uri).body(Body::empty()).expect("request")
    }

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_bound_wait_but_watches_do_not() {
        let slow = Slow::default();
        let mut svc = InFlightLimit::new(3).layer(slow.clone());
        let calls: Vec<_> = (0..20)
            .map(|i| svc.call(req(&format!("/api/v1/namespaces/default/pods/p{i}/status"))))
            .collect();
        for r in futures::future::join_all(calls).await {
            assert!(r.is_ok());
        }
        assert_eq!(slow.most.load(Ordering::SeqCst), 3);

        // Three watches hold every permit's worth of connections and still a request passes.
        let slow = Slow::default();
        let mut svc = InFlightLimit::new(1).layer(slow.clone());
        let mut calls: Vec<_> = (0..3)
            .map(|_| {
                svc.call(req(
                    "/api/v1/pods?fieldSelector=x&watch=true&timeoutSeconds=290",
                ))
            })
            .collect();
        calls.push(svc.call(req("/api/v1/namespaces/default/pods/p/log?follow=true")));
        calls.push(svc.call(req("/api/v1/nodes/n")));
        for r in futures::future::join_all(calls).await {
            assert!(r.is_ok());
        }
        assert_eq!(slow.most.load(Ordering::SeqCst), 5);
    }
}
