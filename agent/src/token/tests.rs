use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use k8s_openapi::api::authentication::v1::TokenRequestStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

/// An API that issues `token-<n>` tokens for the lifetime asked, or fails when told to.
#[derive(Default)]
struct FakeApi {
    issued: AtomicUsize,
    failing: AtomicBool,
}

impl Objects for Arc<FakeApi> {
    fn runtime_class<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<RuntimeClass>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn config_map<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn secret<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn services<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<Service>, PortError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn token_request<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        mut request: TokenRequest,
    ) -> BoxFuture<'a, Result<TokenRequest, PortError>> {
        Box::pin(async move {
            if self.failing.load(Ordering::SeqCst) {
                return Err(PortError::other("connection refused"));
            }
            let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
            let ttl = request
                .spec
                .as_ref()
                .and_then(|s| s.expiration_seconds)
                .unwrap_or(3600);
            let exp = k8s_openapi::jiff::Timestamp::now()
                + k8s_openapi::jiff::SignedDuration::from_secs(ttl);
            request.status = Some(TokenRequestStatus {
                token: Some(format!("token-{n}")),
                expiration_timestamp: Some(Time(exp)),
            });
            Ok(request)
        })
    }
}

fn request(ttl: i64) -> TokenRequest {
    TokenRequest {
        spec: Some(k8s_openapi::api::authentication::v1::TokenRequestSpec {
            expiration_seconds: Some(ttl),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn token(c: &TokenCache<Arc<FakeApi>>, ttl: i64) -> Result<String, PortError> {
    c.token_request("ns", "default", request(ttl))
        .await
        .map(|t| t.status.unwrap().token.unwrap())
}

#[tokio::test(start_paused = true)]
async fn refreshed_after_80_percent_of_its_life() {
    let api = Arc::new(FakeApi::default());
    let c = TokenCache::new(api.clone());
    assert_eq!(token(&c, 3600).await.unwrap(), "token-1");
    // Up to 80 % of the hour less the largest jitter: the cached token.
    tokio::time::advance(Duration::from_secs(2880 - 11)).await;
    assert_eq!(token(&c, 3600).await.unwrap(), "token-1");
    assert_eq!(api.issued.load(Ordering::SeqCst), 1);
    // Past 80 %: a new one, which is then cached in turn.
    tokio::time::advance(Duration::from_secs(12)).await;
    assert_eq!(token(&c, 3600).await.unwrap(), "token-2");
    assert_eq!(token(&c, 3600).await.unwrap(), "token-2");
    // Another lifetime is another token.
    assert_eq!(token(&c, 7200).await.unwrap(), "token-3");
}

#[tokio::test(start_paused = true)]
async fn long_lived_tokens_are_refreshed_after_a_day() {
    let api = Arc::new(FakeApi::default());
    let c = TokenCache::new(api.clone());
    let year = 365 * 24 * 3600;
    assert_eq!(token(&c, year).await.unwrap(), "token-1");
    tokio::time::advance(MAX_TTL - Duration::from_secs(11)).await;
    assert_eq!(token(&c, year).await.unwrap(), "token-1");
    tokio::time::advance(Duration::from_secs(12)).await;
    assert_eq!(token(&c, year).await.unwrap(), "token-2");
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_serves_the_cached_token_until_it_expires() {
    let api = Arc::new(FakeApi::default());
    let c = TokenCache::new(api.clone());
    assert_eq!(token(&c, 3600).await.unwrap(), "token-1");
    api.failing.store(true, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(3000)).await;
    assert_eq!(token(&c, 3600).await.unwrap(), "token-1");
    tokio::time::advance(Duration::from_secs(601)).await;
    let e = token(&c, 3600).await.unwrap_err();
    assert!(
        e.to_string().contains("token expired and refresh failed"),
        "{e}"
    );
    // Nothing cached and the API down: the error itself.
    let fresh = TokenCache::new(api.clone());
    assert!(token(&fresh, 3600).await.is_err());
}
