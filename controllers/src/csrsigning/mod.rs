//! The CSR signing controller (upstream `pkg/controller/certificates/signer` with its
//! `authority` policy): signs approved CertificateSigningRequests of the built-in kubelet
//! signers with the cluster CA.
//!
//! A request is handled once it is Approved (and not Denied), not Failed and not yet signed.
//! Its signer decides the rules ([`Signer`]): `kubernetes.io/kubelet-serving` requests must
//! pass `ValidateKubeletServingCSR`, `kubernetes.io/kube-apiserver-client-kubelet` ones
//! `ValidateKubeletClientCSR`; a request that does not gets a `Failed` condition (reason
//! `SignerValidationFailure`) instead of a certificate. Other signers are left to whoever
//! serves them. The certificate carries the request's subject (common name and
//! organizations, the attributes the kubelet rules govern) and subject alternative names, the
//! usages of `spec.usages` (not those the request asks for), no other extension, and lives
//! for the signer's certificate lifetime (kube-controller-manager's
//! `--cluster-signing-duration`, 1 year by default), or `spec.expirationSeconds` when that is
//! shorter (but at least 10 minutes).

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use api::certificates::{self, CertificateRequest};
use api::registry::ResourceInfo;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyUsagePurpose, SanType,
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::Change;
use crate::{Error, typed};

/// Concurrent signings.
const WORKERS: usize = 2;
/// The shortest certificate the signer issues (twice its backdate, as upstream).
const MIN_DURATION: Duration = Duration::from_secs(10 * 60);

/// The lifetime of the certificates the signer issues by default (kube-controller-manager's
/// `--cluster-signing-duration` default).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The certificate authority that signs (upstream `authority.CertificateAuthority`): the
/// cluster CA, which the binary owns. It fills validity, serial and issuer; `params` carry
/// the subject, names and usages. Any `Fn` of the same shape is one.
pub trait Authority: Send + Sync {
    /// A certificate for `public_key` with `params`, valid for `ttl`.
    fn sign(
        &self,
        params: CertificateParams,
        public_key: &rcgen::SubjectPublicKeyInfo,
        ttl: Duration,
    ) -> Result<rcgen::Certificate, String>;
}

impl<F> Authority for F
where
    F: Fn(
            CertificateParams,
            &rcgen::SubjectPublicKeyInfo,
            Duration,
        ) -> Result<rcgen::Certificate, String>
        + Send
        + Sync,
{
    fn sign(
        &self,
        params: CertificateParams,
        public_key: &rcgen::SubjectPublicKeyInfo,
        ttl: Duration,
    ) -> Result<rcgen::Certificate, String> {
        self(params, public_key, ttl)
    }
}

/// A built-in signer this controller serves, with upstream's rules for its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// `kubernetes.io/kubelet-serving`: kubelets' serving certificates.
    KubeletServing,
    /// `kubernetes.io/kube-apiserver-client-kubelet`: kubelets' client certificates.
    KubeletClient,
}

impl Signer {
    /// The signer a request names, if this controller serves it.
    pub fn of(signer_name: &str) -> Option<Signer> {
        match signer_name {
            certificates::KUBELET_SERVING_SIGNER => Some(Signer::KubeletServing),
            certificates::KUBE_APISERVER_CLIENT_KUBELET_SIGNER => Some(Signer::KubeletClient),
            _ => None,
        }
    }

    /// Upstream's `isRequestForSignerFn`: whether the request fits the signer.
    pub fn validate(self, req: &CertificateRequest, usages: &[String]) -> Result<(), String> {
        match self {
            Signer::KubeletServing => certificates::validate_kubelet_serving_csr(req, usages),
            Signer::KubeletClient => certificates::validate_kubelet_client_csr(req, usages),
        }
    }
}

fn csrs() -> &'static ResourceInfo {
    typed::info::<CertificateSigningRequest>()
}

/// Runs the signer until `shutdown` is cancelled; `cert_ttl` is the lifetime of what it issues
/// (`--cluster-signing-duration`).
pub async fn run(
    cluster: ClusterRef,
    ca: Arc<dyn Authority>,
    cert_ttl: Duration,
    shutdown: CancellationToken,
) {
    let controller = Arc::new(Controller {
        cluster: cluster.clone(),
        ca,
        cert_ttl,
        queue: WorkQueue::controller_default(),
    });
    crate::queue::drive(&cluster, controller, &[csrs()], WORKERS, &shutdown).await;
}

/// The controller's state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    ca: Arc<dyn Authority>,
    /// `--cluster-signing-duration`.
    cert_ttl: Duration,
    queue: WorkQueue<String>,
}

fn has_condition(csr: &CertificateSigningRequest, t: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == t && c.status == "True"))
}

/// Approved, not denied, not failed, not signed, for a signer served here.
fn wants_signing(csr: &CertificateSigningRequest) -> bool {
    has_condition(csr, "Approved")
        && !has_condition(csr, "Denied")
        && !has_condition(csr, "Failed")
        && csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_none_or(|c| c.0.is_empty())
        && Signer::of(&csr.spec.signer_name).is_some()
}

/// Whether the stored object `obj` (JSON, inside a write) still wants signing.
fn stored_wants_signing(obj: &Value) -> bool {
    typed::decode::<CertificateSigningRequest>(obj).is_ok_and(|c| wants_signing(&c))
}

impl Reconciler for Controller {
    type Key = String;

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, name: String) -> Result<Option<Duration>, Error> {
        let Some(csr) = typed::get::<CertificateSigningRequest>(&self.cluster, "", &name).await?
        else {
            return Ok(None);
        };
        if wants_signing(&csr) {
            self.sign(&csr).await?;
        }
        Ok(None)
    }

    fn observe(&self, change: Change) {
        if let Some(csr) = typed::upserted::<CertificateSigningRequest>(&change)
            && wants_signing(&csr)
        {
            self.queue.add(csr.metadata.name.unwrap_or_default());
        }
    }
}

impl Controller {
    /// Upstream `signer.handle` for one approved request.
    async fn sign(&self, csr: &CertificateSigningRequest) -> Result<(), Error> {
        let Some(signer) = Signer::of(&csr.spec.signer_name) else {
            return Ok(());
        };
        let name = csr.metadata.name.as_deref().unwrap_or("");
        let usages = csr.spec.usages.clone().unwrap_or_default();
        let req = match certificates::parse_csr(&csr.spec.request.0) {
            Ok(r) => r,
            // Validation let it in, so this is not the request's fault: retry.
            Err(e) => {
                return Err(Error::Signing(format!("unable to parse csr {name:?}: {e}")));
            }
        };
        let outcome = match signer.validate(&req, &usages) {
            Err(reason) => Outcome::Failed(reason),
            Ok(()) => {
                let ttl = duration(csr.spec.expiration_seconds.map(i64::from), self.cert_ttl);
                let pem = issue(&*self.ca, &req, &usages, ttl).map_err(Error::Signing)?;
                Outcome::Signed(pem)
            }
        };
        let done = typed::edit(&self.cluster, csr, Subresource::Status, |obj| {
            if !stored_wants_signing(obj) {
                return false;
            }
            match &outcome {
                Outcome::Signed(pem) => {
                    obj["status"]["certificate"] = json!(encode_b64(pem.as_bytes()));
                }
                Outcome::Failed(reason) => {
                    let failed = json!({
                        "type": "Failed",
                        "status": "True",
                        "reason": "SignerValidationFailure",
                        "message": reason,
                        "lastUpdateTime": api::time::rfc3339(api::time::now()),
                    });
                    match obj["status"]["conditions"].as_array_mut() {
                        Some(list) => list.push(failed),
                        None => obj["status"]["conditions"] = json!([failed]),
                    }
                }
            }
            true
        })
        .await?;
        if done.is_some() {
            match &outcome {
                Outcome::Signed(_) => tracing::info!(csr = name, "signed"),
                Outcome::Failed(reason) => tracing::info!(csr = name, %reason, "refused"),
            }
        }
        Ok(())
    }
}

/// What signing a request came to.
enum Outcome {
    /// The certificate, PEM.
    Signed(String),
    /// Why the signer refused it.
    Failed(String),
}

/// Upstream `signer.duration`: `cert_ttl`, or the requested duration when shorter (but not
/// under 10 minutes).
fn duration(expiration_seconds: Option<i64>, cert_ttl: Duration) -> Duration {
    let Some(s) = expiration_seconds else {
        return cert_ttl;
    };
    match Duration::from_secs(u64::try_from(s).unwrap_or(0)) {
        requested if requested > cert_ttl => cert_ttl,
        requested if requested < MIN_DURATION => MIN_DURATION,
        requested => requested,
    }
}

/// Upstream `CertificateAuthority.Sign` with the permissive policy: the request's subject and
/// names, `usages`, valid for `ttl`; returns the certificate as PEM.
pub fn issue(
    ca: &dyn Authority,
    req: &CertificateRequest,
    usages: &[String],
    ttl: Duration,
) -> Result<String, String> {
    req.check_signature()
        .map_err(|e| format!("unable to verify certificate request signature: {e}"))?;
    let (key_usages, extended) = key_usages(usages)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in &req.organizations {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    if !req.common_name.is_empty() {
        dn.push(DnType::CommonName, req.common_name.as_str());
    }
    params.distinguished_name = dn;
    let ia5 = |s: &str| {
        rcgen::string::Ia5String::try_from(s)
            .map_err(|e| format!("subject alternative name {s:?}: {e}"))
    };
    for d in &req.dns_names {
        params.subject_alt_names.push(SanType::DnsName(ia5(d)?));
    }
    for ip in &req.ip_addresses {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for e in &req.email_addresses {
        params.subject_alt_names.push(SanType::Rfc822Name(ia5(e)?));
    }
    for u in &req.uris {
        params.subject_alt_names.push(SanType::URI(ia5(u)?));
    }
    params.key_usages = key_usages;
    params.extended_key_usages = extended;
    let key = rcgen::SubjectPublicKeyInfo::from_der(&req.public_key)
        .map_err(|e| format!("unsupported public key: {e}"))?;
    ca.sign(params, &key, ttl)
        .map(|c| c.pem())
        .map_err(|e| format!("failed to sign certificate: {e}"))
}

/// Upstream `keyUsagesFromStrings`: `spec.usages` as key usages and extended key usages
/// (the latter in Go's `ExtKeyUsage` order, without repeats).
fn key_usages(
    usages: &[String],
) -> Result<(Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>), String> {
    let mut ku = Vec::new();
    let mut eku: Vec<(u8, ExtendedKeyUsagePurpose)> = Vec::new();
    let mut unknown = Vec::new();
    for u in usages {
        let k = match u.as_str() {
            "signing" | "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
            "content commitment" => Some(KeyUsagePurpose::ContentCommitment),
            "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
            "key agreement" => Some(KeyUsagePurpose::KeyAgreement),
            "data encipherment" => Some(KeyUsagePurpose::DataEncipherment),
            "cert sign" => Some(KeyUsagePurpose::KeyCertSign),
            "crl sign" => Some(KeyUsagePurpose::CrlSign),
            "encipher only" => Some(KeyUsagePurpose::EncipherOnly),
            "decipher only" => Some(KeyUsagePurpose::DecipherOnly),
            _ => None,
        };
        if let Some(k) = k {
            if !ku.contains(&k) {
                ku.push(k);
            }
            continue;
        }
        let other = |oid: &[u64]| ExtendedKeyUsagePurpose::Other(oid.to_vec());
        let e = match u.as_str() {
            "any" => (0, ExtendedKeyUsagePurpose::Any),
            "server auth" => (1, ExtendedKeyUsagePurpose::ServerAuth),
            "client auth" => (2, ExtendedKeyUsagePurpose::ClientAuth),
            "code signing" => (3, ExtendedKeyUsagePurpose::CodeSigning),
            "email protection" | "s/mime" => (4, ExtendedKeyUsagePurpose::EmailProtection),
            "ipsec end system" => (5, other(&[1, 3, 6, 1, 5, 5, 7, 3, 5])),
            "ipsec tunnel" => (6, other(&[1, 3, 6, 1, 5, 5, 7, 3, 6])),
            "ipsec user" => (7, other(&[1, 3, 6, 1, 5, 5, 7, 3, 7])),
            "timestamping" => (8, ExtendedKeyUsagePurpose::TimeStamping),
            "ocsp signing" => (9, ExtendedKeyUsagePurpose::OcspSigning),
            "microsoft sgc" => (10, other(&[1, 3, 6, 1, 4, 1, 311, 10, 3, 3])),
            "netscape sgc" => (11, other(&[2, 16, 840, 1, 113_730, 4, 1])),
            _ => {
                unknown.push(api::status::go_quote(u));
                continue;
            }
        };
        if !eku.iter().any(|(n, _)| *n == e.0) {
            eku.push(e);
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unrecognized usage values: [{}]",
            unknown.join(" ")
        ));
    }
    eku.sort_by_key(|(n, _)| *n);
    Ok((ku, eku.into_iter().map(|(_, e)| e).collect()))
}

fn encode_b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
