//! The agent API's serving certificate, issued by the cluster CA the way a kubelet with
//! `serverTLSBootstrap` gets its own: the agent makes a key, sends a `certificates.k8s.io/v1`
//! CertificateSigningRequest for signer `kubernetes.io/kubelet-serving` (CN
//! `system:node:<node>`, O `system:nodes`, the node's IP addresses and name as subject
//! alternative names, usages digital signature and server auth — key encipherment only
//! for RSA keys, which these are not), approves it (the agent holds administrator
//! credentials; a client without that right waits for someone to run `kubectl certificate
//! approve`), and waits for `status.certificate`.
//!
//! Key and certificate live in the agent's `pki/` directory (the key with mode 0600) and are
//! reused while they cover the node's names and are before their rotation deadline: like the
//! kubelet's certificate manager, a random point between 70 % and 90 % of the certificate's
//! life (about 110 to 36 days before a one-year certificate ends), so nodes started together do
//! not renew together and a failed renewal has weeks of retries before the old certificate
//! ends. [`ServingCertificate::rotate`] renews at that deadline while the agent runs, on the
//! kubelet's schedule and back-off ([`crate::rotation`]); rustls takes the new certificate for
//! new connections at once ([`ServingCertificate`] is the server's certificate resolver).
//!
//! Start at [`ServingCertificate::load_or_request`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use parking_lot::RwLock;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::rotation::{Rotate, Validity, WallClock};

/// The signer of kubelet serving certificates.
pub const SIGNER: &str = "kubernetes.io/kubelet-serving";
/// How long the agent waits for its request to be signed (the kubelet's
/// `certificateWaitTimeout`).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const CERT_FILE: &str = "kubelet-server.crt";
const KEY_FILE: &str = "kubelet-server.key";

/// Why no serving certificate could be had.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// An API call failed (what was being done, the error).
    #[error("{0}: {1}")]
    Api(String, #[source] kube::Error),
    /// Reading or writing the key or certificate failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Making the key or the request failed, or the issued certificate is unusable.
    #[error("{0}")]
    Crypto(String),
    /// The request was denied or failed, or not signed in time.
    #[error("{0}")]
    NotIssued(String),
}

/// Who the certificate is for: the node and the names it is reached by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The Node's name (CN `system:node:<name>`, and a DNS name when it is one).
    pub node_name: String,
    /// The node's addresses.
    pub addresses: Vec<IpAddr>,
}

impl Subject {
    fn common_name(&self) -> String {
        format!("system:node:{}", self.node_name)
    }

    /// The subject alternative names, as the kubelet derives them from its Node addresses.
    fn sans(&self) -> Vec<rcgen::SanType> {
        let mut sans = Vec::new();
        if let Ok(name) = rcgen::string::Ia5String::try_from(self.node_name.as_str())
            && self.node_name.parse::<IpAddr>().is_err()
        {
            sans.push(rcgen::SanType::DnsName(name));
        }
        for ip in &self.addresses {
            sans.push(rcgen::SanType::IpAddress(*ip));
        }
        sans
    }
}

/// A certificate with its key and validity.
struct Issued {
    key: Arc<CertifiedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
    /// Whether it names exactly the wanted subject and addresses.
    fits: bool,
}

/// The agent API's serving certificate (a rustls certificate resolver).
#[derive(Debug)]
pub struct ServingCertificate {
    dir: PathBuf,
    subject: Subject,
    current: RwLock<Arc<CertifiedKey>>,
    /// The current certificate's `notBefore` and `notAfter`.
    validity: RwLock<Validity>,
}

impl rustls::server::ResolvesServerCert for ServingCertificate {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertError + '_ {
    move |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub use crate::rotation::rotation_deadline;

impl ServingCertificate {
    /// The certificate in `dir` if it still fits `subject` and is before its rotation
    /// deadline; otherwise a new one requested through a CertificateSigningRequest.
    pub async fn load_or_request(
        client: &kube::Client,
        dir: PathBuf,
        subject: Subject,
    ) -> Result<Arc<ServingCertificate>, CertError> {
        let stored = match load(&dir, &subject).await {
            Ok(Some(c)) => Some(c),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "stored serving certificate unusable; requesting a new one");
                None
            }
        };
        let issued = match stored {
            Some(c)
                if c.fits && SystemTime::now() < rotation_deadline(c.not_before, c.not_after) =>
            {
                c
            }
            _ => request(client, &dir, &subject).await?,
        };
        Ok(Arc::new(ServingCertificate {
            dir,
            subject,
            current: RwLock::new(issued.key),
            validity: RwLock::new((issued.not_before, issued.not_after)),
        }))
    }

    /// The leaf currently served.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.current.read().cert[0].clone()
    }

    /// The current certificate's `notBefore` and `notAfter`.
    pub fn validity(&self) -> Validity {
        *self.validity.read()
    }

    /// Renews the certificate at its rotation deadline, until `stop`, on the kubelet's
    /// schedule ([`crate::rotation::run`]); the old one serves on while a renewal fails.
    pub async fn rotate(self: Arc<Self>, client: kube::Client, stop: CancellationToken) {
        let rotating = Rotating { cert: self, client };
        crate::rotation::run(&rotating, "kubelet-serving", &WallClock, &stop).await;
    }
}

/// The serving certificate with the client it renews through.
struct Rotating {
    cert: Arc<ServingCertificate>,
    client: kube::Client,
}

impl Rotate for Rotating {
    fn current(&self) -> Option<Validity> {
        Some(self.cert.validity())
    }

    async fn renew(&self) -> Result<(), String> {
        let issued = request(&self.client, &self.cert.dir, &self.cert.subject)
            .await
            .map_err(|e| e.to_string())?;
        *self.cert.validity.write() = (issued.not_before, issued.not_after);
        *self.cert.current.write() = issued.key;
        tracing::info!("serving certificate renewed");
        Ok(())
    }
}

/// Reads the stored key and certificate (`None` when either is missing).
async fn load(dir: &Path, subject: &Subject) -> Result<Option<Issued>, CertError> {
    let read = |name: &str| {
        let path = dir.join(name);
        async move {
            match tokio::fs::read(&path).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err(&path)(e)),
            }
        }
    };
    let (Some(cert), Some(key)) = (read(CERT_FILE).await?, read(KEY_FILE).await?) else {
        return Ok(None);
    };
    issued(&cert, &key, subject).map(Some)
}

/// Checks a PEM certificate and key pair and what it names.
fn issued(cert_pem: &[u8], key_pem: &[u8], subject: &Subject) -> Result<Issued, CertError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| CertError::Crypto(format!("{what}: {e}"));
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad("serving certificate", &e))?;
    let leaf = chain
        .first()
        .ok_or_else(|| CertError::Crypto("no certificate in the issued PEM".into()))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| bad("serving key", &e))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad("serving key", &e))?;
    let certified = CertifiedKey::new(chain.clone(), signing);
    certified
        .keys_match()
        .map_err(|e| bad("serving certificate and key", &e))?;
    let (_, x) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| bad("serving certificate", &e))?;
    let v = x.validity();
    let to_system = |t: &x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
    };
    let cn = x
        .subject()
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default();
    let mut ips = Vec::new();
    let mut dns = Vec::new();
    if let Ok(Some(san)) = x.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Ok(a) = <[u8; 4]>::try_from(*b) {
                        ips.push(IpAddr::from(a));
                    } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                        ips.push(IpAddr::from(a));
                    }
                }
                x509_parser::extensions::GeneralName::DNSName(d) => dns.push(d.to_string()),
                _ => {}
            }
        }
    }
    let mut want_dns: Vec<String> = subject
        .sans()
        .into_iter()
        .filter_map(|s| match s {
            rcgen::SanType::DnsName(d) => Some(d.as_str().to_string()),
            _ => None,
        })
        .collect();
    let mut want_ips = subject.addresses.clone();
    let (mut ips, mut dns) = (ips, dns);
    for v in [&mut ips, &mut want_ips] {
        v.sort();
        v.dedup();
    }
    for v in [&mut dns, &mut want_dns] {
        v.sort();
        v.dedup();
    }
    let fits = cn == subject.common_name() && ips == want_ips && dns == want_dns;
    Ok(Issued {
        key: Arc::new(certified),
        not_before: to_system(&v.not_before),
        not_after: to_system(&v.not_after),
        fits,
    })
}

/// Writes `contents` to `path` through a temporary file, created with `mode`.
async fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    use tokio::io::AsyncWriteExt;
    let tmp = path.with_extension("tmp");
    let mut f = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .await
        .map_err(io_err(&tmp))?;
    f.write_all(contents).await.map_err(io_err(&tmp))?;
    f.sync_all().await.map_err(io_err(&tmp))?;
    tokio::fs::rename(&tmp, path).await.map_err(io_err(path))
}

fn condition(csr: &CertificateSigningRequest, t: &str) -> Option<String> {
    csr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t && c.status == "True")
        .map(|c| {
            let reason = c.reason.as_deref().unwrap_or("");
            let message = c.message.as_deref().unwrap_or("");
            format!("{reason}: {message}")
        })
}

/// Makes a key, has it signed through a CSR, stores both and returns them.
async fn request(
    client: &kube::Client,
    dir: &Path,
    subject: &Subject,
) -> Result<Issued, CertError> {
    let crypto = |e: rcgen::Error| CertError::Crypto(format!("serving key: {e}"));
    let key = rcgen::KeyPair::generate().map_err(crypto)?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, subject.common_name());
    params.subject_alt_names = subject.sans();
    let pem = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .map_err(crypto)?;
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("csr-".into()),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(pem.into_bytes()),
            signer_name: SIGNER.into(),
            // An ECDSA key: no key encipherment (the kubelet asks for it with RSA keys only).
            usages: Some(vec!["digital signature".into(), "server auth".into()]),
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    };
    let created = csrs
        .create(&PostParams::default(), &csr)
        .await
        .map_err(|e| CertError::Api("creating the serving certificate request".into(), e))?;
    let name = created.metadata.name.clone().unwrap_or_default();
    let approval = serde_json::json!({"status": {"conditions": [{
        "type": "Approved",
        "status": "True",
        "reason": "AgentApprove",
        "message": "The node agent approved its own serving certificate request.",
    }]}});
    match csrs
        .patch_approval(&name, &PatchParams::default(), &Patch::Merge(&approval))
        .await
    {
        Ok(_) => {}
        // With node credentials the cluster's approver decides (it approves a node's own
        // request); otherwise an administrator does.
        Err(kube::Error::Api(e)) if e.code == 403 => tracing::info!(
            csr = %name,
            "waiting for the serving certificate request to be approved (by the cluster's approver, or `kubectl certificate approve {name}`)"
        ),
        Err(e) => return Err(CertError::Api(format!("approving {name}"), e)),
    }
    let cert_pem = wait_signed(&csrs, &name).await?;
    let key_pem = key.serialize_pem();
    let issued = issued(&cert_pem, key_pem.as_bytes(), subject)?;
    tokio::fs::create_dir_all(dir).await.map_err(io_err(dir))?;
    write_file(&dir.join(KEY_FILE), key_pem.as_bytes(), 0o600).await?;
    write_file(&dir.join(CERT_FILE), &cert_pem, 0o644).await?;
    tracing::info!(csr = %name, "serving certificate issued");
    Ok(issued)
}

/// Polls the request until it is signed (its certificate), denied or failed (an error), or
/// [`WAIT_TIMEOUT`] passed.
async fn wait_signed(
    csrs: &Api<CertificateSigningRequest>,
    name: &str,
) -> Result<Vec<u8>, CertError> {
    let end = tokio::time::Instant::now() + WAIT_TIMEOUT;
    let mut pause = Duration::from_millis(50);
    loop {
        let csr = csrs
            .get(name)
            .await
            .map_err(|e| CertError::Api(format!("reading {name}"), e))?;
        if let Some(cert) = csr.status.as_ref().and_then(|s| s.certificate.as_ref())
            && !cert.0.is_empty()
        {
            return Ok(cert.0.clone());
        }
        for t in ["Denied", "Failed"] {
            if let Some(why) = condition(&csr, t) {
                return Err(CertError::NotIssued(format!(
                    "certificate request {name} {}: {why}",
                    t.to_lowercase()
                )));
            }
        }
        if tokio::time::Instant::now() >= end {
            return Err(CertError::NotIssued(format!(
                "certificate request {name} was not signed within {WAIT_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
