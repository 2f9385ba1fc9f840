//! Ingresses through the registry: the `paddock` IngressClass every cluster gets (and keeps
//! as the user edits it), DefaultIngressClass admission, the strategy (status reset,
//! generation, status-only writes through `/status`) and the deprecated-annotation warning.

use serde_json::json;
use store::Store;

use crate::registry::{Registry, WriteOptions};

fn info(plural: &str) -> &'static api::registry::ResourceInfo {
    api::registry::lookup("networking.k8s.io", "v1", plural).unwrap()
}

fn ingress(name: &str) -> serde_json::Value {
    json!({"metadata": {"name": name}, "spec": {"rules": [{"host": "a.example.com", "http": {
        "paths": [{"path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}})
}

#[tokio::test]
async fn default_class_admission_strategy_and_status() {
    let r = Registry::new(Store::memory());
    crate::bootstrap(&r).await.unwrap();
    let classes = info("ingressclasses");
    let c = r.get(classes, "", api::PADDOCK_INGRESS_CLASS).unwrap();
    assert_eq!(c["spec"]["controller"], api::PADDOCK_INGRESS_CONTROLLER);
    assert_eq!(
        c["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "true"
    );
    assert_eq!(c["metadata"]["generation"], 1);

    // A user's edit survives the next start's bootstrap.
    r.update_with(classes, "", "paddock", false, |c| {
        c["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] =
            json!("false");
        Ok(true)
    })
    .await
    .unwrap();
    crate::bootstrap(&r).await.unwrap();
    let c = r.get(classes, "", "paddock").unwrap();
    assert_eq!(
        c["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"],
        "false"
    );
    let ings = info("ingresses");
    let opts = WriteOptions::default();
    // No default class now: the Ingress keeps no class.
    let i = r
        .create(ings, "default", ingress("a"), &opts)
        .await
        .unwrap();
    assert!(i["spec"].get("ingressClassName").is_none(), "{i}");
    r.update_with(classes, "", "paddock", false, |c| {
        c["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] = json!("true");
        Ok(true)
    })
    .await
    .unwrap();

    // Created: the default class, status reset, generation 1.
    let i = r
        .create(ings, "default", ingress("web"), &opts)
        .await
        .unwrap();
    assert_eq!(i["spec"]["ingressClassName"], "paddock");
    assert_eq!(i["status"], json!({"loadBalancer": {}}));
    assert_eq!(i["metadata"]["generation"], 1);

    // The legacy annotation: no default, and a warning.
    let mut annotated = ingress("legacy");
    annotated["metadata"]["annotations"] = json!({"kubernetes.io/ingress.class": "nginx"});
    let (i, warnings) = r
        .create_checked(ings, "default", annotated, &[], &opts)
        .await
        .unwrap();
    assert!(i["spec"].get("ingressClassName").is_none());
    assert_eq!(
        warnings,
        [
            "annotation \"kubernetes.io/ingress.class\" is deprecated, please use 'spec.ingressClassName' instead"
        ]
    );

    // A main-resource write keeps the status; a spec change moves the generation.
    let i = r
        .update_with(ings, "default", "web", false, |i| {
            i["status"] = json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}});
            i["spec"]["rules"][0]["host"] = json!("b.example.com");
            Ok(true)
        })
        .await
        .unwrap();
    assert_eq!(i["status"], json!({"loadBalancer": {}}));
    assert_eq!(i["metadata"]["generation"], 2);
    // A status write takes only the status, and validates it.
    let i = r
        .update_with(ings, "default", "web", true, |i| {
            i["status"] = json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ports": [{"port": 80, "protocol": "TCP"}]}]}});
            i["spec"]["rules"][0]["host"] = json!("c.example.com");
            Ok(true)
        })
        .await
        .unwrap();
    assert_eq!(i["status"]["loadBalancer"]["ingress"][0]["ip"], "127.0.0.1");
    assert_eq!(i["spec"]["rules"][0]["host"], "b.example.com");
    assert_eq!(i["metadata"]["generation"], 2);
    let e = r
        .update_with(ings, "default", "web", true, |i| {
            i["status"] = json!({"loadBalancer": {"ingress": [{"ip": "not-an-ip"}]}});
            Ok(true)
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, 422);
    assert!(
        e.message.contains("status.loadBalancer.ingress[0].ip: Invalid value: \"not-an-ip\": must be a valid IP address"),
        "{}",
        e.message
    );
}
