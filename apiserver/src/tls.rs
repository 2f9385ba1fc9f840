//! Credentials kept in the data directory: the cluster CA ([`ClusterCa`]), the API server's
//! serving certificate, its client certificate for node agents (kubeadm's
//! `apiserver-kubelet-client`: CN `kube-apiserver-kubelet-client`, O `system:masters`) and the
//! admin bearer token. Start at [`Credentials::load_or_create`].
//!
//! Lifetimes are kubeadm's: the CA 10 years with `pathlen:0` (it signs leaves only), made once
//! and then kept (its key keeps signing); leaf certificates one year. A leaf is re-issued at
//! start when it is missing, unreadable, not from this CA, for other names, longer-lived than
//! a year, or within 90 days of expiry (k3s's rule). Every certificate is backdated by five minutes, the clock skew the
//! CSR signer allows (`Backdate` of upstream's signing policy), so a node whose clock is a
//! little behind still accepts it. Keys and the token are written with mode 0600.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

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
    /// The CA cannot sign (expired, or a request it refuses).
    #[error("{0}")]
    Signing(String),
}

/// How long the CA is valid (kubeadm's `CACertificateValidityPeriod`).
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long leaf certificates are valid (kubeadm's `CertificateValidityPeriod`, and the
/// default `--cluster-signing-duration`).
pub const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// How far certificates are backdated (upstream signer's `Backdate`).
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);
/// Certificates shorter than this are not backdated at their end (upstream signer's `Short`).
const SHORT: Duration = Duration::from_secs(8 * 3600);
/// A leaf with less than this left is re-issued at start (k3s).
pub const RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 3600);

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.crt";
const SERVER_KEY: &str = "server.key";
const SERVER_SANS: &str = "server.sans";
const KUBELET_CLIENT_CERT: &str = "apiserver-kubelet-client.crt";
const KUBELET_CLIENT_KEY: &str = "apiserver-kubelet-client.key";
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

fn pem_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A random positive 128-bit serial number (upstream's signer draws from [0, 2^128)).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

/// `now + d` (saturating at the end of time rcgen can encode).
fn plus(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t.checked_add(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
        .unwrap_or(OffsetDateTime::new_utc(
            time::Date::MAX,
            time::Time::MIDNIGHT,
        ))
}

fn minus(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t.checked_sub(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
        .unwrap_or(t)
}

/// The validity window the signer gives a certificate of `ttl` issued `now` by a CA valid until
/// `ca_not_after` (upstream `PermissiveSigningPolicy`): from `now - BACKDATE`; until
/// `now + ttl - BACKDATE` (short certificates: `now + ttl`); never past the CA.
pub fn signing_window(
    now: OffsetDateTime,
    ttl: Duration,
    ca_not_after: OffsetDateTime,
) -> Result<(OffsetDateTime, OffsetDateTime), TlsError> {
    let not_before = minus(now, BACKDATE);
    let mut not_after = if ttl < SHORT {
        plus(now, ttl)
    } else {
        minus(plus(now, ttl), BACKDATE)
    };
    if not_after >= ca_not_after {
        not_after = ca_not_after;
    }
    if not_before >= ca_not_after {
        return Err(TlsError::Signing(format!(
            "the signer has expired: NotAfter={ca_not_after}"
        )));
    }
    if now >= ca_not_after {
        return Err(TlsError::Signing(format!(
            "refusing to sign a certificate that expired in the past: NotAfter={ca_not_after}"
        )));
    }
    Ok((not_before, not_after))
}

/// The cluster CA: its certificate and signing key.
pub struct ClusterCa {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    not_after: OffsetDateTime,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Loads `ca.crt`/`ca.key` from `dir`, or makes a new CA there when either is missing.
    pub fn load_or_create(dir: &Path) -> Result<ClusterCa, TlsError> {
        let key_path = dir.join(CA_KEY);
        let cert_path = dir.join(CA_CERT);
        if let (Some(key), Some(cert)) = (read_opt(&key_path)?, read_opt(&cert_path)?) {
            let key = KeyPair::from_pem(&key)?;
            return ClusterCa::from_parts(&cert_path, cert, key);
        }
        let key = KeyPair::generate()?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "paddock-ca");
        params.distinguished_name = dn;
        // It signs leaf certificates only: no intermediate CA may chain from it.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        params.not_before = minus(now, BACKDATE);
        params.not_after = plus(now, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        write_private(&key_path, key.serialize_pem().as_bytes())?;
        std::fs::write(&cert_path, cert.pem()).map_err(io_err(&cert_path))?;
        ClusterCa::from_parts(&cert_path, cert.pem(), key)
    }

    /// Loads `ca.crt`/`ca.key` from `dir`; `None` when either is missing (never makes one:
    /// what tools run next to a server's data dir use).
    pub fn load(dir: &Path) -> Result<Option<ClusterCa>, TlsError> {
        let key_path = dir.join(CA_KEY);
        let cert_path = dir.join(CA_CERT);
        match (read_opt(&key_path)?, read_opt(&cert_path)?) {
            (Some(key), Some(cert)) => {
                let key = KeyPair::from_pem(&key)?;
                ClusterCa::from_parts(&cert_path, cert, key).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn from_parts(path: &Path, cert_pem: String, key: KeyPair) -> Result<ClusterCa, TlsError> {
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| pem_error(path, e))?;
        let not_after = validity(&cert_der).map_err(|e| pem_error(path, e))?.1;
        Ok(ClusterCa {
            cert_pem,
            cert_der,
            key,
            not_after,
        })
    }

    /// The CA certificate, PEM (what kubeconfigs and nodes trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// When the CA expires.
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// A root store holding this CA alone.
    pub fn roots(&self) -> Result<rustls::RootCertStore, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone())?;
        Ok(roots)
    }

    /// Signs a leaf certificate for `public_key` with `params`' subject, names and usages,
    /// valid for `ttl` by [`signing_window`]; the CA's own constraints (no CA bit, a fresh
    /// serial) override whatever `params` says.
    pub fn sign(
        &self,
        mut params: CertificateParams,
        public_key: &impl PublicKeyData,
        ttl: Duration,
    ) -> Result<rcgen::Certificate, TlsError> {
        let (not_before, not_after) =
            signing_window(OffsetDateTime::now_utc(), ttl, self.not_after)?;
        params.not_before = not_before;
        params.not_after = not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_ca_cert_der(&self.cert_der, &self.key)?;
        Ok(params.signed_by(public_key, &issuer)?)
    }

    /// Like [`ClusterCa::sign`], for a subject of `organizations` (any number: each its own
    /// `O` attribute, which rcgen's distinguished names cannot hold more than one of) and
    /// `common_name`, in Go's `pkix.Name` order (O values, then CN): signs with `params`, then
    /// puts that subject into the to-be-signed certificate and signs it again.
    pub fn sign_for_subject(
        &self,
        params: CertificateParams,
        public_key: &impl PublicKeyData,
        ttl: Duration,
        common_name: &str,
        organizations: &[String],
    ) -> Result<CertificateDer<'static>, TlsError> {
        use rcgen::SigningKey;
        let cert = self.sign(params, public_key, ttl)?;
        let der = cert.der();
        let bad = |m: &str| TlsError::Signing(format!("re-encoding the certificate: {m}"));
        let (_, parsed) =
            x509_parser::parse_x509_certificate(der).map_err(|e| bad(&e.to_string()))?;
        let tbs: &[u8] = parsed.tbs_certificate.as_ref();
        let subject: &[u8] = parsed.tbs_certificate.subject.as_raw();
        // The signature's AlgorithmIdentifier: copied whole from the original.
        let alg_id = sig_alg_identifier(der, tbs.len()).ok_or_else(|| bad("layout"))?;
        let start = subslice_offset(tbs, subject).ok_or_else(|| bad("subject"))?;
        let (body_start, _) = der_header(tbs).ok_or_else(|| bad("tbs header"))?;
        let mut rdns = Vec::new();
        for o in organizations {
            rdns.extend(der_rdn(&[0x55, 0x04, 0x0a], o));
        }
        rdns.extend(der_rdn(&[0x55, 0x04, 0x03], common_name));
        let mut body = Vec::with_capacity(tbs.len() + rdns.len());
        body.extend_from_slice(&tbs[body_start..start]);
        body.extend(der_tlv(0x30, &rdns));
        body.extend_from_slice(&tbs[start + subject.len()..]);
        let new_tbs = der_tlv(0x30, &body);
        let signature = self.key.sign(&new_tbs)?;
        let mut bits = vec![0u8];
        bits.extend(signature);
        let mut outer = new_tbs;
        outer.extend_from_slice(&alg_id);
        outer.extend(der_tlv(0x03, &bits));
        Ok(CertificateDer::from(der_tlv(0x30, &outer)))
    }

    /// Whether `cert_der` was signed by this CA.
    pub fn issued(&self, cert_der: &[u8]) -> bool {
        let Ok((_, ca)) = x509_parser::parse_x509_certificate(&self.cert_der) else {
            return false;
        };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else {
            return false;
        };
        cert.verify_signature(Some(ca.public_key())).is_ok()
    }
}

/// A DER tag-length-value.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// One relative distinguished name: SET { SEQUENCE { OID, UTF8String } }.
fn der_rdn(oid: &[u8], value: &str) -> Vec<u8> {
    let mut atv = der_tlv(0x06, oid);
    atv.extend(der_tlv(0x0c, value.as_bytes()));
    der_tlv(0x31, &der_tlv(0x30, &atv))
}

/// The length of a DER element's header and of its content.
fn der_header(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)?;
    if first < 0x80 {
        return Some((2, usize::from(first)));
    }
    let n = usize::from(first & 0x7f);
    if n == 0 || n > 4 {
        return None;
    }
    let len = der
        .get(2..2 + n)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((2 + n, len))
}

/// Where `part` (a sub-slice of `whole`) starts in it.
fn subslice_offset(whole: &[u8], part: &[u8]) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start + part.len() <= whole.len()).then_some(start)
}

/// The signature AlgorithmIdentifier of a certificate `der` whose TBS is `tbs_len` bytes
/// long: the SEQUENCE right after the TBS.
fn sig_alg_identifier(der: &[u8], tbs_len: usize) -> Option<Vec<u8>> {
    let (outer_header, _) = der_header(der)?;
    let at = outer_header + tbs_len;
    let rest = der.get(at..)?;
    let (h, l) = der_header(rest)?;
    if rest.first() != Some(&0x30) {
        return None;
    }
    Some(rest.get(..h + l)?.to_vec())
}

/// `notBefore` and `notAfter` of a DER certificate.
pub fn validity(der: &[u8]) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    let v = cert.validity();
    Ok((v.not_before.to_datetime(), v.not_after.to_datetime()))
}

/// A leaf key and certificate of the API server (its serving or its client certificate).
#[derive(Clone)]
pub struct Leaf {
    /// DER of the certificate.
    pub cert_der: CertificateDer<'static>,
    /// PKCS#8 DER of the key.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf").finish_non_exhaustive()
    }
}

impl Leaf {
    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()))
    }
}

/// What a leaf certificate is for.
struct LeafSpec<'a> {
    cert: &'a str,
    key: &'a str,
    /// The file recording the names it was made for (re-issued when they change).
    names_file: Option<&'a str>,
    common_name: &'a str,
    organization: Option<&'a str>,
    sans: &'a [String],
    usage: ExtendedKeyUsagePurpose,
}

/// Whether the stored leaf `pem` must be re-issued: unreadable, not this CA's, within
/// [`RENEW_BEFORE`] of its end, or valid for longer than a leaf may be (what older paddock
/// versions issued: 1975 to 4096).
fn needs_renewal(ca: &ClusterCa, pem: &str, now: OffsetDateTime) -> bool {
    let Ok(der) = CertificateDer::from_pem_slice(pem.as_bytes()) else {
        return true;
    };
    if !ca.issued(&der) {
        return true;
    }
    match validity(&der) {
        Ok((not_before, not_after)) => {
            not_after <= plus(now, RENEW_BEFORE)
                || not_after - not_before
                    > time::Duration::try_from(LEAF_VALIDITY).unwrap_or(time::Duration::MAX)
        }
        Err(_) => true,
    }
}

/// Loads the leaf `spec` describes from `dir`, issuing a new one when needed.
fn load_or_issue(dir: &Path, ca: &ClusterCa, spec: &LeafSpec<'_>) -> Result<Leaf, TlsError> {
    let cert_path = dir.join(spec.cert);
    let key_path = dir.join(spec.key);
    let names_path = spec.names_file.map(|f| dir.join(f));
    let names_line = spec.sans.join(",");
    let stored_names = match &names_path {
        Some(p) => read_opt(p)?,
        None => Some(names_line.clone()),
    };
    let now = OffsetDateTime::now_utc();
    let (cert_pem, key_pem) = match (read_opt(&cert_path)?, read_opt(&key_path)?, stored_names) {
        (Some(c), Some(k), Some(n)) if n.trim() == names_line && !needs_renewal(ca, &c, now) => {
            (c, k)
        }
        _ => {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(spec.sans.to_vec())?;
            let mut dn = DistinguishedName::new();
            if let Some(o) = spec.organization {
                dn.push(DnType::OrganizationName, o);
            }
            dn.push(DnType::CommonName, spec.common_name);
            params.distinguished_name = dn;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![spec.usage.clone()];
            let cert = ca.sign(params, &key, LEAF_VALIDITY)?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, cert.pem()).map_err(io_err(&cert_path))?;
            if let Some(p) = &names_path {
                std::fs::write(p, &names_line).map_err(io_err(p))?;
            }
            (cert.pem(), key.serialize_pem())
        }
    };
    let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| pem_error(&cert_path, e))?;
    let key_der = KeyPair::from_pem(&key_pem)?.serialize_der();
    Ok(Leaf { cert_der, key_der })
}

/// The credentials of one data directory.
#[derive(Clone)]
pub struct Credentials {
    /// The cluster CA.
    pub ca: Arc<ClusterCa>,
    /// PEM of the CA certificate (goes into the kubeconfig).
    pub ca_pem: String,
    /// The API server's serving certificate.
    pub serving: Leaf,
    /// The API server's client certificate towards node agents.
    pub kubelet_client: Leaf,
    /// The admin bearer token.
    pub token: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("ca", &self.ca)
            .finish_non_exhaustive()
    }
}

/// A random token of 32 lowercase alphanumerics.
fn new_token() -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// The common name of the API server's client certificate towards node agents (kubeadm's).
pub const KUBELET_CLIENT_CN: &str = "kube-apiserver-kubelet-client";
/// Its organization: the group node agents let in.
pub const KUBELET_CLIENT_GROUP: &str = "system:masters";

impl Credentials {
    /// Loads the credentials from `dir`, creating or renewing what needs it. `sans` are the
    /// names and addresses the serving certificate must cover.
    pub fn load_or_create(dir: &Path, sans: &[String]) -> Result<Credentials, TlsError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let ca = ClusterCa::load_or_create(dir)?;
        let serving = load_or_issue(
            dir,
            &ca,
            &LeafSpec {
                cert: SERVER_CERT,
                key: SERVER_KEY,
                names_file: Some(SERVER_SANS),
                common_name: "paddock-apiserver",
                organization: None,
                sans,
                usage: ExtendedKeyUsagePurpose::ServerAuth,
            },
        )?;
        let kubelet_client = load_or_issue(
            dir,
            &ca,
            &LeafSpec {
                cert: KUBELET_CLIENT_CERT,
                key: KUBELET_CLIENT_KEY,
                names_file: None,
                common_name: KUBELET_CLIENT_CN,
                organization: Some(KUBELET_CLIENT_GROUP),
                sans: &[],
                usage: ExtendedKeyUsagePurpose::ClientAuth,
            },
        )?;
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
            ca_pem: ca.cert_pem().to_string(),
            ca: Arc::new(ca),
            serving,
            kubelet_client,
            token,
        })
    }

    /// A rustls server configuration offering `h2` and `http/1.1` (exec upgrades need 1.1),
    /// requesting (never requiring) a client certificate of the cluster CA, judged per request
    /// by [`crate::x509::X509Authenticator`].
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(crate::x509::RequestClientCert::new(&self.ca)?))
            // The CA goes with the leaf: a joining node pins it by its hash (kubeadm's
            // `--discovery-token-ca-cert-hash`) before trusting it.
            .with_single_cert(
                vec![self.serving.cert_der.clone(), self.ca.cert_der().clone()],
                self.serving.key(),
            )?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The rustls client configuration the API server dials node agents with: their serving
    /// certificate must chain to the cluster CA (and name the address dialled, which rustls
    /// checks against the server name given per connection); it presents its
    /// `apiserver-kubelet-client` certificate. HTTP/1.1 only (exec upgrades).
    pub fn kubelet_client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.ca.roots()?)
            .with_client_auth_cert(
                vec![self.kubelet_client.cert_der.clone()],
                self.kubelet_client.key(),
            )?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests;
