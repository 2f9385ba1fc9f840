//! TLS for the HTTPS listener: key pairs from `kubernetes.io/tls` Secrets
//! ([`certified_key_from_secret`]: `tls.crt` chain and `tls.key`, the key checked against the
//! certificate), the certificate chosen by SNI from the current table ([`SniResolver`]), and a
//! self-signed default certificate for a name no Ingress has a usable Secret for (as
//! ingress-nginx's "Fake Certificate"). ALPN offers `h2` and `http/1.1`.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Router;
use crate::matching::normalize_host;

/// The largest PEM accepted per Secret field (a long chain is a few tens of KiB).
const MAX_PEM: usize = 1024 * 1024;

/// The key pair of a `kubernetes.io/tls` Secret, or why it is unusable.
pub fn certified_key_from_secret(secret: &Secret) -> Result<CertifiedKey, String> {
    let data = secret.data.as_ref();
    let field = |name: &str| {
        data.and_then(|d| d.get(name))
            .map(|b| b.0.clone())
            .ok_or_else(|| format!("no {name}"))
    };
    certified_key_from_pem(&field("tls.crt")?, &field("tls.key")?)
}

/// A key pair from PEM: the certificate chain (end entity first) and its private key.
pub fn certified_key_from_pem(cert: &[u8], key: &[u8]) -> Result<CertifiedKey, String> {
    if cert.len() > MAX_PEM || key.len() > MAX_PEM {
        return Err("too large".into());
    }
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls.crt: {e}"))?;
    if chain.is_empty() {
        return Err("tls.crt holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("tls.key: {e}"))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| format!("tls.key: {e}"))
}

/// A self-signed certificate for names no Secret covers.
pub fn default_certificate() -> Result<CertifiedKey, crate::Error> {
    let ck = rcgen::generate_simple_self_signed(vec!["ingress.local".to_string()])
        .map_err(|e| crate::Error::Tls(e.to_string()))?;
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
        .map_err(|e| crate::Error::Tls(e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(vec![ck.cert.der().clone()], key, &provider)
        .map_err(|e| crate::Error::Tls(e.to_string()))
}

/// Chooses the certificate by SNI from the router's current table.
#[derive(Debug)]
pub struct SniResolver {
    router: Arc<Router>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    /// A resolver over `router` falling back to `default`.
    pub fn new(router: Arc<Router>, default: Arc<CertifiedKey>) -> SniResolver {
        SniResolver { router, default }
    }

    /// The certificate for server name `sni` (`None`: the client sent none).
    pub fn choose(&self, sni: Option<&str>) -> Arc<CertifiedKey> {
        sni.and_then(|s| normalize_host(s).ok())
            .and_then(|h| self.router.table().cert(&h))
            .unwrap_or_else(|| self.default.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.choose(hello.server_name()))
    }
}

/// The HTTPS listener's server configuration.
pub fn server_config(router: Arc<Router>) -> Result<Arc<rustls::ServerConfig>, crate::Error> {
    let default = Arc::new(default_certificate()?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::Error::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver::new(router, default)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
