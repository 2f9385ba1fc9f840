//! Decisions of the RBAC authorizer over a real in-memory registry.

use serde_json::json;

use super::*;
use crate::registry::{Registry, WriteOptions};

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        uid: String::new(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        extra: Default::default(),
    }
}

fn req(verb: &str, group: &str, resource: &str, ns: &str, name: &str) -> Attributes {
    Attributes {
        verb: verb.into(),
        resource_request: true,
        api_group: group.into(),
        api_version: "v1".into(),
        resource: resource.into(),
        namespace: ns.into(),
        name: name.into(),
        ..Attributes::default()
    }
}

pub(crate) async fn registry() -> Registry {
    let r = Registry::new(store::Store::memory());
    crate::bootstrap(&r).await.unwrap();
    bootstrap::ensure(&r).await.unwrap();
    r
}

pub(crate) async fn create(r: &Registry, plural: &str, ns: &str, obj: serde_json::Value) {
    let info = api::registry::lookup(api::registry::RBAC_GROUP, "v1", plural).unwrap();
    if !ns.is_empty() && r.get(crate::strategy::namespaces(), "", ns).is_err() {
        let n = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        r.create(
            crate::strategy::namespaces(),
            "",
            n,
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    }
    r.create(info, ns, obj, &WriteOptions::default())
        .await
        .unwrap();
}

fn role(name: &str, rules: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
           "metadata": {"name": name}, "rules": rules})
}

fn binding(
    kind: &str,
    name: &str,
    role_kind: &str,
    role: &str,
    subjects: serde_json::Value,
) -> serde_json::Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
           "metadata": {"name": name},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
           "subjects": subjects})
}

#[tokio::test]
async fn role_bindings_grant_in_their_namespace_only() {
    let r = registry().await;
    create(
        &r,
        "roles",
        "x",
        role(
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
        ),
    )
    .await;
    create(
        &r,
        "rolebindings",
        "x",
        binding(
            "RoleBinding",
            "jane-reads",
            "Role",
            "pod-reader",
            json!([{"kind": "User", "name": "jane"}]),
        ),
    )
    .await;
    let jane = user("jane", &["system:authenticated"]);
    let rbac = r.rbac();
    let d = rbac.authorize(&jane, &req("list", "", "pods", "x", ""));
    assert_eq!(
        d,
        Decision {
            allowed: true,
            reason: "RBAC: allowed by RoleBinding \"jane-reads/x\" of Role \"pod-reader\" to User \"jane\"".into()
        }
    );
    assert!(
        !rbac
            .authorize(&jane, &req("list", "", "pods", "y", ""))
            .allowed
    );
    assert!(
        !rbac
            .authorize(&jane, &req("list", "", "pods", "", ""))
            .allowed
    );
    assert!(
        !rbac
            .authorize(&jane, &req("delete", "", "pods", "x", "p"))
            .allowed
    );
    assert!(
        !rbac
            .authorize(
                &user("bob", &["system:authenticated"]),
                &req("list", "", "pods", "x", "")
            )
            .allowed
    );
    // The bootstrap policy: every authenticated user may ask what it may do.
    assert!(
        rbac.authorize(
            &jane,
            &req(
                "create",
                "authorization.k8s.io",
                "selfsubjectaccessreviews",
                "",
                ""
            )
        )
        .allowed
    );
    let version = Attributes {
        verb: "get".into(),
        path: "/version".into(),
        ..Attributes::default()
    };
    assert!(
        rbac.authorize(
            &user("system:anonymous", &["system:unauthenticated"]),
            &version
        )
        .allowed
    );
    let api = Attributes {
        verb: "get".into(),
        path: "/api".into(),
        ..Attributes::default()
    };
    assert!(
        !rbac
            .authorize(&user("system:anonymous", &["system:unauthenticated"]), &api)
            .allowed
    );
    assert!(rbac.authorize(&jane, &api).allowed);
    // The admin's group may do anything, without a reason.
    let admin = UserInfo::admin();
    assert_eq!(
        rbac.authorize(&admin, &req("escalate", "x", "y", "", "")),
        Decision {
            allowed: true,
            reason: String::new()
        }
    );
}

#[tokio::test]
async fn cluster_roles_bound_in_a_namespace_group_and_service_account_subjects() {
    let r = registry().await;
    create(
        &r,
        "rolebindings",
        "x",
        binding(
            "RoleBinding",
            "devs-view",
            "ClusterRole",
            "cluster-admin",
            json!([{"kind": "Group", "name": "devs"}, {"kind": "ServiceAccount", "name": "robot"}]),
        ),
    )
    .await;
    let rbac = r.rbac();
    let dev = user("amy", &["devs", "system:authenticated"]);
    assert!(
        rbac.authorize(&dev, &req("delete", "apps", "deployments", "x", "d"))
            .allowed
    );
    assert!(
        !rbac
            .authorize(&dev, &req("delete", "apps", "deployments", "y", "d"))
            .allowed
    );
    let robot = user(
        "system:serviceaccount:x:robot",
        &["system:serviceaccounts", "system:authenticated"],
    );
    let d = rbac.authorize(&robot, &req("get", "", "secrets", "x", "s"));
    assert_eq!(
        d.reason,
        "RBAC: allowed by RoleBinding \"devs-view/x\" of ClusterRole \"cluster-admin\" to ServiceAccount \"robot/x\""
    );
    assert!(
        !rbac
            .authorize(
                &user("system:serviceaccount:y:robot", &[]),
                &req("get", "", "secrets", "x", "s")
            )
            .allowed
    );
}

#[tokio::test]
async fn a_binding_to_a_missing_role_grants_nothing_and_says_why() {
    let r = registry().await;
    create(
        &r,
        "clusterrolebindings",
        "",
        binding(
            "ClusterRoleBinding",
            "ghost",
            "ClusterRole",
            "nope",
            json!([{"kind": "User", "name": "jane"}]),
        ),
    )
    .await;
    let jane = user("jane", &["system:authenticated"]);
    let a = req("list", "", "pods", "y", "");
    let d = r.rbac().authorize(&jane, &a);
    assert_eq!(
        d,
        Decision {
            allowed: false,
            reason: "RBAC: clusterrole.rbac.authorization.k8s.io \"nope\" not found".into()
        }
    );
    assert_eq!(
        forbidden(&jane, &a, "").message,
        "pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"y\""
    );
    assert_eq!(
        forbidden(&jane, &req("get", "apps", "deployments", "", "d"), "").message,
        "deployments.apps \"d\" is forbidden: User \"jane\" cannot get resource \"deployments\" in API group \"apps\" at the cluster scope"
    );
    let url = Attributes {
        verb: "get".into(),
        path: "/metrics".into(),
        ..Attributes::default()
    };
    assert_eq!(
        forbidden(&jane, &url, "").message,
        "forbidden: User \"jane\" cannot get path \"/metrics\""
    );
    let mut sub = req("get", "", "pods", "y", "p");
    sub.subresource = "log".into();
    assert_eq!(
        forbidden(&jane, &sub, "").message,
        "pods \"p\" is forbidden: User \"jane\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"y\""
    );
}

#[tokio::test]
async fn escalation_is_refused_unless_held_or_escalate_or_bind() {
    let r = registry().await;
    // jane may manage roles and bindings in x and read pods there, nothing more (`*` would
    // include `escalate` and `bind`).
    create(&r, "roles", "x", role("manager", json!([
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": ["create", "get", "list", "update", "patch", "delete"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    ]))).await;
    create(
        &r,
        "rolebindings",
        "x",
        binding(
            "RoleBinding",
            "jane",
            "Role",
            "manager",
            json!([{"kind": "User", "name": "jane"}]),
        ),
    )
    .await;
    let jane = user("jane", &["system:authenticated"]);
    let roles = api::registry::lookup(api::registry::RBAC_GROUP, "v1", "roles").unwrap();
    let opts = WriteOptions {
        user: Some(jane.clone()),
        ..WriteOptions::default()
    };
    let ok = role(
        "reader",
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]),
    );
    r.create(roles, "x", ok, &opts).await.unwrap();
    let more = role(
        "deleter",
        json!([{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "delete"]}]),
    );
    let err = r.create(roles, "x", more.clone(), &opts).await.unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"jane\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
         {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n\
         {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
    );
    // Binding the admin role is escalation too; binding a held role is not.
    let rbs = api::registry::lookup(api::registry::RBAC_GROUP, "v1", "rolebindings").unwrap();
    let bind_admin = binding(
        "RoleBinding",
        "b1",
        "ClusterRole",
        "cluster-admin",
        json!([{"kind": "User", "name": "bob"}]),
    );
    assert_eq!(
        r.create(rbs, "x", bind_admin, &opts)
            .await
            .unwrap_err()
            .code,
        403
    );
    let bind_reader = binding(
        "RoleBinding",
        "b2",
        "Role",
        "reader",
        json!([{"kind": "User", "name": "bob"}]),
    );
    r.create(rbs, "x", bind_reader, &opts).await.unwrap();
    let bind_missing = binding(
        "RoleBinding",
        "b3",
        "Role",
        "nope",
        json!([{"kind": "User", "name": "bob"}]),
    );
    assert_eq!(
        r.create(rbs, "x", bind_missing, &opts)
            .await
            .unwrap_err()
            .message,
        "roles.rbac.authorization.k8s.io \"nope\" not found"
    );
    // With the escalate verb the same role is accepted.
    create(
        &r,
        "clusterrolebindings",
        "",
        binding(
            "ClusterRoleBinding",
            "jane-escalates",
            "ClusterRole",
            "escalator",
            json!([{"kind": "User", "name": "jane"}]),
        ),
    )
    .await;
    let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "escalator"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}]});
    create(&r, "clusterroles", "", cr).await;
    r.create(roles, "x", more, &opts).await.unwrap();
    // The admin and in-process writers are never checked.
    let admin = WriteOptions {
        user: Some(UserInfo::admin()),
        ..WriteOptions::default()
    };
    let all = role(
        "all",
        json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    );
    r.create(roles, "x", all, &admin).await.unwrap();
}

#[test]
fn aggregate_errors_as_upstream() {
    assert_eq!(aggregate_errors(&["a".into()]), "a");
    assert_eq!(aggregate_errors(&["a".into(), "a".into()]), "a");
    assert_eq!(aggregate_errors(&["a".into(), "b".into()]), "[a, b]");
}

const TOKEN: &str = "t0ken";

async fn call(
    router: &axum::Router,
    method: http::Method,
    path: &str,
    body: Option<serde_json::Value>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = body
        .map(|v| axum::body::Body::from(serde_json::to_vec(&v).unwrap()))
        .unwrap_or_else(axum::body::Body::empty);
    let resp = router.clone().oneshot(b.body(body).unwrap()).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn requests_are_authorized_as_the_impersonated_user_and_reviews_answer() {
    let r = registry().await;
    create(
        &r,
        "roles",
        "x",
        role(
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
        ),
    )
    .await;
    create(
        &r,
        "rolebindings",
        "x",
        binding(
            "RoleBinding",
            "jane-reads",
            "Role",
            "pod-reader",
            json!([{"kind": "User", "name": "jane"}]),
        ),
    )
    .await;
    let (router, _state, _stop) = crate::app(r.clone(), TOKEN, "127.0.0.1:6443");
    let jane = [("impersonate-user", "jane")];
    let (code, _) = call(
        &router,
        http::Method::GET,
        "/api/v1/namespaces/x/pods",
        None,
        &jane,
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = call(
        &router,
        http::Method::GET,
        "/api/v1/namespaces/y/pods",
        None,
        &jane,
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"y\"",
               "reason": "Forbidden", "details": {"kind": "pods"}, "code": 403})
    );
    let (code, body) = call(&router, http::Method::GET, "/version", None, &jane).await;
    assert_eq!((code, body["major"].as_str()), (200, Some("1")));
    let (code, body) = call(&router, http::Method::GET, "/metrics", None, &jane).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "forbidden: User \"jane\" cannot get path \"/metrics\""
    );

    let ssar = |verb: &str, ns: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": "pods", "namespace": ns}}})
    };
    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let (code, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(ssar("list", "x")),
        &jane,
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        body["status"],
        json!({"allowed": true, "reason": "RBAC: allowed by RoleBinding \"jane-reads/x\" of Role \"pod-reader\" to User \"jane\""})
    );
    let (_, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(ssar("delete", "x")),
        &jane,
    )
    .await;
    assert_eq!(body["status"], json!({"allowed": false}));
    let (code, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(json!({"spec": {}})),
        &jane,
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified"
    );

    let rules_path = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews";
    let (code, body) = call(
        &router,
        http::Method::POST,
        rules_path,
        Some(json!({"spec": {"namespace": "x"}})),
        &jane,
    )
    .await;
    assert_eq!(code, 201);
    let resource_rules = body["status"]["resourceRules"].as_array().unwrap();
    assert!(
        resource_rules
            .contains(&json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]})),
        "{body}"
    );
    assert!(
        body["status"]["nonResourceRules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["nonResourceURLs"]
                .as_array()
                .unwrap()
                .contains(&json!("/version")))
    );

    let who = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let (code, body) = call(&router, http::Method::POST, who, Some(json!({})), &[]).await;
    assert_eq!(code, 201);
    assert_eq!(
        body["status"],
        json!({"userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]}})
    );
    let sa = [("impersonate-user", "system:serviceaccount:x:robot")];
    let (_, body) = call(&router, http::Method::POST, who, Some(json!({})), &sa).await;
    assert_eq!(
        body["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:x",
            "system:authenticated"
        ])
    );

    // SubjectAccessReview: only for those who may create it (the admin here).
    let sar = json!({"spec": {"user": "jane", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "x"}}});
    let sar_path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let (code, body) = call(
        &router,
        http::Method::POST,
        sar_path,
        Some(sar.clone()),
        &[],
    )
    .await;
    assert_eq!(
        (code, body["status"]["allowed"].as_bool()),
        (201, Some(true))
    );
    let (code, body) = call(&router, http::Method::POST, sar_path, Some(sar), &jane).await;
    assert_eq!(code, 403);
    assert_eq!(
        body["message"],
        "subjectaccessreviews.authorization.k8s.io is forbidden: User \"jane\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
    );
}

#[tokio::test]
async fn only_those_allowed_may_impersonate() {
    let r = registry().await;
    let rbac = r.rbac();
    let jane = user("jane", &["system:authenticated"]);
    let mut h = http::HeaderMap::new();
    h.insert("impersonate-user", "bob".parse().unwrap());
    let err = impersonate::apply(rbac, &jane, &mut h).unwrap_err();
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "users \"bob\" is forbidden: User \"jane\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    h.insert(
        "impersonate-user",
        "system:serviceaccount:x:robot".parse().unwrap(),
    );
    let err = impersonate::apply(rbac, &jane, &mut h).unwrap_err();
    assert_eq!(
        err.message,
        "serviceaccounts \"robot\" is forbidden: User \"jane\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"x\""
    );
    // Given the verb on users (only), jane may act as bob but not add groups.
    let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "imp"},
        "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]});
    create(&r, "clusterroles", "", cr).await;
    create(
        &r,
        "clusterrolebindings",
        "",
        binding(
            "ClusterRoleBinding",
            "imp",
            "ClusterRole",
            "imp",
            json!([{"kind": "User", "name": "jane"}]),
        ),
    )
    .await;
    let mut h = http::HeaderMap::new();
    h.insert("impersonate-user", "bob".parse().unwrap());
    let bob = impersonate::apply(rbac, &jane, &mut h).unwrap().unwrap();
    assert_eq!(
        (bob.name.as_str(), bob.groups.clone()),
        ("bob", vec!["system:authenticated".to_string()])
    );
    assert!(h.get("impersonate-user").is_none());
    h.insert("impersonate-user", "bob".parse().unwrap());
    h.insert("impersonate-group", "system:masters".parse().unwrap());
    let err = impersonate::apply(rbac, &jane, &mut h).unwrap_err();
    assert_eq!(
        err.message,
        "groups \"system:masters\" is forbidden: User \"jane\" cannot impersonate resource \"groups\" in API group \"\" at the cluster scope"
    );
    // A group without a user is refused outright.
    let mut h = http::HeaderMap::new();
    h.insert("impersonate-group", "devs".parse().unwrap());
    assert_eq!(
        impersonate::apply(rbac, &UserInfo::admin(), &mut h)
            .unwrap_err()
            .code,
        500
    );
}

#[tokio::test]
async fn local_subject_access_reviews_ask_in_their_namespace() {
    let r = registry().await;
    create(
        &r,
        "roles",
        "x",
        role(
            "pod-reader",
            json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
        ),
    )
    .await;
    create(
        &r,
        "rolebindings",
        "x",
        binding(
            "RoleBinding",
            "jane-reads",
            "Role",
            "pod-reader",
            json!([{"kind": "User", "name": "jane"}]),
        ),
    )
    .await;
    let (router, _state, _stop) = crate::app(r.clone(), TOKEN, "127.0.0.1:6443");
    let lsar = |ns: &str, extra: serde_json::Value| {
        let mut v = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
            "spec": {"user": "jane", "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": ns}}});
        if let Some(o) = extra.as_object() {
            for (k, val) in o {
                v[k] = val.clone();
            }
        }
        v
    };
    let path = "/apis/authorization.k8s.io/v1/namespaces/x/localsubjectaccessreviews";
    let (code, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(lsar("x", json!({}))),
        &[],
    )
    .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["metadata"]["namespace"], "x");
    assert_eq!(body["status"]["allowed"], true);
    let (code, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(lsar("y", json!({}))),
        &[],
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        body["message"],
        "LocalSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes.namespace: Invalid value: \"y\": must match metadata.namespace"
    );
    let (code, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(lsar("x", json!({"metadata": {"namespace": "z"}}))),
        &[],
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    // Metadata beyond the namespace is refused, first among the field errors, as upstream
    // orders them; Go's zero values (as kubectl sends `creationTimestamp: null`) are empty.
    let (code, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(lsar(
            "y",
            json!({"metadata": {"name": "a", "namespace": "x", "labels": {}}}),
        )),
        &[],
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("LocalSubjectAccessReview.authorization.k8s.io \"\" is invalid: [metadata: Invalid value: ")
            && message.contains(": must be empty except for namespace, spec.resourceAttributes.namespace: Invalid value: \"y\": must match metadata.namespace]"),
        "{message}"
    );
    let (code, body) = call(
        &router,
        http::Method::POST,
        path,
        Some(lsar(
            "x",
            json!({"metadata": {"creationTimestamp": null, "labels": {}, "managedFields": [{"manager": "m"}]}}),
        )),
        &[],
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = call(
        &router,
        http::Method::POST,
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        Some(json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {"namespace": "x"},
            "spec": {"resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "x"}}})),
        &[],
    )
    .await;
    assert_eq!(code, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with(": must be empty"),
        "{body}"
    );
    // Only namespaced; and the other reviews only at the cluster scope.
    let (code, _) = call(
        &router,
        http::Method::POST,
        "/apis/authorization.k8s.io/v1/localsubjectaccessreviews",
        Some(lsar("x", json!({}))),
        &[],
    )
    .await;
    assert_eq!(code, 404);
    let (code, _) = call(
        &router,
        http::Method::POST,
        "/apis/authorization.k8s.io/v1/namespaces/x/subjectaccessreviews",
        Some(lsar("x", json!({}))),
        &[],
    )
    .await;
    assert_eq!(code, 404);
}
