//! Credentials kept in the data directory: a self-made CA, a serving certificate signed by it
//! and the admin bearer token. Generated on first start, reused afterwards (the serving
//! certificate is re-issued when the wanted subject alternative names change), keys and
//! token written with mode 0600. Start at [`Credentials::load_or_create`].

use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why credentials could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a credential file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Generating or parsing a key or certificate failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// A stored PEM file is not valid.
    #[error("{path}: invalid PEM: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// rustls refused the key or certificate.
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The CA, serving certificate and token of one data directory.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// PEM of the CA certificate (goes into the kubeconfig).
    pub ca_pem: String,
    /// DER of the serving certificate.
    pub cert_der: CertificateDer<'static>,
    /// PKCS#8 DER of the serving key.
    pub key_der: Vec<u8>,
    /// The admin bearer token.
    pub token: String,
}

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const SERVER_SANS: &str = "server.sans";
const TOKEN: &str = "token";

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `contents` to `path` with mode 0600 (created that way, never world-readable),
/// atomically: through a temporary file of its own (`.NAME.RANDOM.tmp`, so concurrent writers
/// never share one) that is removed again when anything fails — a full disk leaves neither a
/// half-written file nor the temporary one behind.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{:016x}.tmp", rand::rng().random::<u64>()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path)(e)
    })
}

fn read_opt(path: &Path) -> Result<Option<String>, TlsError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// The CA's parameters; identical on every start so that a reloaded CA key can sign again.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "paddock-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A random token of 32 lowercase alphanumerics.
fn new_token() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Credentials {
    /// Loads the credentials from `dir`, creating what is missing. `sans` are the names and
    /// addresses the serving certificate must cover.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Credentials, TlsError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let ca_key_path = dir.join(CA_KEY);
        let ca_cert_path = dir.join(CA_CERT);
        let (ca_key, ca_pem, fresh_ca) = match (read_opt(&ca_key_path)?, read_opt(&ca_cert_path)?) {
            (Some(key), Some(cert)) => (KeyPair::from_pem(&key)?, cert, false),
            _ => {
                let key = KeyPair::generate()?;
                let cert = ca_params().self_signed(&key)?;
                write_private(&ca_key_path, key.serialize_pem().as_bytes())?;
                std::fs::write(&ca_cert_path, cert.pem()).map_err(io_err(&ca_cert_path))?;
                (key, cert.pem(), true)
            }
        };

        let sans_line = sans.join(",");
        let cert_path = dir.join(SERVER_CERT);
        let key_path = dir.join(SERVER_KEY);
        let sans_path = dir.join(SERVER_SANS);
        let stored = (
            read_opt(&cert_path)?,
            read_opt(&key_path)?,
            read_opt(&sans_path)?,
        );
        let (cert_pem, key_pem) = match stored {
            (Some(c), Some(k), Some(s)) if !fresh_ca && s.trim() == sans_line => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let mut params = CertificateParams::new(sans.to_vec())?;
                let mut dn = DistinguishedName::new();
                dn.push(DnType::CommonName, "paddock-apiserver");
                params.distinguished_name = dn;
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params.use_authority_key_identifier_extension = true;
                let issuer = Issuer::new(ca_params(), &ca_key);
                let cert = params.signed_by(&key, &issuer)?;
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                std::fs::write(&cert_path, cert.pem()).map_err(io_err(&cert_path))?;
                std::fs::write(&sans_path, &sans_line).map_err(io_err(&sans_path))?;
                (cert.pem(), key.serialize_pem())
            }
        };
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| TlsError::Pem {
                path: cert_path.display().to_string(),
                message: e.to_string(),
            })?;
        let key_der = KeyPair::from_pem(&key_pem)?.serialize_der();

        let token_path = dir.join(TOKEN);
        let token = match read_opt(&token_path)? {
            Some(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = new_token();
                write_private(&token_path, t.as_bytes())?;
                t
            }
        };
        Ok(Credentials {
            ca_pem,
            cert_der,
            key_der,
            token,
        })
    }

    /// A rustls server configuration offering `h2` and `http/1.1` (exec upgrades need 1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let a = Credentials::load_or_create(dir.path(), &sans).unwrap();
        let b = Credentials::load_or_create(dir.path(), &sans).unwrap();
        assert_eq!(a.token, b.token);
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.cert_der, b.cert_der);
        use std::os::unix::fs::PermissionsExt;
        for f in [CA_KEY, SERVER_KEY, TOKEN] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        // New SANs: new serving cert, same CA and token.
        let c = Credentials::load_or_create(dir.path(), &["10.0.0.1".to_string()]).unwrap();
        assert_eq!(c.ca_pem, a.ca_pem);
        assert_ne!(c.cert_der, a.cert_der);
        assert_eq!(c.token, a.token);
        c.server_config().unwrap();
    }
}
