//! The agent's API client: kube-rs's default stack, with at most [`MAX_IN_FLIGHT`] requests in
//! flight at once (watches and followed logs excepted: they stay open).
//!
//! Why: kube-rs speaks HTTP/1.1 through a connection pool that opens one connection per
//! concurrent request and keeps idle ones for 90 s. A node starting a thousand pods has a
//! thousand workers writing status and events at once, so it opened hundreds of TLS
//! connections — after the ramp, their buffers were the agent's biggest per-pod memory cost, and
//! as much again in the API server. The kubelet bounds itself too (`kubeAPIQPS`/`kubeAPIBurst`);
//! a bound on concurrency does it without slowing a quiet node down.
//!
//! A kubeconfig `tokenFile:` is read here too ([`TokenFile`]), as client-go reads it. A node
//! that authenticates with a client certificate it renews gets a client whose credentials can
//! be replaced while it runs ([`rotating`], the kubelet's rotating transport).

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

/// A client for `config` that keeps at most [`MAX_IN_FLIGHT`] requests in flight. A
/// `tokenFile:` user is served by [`TokenFile`] (kube-rs would send the file's trailing
/// newline, which no token has).
pub fn client(mut config: kube::Config) -> Result<kube::Client, kube::Error> {
    let token_file = match (&config.auth_info.token, config.auth_info.token_file.take()) {
        (None, Some(path)) => Some(TokenFile::new(path.into())),
        (Some(_), file) => {
            config.auth_info.token_file = file;
            None
        }
        (None, None) => None,
    };
    // kube's stack is a `BoxService`, which cannot be cloned into a waiting call: a buffer in
    // front of it can (its capacity only needs to cover the requests past the limit).
    let builder = ClientBuilder::try_from(config)?
        .with_layer(&BufferLayer::new(4 * MAX_IN_FLIGHT))
        .with_layer(&InFlightLimit::new(MAX_IN_FLIGHT));
    Ok(match token_file {
        Some(file) => builder.with_layer(&file).build(),
        None => builder.build(),
    })
}

/// A client for `config` like [`client`] whose credentials (a client certificate) can be
/// replaced while it runs, as the kubelet's rotating transport does (its `GetClientCertificate`
/// hook with the certificate manager): every request goes through the client built for the
/// current credentials, so new connections use the new certificate as soon as
/// [`Credentials::replace`] returns. The old client's idle connections close when its last
/// request ends; watches opened with the old certificate run on until their server-side
/// timeout and reopen with the new one.
pub fn rotating(config: kube::Config) -> Result<(kube::Client, Credentials), kube::Error> {
    let default_ns = config.default_namespace.clone();
    let creds = Credentials {
        current: Arc::new(parking_lot::RwLock::new(kube::Client::try_from(config)?)),
    };
    let client = ClientBuilder::new(creds.clone(), default_ns)
        .with_layer(&InFlightLimit::new(MAX_IN_FLIGHT))
        .build();
    Ok((client, creds))
}

/// The replaceable credentials of a [`rotating`] client (a tower service sending each request
/// through the client of the current credentials).
#[derive(Clone)]
pub struct Credentials {
    current: Arc<parking_lot::RwLock<kube::Client>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").finish_non_exhaustive()
    }
}

impl Credentials {
    /// Sends later requests with the credentials of `config` (same server and CA).
    pub fn replace(&self, config: kube::Config) -> Result<(), kube::Error> {
        let next = kube::Client::try_from(config)?;
        *self.current.write() = next;
        Ok(())
    }
}

impl Service<Request<Body>> for Credentials {
    type Response = Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, tower::BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let client = self.current.read().clone();
        // The inner client's error, boxed whole: the outer client unboxes it as it was.
        Box::pin(async move { client.send(req).await.map_err(tower::BoxError::from) })
    }
}

/// How often a token file is read again (client-go's and kube-rs's minute).
const TOKEN_FILE_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);
/// The largest token file read.
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// Bearer authorization from a kubeconfig's `tokenFile:` as client-go does it: the file's
/// content with surrounding whitespace trimmed, read again at most once a minute (projected
/// and rotated tokens change), the last token kept when a read fails.
#[derive(Clone)]
pub struct TokenFile {
    path: Arc<std::path::PathBuf>,
    cached: Arc<tokio::sync::Mutex<Option<(http::HeaderValue, tokio::time::Instant)>>>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl TokenFile {
    /// Authorization from the token in `path`.
    pub fn new(path: std::path::PathBuf) -> Self {
        Self {
            path: Arc::new(path),
            cached: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// The `Authorization` value, re-reading the file when the cached one is a minute old.
    async fn header(&self) -> Option<http::HeaderValue> {
        let mut cached = self.cached.lock().await;
        let fresh = cached
            .as_ref()
            .is_some_and(|(_, at)| at.elapsed() < TOKEN_FILE_REFRESH);
        if !fresh {
            match read_token(&self.path).await {
                Some(v) => *cached = Some((v, tokio::time::Instant::now())),
                None => {
                    tracing::warn!(path = %self.path.display(), "cannot read the token file; keeping the last token");
                    if let Some((_, at)) = cached.as_mut() {
                        *at = tokio::time::Instant::now();
                    }
                }
            }
        }
        cached.as_ref().map(|(v, _)| v.clone())
    }
}

/// `Bearer <token>` of the file (bounded, trimmed), marked sensitive; `None` when unreadable
/// or empty.
async fn read_token(path: &std::path::Path) -> Option<http::HeaderValue> {
    use tokio::io::AsyncReadExt;
    let f = tokio::fs::File::open(path).await.ok()?;
    let mut bytes = Vec::new();
    f.take(MAX_TOKEN_FILE).read_to_end(&mut bytes).await.ok()?;
    let token = std::str::from_utf8(&bytes).ok()?.trim();
    if token.is_empty() {
        return None;
    }
    let mut value = http::HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

impl<S> Layer<S> for TokenFile {
    type Service = WithTokenFile<S>;

    fn layer(&self, inner: S) -> WithTokenFile<S> {
        WithTokenFile {
            inner,
            file: self.clone(),
        }
    }
}

/// The service [`TokenFile`] makes.
#[derive(Debug, Clone)]
pub struct WithTokenFile<S> {
    inner: S,
    file: TokenFile,
}

impl<S, B> Service<Request<Body>> for WithTokenFile<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        let file = self.file.clone();
        Box::pin(async move {
            if let Some(v) = file.header().await {
                req.headers_mut().insert(http::header::AUTHORIZATION, v);
            }
            inner.ready().await?.call(req).await
        })
    }
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

    /// Echoes the Authorization header it got as the response body.
    #[derive(Clone, Default)]
    struct Echo;

    impl Service<Request<Body>> for Echo {
        type Response = Response<String>;
        type Error = std::convert::Infallible;
        type Future = BoxFuture<'static, Result<Response<String>, Self::Error>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: Request<Body>) -> Self::Future {
            let auth = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.to_str().unwrap_or("").to_string())
                .unwrap_or_default();
            Box::pin(async move { Ok(Response::new(auth)) })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn token_files_are_trimmed_reread_each_minute_and_kept_when_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let mut svc = TokenFile::new(path.clone()).layer(Echo);
        let auth = |r: Response<String>| r.into_body();
        assert_eq!(auth(svc.call(req("/api")).await.unwrap()), "Bearer first");
        std::fs::write(&path, "  second\n").unwrap();
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(auth(svc.call(req("/api")).await.unwrap()), "Bearer first");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert_eq!(auth(svc.call(req("/api")).await.unwrap()), "Bearer second");
        std::fs::remove_file(&path).unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(auth(svc.call(req("/api")).await.unwrap()), "Bearer second");
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
