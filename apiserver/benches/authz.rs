//! Authorization cost (`cargo bench -p apiserver --bench authz`; plain `harness = false`
//! main): with 1,000 RoleBindings (and the bootstrap policy) stored, the time the RBAC
//! decision of a non-admin user takes (request attributes derived from the path, then the
//! decision over the binding index) against a small GET (one ConfigMap) through the whole
//! in-process router as the admin — the admin fast path. Target: the decision ≤ 5 % of the
//! GET. Also printed: the same GET impersonating that user (impersonation check plus decision
//! on the request path), against the admin's.

use std::time::Duration;

use apiserver::authz::Attributes;
use apiserver::registry::WriteOptions;
use apiserver::user::UserInfo;
use http::{Method, Request};
use serde_json::json;
use tokio::time::Instant;
use tower::ServiceExt;

const BINDINGS: usize = 1_000;
const NAMESPACES: usize = 50;
const ROUNDS: usize = 5_000;
const TOKEN: &str = "bench-token";

async fn create(r: &apiserver::Registry, plural: &str, ns: &str, obj: serde_json::Value) {
    let info = api::registry::resources()
        .iter()
        .find(|i| i.plural == plural)
        .expect("served");
    r.create(info, ns, obj, &WriteOptions::default())
        .await
        .expect("create");
}

fn get(path: &str, as_user: Option<&str>) -> Request<axum::body::Body> {
    let mut b = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"));
    if let Some(u) = as_user {
        b = b.header("impersonate-user", u);
    }
    b.body(axum::body::Body::empty()).expect("request")
}

async fn mean_get(router: &axum::Router, path: &str, as_user: Option<&str>) -> Duration {
    let start = Instant::now();
    for _ in 0..ROUNDS {
        let resp = router
            .clone()
            .oneshot(get(path, as_user))
            .await
            .expect("response");
        assert_eq!(resp.status(), 200);
        let _ = axum::body::to_bytes(resp.into_body(), 1 << 20).await;
    }
    start.elapsed() / ROUNDS as u32
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let registry = apiserver::Registry::new(store::Store::memory());
        apiserver::bootstrap(&registry).await?;
        apiserver::authz::bootstrap::ensure(&registry).await?;
        for n in 0..NAMESPACES {
            create(&registry, "namespaces", "", json!({"metadata": {"name": format!("ns-{n}")}})).await;
            create(&registry, "roles", &format!("ns-{n}"), json!({"metadata": {"name": "reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]}]})).await;
        }
        for b in 0..BINDINGS {
            let ns = format!("ns-{}", b % NAMESPACES);
            create(&registry, "rolebindings", &ns, json!({"metadata": {"name": format!("b-{b}")},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                "subjects": [{"kind": "User", "name": format!("user-{b}")}, {"kind": "Group", "name": format!("group-{b}")}]})).await;
        }
        // The admin may impersonate; user-7 reads configmaps in ns-7.
        create(&registry, "configmaps", "ns-7", json!({"metadata": {"name": "c"}, "data": {"k": "v"}})).await;
        let (router, _state, _stop) = apiserver::app(registry.clone(), TOKEN, "127.0.0.1:6443");
        let path = "/api/v1/namespaces/ns-7/configmaps/c";
        let user = UserInfo {
            name: "user-7".into(),
            uid: String::new(),
            groups: vec!["system:authenticated".into()],
            extra: Default::default(),
        };
        let rbac = registry.rbac();
        // Warm up (builds the index once).
        let _ = mean_get(&router, path, None).await;
        let a = Attributes::from_request(&Method::GET, path, &apiserver::params::Query::parse(None));
        assert!(rbac.authorize(&user, &a).allowed, "user-7 is bound in ns-7");

        let admin = mean_get(&router, path, None).await;
        let start = Instant::now();
        for _ in 0..ROUNDS * 10 {
            let a = Attributes::from_request(&Method::GET, path, &apiserver::params::Query::parse(None));
            std::hint::black_box(rbac.authorize(&user, std::hint::black_box(&a)));
        }
        let decision = start.elapsed() / (ROUNDS * 10) as u32;
        let impersonated = mean_get(&router, path, Some("user-7")).await;
        println!(
            "RBAC decision with {BINDINGS} RoleBindings: {decision:?} vs small GET as admin {admin:?}: {:.2} % (target <= 5 %)",
            decision.as_secs_f64() * 100.0 / admin.as_secs_f64()
        );
        println!(
            "same GET impersonating user-7 (two decisions): {impersonated:?} ({:+.2} % vs admin)",
            (impersonated.as_secs_f64() - admin.as_secs_f64()) * 100.0 / admin.as_secs_f64()
        );
        anyhow::Ok(())
    })
}
