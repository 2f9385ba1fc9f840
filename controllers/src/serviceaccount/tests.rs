use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::testutil::*;

const CA: &str = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n";

fn config() -> Config {
    Config {
        root_ca: CA.to_string(),
        signer: Arc::new(|ns: &str, name: &str, uid: &str, secret: &str| {
            Ok(format!("token-{ns}-{name}-{uid}-{secret}"))
        }),
    }
}

async fn running(ns: &str) -> (apiserver::Registry, CancellationToken) {
    let registry = registry_with_namespace(ns).await;
    let stop = CancellationToken::new();
    tokio::spawn(run(cluster(&registry), config(), stop.clone()));
    (registry, stop)
}

#[tokio::test(start_paused = true)]
async fn every_namespace_gets_default_and_the_root_ca() {
    let (r, stop) = running("a").await;
    eventually("default in a", || {
        get(&r, "serviceaccounts", "a", "default").is_some()
    })
    .await;
    eventually("root CA in a", || {
        get(&r, "configmaps", "a", ROOT_CA_CONFIG_MAP).is_some()
    })
    .await;
    let cm = get(&r, "configmaps", "a", ROOT_CA_CONFIG_MAP).unwrap();
    assert_eq!(cm["data"], json!({"ca.crt": CA}));
    assert_eq!(
        cm["metadata"]["annotations"]["kubernetes.io/description"],
        DESCRIPTION
    );
    // A new namespace; a deleted account comes back; an edited ConfigMap is put back.
    create_namespace(&r, "b").await;
    eventually("default in b", || {
        get(&r, "serviceaccounts", "b", "default").is_some()
    })
    .await;
    let old_uid = get(&r, "serviceaccounts", "b", "default").unwrap()["metadata"]["uid"].clone();
    delete(&r, "serviceaccounts", "b", "default", None).await;
    eventually("default recreated", || {
        get(&r, "serviceaccounts", "b", "default").is_some_and(|s| s["metadata"]["uid"] != old_uid)
    })
    .await;
    r.update_with(info("configmaps"), "a", ROOT_CA_CONFIG_MAP, false, |cm| {
        cm["data"] = json!({"ca.crt": "tampered"});
        Ok(true)
    })
    .await
    .unwrap();
    eventually("root CA restored", || {
        get(&r, "configmaps", "a", ROOT_CA_CONFIG_MAP).is_some_and(|c| c["data"]["ca.crt"] == CA)
    })
    .await;
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn token_secrets_are_filled_and_die_with_their_account() {
    let (r, stop) = running("a").await;
    let sa = create(
        &r,
        "serviceaccounts",
        "a",
        json!({"metadata": {"name": "bot"}}),
    )
    .await;
    let uid = sa["metadata"]["uid"].as_str().unwrap().to_string();
    create(
        &r,
        "secrets",
        "a",
        json!({"metadata": {"name": "bot-token", "annotations": {NAME_ANNOTATION: "bot"}},
            "type": TOKEN_SECRET_TYPE}),
    )
    .await;
    eventually("token filled", || {
        get(&r, "secrets", "a", "bot-token").is_some_and(|s| s["data"]["token"].is_string())
    })
    .await;
    let s = get(&r, "secrets", "a", "bot-token").unwrap();
    let token = STANDARD
        .decode(s["data"]["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(token).unwrap(),
        format!("token-a-bot-{uid}-bot-token")
    );
    assert_eq!(s["data"]["ca.crt"], json!(STANDARD.encode(CA)));
    assert_eq!(s["data"]["namespace"], json!(STANDARD.encode("a")));
    assert_eq!(s["metadata"]["annotations"][UID_ANNOTATION], json!(uid));
    // A Secret for an account that does not exist is deleted, as is the account's own when
    // the account goes.
    create(
        &r,
        "secrets",
        "a",
        json!({"metadata": {"name": "ghost-token", "annotations": {NAME_ANNOTATION: "ghost"}},
            "type": TOKEN_SECRET_TYPE}),
    )
    .await;
    eventually("ghost token deleted", || {
        get(&r, "secrets", "a", "ghost-token").is_none()
    })
    .await;
    delete(&r, "serviceaccounts", "a", "bot", None).await;
    eventually("bot token deleted", || {
        get(&r, "secrets", "a", "bot-token").is_none()
    })
    .await;
    stop.cancel();
}
