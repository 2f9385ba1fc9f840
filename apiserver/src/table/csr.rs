//! `certificatesigningrequests`: upstream `printCertificateSigningRequest`.

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, human_duration, items, name, s};

/// Upstream's printer takes these from the certificates/v1beta1 types' docs.
pub(super) const COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "Requested signer for the request. It is a qualified name in the form: `scope-hostname.io/name`. If empty, it will be defaulted:\n 1. If it's a kubelet client certificate, it is assigned\n    \"kubernetes.io/kube-apiserver-client-kubelet\".\n 2. If it's a kubelet serving certificate, it is assigned\n    \"kubernetes.io/kubelet-serving\".\n 3. Otherwise, it is assigned \"kubernetes.io/legacy-unknown\".\nDistribution of trust for signers happens out of band. You can select on this field using `spec.signerName`.",
    ),
    col("Requestor", "string", "Base64-encoded PKCS#10 CSR data"),
    col(
        "RequestedDuration",
        "string",
        "expirationSeconds is the requested duration of validity of the issued certificate. The certificate signer may issue a certificate with a different validity duration so a client must check the delta between the notBefore and and notAfter fields in the issued certificate to determine the actual duration.\n\nThe v1.22+ in-tree implementations of the well-known Kubernetes signers will honor this field as long as the requested duration is not greater than the maximum duration they will honor per the --cluster-signing-duration CLI flag to the Kubernetes controller manager.\n\nCertificate signers may not honor this field for various reasons:\n\n  1. Old signer that is unaware of the field (such as the in-tree\n     implementations prior to v1.22)\n  2. Signer whose configured maximum is shorter than the requested duration\n  3. Signer whose configured minimum is longer than the requested duration\n\nThe minimum valid value for expirationSeconds is 600, i.e. 10 minutes.",
    ),
    col(
        "Condition",
        "string",
        "Conditions applied to the request, such as approval or denial.",
    ),
];

/// Upstream `printCertificateSigningRequest`: signer, requester, requested duration and
/// `extractCSRStatus` (Denied over Approved over Pending, then `,Failed`, `,Issued`).
pub(super) fn row(p: &Rows, csr: &Value) -> Vec<Value> {
    let spec = &csr["spec"];
    let signer = match s(&spec["signerName"]) {
        "" => "<none>",
        signer => signer,
    };
    let duration = match spec["expirationSeconds"].as_i64() {
        Some(secs) => human_duration(i128::from(secs) * 1_000_000_000),
        None => "<none>".to_string(),
    };
    let has = |t: &str| {
        items(&csr["status"]["conditions"])
            .iter()
            .any(|c| s(&c["type"]) == t)
    };
    let mut condition = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        condition.push_str(",Failed");
    }
    if !s(&csr["status"]["certificate"]).is_empty() {
        condition.push_str(",Issued");
    }
    vec![
        name(csr).into(),
        p.age(csr).into(),
        signer.into(),
        s(&spec["username"]).into(),
        duration.into(),
        condition.into(),
    ]
}
