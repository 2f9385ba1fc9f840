//! The kubelet's service account token manager (`pkg/kubelet/token/token_manager.go`): the
//! bound tokens of projected `serviceAccountToken` sources are requested through the API and
//! cached per (namespace, account, audiences, lifetime, bound pod); a cached token is used
//! until it is older than 80 % of its lifetime or than 24 hours (less a jitter of up to 10 s),
//! then a new one is requested. A failed refresh keeps serving the cached token while it has
//! not expired.
//!
//! [`TokenCache`] wraps the agent's [`Objects`] port: every other call passes through.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::node::v1::RuntimeClass;
use parking_lot::Mutex;
use rand::Rng;
use tokio::time::Instant;

use crate::pod::config::Objects;
use crate::pod::port_error::PortError;

/// Tokens older than this are refreshed whatever their lifetime (`maxTTL`).
pub const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// Up to this much earlier (`maxJitter`).
pub const MAX_JITTER: Duration = Duration::from_secs(10);
/// The most tokens kept (one per projected source of each pod; expired ones go first).
const MAX_ENTRIES: usize = 4096;

struct Cached {
    request: TokenRequest,
    /// When the token was issued, on tokio's clock (expiry less its lifetime).
    issued: Instant,
    /// When it expires, on tokio's clock.
    expires: Instant,
    /// Its lifetime (`spec.expirationSeconds`).
    ttl: Duration,
}

impl Cached {
    /// `requiresRefresh`: older than 24 h, or within 20 % of its lifetime of the expiry, each
    /// less `jitter`.
    fn requires_refresh(&self, now: Instant, jitter: Duration) -> bool {
        if now
            > (self.issued + MAX_TTL)
                .checked_sub(jitter)
                .unwrap_or(self.issued)
        {
            return true;
        }
        let early = self.ttl / 5 + jitter;
        now > self.expires.checked_sub(early).unwrap_or(self.issued)
    }
}

/// [`Objects`] whose token requests go through the token manager's cache.
pub struct TokenCache<O> {
    inner: O,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl<O> TokenCache<O> {
    /// A cache in front of `inner`.
    pub fn new(inner: O) -> Self {
        Self {
            inner,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

/// `keyFunc`: the account and everything of the request that shapes the token.
fn key(ns: &str, name: &str, tr: &TokenRequest) -> String {
    let spec = tr.spec.clone().unwrap_or_default();
    let bound = spec.bound_object_ref.unwrap_or_default();
    format!(
        "{name:?}/{ns:?}/{:?}/{:?}/{:?}",
        spec.audiences.unwrap_or_default(),
        spec.expiration_seconds,
        (bound.kind, bound.name, bound.uid)
    )
}

fn jitter() -> Duration {
    Duration::from_secs(rand::rng().random_range(0..MAX_JITTER.as_secs()))
}

/// The tokio instants of a fresh answer: issue and expiry, from its wall-clock expiry and
/// lifetime.
fn timing(tr: &TokenRequest) -> Option<(Instant, Instant, Duration)> {
    let ttl = Duration::from_secs(u64::try_from(tr.spec.as_ref()?.expiration_seconds?).ok()?);
    let exp = tr.status.as_ref()?.expiration_timestamp.as_ref()?.0;
    let now_wall = k8s_openapi::jiff::Timestamp::now();
    let left = Duration::try_from(exp.duration_since(now_wall)).unwrap_or_default();
    let now = Instant::now();
    let expires = now + left;
    let issued = expires.checked_sub(ttl).unwrap_or(now);
    Some((issued, expires, ttl))
}

impl<O: Objects> TokenCache<O> {
    async fn token(
        &self,
        ns: &str,
        name: &str,
        tr: TokenRequest,
    ) -> Result<TokenRequest, PortError> {
        let k = key(ns, name, &tr);
        let now = Instant::now();
        let cached = {
            let c = self.cache.lock();
            c.get(&k).map(|c| {
                (
                    c.request.clone(),
                    c.requires_refresh(now, jitter()),
                    now > c.expires,
                )
            })
        };
        if let Some((req, false, _)) = &cached {
            return Ok(req.clone());
        }
        match self.inner.token_request(ns, name, tr).await {
            Ok(fresh) => {
                if let Some((issued, expires, ttl)) = timing(&fresh) {
                    let mut c = self.cache.lock();
                    let now = Instant::now();
                    c.retain(|_, v| v.expires > now);
                    if c.len() < MAX_ENTRIES || c.contains_key(&k) {
                        c.insert(
                            k,
                            Cached {
                                request: fresh.clone(),
                                issued,
                                expires,
                                ttl,
                            },
                        );
                    }
                }
                Ok(fresh)
            }
            Err(e) => match cached {
                None => Err(e),
                Some((_, _, true)) => Err(PortError::other(format!(
                    "token expired and refresh failed: {e}"
                ))),
                Some((req, _, false)) => {
                    tracing::warn!(error = %e, namespace = ns, serviceaccount = name, "couldn't update token");
                    Ok(req)
                }
            },
        }
    }
}

impl<O: Objects> Objects for TokenCache<O> {
    fn runtime_class<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<RuntimeClass>, PortError>> {
        self.inner.runtime_class(name)
    }
    fn config_map<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, PortError>> {
        self.inner.config_map(ns, name)
    }
    fn secret<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, PortError>> {
        self.inner.secret(ns, name)
    }
    fn services<'a>(&'a self, ns: &'a str) -> BoxFuture<'a, Result<Vec<Service>, PortError>> {
        self.inner.services(ns)
    }
    fn service<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Service>, PortError>> {
        self.inner.service(ns, name)
    }
    fn token_request<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
        request: TokenRequest,
    ) -> BoxFuture<'a, Result<TokenRequest, PortError>> {
        Box::pin(self.token(ns, name, request))
    }
    // Every other method is delegated: a default here would answer for the inner source
    // (a missing delegation once made every claim "not found").
    fn persistent_volume_claim<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<k8s_openapi::api::core::v1::PersistentVolumeClaim>, PortError>>
    {
        self.inner.persistent_volume_claim(ns, name)
    }
    fn persistent_volume<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<k8s_openapi::api::core::v1::PersistentVolume>, PortError>>
    {
        self.inner.persistent_volume(name)
    }
}

#[cfg(test)]
mod tests;
