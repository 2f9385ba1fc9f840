use serde_json::json;

use super::*;
use crate::WriteOptions;

fn issuer() -> TokenIssuer {
    let key = KeyPair::generate().unwrap();
    TokenIssuer::from_pem(&key.serialize_pem(), DEFAULT_ISSUER).unwrap()
}

async fn registry_with(objs: &[(&str, &str, serde_json::Value)]) -> Registry {
    let r = Registry::new(store::Store::memory());
    crate::bootstrap(&r).await.unwrap();
    for (plural, ns, obj) in objs {
        r.create(info(plural), ns, obj.clone(), &WriteOptions::default())
            .await
            .unwrap();
    }
    r
}

fn uid(r: &Registry, plural: &str, ns: &str, name: &str) -> String {
    meta_str(&r.get(info(plural), ns, name).unwrap(), "uid").to_string()
}

async fn sa_and_pod() -> Registry {
    registry_with(&[
        (
            "serviceaccounts",
            "default",
            json!({"metadata": {"name": "app"}}),
        ),
        (
            "pods",
            "default",
            json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "app",
                "containers": [{"name": "c", "image": "i"}]}}),
        ),
    ])
    .await
}

fn bound(r: &Registry) -> TokenSubject {
    TokenSubject {
        namespace: "default".into(),
        name: "app".into(),
        uid: uid(r, "serviceaccounts", "default", "app"),
        pod: Some(Ref {
            name: "p".into(),
            uid: uid(r, "pods", "default", "p"),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn claims_are_upstreams() {
    let r = sa_and_pod().await;
    let i = issuer();
    let c = i.claims(&bound(&r), &["aud1".into()], 1000, 600);
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["iss"], DEFAULT_ISSUER);
    assert_eq!(v["sub"], "system:serviceaccount:default:app");
    assert_eq!(v["aud"], json!(["aud1"]));
    assert_eq!(
        (v["iat"].clone(), v["nbf"].clone(), v["exp"].clone()),
        (json!(1000), json!(1000), json!(1600))
    );
    assert!(!c.jti.is_empty());
    let k = &v["kubernetes.io"];
    assert_eq!(k["namespace"], "default");
    assert_eq!(k["serviceaccount"]["name"], "app");
    assert_eq!(k["pod"]["name"], "p");
    assert!(k.get("secret").is_none());
    // The token is a JWS with our kid.
    let t = i.sign(&c).unwrap();
    let h = jsonwebtoken::decode_header(&t).unwrap();
    assert_eq!(h.alg, Algorithm::ES256);
    assert_eq!(h.kid.as_deref(), Some(i.kid.as_str()));
    assert_eq!(i.jwks()["keys"][0]["kid"], json!(i.kid));
}

#[tokio::test]
async fn a_valid_bound_token_authenticates_as_its_service_account() {
    let r = sa_and_pod().await;
    let i = issuer();
    let now = unix_now();
    let t = i
        .sign(&i.claims(&bound(&r), i.audiences(), now, 3600))
        .unwrap();
    let u = i.authenticate(&r, &t, now).expect("authenticates");
    assert_eq!(u.name, "system:serviceaccount:default:app");
    assert_eq!(u.uid, uid(&r, "serviceaccounts", "default", "app"));
    assert_eq!(
        u.groups,
        vec![
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ]
    );
    assert_eq!(
        u.extra["authentication.kubernetes.io/pod-name"],
        vec!["p".to_string()]
    );
    assert_eq!(
        u.extra["authentication.kubernetes.io/pod-uid"],
        vec![uid(&r, "pods", "default", "p")]
    );
    assert!(!u.is_master());
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    let r = sa_and_pod().await;
    let i = issuer();
    let now = unix_now();
    let subject = bound(&r);
    // Signed by another key.
    let other = issuer();
    let t = other
        .sign(&other.claims(&subject, i.audiences(), now, 3600))
        .unwrap();
    assert!(i.authenticate(&r, &t, now).is_none());
    // Payload altered after signing.
    let good = i
        .sign(&i.claims(&subject, i.audiences(), now, 3600))
        .unwrap();
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("system:serviceaccount:kube-system:admin");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    assert!(i.authenticate(&r, &parts.join("."), now).is_none());
    // Expired (beyond the leeway).
    let t = i
        .sign(&i.claims(&subject, i.audiences(), now - 7200, 3600))
        .unwrap();
    assert!(i.authenticate(&r, &t, now).is_none());
    // Not yet valid.
    let t = i
        .sign(&i.claims(&subject, i.audiences(), now + 3600, 3600))
        .unwrap();
    assert!(i.authenticate(&r, &t, now).is_none());
    // Another audience.
    let t = i
        .sign(&i.claims(&subject, &["vault".into()], now, 3600))
        .unwrap();
    assert!(i.authenticate(&r, &t, now).is_none());
    // Garbage.
    assert!(i.authenticate(&r, "a.b.c", now).is_none());
    assert!(i.authenticate(&r, "", now).is_none());
    assert!(i.authenticate(&r, &good, now).is_some());
}

#[tokio::test]
async fn deleting_the_service_account_or_the_pod_invalidates_the_token() {
    let r = sa_and_pod().await;
    let i = issuer();
    let now = unix_now();
    let t = i
        .sign(&i.claims(&bound(&r), i.audiences(), now, 3600))
        .unwrap();
    assert!(i.authenticate(&r, &t, now).is_some());
    let opts = crate::DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    r.delete(info("pods"), "default", "p", &opts).await.unwrap();
    assert!(i.authenticate(&r, &t, now).is_none(), "deleted pod");
    // A pod of the same name made again has another uid.
    r.create(
        info("pods"),
        "default",
        json!({"metadata": {"name": "p"}, "spec": {"serviceAccountName": "app",
            "containers": [{"name": "c", "image": "i"}]}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    assert!(i.authenticate(&r, &t, now).is_none(), "recreated pod");
    // An unbound token dies with its service account.
    let unbound = TokenSubject {
        pod: None,
        ..bound(&r)
    };
    let t = i
        .sign(&i.claims(&unbound, i.audiences(), now, 3600))
        .unwrap();
    assert!(i.authenticate(&r, &t, now).is_some());
    r.delete(info("serviceaccounts"), "default", "app", &opts)
        .await
        .unwrap();
    assert!(
        i.authenticate(&r, &t, now).is_none(),
        "deleted service account"
    );
}

#[tokio::test]
async fn legacy_tokens_need_their_secret() {
    let r = sa_and_pod().await;
    let i = issuer();
    let sa_uid = uid(&r, "serviceaccounts", "default", "app");
    let t = i
        .sign_legacy("default", "app", &sa_uid, "app-token")
        .unwrap();
    assert!(i.authenticate(&r, &t, unix_now()).is_none(), "no secret");
    r.create(
        info("secrets"),
        "default",
        json!({"metadata": {"name": "app-token", "annotations": {
            "kubernetes.io/service-account.name": "app"}},
            "type": "kubernetes.io/service-account-token",
            "data": {"token": base64::engine::general_purpose::STANDARD.encode(&t)}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
    let u = i.authenticate(&r, &t, unix_now()).expect("authenticates");
    assert_eq!(u.name, "system:serviceaccount:default:app");
    // Another token for the same secret name is not the stored one.
    let t2 = i.sign_legacy("default", "app", &sa_uid, "other").unwrap();
    assert!(i.authenticate(&r, &t2, unix_now()).is_none());
}

#[tokio::test]
async fn token_request_validates_and_binds() {
    let r = sa_and_pod().await;
    let i = issuer();
    let e = token_request::create(
        &r,
        &i,
        "default",
        "app",
        json!({"spec": {"expirationSeconds": 60}}),
    )
    .unwrap_err();
    assert_eq!(e.code, 422);
    assert_eq!(
        e.message,
        "TokenRequest.authentication.k8s.io \"app\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    let e = token_request::create(&r, &i, "default", "nobody", json!({})).unwrap_err();
    assert_eq!(e.message, "serviceaccounts \"nobody\" not found");
    let out = token_request::create(
        &r,
        &i,
        "default",
        "app",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [DEFAULT_ISSUER], "expirationSeconds": 600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}}),
    )
    .unwrap();
    assert_eq!(out["spec"]["expirationSeconds"], 600);
    let token = out["status"]["token"].as_str().unwrap();
    let u = i.authenticate(&r, token, unix_now()).unwrap();
    assert_eq!(
        u.extra["authentication.kubernetes.io/pod-name"],
        vec!["p".to_string()]
    );
    // Defaults: an hour, the API audiences.
    let out = token_request::create(&r, &i, "default", "app", json!({})).unwrap();
    assert_eq!(out["spec"]["expirationSeconds"], 3600);
    assert_eq!(out["spec"]["audiences"], json!([DEFAULT_ISSUER]));
    // A stale uid in the reference is a conflict; another kind is refused.
    let e = token_request::create(
        &r,
        &i,
        "default",
        "app",
        json!({"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "x"}}}),
    )
    .unwrap_err();
    assert_eq!(e.code, 409);
    let e = token_request::create(
        &r,
        &i,
        "default",
        "app",
        json!({"spec": {"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "p"}}}),
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "cannot bind token to object of type apps/v1, Kind=Deployment"
    );
}

#[tokio::test]
async fn admission_defaults_mounts_and_refuses_missing_accounts() {
    let r = registry_with(&[(
        "serviceaccounts",
        "default",
        json!({"metadata": {"name": "default"}}),
    )])
    .await;
    r.set_service_account_admission(true);
    let pod = r
        .create(
            info("pods"),
            "default",
            json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
    assert_eq!(pod["spec"]["serviceAccount"], "default");
    let vol = &pod["spec"]["volumes"][0];
    assert!(
        vol["name"]
            .as_str()
            .unwrap()
            .starts_with("kube-api-access-")
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        admission::TOKEN_MOUNT_PATH
    );
    // automountServiceAccountToken: false → nothing mounted.
    let pod = r
        .create(
            info("pods"),
            "default",
            json!({"metadata": {"name": "b"}, "spec": {"automountServiceAccountToken": false,
                "containers": [{"name": "c", "image": "i"}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap();
    assert!(pod["spec"].get("volumes").is_none());
    let e = r
        .create(
            info("pods"),
            "default",
            json!({"metadata": {"name": "c"}, "spec": {"serviceAccountName": "ghost",
                "containers": [{"name": "c", "image": "i"}]}}),
            &WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "pods \"c\" is forbidden: error looking up service account default/ghost: serviceaccount \"ghost\" not found"
    );
}
