//! The X.509 side of the `certificates.k8s.io` API, shared by validation and the signing
//! controller: reading PEM as Go's `encoding/pem` does ([`pem_blocks`]), parsing a
//! CertificateSigningRequest's `spec.request` as upstream's `ParseCSR` does ([`parse_csr`]),
//! and the rules of the built-in kubelet signers from `pkg/apis/certificates/helpers.go`
//! ([`validate_kubelet_serving_csr`], [`validate_kubelet_client_csr`]).

use std::collections::BTreeSet;
use std::net::IpAddr;

use base64::Engine as _;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509CertificationRequest};

/// Signs serving certificates of kubelets (`kubernetes.io/kubelet-serving`).
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// Signs client certificates kubelets present to the API server.
pub const KUBE_APISERVER_CLIENT_KUBELET_SIGNER: &str =
    "kubernetes.io/kube-apiserver-client-kubelet";
/// Signs client certificates for the API server.
pub const KUBE_APISERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// The v1beta1-only signer, refused by the v1 API.
pub const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";

/// The `spec.usages` values upstream accepts (`allValidUsages`), sorted as its error lists them.
pub const KEY_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// One PEM block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The type after `BEGIN` (`CERTIFICATE REQUEST`).
    pub label: String,
    /// Whether the block carries `Key: value` headers.
    pub has_headers: bool,
    /// The decoded bytes.
    pub der: Vec<u8>,
}

/// The PEM blocks of `data` in order, as repeated `pem.Decode` calls find them: text outside
/// blocks is skipped, and so is a block whose body is not valid base64 or whose `END` line
/// does not match.
pub fn pem_blocks(data: &[u8]) -> Vec<PemBlock> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.lines().map(str::trim_end);
    let mut blocks = Vec::new();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut has_headers = false;
        let mut in_headers = true;
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            if in_headers && l.contains(':') {
                has_headers = true;
                continue;
            }
            in_headers = false;
            body.push_str(l.trim());
        }
        if !closed {
            break;
        }
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
            blocks.push(PemBlock {
                label: label.to_string(),
                has_headers,
                der,
            });
        }
    }
    blocks
}

/// The public key type of a request (what decides its allowed usages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// `rsaEncryption`.
    Rsa,
    /// `id-ecPublicKey`.
    Ecdsa,
    /// `id-Ed25519`.
    Ed25519,
    /// Anything else.
    Other,
}

/// A parsed PKCS#10 request: what the signer rules and the signing policy look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    /// The request's DER (for the signature check).
    pub der: Vec<u8>,
    /// The subject's common name.
    pub common_name: String,
    /// The subject's organizations, in order.
    pub organizations: Vec<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// E-mail subject alternative names.
    pub email_addresses: Vec<String>,
    /// URI subject alternative names.
    pub uris: Vec<String>,
    /// The requested key's `SubjectPublicKeyInfo` DER.
    pub public_key: Vec<u8>,
    /// The requested key's type.
    pub key_algorithm: KeyAlgorithm,
}

/// Why a request could not be read or verified (messages as Go's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// The first PEM block is missing or not a `CERTIFICATE REQUEST`.
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotARequest,
    /// The DER is not a PKCS#10 request.
    #[error("x509: malformed certificate request")]
    Malformed,
    /// The request's signature does not verify with its own key.
    #[error("{0}")]
    Signature(&'static str),
}

/// Upstream `ParseCSR`: the first PEM block must be a `CERTIFICATE REQUEST` holding a
/// PKCS#10 request. The signature is not checked (see [`CertificateRequest::check_signature`]).
pub fn parse_csr(pem: &[u8]) -> Result<CertificateRequest, CsrError> {
    let block = pem_blocks(pem)
        .into_iter()
        .next()
        .filter(|b| b.label == "CERTIFICATE REQUEST")
        .ok_or(CsrError::NotARequest)?;
    parse_csr_der(block.der)
}

fn parse_csr_der(der: Vec<u8>) -> Result<CertificateRequest, CsrError> {
    let (rest, req) = X509CertificationRequest::from_der(&der).map_err(|_| CsrError::Malformed)?;
    if !rest.is_empty() {
        return Err(CsrError::Malformed);
    }
    let info = &req.certification_request_info;
    let strings = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        it.filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let common_name = strings(&mut info.subject.iter_common_name())
        .into_iter()
        .next()
        .unwrap_or_default();
    let organizations = strings(&mut info.subject.iter_organization());
    let (mut dns_names, mut ip_addresses, mut email_addresses, mut uris) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ext in req.requested_extensions().into_iter().flatten() {
        let ParsedExtension::SubjectAlternativeName(san) = ext else {
            continue;
        };
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                GeneralName::RFC822Name(e) => email_addresses.push(e.to_string()),
                GeneralName::URI(u) => uris.push(u.to_string()),
                GeneralName::IPAddress(b) => ip_addresses.push(ip_from_bytes(b)?),
                _ => {}
            }
        }
    }
    let key_algorithm = match info.subject_pki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(_)) => KeyAlgorithm::Rsa,
        Ok(x509_parser::public_key::PublicKey::EC(_)) => KeyAlgorithm::Ecdsa,
        _ if info.subject_pki.algorithm.algorithm == x509_parser::oid_registry::OID_SIG_ED25519 => {
            KeyAlgorithm::Ed25519
        }
        _ => KeyAlgorithm::Other,
    };
    let public_key = info.subject_pki.raw.to_vec();
    Ok(CertificateRequest {
        common_name,
        organizations,
        dns_names,
        ip_addresses,
        email_addresses,
        uris,
        public_key,
        key_algorithm,
        der,
    })
}

/// An IP subject alternative name: 4 or 16 bytes, as Go's parser requires.
fn ip_from_bytes(b: &[u8]) -> Result<IpAddr, CsrError> {
    if let Ok(v4) = <[u8; 4]>::try_from(b) {
        return Ok(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(b)
        .map(IpAddr::from)
        .map_err(|_| CsrError::Malformed)
}

impl CertificateRequest {
    /// Upstream `CheckSignature`: the request is signed by the key it carries.
    pub fn check_signature(&self) -> Result<(), CsrError> {
        let (_, req) =
            X509CertificationRequest::from_der(&self.der).map_err(|_| CsrError::Malformed)?;
        req.verify_signature().map_err(|_| {
            CsrError::Signature(match self.key_algorithm {
                KeyAlgorithm::Rsa => "crypto/rsa: verification error",
                KeyAlgorithm::Ecdsa => "x509: ECDSA verification failure",
                KeyAlgorithm::Ed25519 => "x509: Ed25519 verification failure",
                KeyAlgorithm::Other => "x509: cannot verify signature: algorithm unimplemented",
            })
        })
    }
}

/// Why a request does not fit a signer (upstream's error texts).
pub type SignerError = String;

fn usage_set(usages: &[String]) -> BTreeSet<&str> {
    usages.iter().map(String::as_str).collect()
}

fn only_system_nodes(req: &CertificateRequest) -> Result<(), SignerError> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    Ok(())
}

fn node_common_name(req: &CertificateRequest) -> Result<(), SignerError> {
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// Upstream `ValidateKubeletServingCSR`: O `system:nodes`, a DNS or IP name and no e-mail or
/// URI ones, usages exactly {digital signature, key encipherment, server auth} (key
/// encipherment may be left out: it means nothing for non-RSA keys), CN `system:node:…`.
pub fn validate_kubelet_serving_csr(
    req: &CertificateRequest,
    usages: &[String],
) -> Result<(), SignerError> {
    only_system_nodes(req)?;
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !req.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let set = usage_set(usages);
    let full = BTreeSet::from(["digital signature", "key encipherment", "server auth"]);
    let no_rsa = BTreeSet::from(["digital signature", "server auth"]);
    if set != full && set != no_rsa {
        return Err("usages did not match [digital signature key encipherment server auth]".into());
    }
    node_common_name(req)
}

/// Upstream `ValidateKubeletClientCSR`: O `system:nodes`, no subject alternative names at all,
/// CN `system:node:…`, usages exactly {digital signature, key encipherment, client auth} (key
/// encipherment may be left out).
pub fn validate_kubelet_client_csr(
    req: &CertificateRequest,
    usages: &[String],
) -> Result<(), SignerError> {
    only_system_nodes(req)?;
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if !req.email_addresses.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.ip_addresses.is_empty() {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    node_common_name(req)?;
    let set = usage_set(usages);
    let full = BTreeSet::from(["client auth", "digital signature", "key encipherment"]);
    let no_rsa = BTreeSet::from(["client auth", "digital signature"]);
    if set != full && set != no_rsa {
        return Err("usages did not match [client auth digital signature key encipherment]".into());
    }
    Ok(())
}

/// Upstream `validateCertificate` of `status.certificate`: one or more `CERTIFICATE` blocks
/// without headers, each parsing as X.509 (empty is fine).
pub fn validate_certificate_pem(pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    let blocks = pem_blocks(pem);
    if blocks.is_empty() {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    for b in blocks {
        if b.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {}",
                crate::status::go_quote(&b.label)
            ));
        }
        if b.has_headers {
            return Err("no PEM block headers are permitted".into());
        }
        match x509_parser::parse_x509_certificate(&b.der) {
            Ok(([], _)) => {}
            _ => return Err("x509: malformed certificate".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests;
