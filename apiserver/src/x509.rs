//! x509 client-certificate authentication, as kube-apiserver does it: the TLS layer *requests*
//! a client certificate (advertising the cluster CA as the acceptable issuer) but lets every
//! client through, certificate or not, and accepts any certificate whose holder proves
//! possession of its key ([`RequestClientCert`], Go's `tls.RequestClientCert`). The
//! certificate is judged per request by [`X509Authenticator`] (upstream
//! `staging/src/k8s.io/apiserver/pkg/authentication/request/x509`): the chain must verify
//! against the cluster CA with the client-auth usage at the time of the request; the user is
//! the subject's common name, the groups its organizations (`CommonNameUserConversion`). An
//! expired or foreign certificate is therefore a 401 (after the bearer-token authenticators
//! had their turn, as upstream's union authenticator does), not a handshake failure.
//!
//! Start at [`X509Authenticator::authenticate`].

use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::tls::{ClusterCa, TlsError};
use crate::user::UserInfo;

/// The group every authenticated user is in (upstream `user.AllAuthenticated`).
pub const ALL_AUTHENTICATED: &str = "system:authenticated";

/// The most certificates of a client chain looked at (a leaf and a few intermediates).
const MAX_CHAIN: usize = 8;

/// The verifier of the cluster CA (client-auth usage, validity, signatures), used in full by
/// the authenticator and for its hints and handshake signatures by the TLS layer.
fn webpki_verifier(ca: &ClusterCa) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(ca.roots()?), provider)
        .build()
        .map_err(|e| TlsError::Signing(format!("client certificate verifier: {e}")))
}

/// The TLS side: asks for a client certificate issued by the cluster CA, never requires one,
/// and leaves the judgement of the certificate to [`X509Authenticator`]; the handshake still
/// proves the client holds the certificate's key.
#[derive(Debug)]
pub struct RequestClientCert {
    inner: Arc<dyn ClientCertVerifier>,
}

impl RequestClientCert {
    /// The verifier offering client authentication by `ca`.
    pub fn new(ca: &ClusterCa) -> Result<RequestClientCert, TlsError> {
        Ok(RequestClientCert {
            inner: webpki_verifier(ca)?,
        })
    }
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Judged per request by `X509Authenticator` (a bad certificate is a 401 there).
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The request-time side: who a verified client certificate names.
#[derive(Debug, Clone)]
pub struct X509Authenticator {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl X509Authenticator {
    /// Verifies against `ca`.
    pub fn new(ca: &ClusterCa) -> Result<X509Authenticator, TlsError> {
        Ok(X509Authenticator {
            verifier: webpki_verifier(ca)?,
        })
    }

    /// The user of the connection's peer `chain` (leaf first) at `now`: `Ok(None)` without a
    /// certificate or with an empty common name (upstream: not authenticated, no error), an
    /// error when the chain does not verify (upstream logs it; the request is a 401 unless a
    /// token authenticates it).
    pub fn authenticate(
        &self,
        chain: &[CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<Option<UserInfo>, String> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Ok(None);
        };
        let intermediates = &rest[..rest.len().min(MAX_CHAIN)];
        self.verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(|e| format!("verifying certificate failed: {e}"))?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf)
            .map_err(|e| format!("parsing certificate: {e}"))?;
        let subject = cert.subject();
        // Go's pkix.Name keeps the last CommonName of the subject.
        let Some(cn) = subject
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .last()
            .filter(|cn| !cn.is_empty())
        else {
            return Ok(None);
        };
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .map(str::to_string)
            .collect();
        if !groups.iter().any(|g| g == ALL_AUTHENTICATED) {
            groups.push(ALL_AUTHENTICATED.to_string());
        }
        Ok(Some(UserInfo {
            name: cn.to_string(),
            uid: String::new(),
            groups,
            extra: Default::default(),
        }))
    }
}

/// A client key and certificate signed by `ca` for user `name` in `groups` (CN and O values),
/// valid for `ttl` (`paddock user add`, and the tests). Returns (key PEM, certificate PEM).
pub fn issue_client_certificate(
    ca: &ClusterCa,
    name: &str,
    groups: &[String],
    ttl: std::time::Duration,
) -> Result<(String, String), TlsError> {
    use rcgen::{
        CertificateParams, DistinguishedName as Dn, DnType, ExtendedKeyUsagePurpose, KeyPair,
        KeyUsagePurpose,
    };
    if name.is_empty() {
        return Err(TlsError::Signing("the user name must not be empty".into()));
    }
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut dn = Dn::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let der = ca.sign_for_subject(params, &key, ttl, name, groups)?;
    Ok((key.serialize_pem(), pem_encode("CERTIFICATE", &der)))
}

/// PEM text of one DER object.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn common_name_and_organizations() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::load_or_create(dir.path()).unwrap();
        let (_, cert) = issue_client_certificate(
            &ca,
            "jane",
            &["dev".into(), "ops".into()],
            std::time::Duration::from_secs(3600),
        )
        .unwrap();
        let auth = X509Authenticator::new(&ca).unwrap();
        let user = auth
            .authenticate(&[der(&cert)], UnixTime::now())
            .unwrap()
            .unwrap();
        assert_eq!(user.name, "jane");
        assert_eq!(user.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(auth.authenticate(&[], UnixTime::now()).unwrap(), None);
    }

    #[test]
    fn expired_or_foreign_certificates_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClusterCa::load_or_create(dir.path()).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = ClusterCa::load_or_create(other_dir.path()).unwrap();
        let auth = X509Authenticator::new(&ca).unwrap();
        let (_, foreign) =
            issue_client_certificate(&other, "eve", &[], std::time::Duration::from_secs(3600))
                .unwrap();
        let err = auth
            .authenticate(&[der(&foreign)], UnixTime::now())
            .unwrap_err();
        assert!(err.contains("verifying certificate failed"), "{err}");
        let (_, cert) =
            issue_client_certificate(&ca, "jane", &[], std::time::Duration::from_secs(3600))
                .unwrap();
        let later = UnixTime::since_unix_epoch(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                + std::time::Duration::from_secs(2 * 3600),
        );
        let err = auth.authenticate(&[der(&cert)], later).unwrap_err();
        assert!(err.contains("xpired"), "{err}");
        // A serving certificate (no client-auth usage) is not a client certificate.
        let serving = crate::tls::Credentials::load_or_create(dir.path(), &["localhost".into()])
            .unwrap()
            .serving
            .cert_der;
        assert!(auth.authenticate(&[serving], UnixTime::now()).is_err());
    }
}
