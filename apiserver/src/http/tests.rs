//! Router tests: requests through `tower::ServiceExt::oneshot` on a memory store.

use std::time::Duration;

use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::registry::Registry;

const TOKEN: &str = "secret-token";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

struct T {
    router: axum::Router,
    registry: Registry,
    shutdown: tokio::sync::watch::Sender<bool>,
    state: std::sync::Arc<crate::state::AppState>,
}

struct Resp {
    code: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

async fn setup() -> T {
    let registry = Registry::new(store::Store::memory());
    crate::bootstrap(&registry).await.unwrap();
    let (router, state, shutdown) = crate::app(registry.clone(), TOKEN, "127.0.0.1:6443");
    T {
        router,
        registry,
        shutdown,
        state,
    }
}

fn request(
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(path);
    let mut has_auth = false;
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("authorization") {
            has_auth = true;
        }
        b = b.header(*k, *v);
    }
    if !has_auth {
        b = b.header("authorization", format!("Bearer {TOKEN}"));
    }
    b.body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap()
}

impl T {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, body, headers).await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let resp = self
            .router
            .clone()
            .oneshot(request(method, path, body, headers))
            .await
            .unwrap();
        let code = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            code,
            headers,
            body,
            text,
        }
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: Value) -> Resp {
        self.call(
            Method::POST,
            path,
            Some(body),
            &[("content-type", "application/json")],
        )
        .await
    }

    async fn put(&self, path: &str, body: Value) -> Resp {
        self.call(
            Method::PUT,
            path,
            Some(body),
            &[("content-type", "application/json")],
        )
        .await
    }

    async fn patch(&self, path: &str, ct: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(body), &[("content-type", ct)])
            .await
    }

    async fn delete(&self, path: &str, body: Option<Value>) -> Resp {
        self.call(Method::DELETE, path, body, &[]).await
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"]}]}})
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "main", "image": "nginx"}]}}}})
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const DEPLOYS: &str = "/apis/apps/v1/namespaces/default/deployments";

#[tokio::test]
async fn auth_public_paths_and_401() {
    let t = setup().await;
    for p in [
        "/version",
        "/healthz",
        "/livez",
        "/readyz",
        "/readyz?verbose",
    ] {
        let r = t.call(Method::GET, p, None, &[("authorization", "")]).await;
        // An empty Authorization header is a wrong token.
        assert_eq!(r.code, StatusCode::UNAUTHORIZED, "{p}");
    }
    let anon = t
        .router
        .clone()
        .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::OK);
    let anon = t
        .router
        .clone()
        .oneshot(Request::get("/api/v1/pods").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let r = t
        .call(
            Method::GET,
            "/api/v1/pods",
            None,
            &[("authorization", "Bearer wrong")],
        )
        .await;
    assert_eq!(r.code, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["reason"], "Unauthorized");
    assert_eq!(r.body["code"], 401);
    let v = t.get("/version").await;
    assert_eq!(v.body["minor"], "32");
    assert!(v.body["gitVersion"].as_str().unwrap().starts_with("v1.32."));
    let h = t.get("/healthz").await;
    assert_eq!(h.text, "ok");
    let rv = t.get("/readyz?verbose").await;
    assert_eq!(
        rv.text,
        "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n[+]shutdown ok\nreadyz check passed\n"
    );
    assert_eq!(rv.headers["x-content-type-options"], "nosniff");
    let lv = t.get("/livez?verbose&exclude=etcd&exclude=bogus").await;
    assert_eq!(
        lv.text,
        "[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\nwarn: some health checks cannot be excluded: no matches for \"bogus\"\nlivez check passed\n"
    );
    assert_eq!(t.get("/readyz/etcd").await.text, "ok");
    assert_eq!(t.get("/livez/bogus").await.code, StatusCode::NOT_FOUND);
    // One check's own path tells why it fails, so it needs credentials (upstream's
    // system:monitoring), unlike the aggregate paths (system:public-info-viewer).
    for p in ["/readyz/etcd", "/livez/ping", "/healthz/log"] {
        let anon = t
            .router
            .clone()
            .oneshot(Request::get(p).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(anon.status(), StatusCode::UNAUTHORIZED, "{p}");
    }
    // Shutting down: readyz fails, with the reason on the check's own path.
    t.state
        .stopping
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let r = t.get("/readyz").await;
    assert_eq!(r.code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.text,
        "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n[-]shutdown failed: reason withheld\nreadyz check failed\n"
    );
    let r = t.get("/readyz/shutdown").await;
    assert_eq!(r.text, "internal server error: process is shutting down\n");
    assert_eq!(t.get("/livez").await.text, "ok");
}

#[tokio::test]
async fn discovery_and_openapi() {
    let t = setup().await;
    let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
    let r = t
        .call(Method::GET, "/apis", None, &[("accept", accept)])
        .await;
    assert_eq!(
        r.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(r.body["kind"], "APIGroupDiscoveryList");
    let r = t.get("/api").await;
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(r.body["kind"], "APIVersions");
    let r = t.get("/api/v1").await;
    assert_eq!(r.body["kind"], "APIResourceList");
    assert!(
        r.body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "pods/status")
    );
    assert_eq!(t.get("/apis/apps").await.body["kind"], "APIGroup");
    let v2 = t.get("/openapi/v2").await;
    assert_eq!(v2.code, StatusCode::OK);
    assert_eq!(v2.body["swagger"], "2.0");
    assert!(v2.body["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    let etag = v2.headers["etag"].to_str().unwrap().to_string();
    let pb = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let r = t
        .call(Method::GET, "/openapi/v2", None, &[("accept", pb)])
        .await;
    assert_eq!(
        r.headers["content-type"],
        "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    );
    let r = t
        .call(
            Method::GET,
            "/openapi/v2",
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(r.code, StatusCode::NOT_MODIFIED);
    let idx = t.get("/openapi/v3").await;
    let url = idx.body["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = t.get(&url).await;
    assert_eq!(doc.code, StatusCode::OK);
    assert_eq!(doc.headers["cache-control"], "public, immutable");
    assert!(doc.body["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"].is_object());
    let m = t.get("/metrics").await;
    assert_eq!(m.code, StatusCode::OK);
    for want in [
        // The discovery request above, and the 304 of the OpenAPI v2 request.
        "apiserver_request_total{verb=\"GET\",group=\"\",version=\"\",resource=\"\",subresource=\"\",scope=\"\",component=\"apiserver\",code=\"304\"} 1",
        "apiserver_request_duration_seconds_count{verb=\"GET\"",
    ] {
        assert!(m.text.contains(want), "{want}\n{}", m.text);
    }
    // Only with credentials, as every path that is not public.
    let anon = t
        .call(
            Method::GET,
            "/metrics",
            None,
            &[("authorization", "Bearer wrong")],
        )
        .await;
    assert_eq!(anon.code, StatusCode::UNAUTHORIZED);
    let nf = t.get("/nope/at/all").await;
    assert_eq!(nf.code, StatusCode::NOT_FOUND);
    assert_eq!(nf.body["kind"], "Status");
    assert_eq!(t.get("/api/v1/widgets").await.code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pod_crud_and_errors() {
    let t = setup().await;
    let c = t.post(PODS, pod("web")).await;
    assert_eq!(c.code, StatusCode::CREATED, "{}", c.text);
    let uid = c.body["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(uid.len(), 36);
    assert!(
        c.body["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(c.body["status"]["phase"], "Pending");
    assert_eq!(c.body["status"]["qosClass"], "BestEffort");
    assert!(c.body["metadata"].get("generation").is_none());
    let again = t.post(PODS, pod("web")).await;
    assert_eq!(again.code, StatusCode::CONFLICT);
    assert_eq!(again.body["reason"], "AlreadyExists");
    assert_eq!(again.body["message"], "pods \"web\" already exists");
    let g = t.get(&format!("{PODS}/web")).await;
    assert_eq!(g.body["metadata"]["uid"], uid.as_str());
    let l = t.get(PODS).await;
    assert_eq!(l.body["kind"], "PodList");
    assert_eq!(l.body["apiVersion"], "v1");
    assert_eq!(l.body["items"][0]["kind"], "Pod");
    assert!(l.body["metadata"]["resourceVersion"].is_string());
    let empty = t.get("/api/v1/namespaces/kube-public/pods").await;
    assert_eq!(empty.body["items"], json!([]));
    let missing = t.get(&format!("{PODS}/nope")).await;
    assert_eq!(missing.code, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["message"], "pods \"nope\" not found");
    assert_eq!(missing.body["details"]["kind"], "pods");
    let nons = t.post("/api/v1/namespaces/nope/pods", pod("x")).await;
    assert_eq!(nons.code, StatusCode::NOT_FOUND);
    assert_eq!(nons.body["message"], "namespaces \"nope\" not found");
    // Stale resourceVersion → 409 with upstream's message.
    let mut stale = g.body.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["metadata"]["labels"]["x"] = json!("y");
    let r = t.put(&format!("{PODS}/web"), stale).await;
    assert_eq!(r.code, StatusCode::CONFLICT);
    assert_eq!(
        r.body["message"],
        "Operation cannot be fulfilled on pods \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut upd = g.body.clone();
    upd["metadata"]["labels"]["x"] = json!("y");
    let r = t.put(&format!("{PODS}/web"), upd).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["metadata"]["labels"]["x"], "y");
    assert_ne!(
        r.body["metadata"]["resourceVersion"],
        g.body["metadata"]["resourceVersion"]
    );
    let r = t.put(&format!("{PODS}/ghost"), pod("ghost")).await;
    assert_eq!(r.code, StatusCode::NOT_FOUND);
    let r = t.put(&format!("{PODS}/other"), pod("web")).await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    // Malformed bodies.
    let r = t
        .raw(
            Method::POST,
            PODS,
            Some(b"{not json".to_vec()),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["kind"], "Status");
    let r = t
        .raw(
            Method::POST,
            PODS,
            Some(b"kind: [".to_vec()),
            &[("content-type", "application/yaml")],
        )
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    // No Content-Type means JSON (Python client 37).
    let r = t
        .raw(
            Method::POST,
            PODS,
            Some(serde_json::to_vec(&pod("noct")).unwrap()),
            &[],
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    // Still serving after all that.
    assert_eq!(t.get(&format!("{PODS}/web")).await.code, StatusCode::OK);
}

#[tokio::test]
async fn field_validation_and_dry_run_and_generate_name() {
    let t = setup().await;
    let mut p = pod("strict");
    p["spec"]["bogus"] = json!(1);
    let r = t
        .post(&format!("{PODS}?fieldValidation=Strict"), p.clone())
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.bogus\""),
        "{}",
        r.text
    );
    let r = t
        .post(&format!("{PODS}?fieldValidation=Warn"), p.clone())
        .await;
    assert_eq!(r.code, StatusCode::CREATED);
    assert!(
        r.headers["warning"]
            .to_str()
            .unwrap()
            .contains("unknown field")
    );
    let r = t.post(&format!("{PODS}?dryRun=All"), pod("dry")).await;
    assert_eq!(r.code, StatusCode::CREATED);
    assert_eq!(
        t.get(&format!("{PODS}/dry")).await.code,
        StatusCode::NOT_FOUND
    );
    let generated =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "cm-"}});
    let r = t
        .post("/api/v1/namespaces/default/configmaps", generated)
        .await;
    let name = r.body["metadata"]["name"].as_str().unwrap();
    assert_eq!(name.len(), 8);
    assert!(name.starts_with("cm-"));
    let noname = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}});
    let r = t
        .post("/api/v1/namespaces/default/configmaps", noname)
        .await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["details"]["causes"][0]["field"], "metadata.name");
    // A probe with two handlers is a 422 naming the field.
    let mut two = pod("probe");
    two["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"port": 80}, "tcpSocket": {"port": 80}});
    let r = t.post(PODS, two).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["reason"], "Invalid");
}

#[tokio::test]
async fn status_subresource_splits_spec_and_status() {
    let t = setup().await;
    let c = t.post(PODS, pod("s")).await;
    let mut with_status = c.body.clone();
    with_status["status"]["phase"] = json!("Running");
    with_status["metadata"]["labels"]["changed"] = json!("yes");
    // Main resource: status ignored.
    let r = t.put(&format!("{PODS}/s"), with_status.clone()).await;
    assert_eq!(r.body["status"]["phase"], "Pending");
    assert_eq!(r.body["metadata"]["labels"]["changed"], "yes");
    // Status subresource: only status taken.
    let mut st = r.body.clone();
    st["status"]["phase"] = json!("Running");
    st["spec"]["activeDeadlineSeconds"] = json!(5);
    let r = t.put(&format!("{PODS}/s/status"), st).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"]["phase"], "Running");
    assert!(r.body["spec"].get("activeDeadlineSeconds").is_none());
    let r = t
        .patch(
            &format!("{PODS}/s/status"),
            "application/merge-patch+json",
            json!({"status": {"podIP": "10.0.0.1"}}),
        )
        .await;
    assert_eq!(r.body["status"]["podIP"], "10.0.0.1");
    assert_eq!(r.body["status"]["phase"], "Running");
}

#[tokio::test]
async fn deployment_generation_scale_and_patches() {
    let t = setup().await;
    let c = t.post(DEPLOYS, deployment("web", 1)).await;
    assert_eq!(c.code, StatusCode::CREATED, "{}", c.text);
    assert_eq!(c.body["metadata"]["generation"], 1);
    // Label change: no generation bump.
    let r = t
        .patch(
            &format!("{DEPLOYS}/web"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"a": "b"}}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["metadata"]["generation"], 1);
    // Spec change: bump.
    let r = t
        .patch(
            &format!("{DEPLOYS}/web"),
            "application/strategic-merge-patch+json",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["metadata"]["generation"], 2);
    assert_eq!(
        r.body["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    let r = t
        .patch(
            &format!("{DEPLOYS}/web"),
            "application/json-patch+json",
            json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
        )
        .await;
    assert_eq!(r.body["spec"]["replicas"], 3);
    assert_eq!(r.body["metadata"]["generation"], 3);
    // A no-op patch writes nothing.
    let before = r.body["metadata"]["resourceVersion"].clone();
    let r = t
        .patch(
            &format!("{DEPLOYS}/web"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 3}}),
        )
        .await;
    assert_eq!(r.body["metadata"]["resourceVersion"], before);
    let r = t
        .patch(&format!("{DEPLOYS}/web"), "text/plain", json!({}))
        .await;
    assert_eq!(r.code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Scale.
    let s = t.get(&format!("{DEPLOYS}/web/scale")).await;
    assert_eq!(s.body["kind"], "Scale");
    assert_eq!(s.body["apiVersion"], "autoscaling/v1");
    assert_eq!(s.body["spec"]["replicas"], 3);
    assert_eq!(s.body["status"]["selector"], "app=web");
    let s = t
        .patch(
            &format!("{DEPLOYS}/web/scale"),
            "application/merge-patch+json",
            json!({"spec": {"replicas": 5}}),
        )
        .await;
    assert_eq!(s.code, StatusCode::OK, "{}", s.text);
    assert_eq!(s.body["spec"]["replicas"], 5);
    let d = t.get(&format!("{DEPLOYS}/web")).await;
    assert_eq!(d.body["spec"]["replicas"], 5);
    assert_eq!(d.body["metadata"]["generation"], 4);
    let bad = t
        .put(&format!("{DEPLOYS}/web/scale"), json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "web"}, "spec": {"replicas": -1}}))
        .await;
    assert_eq!(bad.code, StatusCode::UNPROCESSABLE_ENTITY);
    // Server-side apply creates (201) then updates (200).
    let applied = deployment("ssa", 2);
    let r = t
        .call(
            Method::PATCH,
            &format!("{DEPLOYS}/ssa?fieldManager=kubectl&force=false"),
            Some(applied.clone()),
            &[("content-type", "application/apply-patch+yaml")],
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    let mut applied = applied;
    applied["spec"]["replicas"] = json!(4);
    let r = t
        .call(
            Method::PATCH,
            &format!("{DEPLOYS}/ssa?fieldManager=kubectl"),
            Some(applied),
            &[("content-type", "application/apply-patch+yaml")],
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["spec"]["replicas"], 4);
    // Patch of a missing object.
    let r = t
        .patch(
            &format!("{DEPLOYS}/ghost"),
            "application/merge-patch+json",
            json!({}),
        )
        .await;
    assert_eq!(r.code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tables_selectors_and_paging() {
    let t = setup().await;
    for i in 0..5 {
        let mut p = pod(&format!("p{i}"));
        p["metadata"]["labels"]["n"] = json!(i.to_string());
        t.post(PODS, p).await;
    }
    let r = t.call(Method::GET, PODS, None, &[("accept", TABLE)]).await;
    assert_eq!(r.body["kind"], "Table");
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 5);
    assert_eq!(r.body["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert!(r.body["metadata"]["resourceVersion"].is_string());
    assert_eq!(r.body["columnDefinitions"][0]["name"], "Name");
    let r = t
        .call(
            Method::GET,
            &format!("{PODS}?includeObject=Object"),
            None,
            &[("accept", TABLE)],
        )
        .await;
    assert_eq!(r.body["rows"][0]["object"]["kind"], "Pod");
    let r = t
        .call(
            Method::GET,
            &format!("{PODS}/p1"),
            None,
            &[("accept", TABLE)],
        )
        .await;
    assert_eq!(r.body["rows"].as_array().unwrap().len(), 1);
    let r = t.get(&format!("{PODS}?labelSelector=n%20in%20(1,3)")).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = t
        .get(&format!("{PODS}?fieldSelector=metadata.name%3Dp2"))
        .await;
    assert_eq!(r.body["items"][0]["metadata"]["name"], "p2");
    assert_eq!(
        t.get(&format!("{PODS}?fieldSelector=spec.bogus%3Dx"))
            .await
            .code,
        StatusCode::BAD_REQUEST
    );
    // Paging.
    let r = t.get(&format!("{PODS}?limit=2")).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["metadata"]["remainingItemCount"], 3);
    let cont = r.body["metadata"]["continue"].as_str().unwrap().to_string();
    let r2 = t.get(&format!("{PODS}?limit=2&continue={cont}")).await;
    assert_eq!(r2.body["items"][0]["metadata"]["name"], "p2");
    // A negative limit is no limit: upstream's ValidateListOptions does not check it and the
    // storage layer pages only when `limit > 0`.
    let r = t.get(&format!("{PODS}?limit=-5")).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5);
    assert!(r.body["metadata"].get("continue").is_none());
    // Paging with a selector fills pages with matches.
    let r = t.get(&format!("{PODS}?limit=1&labelSelector=n%3D4")).await;
    assert_eq!(r.body["items"][0]["metadata"]["name"], "p4");
    // All namespaces.
    let r = t.get("/api/v1/pods").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 5);
    // Namespaces list and Table.
    let r = t.get("/api/v1/namespaces").await;
    let names: Vec<_> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    for ns in crate::SYSTEM_NAMESPACES {
        assert!(names.contains(&ns.to_string()));
    }
}

#[tokio::test]
async fn deletion_grace_finalizers_and_propagation() {
    let t = setup().await;
    // Unbound pod: immediate; the pod comes back (ReturnDeletedObject).
    t.post(PODS, pod("a")).await;
    let r = t.delete(&format!("{PODS}/a"), None).await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.body["kind"], "Pod");
    assert_eq!(
        t.get(&format!("{PODS}/a")).await.code,
        StatusCode::NOT_FOUND
    );
    // Bound pod: graceful.
    let mut b = pod("b");
    b["spec"]["nodeName"] = json!("node1");
    t.post(PODS, b).await;
    let r = t
        .delete(
            &format!("{PODS}/b"),
            Some(json!({"propagationPolicy": "Background"})),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(r.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(t.get(&format!("{PODS}/b")).await.code, StatusCode::OK);
    let r = t
        .delete(&format!("{PODS}/b?gracePeriodSeconds=0"), None)
        .await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(
        t.get(&format!("{PODS}/b")).await.code,
        StatusCode::NOT_FOUND
    );
    // Finalizers keep the object until removed.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["example.com/x"]}});
    t.post("/api/v1/namespaces/default/configmaps", cm).await;
    let r = t
        .delete("/api/v1/namespaces/default/configmaps/c", None)
        .await;
    assert!(
        r.body["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        r.text
    );
    let mut cur = t.get("/api/v1/namespaces/default/configmaps/c").await.body;
    cur["metadata"]["finalizers"] = json!(["example.com/x", "new"]);
    let r = t
        .put("/api/v1/namespaces/default/configmaps/c", cur.clone())
        .await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    cur["metadata"]["finalizers"] = json!([]);
    let r = t.put("/api/v1/namespaces/default/configmaps/c", cur).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(
        t.get("/api/v1/namespaces/default/configmaps/c").await.code,
        StatusCode::NOT_FOUND
    );
    // Foreground adds foregroundDeletion; Orphan adds orphan.
    t.post(DEPLOYS, deployment("fg", 1)).await;
    let r = t
        .delete(
            &format!("{DEPLOYS}/fg"),
            Some(json!({"propagationPolicy": "Foreground"})),
        )
        .await;
    assert_eq!(
        r.body["metadata"]["finalizers"],
        json!(["foregroundDeletion"]),
        "{}",
        r.text
    );
    t.post(DEPLOYS, deployment("or", 1)).await;
    let r = t
        .delete(&format!("{DEPLOYS}/or?propagationPolicy=Orphan"), None)
        .await;
    assert_eq!(r.body["metadata"]["finalizers"], json!(["orphan"]));
    // Background on a deployment: gone at once, Status answer.
    t.post(DEPLOYS, deployment("bg", 1)).await;
    let r = t
        .delete(
            &format!("{DEPLOYS}/bg"),
            Some(json!({"propagationPolicy": "Background"})),
        )
        .await;
    assert_eq!(r.body["kind"], "Status");
    assert_eq!(r.body["status"], "Success");
    assert_eq!(r.body["details"]["name"], "bg");
    // Preconditions.
    t.post(PODS, pod("pre")).await;
    let r = t
        .delete(
            &format!("{PODS}/pre"),
            Some(json!({"preconditions": {"uid": "nope"}})),
        )
        .await;
    assert_eq!(r.code, StatusCode::CONFLICT);
    // Missing.
    let r = t.delete(&format!("{PODS}/ghost"), None).await;
    assert_eq!(r.code, StatusCode::NOT_FOUND);
    // deletecollection.
    t.post(PODS, pod("c1")).await;
    let r = t
        .delete(&format!("{PODS}?labelSelector=app%3Dweb"), None)
        .await;
    assert_eq!(r.body["kind"], "PodList");
    assert_eq!(t.get(PODS).await.body["items"], json!([]));
}

#[tokio::test]
async fn namespace_lifecycle() {
    let t = setup().await;
    let r = t
        .post(
            "/api/v1/namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tmp"}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED);
    assert_eq!(r.body["status"]["phase"], "Active");
    assert_eq!(r.body["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(
        r.body["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "tmp"
    );
    let r = t.delete("/api/v1/namespaces/tmp", None).await;
    assert_eq!(r.body["status"]["phase"], "Terminating");
    let r = t.post("/api/v1/namespaces/tmp/pods", pod("x")).await;
    assert_eq!(r.code, StatusCode::FORBIDDEN);
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("because it is being terminated")
    );
    let mut ns = t.get("/api/v1/namespaces/tmp").await.body;
    ns["spec"]["finalizers"] = json!([]);
    let r = t.put("/api/v1/namespaces/tmp/finalize", ns).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(
        t.get("/api/v1/namespaces/tmp").await.code,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn body_limit_413_then_still_serving() {
    let t = setup().await;
    let big = vec![b' '; 4 * 1024 * 1024];
    let r = t
        .raw(
            Method::POST,
            PODS,
            Some(big),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.body["reason"], "RequestEntityTooLarge");
    // Without Content-Length (streamed body).
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..5)
        .map(|_| Ok(bytes::Bytes::from(vec![b' '; 1024 * 1024])))
        .collect();
    let req = Request::post(PODS)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let resp = t.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        t.get("/api/v1/namespaces/default").await.code,
        StatusCode::OK
    );
}

/// Reads newline-delimited events from a streaming body until `n` arrived.
async fn read_events(body: &mut Body, n: usize) -> Vec<Value> {
    read_events_within(body, n, Duration::from_secs(5)).await
}

/// [`read_events`] with a per-frame deadline.
async fn read_events_within(body: &mut Body, n: usize, within: Duration) -> Vec<Value> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        let frame = tokio::time::timeout(within, body.frame())
            .await
            .expect("event in time")
            .expect("stream open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            out.push(serde_json::from_slice(&line[..line.len() - 1]).unwrap());
        }
    }
    out
}

async fn open_watch(t: &T, path: &str, accept: &str) -> Body {
    let resp = t
        .router
        .clone()
        .oneshot(request(Method::GET, path, None, &[("accept", accept)]))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.into_body()
}

#[tokio::test]
async fn watch_replay_changes_selectors_and_410() {
    let t = setup().await;
    t.post(PODS, pod("w1")).await;
    // RV 0 (Python 32 spelling watch=True): synthetic ADDED first.
    let mut all = open_watch(
        &t,
        &format!("{PODS}?watch=True&resourceVersion=0"),
        "application/json",
    )
    .await;
    let ev = read_events(&mut all, 1).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[0]["object"]["metadata"]["name"], "w1");
    // Concrete RV: only later changes, as Table rows when asked.
    let rv = t.get(PODS).await.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut tab = open_watch(&t, &format!("{PODS}?watch=1&resourceVersion={rv}"), TABLE).await;
    // Selector watch: app=web only.
    let mut sel = open_watch(
        &t,
        &format!("{PODS}?watch=true&labelSelector=tier%3Dfe"),
        "application/json",
    )
    .await;
    t.post(PODS, pod("w2")).await;
    let r = t
        .patch(
            &format!("{PODS}/w2"),
            "application/merge-patch+json",
            json!({"metadata": {"labels": {"tier": "fe"}}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK);
    t.patch(
        &format!("{PODS}/w2"),
        "application/merge-patch+json",
        json!({"metadata": {"labels": {"tier": null}}}),
    )
    .await;
    t.delete(&format!("{PODS}/w1"), None).await;
    let ev = read_events(&mut all, 4).await;
    let types: Vec<_> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);
    let ev = read_events(&mut tab, 1).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[0]["object"]["kind"], "Table");
    assert_eq!(ev[0]["object"]["rows"][0]["cells"][0], "w2");
    let ev = read_events(&mut sel, 2).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[1]["type"], "DELETED");
    assert_eq!(ev[1]["object"]["metadata"]["labels"]["tier"], "fe");
    // Compacted RV: an ERROR event with a 410 Status, then the stream ends.
    let now = t.registry.store().revision();
    t.registry.store().compact(now).await.unwrap();
    let mut old = open_watch(
        &t,
        &format!("{PODS}?watch=true&resourceVersion=1"),
        "application/json",
    )
    .await;
    let ev = read_events(&mut old, 1).await;
    assert_eq!(ev[0]["type"], "ERROR");
    assert_eq!(ev[0]["object"]["code"], 410);
    // Shutdown ends open watches.
    t.shutdown.send(true).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match all.frame().await {
                None => break,
                Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok());
}

#[tokio::test]
async fn create_on_update_kinds_and_events() {
    let t = setup().await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
    let r = t.put("/api/v1/namespaces/default/services/s", svc).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    let ev = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": "default", "uid": "u1"},
        "reason": "Scheduled", "message": "m", "type": "Normal", "source": {"component": "default-scheduler"}});
    let r = t.post("/api/v1/namespaces/default/events", ev).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    let r = t
        .get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.uid%3Du1,involvedObject.name%3Dx,involvedObject.namespace%3Ddefault")
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = t
        .get("/api/v1/events?fieldSelector=involvedObject.uid%3Dother")
        .await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn binding_and_registry_list() {
    let t = setup().await;
    let created = t.post(PODS, pod("b")).await.body;
    // A binding for another pod of the same name (uid precondition) is refused.
    let stale = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "b", "uid": "not-this-pod"}, "target": {"kind": "Node", "name": "n1"}});
    let r = t.post(&format!("{PODS}/b/binding"), stale).await;
    assert_eq!(r.code, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("Precondition failed: UID"), "{}", r.text);
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "b", "uid": created["metadata"]["uid"], "annotations": {"a": "1"}},
        "target": {"kind": "Node", "name": "n1"}});
    let r = t.post(&format!("{PODS}/b/binding"), binding.clone()).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    let p = t.get(&format!("{PODS}/b")).await.body;
    assert_eq!(p["spec"]["nodeName"], "n1");
    assert_eq!(p["metadata"]["annotations"]["a"], "1");
    assert_eq!(p["status"]["conditions"][0]["type"], "PodScheduled");
    assert_eq!(p["status"]["conditions"][0]["status"], "True");
    let r = t.post(&format!("{PODS}/b/binding"), binding).await;
    assert_eq!(r.code, StatusCode::CONFLICT);
    assert!(r.text.contains("pods/binding"), "{}", r.text);
    let info = api::registry::lookup("", "v1", "pods").unwrap();
    let (items, rev) = t
        .registry
        .list(
            info,
            Some("default"),
            Some("app=web"),
            Some("spec.nodeName=n1"),
        )
        .unwrap();
    assert_eq!(items.len(), 1);
    assert!(rev > 0);
    let (none, _) = t.registry.list(info, None, Some("app=nope"), None).unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn watch_list_initial_events_and_exact_lists() {
    let t = setup().await;
    t.post(PODS, pod("i1")).await;
    let rv_after_i1 = t.registry.store().revision();
    t.post(PODS, pod("i2")).await;
    let mut w = open_watch(
        &t,
        &format!("{PODS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"),
        "application/json",
    )
    .await;
    let ev = read_events(&mut w, 3).await;
    assert_eq!(ev[0]["type"], "ADDED");
    assert_eq!(ev[1]["type"], "ADDED");
    assert_eq!(ev[2]["type"], "BOOKMARK");
    assert_eq!(
        ev[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(ev[2]["object"]["kind"], "Pod");
    let bad = t
        .get(&format!("{PODS}?watch=true&sendInitialEvents=true"))
        .await;
    assert_eq!(bad.code, StatusCode::UNPROCESSABLE_ENTITY);
    // A list at an exact earlier revision sees the earlier state.
    let r = t
        .get(&format!(
            "{PODS}?resourceVersion={rv_after_i1}&resourceVersionMatch=Exact"
        ))
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        r.body["metadata"]["resourceVersion"],
        rv_after_i1.to_string()
    );
    let r = t.get(&format!("{PODS}?resourceVersionMatch=Exact")).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test(start_paused = true)]
async fn watch_bookmarks_and_timeout() {
    let t = setup().await;
    let mut w = open_watch(
        &t,
        &format!("{PODS}?watch=true&allowWatchBookmarks=true&timeoutSeconds=150"),
        "application/json",
    )
    .await;
    // Paused time auto-advances to the 60 s bookmark tick.
    let ev = read_events_within(&mut w, 1, Duration::from_secs(90)).await;
    assert_eq!(ev[0]["type"], "BOOKMARK");
    assert!(
        ev[0]["object"]["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // The stream ends at timeoutSeconds.
    let ended = tokio::time::timeout(Duration::from_secs(600), async {
        while let Some(Ok(_)) = w.frame().await {}
    })
    .await;
    assert!(ended.is_ok());
}

struct EchoStreams;

impl crate::PodStreams for EchoStreams {
    fn handle(
        &self,
        _registry: Registry,
        pod: std::sync::Arc<Value>,
        subresource: &str,
        req: axum::extract::Request,
    ) -> futures::future::BoxFuture<'static, axum::response::Response> {
        let text = format!(
            "{subresource} of {} container={}",
            pod["metadata"]["name"].as_str().unwrap_or(""),
            req.uri().query().unwrap_or("")
        );
        Box::pin(async move { axum::response::Response::new(Body::from(text)) })
    }
}

#[tokio::test]
async fn pod_stream_subresources_go_to_the_registered_handler() {
    let registry = Registry::new(store::Store::memory());
    crate::bootstrap(&registry).await.unwrap();
    let (router, state, _tx) = crate::app(registry, TOKEN, "127.0.0.1:6443");
    let t = T {
        router,
        registry: state.registry.clone(),
        shutdown: tokio::sync::watch::channel(false).0,
        state: state.clone(),
    };
    t.post(PODS, pod("l")).await;
    // Without a registered handler the server proxies to the node agent; this pod has none.
    let r = t.get(&format!("{PODS}/l/log")).await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["message"], "pod l does not have a host assigned");
    state.set_pod_streams(std::sync::Arc::new(EchoStreams));
    let r = t.get(&format!("{PODS}/l/log?container=main")).await;
    assert_eq!(r.code, StatusCode::OK);
    assert_eq!(r.text, "log of l container=container=main");
    assert_eq!(
        t.get(&format!("{PODS}/ghost/log")).await.code,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn immortal_namespaces_cluster_scoped_bodies_and_headers() {
    let t = setup().await;
    let r = t.delete("/api/v1/namespaces/default", None).await;
    assert_eq!(r.code, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body["message"],
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
    assert!(r.headers.contains_key("audit-id"));
    assert_eq!(r.headers["cache-control"], "no-cache, private");
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "default"}});
    let r = t.post("/api/v1/nodes", node).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert!(r.body["metadata"].get("namespace").is_none());
}

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports() {
    let t = setup().await;
    let svcs = "/api/v1/namespaces/default/services";
    let np = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let r = t.post(svcs, np).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    let ip = r.body["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(r.body["spec"]["clusterIPs"], json!([ip.clone()]));
    let port = r.body["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&port));
    // Requesting a taken IP or port is a 422 naming the field.
    let clash = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "clash"},
        "spec": {"clusterIP": ip, "ports": [{"port": 80}]}});
    let r = t.post(svcs, clash).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["details"]["causes"][0]["field"], "spec.clusterIPs");
    assert_eq!(
        r.body["message"],
        format!(
            "Service \"clash\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{ip}\"}}: failed to allocate IP {ip}: provided IP is already allocated"
        )
    );
    let clash = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "clash2"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}});
    let r = t.post(svcs, clash).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Headless stays headless.
    let headless = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "h"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]}});
    let r = t.post(svcs, headless).await;
    assert_eq!(r.body["spec"]["clusterIP"], "None");
    // A replace without the allocated values keeps them.
    let replace = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
        "spec": {"type": "NodePort", "selector": {"app": "web2"}, "ports": [{"port": 80}]}});
    let r = t.put(&format!("{svcs}/np"), replace).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], ip.as_str());
    assert_eq!(r.body["spec"]["ports"][0]["nodePort"], port);
}

#[tokio::test]
async fn service_type_change_allocates_node_ports() {
    let t = setup().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80}]}});
    let r = t.post(svcs, svc).await;
    let ip = r.body["spec"]["clusterIP"].clone();
    assert!(r.body["spec"]["ports"][0].get("nodePort").is_none());
    let r = t
        .patch(
            &format!("{svcs}/s"),
            "application/merge-patch+json",
            json!({"spec": {"type": "NodePort"}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["spec"]["clusterIP"], ip);
    assert!(r.body["spec"]["ports"][0]["nodePort"].as_i64().is_some());
}

#[tokio::test]
async fn health_check_node_ports_are_allocated_kept_and_released() {
    let t = setup().await;
    let svcs = "/api/v1/namespaces/default/services";
    let lb = |name: &str, hc: Option<i64>, node_port: Option<i64>| {
        let mut v = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                "selector": {"app": "web"}, "ports": [{"port": 80}]}});
        if let Some(hc) = hc {
            v["spec"]["healthCheckNodePort"] = json!(hc);
        }
        if let Some(np) = node_port {
            v["spec"]["ports"][0]["nodePort"] = json!(np);
        }
        v
    };
    let r = t.post(svcs, lb("a", None, None)).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    let hc = r.body["spec"]["healthCheckNodePort"].as_i64().unwrap();
    let np = r.body["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&hc), "{hc}");
    assert_ne!(hc, np);
    // One pool: a requested health check port that is taken is upstream's 500, a NodePort
    // that is someone's health check port its 422.
    let r = t.post(svcs, lb("b", Some(hc), None)).await;
    assert_eq!(r.code, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(r.body["reason"], "InternalError");
    assert_eq!(
        r.body["message"],
        format!(
            "Internal error occurred: failed to allocate requested HealthCheck NodePort {hc}: provided port is already allocated"
        )
    );
    let r = t.post(svcs, lb("b", None, Some(hc))).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["message"],
        format!(
            "Service \"b\" is invalid: spec.ports[0].nodePort: Invalid value: {hc}: provided port is already allocated"
        )
    );
    let r = t.post(svcs, lb("b", Some(80), None)).await;
    assert_eq!(r.code, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "Internal error occurred: failed to allocate requested HealthCheck NodePort 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
    );
    // Not a Local LoadBalancer: nothing is allocated, and a given value is invalid.
    let mut cluster = lb("b", Some(31999), None);
    cluster["spec"]["externalTrafficPolicy"] = json!("Cluster");
    let r = t.post(svcs, cluster).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "Service \"b\" is invalid: spec.healthCheckNodePort: Invalid value: 31999: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
    );
    // A replace without it keeps it; changing it is refused.
    let r = t.put(&format!("{svcs}/a"), lb("a", None, None)).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["spec"]["healthCheckNodePort"], hc);
    let other = if hc == 32767 { 30000 } else { hc + 1 };
    let r = t
        .put(&format!("{svcs}/a"), lb("a", Some(other), None))
        .await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "Service \"a\" is invalid: spec.healthCheckNodePort: Forbidden: field is immutable"
    );
    // Leaving Local drops (releases) it; another service may take it then.
    let patch = |etp: &str| json!({"spec": {"externalTrafficPolicy": etp}});
    let merge = "application/merge-patch+json";
    let r = t.patch(&format!("{svcs}/a"), merge, patch("Cluster")).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert!(
        r.body["spec"].get("healthCheckNodePort").is_none(),
        "{}",
        r.text
    );
    let r = t.post(svcs, lb("b", Some(hc), None)).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["spec"]["healthCheckNodePort"], hc);
    // Back to Local: a new one.
    let r = t.patch(&format!("{svcs}/a"), merge, patch("Local")).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    let again = r.body["spec"]["healthCheckNodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&again) && again != hc && again != np);
    // Deleting frees it.
    let r = t.delete(&format!("{svcs}/b"), None).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    let r = t.post(svcs, lb("c", Some(hc), None)).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
}

#[tokio::test]
async fn service_type_change_drops_type_dependent_fields() {
    let t = setup().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local", "loadBalancerClass": "x.io/lb",
            "ports": [{"port": 80}]}});
    let r = t.post(svcs, svc).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    // The status subresource: an ingress IP gets ipMode VIP by default.
    let mut status = r.body.clone();
    status["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}});
    let r = t.put(&format!("{svcs}/s/status"), status).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["status"]["loadBalancer"]["ingress"],
        json!([{"ip": "192.0.2.1", "ipMode": "VIP"}])
    );
    // To ClusterIP, as `kubectl apply` of a changed type sends it: everything only a
    // LoadBalancer uses goes (NodePorts, the health check port, the class, the policy, the
    // status); the ClusterIP stays.
    let ip = r.body["spec"]["clusterIP"].clone();
    let r = t
        .patch(
            &format!("{svcs}/s"),
            "application/merge-patch+json",
            json!({"spec": {"type": "ClusterIP"}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    let spec = &r.body["spec"];
    assert_eq!(spec["clusterIP"], ip);
    assert!(spec["ports"][0].get("nodePort").is_none(), "{spec}");
    for gone in [
        "healthCheckNodePort",
        "loadBalancerClass",
        "externalTrafficPolicy",
        "allocateLoadBalancerNodePorts",
    ] {
        assert!(spec.get(gone).is_none(), "{gone}: {spec}");
    }
    assert_eq!(r.body["status"], json!({"loadBalancer": {}}));
    // To ExternalName: the addresses go too.
    let r = t
        .patch(
            &format!("{svcs}/s"),
            "application/merge-patch+json",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    for gone in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        assert!(r.body["spec"].get(gone).is_none(), "{gone}: {}", r.text);
    }
}

#[tokio::test]
async fn finalizers_added_while_deleting_are_reported_with_the_other_update_errors() {
    let t = setup().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "finalizers": ["example.com/a"]}});
    let r = t.post(cms, cm).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    let r = t.delete(&format!("{cms}/c"), None).await;
    assert!(r.code.is_success(), "{}", r.text);
    let mut live = t.get(&format!("{cms}/c")).await.body;
    live["metadata"]["finalizers"] = json!(["example.com/a", "example.com/b"]);
    live["metadata"]["labels"] = json!({"l": "-"});
    let r = t.put(&format!("{cms}/c"), live).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // rest.BeforeUpdate's common checks, then ValidateConfigMapUpdate (meta update, then
    // ValidateConfigMap with ObjectMeta again).
    let fields: Vec<&str> = r.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "metadata.labels",
            "metadata.finalizers",
            "metadata.finalizers",
            "metadata.labels"
        ]
    );
    assert_eq!(
        r.body["details"]["causes"][1]["message"],
        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"example.com/b\"}"
    );
}

#[tokio::test]
async fn ip_families_are_set_by_the_allocator_of_a_single_stack_cluster() {
    let t = setup().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, extra: Value| {
        let mut v = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        for (k, val) in extra.as_object().unwrap() {
            v["spec"][k] = val.clone();
        }
        v
    };
    let r = t.post(svcs, svc("plain", json!({}))).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["spec"]["ipFamilyPolicy"], "SingleStack");
    assert_eq!(r.body["spec"]["ipFamilies"], json!(["IPv4"]));
    let r = t
        .post(
            svcs,
            svc("prefer", json!({"ipFamilyPolicy": "PreferDualStack"})),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["spec"]["ipFamilies"], json!(["IPv4"]));
    // A replace that leaves the policy out keeps the stored one.
    let r = t
        .put(&format!("{svcs}/prefer"), svc("prefer", json!({})))
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["spec"]["ipFamilyPolicy"], "PreferDualStack");
    // A headless service without a selector may list both families.
    let mut headless = svc("h", json!({"clusterIP": "None"}));
    headless["spec"].as_object_mut().unwrap().remove("selector");
    let r = t.post(svcs, headless).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["spec"]["ipFamilyPolicy"], "RequireDualStack");
    assert_eq!(r.body["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    let refused = [
        (
            json!({"ipFamilyPolicy": "RequireDualStack"}),
            "spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services",
        ),
        (
            json!({"ipFamilies": ["IPv6"]}),
            "spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster",
        ),
        (
            json!({"clusterIP": "fd00::10"}),
            "spec.clusterIPs[0]: Invalid value: []string{\"fd00::10\"}: IPv6 is not configured on this cluster",
        ),
        (
            json!({"clusterIP": "10.96.0.300"}),
            "spec.clusterIPs[0]: Invalid value: \"10.96.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ),
    ];
    for (extra, want) in refused {
        let r = t.post(svcs, svc("x", extra)).await;
        assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
        assert_eq!(
            r.body["message"],
            format!("Service \"x\" is invalid: {want}")
        );
    }
}

#[tokio::test]
async fn protobuf_bodies_from_typed_clients() {
    let t = setup().await;
    // A body kubectl 1.32 sent for `kubectl create configmap` (fixture of the api crate).
    let pb = include_bytes!("../../../api/src/protobuf/fixtures/kubectl-create-configmap.pb");
    let want: Value = serde_json::from_slice(include_bytes!(
        "../../../api/src/protobuf/fixtures/kubectl-create-configmap.json"
    ))
    .unwrap();
    let name = want["metadata"]["name"].as_str().unwrap().to_string();
    let ns = want["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let r = t
        .raw(
            Method::POST,
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            Some(pb.to_vec()),
            &[
                ("content-type", "application/vnd.kubernetes.protobuf"),
                (
                    "accept",
                    "application/vnd.kubernetes.protobuf,application/json",
                ),
            ],
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["metadata"]["name"], name.as_str());
    assert_eq!(r.body["data"], want["data"]);
    let bad = t
        .raw(
            Method::POST,
            PODS,
            Some(b"k8s\0garbage".to_vec()),
            &[("content-type", "application/vnd.kubernetes.protobuf")],
        )
        .await;
    assert_eq!(bad.code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn dropped_watch_releases_its_store_watcher() {
    let t = setup().await;
    let before = t.registry.store().watcher_count();
    let w = open_watch(&t, &format!("{PODS}?watch=true"), "application/json").await;
    assert_eq!(t.registry.store().watcher_count(), before + 1);
    drop(w);
    // No event happens; the serving task must notice the client left by itself. Registering
    // another watcher prunes closed ones, so the count tells whether the first was released.
    let mut released = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let probe = open_watch(&t, &format!("{PODS}?watch=true"), "application/json").await;
        released = t.registry.store().watcher_count() == before + 1;
        drop(probe);
        if released {
            break;
        }
    }
    assert!(released, "the dropped watch still holds its store watcher");
}

#[tokio::test]
async fn malformed_bodies_never_5xx_or_panic() {
    let t = setup().await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<Vec<u8>> = vec![
        b"null".to_vec(),
        b"[]".to_vec(),
        b"1".to_vec(),
        b"\"x\"".to_vec(),
        br#"{"metadata": 5}"#.to_vec(),
        br#"{"metadata": {"name": 5}}"#.to_vec(),
        br#"{"metadata": {"name": "x"}, "spec": []}"#.to_vec(),
        br#"{"metadata": {"name": "x"}, "status": "no"}"#.to_vec(),
        br#"{"apiVersion": "v2", "kind": "Pod", "metadata": {"name": "x"}}"#.to_vec(),
        br#"{"kind": "Service", "metadata": {"name": "x"}}"#.to_vec(),
        deep.into_bytes(),
        vec![0xff, 0xfe, 0x00],
    ];
    for info in api::registry::resources() {
        let base = if info.group.is_empty() {
            "/api/v1".to_string()
        } else {
            format!("/apis/{}/{}", info.group, info.version)
        };
        let coll = if info.namespaced {
            format!("{base}/namespaces/default/{}", info.plural)
        } else {
            format!("{base}/{}", info.plural)
        };
        let item = format!("{coll}/x");
        for body in &bodies {
            for (method, path, ct) in [
                (Method::POST, coll.as_str(), "application/json"),
                (Method::PUT, item.as_str(), "application/json"),
                (Method::PUT, &format!("{item}/status"), "application/json"),
                (Method::PATCH, item.as_str(), "application/merge-patch+json"),
                (
                    Method::PATCH,
                    item.as_str(),
                    "application/strategic-merge-patch+json",
                ),
                (Method::PATCH, item.as_str(), "application/json-patch+json"),
                (Method::PATCH, item.as_str(), "application/apply-patch+yaml"),
                (Method::DELETE, item.as_str(), "application/json"),
            ] {
                let r = t
                    .raw(
                        method.clone(),
                        path,
                        Some(body.clone()),
                        &[("content-type", ct)],
                    )
                    .await;
                // Unknown fields are dropped under the default (Warn) validation, so some
                // bodies are accepted; none may crash the server or fail it.
                assert!(
                    !r.code.is_server_error(),
                    "{method} {path} {ct} {:?} -> {} {}",
                    String::from_utf8_lossy(&body[..body.len().min(40)]),
                    r.code,
                    r.text
                );
                assert!(r.body.is_object(), "{method} {path}: {}", r.text);
                if !r.code.is_success() {
                    assert_eq!(r.body["kind"], "Status", "{method} {path}: {}", r.text);
                }
            }
        }
    }
}

#[tokio::test]
async fn patch_path_applies_creates_and_merges() {
    let t = setup().await;
    let info = api::registry::lookup("apps", "v1", "deployments").unwrap();
    let opts = crate::registry::PatchOptions {
        write: crate::registry::WriteOptions {
            field_manager: Some("paddock".into()),
            ..Default::default()
        },
        force: true,
    };
    let body = serde_json::to_vec(&deployment("inproc", 2)).unwrap();
    let (obj, created, _) = crate::patch::patch(
        &t.registry,
        info,
        "default",
        "inproc",
        api::patch::PatchType::Apply,
        &body,
        None,
        &opts,
    )
    .await
    .unwrap();
    assert!(created);
    assert_eq!(obj["spec"]["replicas"], 2);
    let (obj, created, _) = crate::patch::patch(
        &t.registry,
        info,
        "default",
        "inproc",
        api::patch::PatchType::Merge,
        br#"{"spec":{"replicas":4}}"#,
        None,
        &opts,
    )
    .await
    .unwrap();
    assert!(!created);
    assert_eq!(obj["spec"]["replicas"], 4);
    assert_eq!(obj["metadata"]["generation"], 2);
}

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// A kubelet-serving CSR for node `n1` (what an agent asks for), claiming to be someone else.
fn csr(name: &str) -> Value {
    use base64::Engine as _;
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:n1");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": {"name": name},
           "spec": {"request": base64::engine::general_purpose::STANDARD.encode(pem),
                    "signerName": "kubernetes.io/kubelet-serving",
                    "usages": ["digital signature", "server auth"],
                    "expirationSeconds": 86400,
                    "username": "mallory", "groups": ["system:nodes"]},
           "status": {"conditions": [{"type": "Approved", "status": "True"}]}})
}

#[tokio::test]
async fn certificate_signing_requests_record_the_requester_and_change_only_through_subresources() {
    let t = setup().await;
    let r = t.post(CSRS, csr("c1")).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    // The requester is whoever authenticated; nothing arrives approved.
    assert_eq!(r.body["spec"]["username"], "system:admin");
    assert_eq!(
        r.body["spec"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    assert_eq!(r.body["status"], json!({}));
    let item = format!("{CSRS}/c1");

    // The main resource ignores status; adding Approved there is not possible.
    let mut obj = r.body.clone();
    obj["status"] = json!({"conditions": [{"type": "Approved", "status": "True"}]});
    obj["spec"]["usages"] = json!(["client auth"]);
    let r = t.put(&item, obj.clone()).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], json!({}));
    assert_eq!(
        r.body["spec"]["usages"],
        json!(["digital signature", "server auth"])
    );
    // Neither through status.
    let r = t.put(&format!("{item}/status"), obj.clone()).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["message"],
        "CertificateSigningRequest.certificates.k8s.io \"c1\" is invalid: status.conditions: Forbidden: updates may not add a condition of type \"Approved\""
    );
    // Through approval, with timestamps filled in.
    let r = t.put(&format!("{item}/approval"), obj.clone()).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    let cond = &r.body["status"]["conditions"][0];
    assert_eq!(
        (cond["type"].as_str(), cond["status"].as_str()),
        (Some("Approved"), Some("True"))
    );
    assert!(cond["lastUpdateTime"].is_string() && cond["lastTransitionTime"].is_string());
    let r = t.get(&format!("{item}/approval")).await;
    assert_eq!(r.body["status"]["conditions"][0]["type"], "Approved");

    // The Table kubectl prints.
    let r = t.call(Method::GET, CSRS, None, &[("accept", TABLE)]).await;
    let names: Vec<&str> = r.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Age",
            "SignerName",
            "Requestor",
            "RequestedDuration",
            "Condition"
        ]
    );
    let cells = &r.body["rows"][0]["cells"];
    assert_eq!(cells[2], "kubernetes.io/kubelet-serving");
    assert_eq!(
        (&cells[3], &cells[4], &cells[5]),
        (&json!("system:admin"), &json!("24h"), &json!("Approved"))
    );

    // Field selector on the signer.
    let r = t
        .get(&format!(
            "{CSRS}?fieldSelector=spec.signerName%3Dexample.com%2Fother"
        ))
        .await;
    assert_eq!(r.body["items"], json!([]));
    let r = t
        .get(&format!(
            "{CSRS}?fieldSelector=spec.signerName%3Dkubernetes.io%2Fkubelet-serving"
        ))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn percent_encoded_paths_are_decoded_as_go_decodes_url_path() {
    let t = setup().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let r = t
        .post(
            cms,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a.b"}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    for path in [
        format!("{cms}/a%2Eb"),
        format!("{cms}/a%2eb"),
        "/api/v1/namespaces/%64efault/configmaps/a.b".to_string(),
        "/%61pi/v1/namespaces/default/configmaps/a.b".to_string(),
    ] {
        let r = t.get(&path).await;
        assert_eq!(r.code, StatusCode::OK, "{path}: {}", r.text);
        assert_eq!(r.body["metadata"]["name"], "a.b");
    }
    // A decoded `/` separates segments: `a%2Fb` is subresource `b` of `a`, as upstream.
    let r = t.get(&format!("{cms}/a%2Fb")).await;
    assert_eq!(r.code, StatusCode::NOT_FOUND, "{}", r.text);
    // A broken escape is a bad request.
    let r = t.get(&format!("{cms}/a%zz")).await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.body["kind"], "Status");
    // Public paths are public when encoded too, and still nothing else is.
    let anon = |path: &'static str| {
        let router = t.router.clone();
        async move {
            router
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(anon("/%68ealthz").await, StatusCode::OK);
    assert_eq!(
        anon("/healthz/..%2F..%2Fapi/v1/namespaces/default/secrets").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anon("/%61pi/v1/namespaces/default/secrets").await,
        StatusCode::UNAUTHORIZED
    );
    let r = t.delete(&format!("{cms}/a%2Eb"), None).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_never_finishes_gets_a_504_after_the_request_timeout() {
    let t = setup().await;
    // Half a ConfigMap, then nothing (a slow upload that stalls).
    use futures::StreamExt;
    let chunks = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(
        b"{\"apiVersion\":\"v1\",",
    ))])
    .chain(futures::stream::pending());
    let req = Request::post("/api/v1/namespaces/default/configmaps")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let resp = t.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["reason"], "Timeout");
    assert_eq!(
        body["message"],
        "Timeout: request did not complete within requested timeout - context deadline exceeded"
    );
}

#[tokio::test]
async fn eviction_subresource_over_http() {
    let t = setup().await;
    // Discovery names the subresource with its policy/v1 kind.
    let r = t.get("/api/v1").await;
    let ev = r.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "pods/eviction")
        .cloned()
        .unwrap();
    assert_eq!(
        (&ev["group"], &ev["version"], &ev["kind"], &ev["verbs"]),
        (
            &json!("policy"),
            &json!("v1"),
            &json!("Eviction"),
            &json!(["create"])
        )
    );
    for name in ["a", "b"] {
        assert_eq!(t.post(PODS, pod(name)).await.code, StatusCode::CREATED);
        let mut st = t.get(&format!("{PODS}/{name}")).await.body;
        st["status"]["phase"] = json!("Running");
        st["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert_eq!(
            t.put(&format!("{PODS}/{name}/status"), st).await.code,
            StatusCode::OK
        );
    }
    let eviction = |name: &str| json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}});
    // A budget whose spec changed since the controller looked: 429, retry after 10 s.
    let pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    let r = t
        .post(
            pdbs,
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                   "metadata": {"name": "web"},
                   "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["status"],
        json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0})
    );
    assert_eq!(r.body["metadata"]["generation"], 1);
    let r = t.post(&format!("{PODS}/a/eviction"), eviction("a")).await;
    assert_eq!(r.code, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert_eq!(r.headers["retry-after"], "10");
    assert_eq!(r.body["details"]["retryAfterSeconds"], 10);
    assert_eq!(r.body["reason"], "TooManyRequests");
    // Observed with room for one: the first eviction is spent, the second refused.
    let mut st = t.get(&format!("{pdbs}/web")).await.body;
    st["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": 1,
        "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2});
    let r = t.put(&format!("{pdbs}/web/status"), st).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    let r = t.post(&format!("{PODS}/a/eviction"), eviction("a")).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
    );
    let r = t.post(&format!("{PODS}/b/eviction"), eviction("b")).await;
    assert_eq!(r.code, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers.get("retry-after").is_none());
    assert_eq!(
        r.body["message"],
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        r.body["details"]["causes"][0]["message"],
        "The disruption budget web needs 1 healthy pods and has 2 currently"
    );
    // The table columns.
    let r = t.call(Method::GET, pdbs, None, &[("accept", TABLE)]).await;
    let cells = r.body["rows"][0]["cells"].as_array().unwrap();
    assert_eq!(
        cells[0..4],
        [json!("web"), json!("1"), json!("N/A"), json!(0)]
    );
}

const HPA_V1: &str = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
const HPA_V2: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";

fn hpa_v1(name: &str) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "maxReplicas": 4, "targetCPUUtilizationPercentage": 50},
    })
}

#[tokio::test]
async fn autoscaling_v1_is_served_by_conversion_of_the_stored_v2() {
    let t = setup().await;
    // Discovery: both versions, v2 preferred.
    let g = t.get("/apis/autoscaling").await.body;
    assert_eq!(g["preferredVersion"]["version"], "v2");
    assert_eq!(
        g["versions"],
        json!([{"groupVersion": "autoscaling/v2", "version": "v2"},
               {"groupVersion": "autoscaling/v1", "version": "v1"}])
    );
    let names: Vec<Value> = t.get("/apis/autoscaling/v1").await.body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("horizontalpodautoscalers"),
            json!("horizontalpodautoscalers/status")
        ]
    );
    assert_eq!(
        t.get("/openapi/v3/apis/autoscaling/v1").await.code,
        StatusCode::OK
    );

    // Create in v1: answered in v1 with v1's defaults, stored in v2.
    let r = t.post(HPA_V1, hpa_v1("web")).await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["apiVersion"], "autoscaling/v1");
    assert_eq!(r.body["spec"]["minReplicas"], 1);
    assert_eq!(r.body["spec"]["targetCPUUtilizationPercentage"], 50);
    let v2 = t.get(&format!("{HPA_V2}/web")).await.body;
    assert_eq!(
        v2["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 50}}}])
    );

    // Bad bodies: in v1's words.
    let mut wrong = hpa_v1("x");
    wrong["apiVersion"] = json!("autoscaling/v2");
    let r = t.post(HPA_V1, wrong).await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "the API version in the data (autoscaling/v2) does not match the expected API version (autoscaling/v1)"
    );
    let mut unknown = hpa_v1("x");
    unknown["spec"]["metrics"] = json!([]);
    let r = t
        .post(&format!("{HPA_V1}?fieldValidation=Strict"), unknown)
        .await;
    assert_eq!(r.code, StatusCode::BAD_REQUEST);
    assert_eq!(
        r.body["message"],
        "HorizontalPodAutoscaler in version \"v1\" cannot be handled as a HorizontalPodAutoscaler: strict decoding error: unknown field \"spec.metrics\""
    );
    let mut invalid = hpa_v1("x");
    invalid["spec"]["maxReplicas"] = json!(0);
    let r = t.post(HPA_V1, invalid).await;
    assert_eq!(r.code, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.body["details"]["causes"][0]["field"], "spec.maxReplicas");
    assert_eq!(
        t.get(&format!("{HPA_V2}/x")).await.code,
        StatusCode::NOT_FOUND
    );

    // What v1 cannot hold survives a v1 client's read-modify-write.
    let mut v2 = t.get(&format!("{HPA_V2}/web")).await.body;
    v2["spec"]["metrics"].as_array_mut().unwrap().insert(
        0,
        json!({"type": "Resource", "resource": {"name": "memory",
            "target": {"type": "AverageValue", "averageValue": "100Mi"}}}),
    );
    assert_eq!(
        t.put(&format!("{HPA_V2}/web"), v2).await.code,
        StatusCode::OK
    );
    let mut v1 = t.get(&format!("{HPA_V1}/web")).await.body;
    assert_eq!(
        v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"],
        r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#
    );
    v1["spec"]["maxReplicas"] = json!(6);
    let r = t.put(&format!("{HPA_V1}/web"), v1).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    let r = t
        .patch(
            &format!("{HPA_V1}/web"),
            "application/merge-patch+json",
            json!({"spec": {"targetCPUUtilizationPercentage": 70}}),
        )
        .await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["spec"]["targetCPUUtilizationPercentage"], 70);
    let v2 = t.get(&format!("{HPA_V2}/web")).await.body;
    assert_eq!(v2["spec"]["maxReplicas"], 6);
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");
    let metrics = v2["spec"]["metrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2, "{v2}");
    assert_eq!(metrics[0]["resource"]["name"], "memory");
    assert_eq!(metrics[1]["resource"]["target"]["averageUtilization"], 70);

    // Status through v1.
    let mut v1 = t.get(&format!("{HPA_V1}/web")).await.body;
    v1["status"] = json!({"currentReplicas": 2, "desiredReplicas": 3,
        "currentCPUUtilizationPercentage": 90});
    let r = t.put(&format!("{HPA_V1}/web/status"), v1).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"]["currentCPUUtilizationPercentage"], 90);
    let v2 = t.get(&format!("{HPA_V2}/web")).await.body;
    assert_eq!(v2["status"]["desiredReplicas"], 3);
    assert_eq!(
        v2["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"],
        90
    );

    // Server-side apply in v1.
    let r = t
        .patch(
            &format!("{HPA_V1}/applied?fieldManager=me"),
            "application/apply-patch+yaml",
            hpa_v1("applied"),
        )
        .await;
    assert_eq!(r.code, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["apiVersion"], "autoscaling/v1");
    assert_eq!(
        r.body["metadata"]["managedFields"][0]["apiVersion"],
        "autoscaling/v1"
    );

    // Lists and watches in v1.
    let l = t.get(HPA_V1).await.body;
    assert_eq!(l["kind"], "HorizontalPodAutoscalerList");
    assert_eq!(l["apiVersion"], "autoscaling/v1");
    assert_eq!(l["items"].as_array().unwrap().len(), 2);
    assert!(
        l["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["apiVersion"] == "autoscaling/v1" && i["spec"].get("metrics").is_none())
    );
    let mut w = open_watch(&t, &format!("{HPA_V1}?watch=true"), "application/json").await;
    let events = read_events(&mut w, 2).await;
    for e in &events {
        assert_eq!(e["type"], "ADDED");
        assert_eq!(e["object"]["apiVersion"], "autoscaling/v1");
    }
    let r = t.get(&format!("{HPA_V1}/web")).await;
    assert_eq!(r.body["spec"]["targetCPUUtilizationPercentage"], 70);

    // Strategic merge (kubectl edit, kubectl apply) on either version.
    for base in [HPA_V1, HPA_V2] {
        let r = t
            .patch(
                &format!("{base}/web"),
                "application/strategic-merge-patch+json",
                json!({"spec": {"maxReplicas": 7}}),
            )
            .await;
        assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    }

    // Delete through v1.
    let r = t.delete(&format!("{HPA_V1}/web"), None).await;
    assert_eq!(r.code, StatusCode::OK, "{}", r.text);
    assert_eq!(
        t.get(&format!("{HPA_V2}/web")).await.code,
        StatusCode::NOT_FOUND
    );
}
