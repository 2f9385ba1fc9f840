use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::Value;

use super::*;
use crate::testutil::{cluster, eventually, get, registry_with_namespace};

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn request(cn: &str, orgs: &[&str]) -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    for o in orgs {
        params.distinguished_name.push(DnType::OrganizationName, *o);
    }
    b64(params
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
        .as_bytes())
}

fn csr(name: &str, user: &str, groups: &[&str], cn: &str, signer: &str) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": request(cn, &["system:nodes"]), "signerName": signer,
                 "usages": ["digital signature", "client auth"],
                 "username": user, "groups": groups}})
}

/// A reviewer allowing `nodeclient` to the bootstrappers and `selfnodeclient` to the nodes
/// (the bindings kubeadm makes), recording what it was asked.
fn reviewer(asked: Arc<parking_lot::Mutex<Vec<String>>>) -> Arc<dyn AccessReviewer> {
    Arc::new(move |who: &Requester, sub: &str| {
        asked.lock().push(format!("{} {sub}", who.user));
        match sub {
            "nodeclient" => who.groups.iter().any(|g| g == "system:bootstrappers"),
            "selfnodeclient" => who.groups.iter().any(|g| g == "system:nodes"),
            _ => false,
        }
    })
}

async fn controller() -> (Arc<Controller>, Arc<parking_lot::Mutex<Vec<String>>>) {
    let registry = registry_with_namespace("default").await;
    let asked = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let c = Arc::new(Controller {
        cluster: cluster(&registry),
        reviewer: reviewer(asked.clone()),
        queue: WorkQueue::controller_default(),
    });
    (c, asked)
}

fn decode(v: Value) -> CertificateSigningRequest {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn bootstrap_and_self_renewal_requests_are_approved_after_review() {
    let (c, asked) = controller().await;
    let signer = certificates::KUBE_APISERVER_CLIENT_KUBELET_SIGNER;
    // A bootstrap token joining node n1: not the certificate's CN, so `nodeclient`.
    let join = decode(csr(
        "a",
        "system:bootstrap:abcdef",
        &["system:bootstrappers"],
        "system:node:n1",
        signer,
    ));
    assert_eq!(
        c.decide(&join).unwrap(),
        Some("Auto approving kubelet client certificate after SubjectAccessReview.")
    );
    assert_eq!(*asked.lock(), ["system:bootstrap:abcdef nodeclient"]);
    asked.lock().clear();
    // The node renewing its own certificate: `selfnodeclient` first.
    let renew = decode(csr(
        "b",
        "system:node:n1",
        &["system:nodes"],
        "system:node:n1",
        signer,
    ));
    assert_eq!(
        c.decide(&renew).unwrap(),
        Some("Auto approving self kubelet client certificate after SubjectAccessReview.")
    );
    assert_eq!(*asked.lock(), ["system:node:n1 selfnodeclient"]);
    // A node asking for another node's certificate: only `nodeclient`, which nodes lack.
    let other = decode(csr(
        "c",
        "system:node:n1",
        &["system:nodes"],
        "system:node:n2",
        signer,
    ));
    assert_eq!(c.decide(&other).unwrap(), None);
    // Someone without either right, another signer, a subject the kubelet rules refuse: left alone.
    let nobody = decode(csr("d", "jane", &["dev"], "system:node:n1", signer));
    assert_eq!(c.decide(&nobody).unwrap(), None);
    let serving = decode(csr(
        "e",
        "system:bootstrap:abcdef",
        &["system:bootstrappers"],
        "system:node:n1",
        certificates::KUBELET_SERVING_SIGNER,
    ));
    assert_eq!(c.decide(&serving).unwrap(), None);
    let bad_cn = decode(csr(
        "f",
        "system:bootstrap:abcdef",
        &["system:bootstrappers"],
        "jane",
        signer,
    ));
    assert_eq!(c.decide(&bad_cn).unwrap(), None);
}

#[tokio::test]
async fn the_approval_condition_is_written_through_the_approval_subresource() {
    let registry = registry_with_namespace("default").await;
    let asked = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(cluster(&registry), reviewer(asked), shutdown.clone()));
    let signer = certificates::KUBE_APISERVER_CLIENT_KUBELET_SIGNER;
    // Created by the bootstrap token's user (the registry records the requester).
    let opts = apiserver::registry::WriteOptions {
        user: Some(apiserver::user::UserInfo {
            name: "system:bootstrap:abcdef".into(),
            uid: String::new(),
            groups: vec!["system:bootstrappers".into(), "system:authenticated".into()],
            extra: Default::default(),
        }),
        ..Default::default()
    };
    let info = typed::info::<CertificateSigningRequest>();
    registry
        .create(
            info,
            "",
            csr("join2", "", &[], "system:node:n1", signer),
            &opts,
        )
        .await
        .unwrap();
    eventually("approved", || {
        get(&registry, "certificatesigningrequests", "", "join2").is_some_and(|o| {
            o["status"]["conditions"][0]["type"] == "Approved"
                && o["status"]["conditions"][0]["reason"] == "AutoApproved"
                && o["status"]["conditions"][0]["status"] == "True"
        })
    })
    .await;
    shutdown.cancel();
    let _ = task.await;
}

fn serving_csr(
    user: &str,
    groups: &[&str],
    cn: &str,
    ips: &[&str],
    dns: &[&str],
) -> CertificateSigningRequest {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:nodes");
    for ip in ips {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(ip.parse().unwrap()));
    }
    for d in dns {
        params
            .subject_alt_names
            .push(rcgen::SanType::DnsName((*d).try_into().unwrap()));
    }
    let pem = b64(params
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
        .as_bytes());
    decode(json!({"metadata": {"name": "s"},
        "spec": {"request": pem, "signerName": certificates::KUBELET_SERVING_SIGNER,
                 "usages": ["digital signature", "server auth"], "username": user, "groups": groups}}))
}

#[test]
fn serving_requests_of_the_node_itself_for_addresses_no_other_node_has() {
    let other: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
        "metadata": {"name": "n2"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.2"}]}}))
    .unwrap();
    let nodes = [other];
    let g = &["system:nodes", "system:authenticated"][..];
    let ok = serving_csr(
        "system:node:n1",
        g,
        "system:node:n1",
        &["10.0.0.1"],
        &["n1"],
    );
    assert!(serving_approval(&ok, &nodes).is_some());
    // Another node's address, another name, another requester, no node group: left alone.
    let theirs = serving_csr("system:node:n1", g, "system:node:n1", &["10.0.0.2"], &[]);
    assert!(serving_approval(&theirs, &nodes).is_none());
    let name = serving_csr(
        "system:node:n1",
        g,
        "system:node:n1",
        &["10.0.0.1"],
        &["n2"],
    );
    assert!(serving_approval(&name, &nodes).is_none());
    let someone = serving_csr("system:node:n2", g, "system:node:n1", &["10.0.0.1"], &[]);
    assert!(serving_approval(&someone, &nodes).is_none());
    let no_group = serving_csr(
        "system:node:n1",
        &["system:authenticated"],
        "system:node:n1",
        &["10.0.0.1"],
        &[],
    );
    assert!(serving_approval(&no_group, &nodes).is_none());
}
