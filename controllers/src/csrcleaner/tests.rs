//! Which requests the cleaner deletes, and a pass over a registry.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::{Value, json};

use super::*;

fn b64(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A certificate PEM ending `ends_in` from now (negative: ended).
fn certificate(ends_in: SignedDuration) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["n".into()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(2);
    params.not_after = now + time::Duration::seconds(ends_in.as_secs());
    params.self_signed(&key).unwrap().pem()
}

/// A kubelet client certificate request (PEM).
fn request() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:n");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn ago(d: SignedDuration) -> String {
    api::time::rfc3339(api::time::now() - d)
}

fn csr(name: &str, created: SignedDuration, conditions: Value, cert: Option<&str>) -> Value {
    let mut status = json!({});
    if !conditions.is_null() {
        status["conditions"] = conditions;
    }
    if let Some(c) = cert {
        status["certificate"] = json!(b64(c.as_bytes()));
    }
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": name, "creationTimestamp": ago(created)},
        "spec": {"request": b64(b"x"), "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["client auth"]},
        "status": status})
}

fn cond(t: &str, updated: SignedDuration) -> Value {
    json!([{"type": t, "status": "True", "lastUpdateTime": ago(updated)}])
}

#[test]
fn upstreams_deadlines() {
    let minutes = SignedDuration::from_mins;
    let hours = SignedDuration::from_hours;
    let valid = certificate(hours(24));
    let ended = certificate(minutes(-1));
    let cases = [
        // Approved and issued: an hour after the approval.
        (
            "fresh-approved",
            csr("a", minutes(1), cond("Approved", minutes(1)), Some(&valid)),
            None,
        ),
        (
            "old-approved",
            csr("a", hours(2), cond("Approved", minutes(61)), Some(&valid)),
            Some("more than 1h0m0s old and approved"),
        ),
        // Approved but not yet issued: kept (the signer may still act).
        (
            "approved-unsigned",
            csr("a", hours(2), cond("Approved", hours(2)), None),
            None,
        ),
        (
            "denied",
            csr("a", hours(2), cond("Denied", minutes(61)), None),
            Some("more than 1h0m0s old and denied"),
        ),
        (
            "fresh-denied",
            csr("a", hours(2), cond("Denied", minutes(59)), None),
            None,
        ),
        (
            "failed",
            csr("a", hours(2), cond("Failed", minutes(61)), None),
            Some("more than 1h0m0s old and failed"),
        ),
        ("pending", csr("a", hours(23), Value::Null, None), None),
        (
            "old-pending",
            csr("a", hours(25), Value::Null, None),
            Some("more than 24h0m0s old and unhandled"),
        ),
        // A certificate that has ended: at once.
        (
            "expired",
            csr("a", minutes(2), cond("Approved", minutes(2)), Some(&ended)),
            Some("the associated certificate is expired"),
        ),
    ];
    let now = api::time::now();
    for (what, obj, want) in cases {
        let c: CertificateSigningRequest = serde_json::from_value(obj).unwrap();
        assert_eq!(should_delete(&c, now), want, "{what}");
    }
}

#[tokio::test]
async fn a_pass_deletes_what_is_due_and_keeps_the_rest() {
    let registry = crate::testutil::registry_with_namespace("default").await;
    let cluster = crate::testutil::cluster(&registry);
    let info = typed::info::<CertificateSigningRequest>();
    let ended = certificate(SignedDuration::from_mins(-1));
    let valid = certificate(SignedDuration::from_hours(24));
    for (name, cert) in [("ended", &ended), ("valid", &valid)] {
        let mut obj = csr(name, SignedDuration::ZERO, Value::Null, None);
        obj["spec"]["request"] = json!(b64(request().as_bytes()));
        obj["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("creationTimestamp");
        obj.as_object_mut().unwrap().remove("status");
        cluster.create(info, "", obj).await.unwrap();
        let mut got = (*cluster.get(info, "", name).await.unwrap()).clone();
        got["status"] = json!({"conditions": [{"type": "Approved", "status": "True",
            "reason": "Test"}]});
        cluster
            .update(info, "", name, got, crate::cluster::Subresource::Approval)
            .await
            .unwrap();
        let mut got = (*cluster.get(info, "", name).await.unwrap()).clone();
        got["status"]["certificate"] = json!(b64(cert.as_bytes()));
        cluster
            .update(info, "", name, got, crate::cluster::Subresource::Status)
            .await
            .unwrap();
    }
    clean(&cluster).await;
    assert_eq!(cluster.get(info, "", "ended").await.unwrap_err().code, 404);
    assert!(cluster.get(info, "", "valid").await.is_ok());
}
