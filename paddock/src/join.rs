//! Nodes joining with a bootstrap token, kubeadm's way. `paddock token create` writes the
//! token's Secret ([`create_token`]). `paddock agent --server URL --token T --ca-cert-hash
//! sha256:…` ([`node_credentials`]): fetches the server's certificate chain without trusting
//! it, keeps the CA only when its public key has the given hash (and refuses to go on
//! otherwise), then over a verified connection authenticates with the token, makes a key and
//! sends a CertificateSigningRequest for `system:node:<name>` in `system:nodes` to the signer
//! `kubernetes.io/kube-apiserver-client-kubelet` (approved by the server's CSR approver,
//! signed by its signer), waits for the certificate and stores key (0600), certificate and CA
//! in the node's `pki/` directory. From then on the node authenticates with that
//! certificate; a restarted agent finds it there and needs no token. A certificate past its
//! rotation deadline (70–90 % of its life, the kubelet's) is renewed at start with a request
//! authenticated by the certificate itself.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// `paddock token create`.
pub(crate) async fn create_token(
    data_dir: &Path,
    ttl: Duration,
    description: Option<String>,
) -> anyhow::Result<()> {
    let kubeconfig = data_dir.join("kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("building the client configuration")?;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).context("building the client")?;
    let ca_pem = tokio::fs::read(data_dir.join("ca.crt"))
        .await
        .with_context(|| format!("reading {}", data_dir.join("ca.crt").display()))?;
    let ca = CertificateDer::from_pem_slice(&ca_pem).context("the cluster CA")?;
    let hash = apiserver::bootstrap_token::ca_cert_hash(&ca).map_err(anyhow::Error::msg)?;
    let (id, secret) = apiserver::bootstrap_token::generate();
    let expires = (!ttl.is_zero()).then(|| {
        time::OffsetDateTime::now_utc()
            + time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX)
    });
    let obj: Secret = serde_json::from_value(apiserver::bootstrap_token::secret(
        &id,
        &secret,
        expires,
        description.as_deref(),
    ))?;
    Api::<Secret>::namespaced(client, apiserver::bootstrap_token::NAMESPACE)
        .create(&PostParams::default(), &obj)
        .await
        .context("creating the token's Secret")?;
    println!("{id}.{secret}");
    println!("{hash}");
    eprintln!(
        "join a node with: paddock agent --server {} --token-file FILE --ca-cert-hash {hash}",
        server.trim_end_matches('/')
    );
    Ok(())
}

/// The signer of node client certificates.
pub(crate) const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The node's client key, certificate and the cluster CA, under its data dir (kubelet's
/// `pki/` layout).
const PKI_DIR: &str = "pki";
const KEY_FILE: &str = "kubelet-client.key";
const CERT_FILE: &str = "kubelet-client.crt";
const CA_FILE: &str = "ca.crt";
/// How long a join waits for its certificate (the kubelet's bootstrap wait).
const WAIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The largest certificate chain read from the server while discovering it.
const MAX_CHAIN: usize = 8;

/// How a node may join: a bootstrap token and the CA hash it pins.
pub(crate) struct Bootstrap {
    /// The bootstrap token (`<id>.<secret>`); never printed.
    pub(crate) token: String,
    /// `sha256:<hex>` of the cluster CA's SubjectPublicKeyInfo.
    pub(crate) ca_cert_hash: String,
}

/// The node's client credentials in `data_dir`, obtained with `bootstrap` when there are none
/// (or when they no longer work), renewed when past their rotation deadline. `None` when the
/// node has no certificate and no bootstrap token was given.
pub(crate) async fn node_kubeconfig(
    server: &str,
    data_dir: &Path,
    node_name: &str,
    bootstrap: Option<Bootstrap>,
) -> anyhow::Result<Option<kube::config::Kubeconfig>> {
    let pki = data_dir.join(PKI_DIR);
    let (ca, key, cert) = (pki.join(CA_FILE), pki.join(KEY_FILE), pki.join(CERT_FILE));
    if let Some(b) = &bootstrap {
        anyhow::ensure!(
            apiserver::bootstrap_token::parse(&b.token).is_some(),
            "the token is not a bootstrap token ([a-z0-9]{{6}}.[a-z0-9]{{16}})"
        );
        anyhow::ensure!(
            b.ca_cert_hash.len() == 71 && b.ca_cert_hash.starts_with("sha256:"),
            "--ca-cert-hash must be sha256: and 64 hex digits"
        );
    }
    let stored = read_validity(&cert).await;
    let now = std::time::SystemTime::now();
    match (stored, &bootstrap) {
        // A certificate that still works: use it, renewing it first when due.
        (Some((not_before, not_after)), _) if not_after > now && ca.exists() && key.exists() => {
            if let Some(b) = &bootstrap {
                // A stored CA must be the one the hash names.
                let pem = tokio::fs::read(&ca).await?;
                let der = CertificateDer::from_pem_slice(&pem).context("the stored CA")?;
                let hash =
                    apiserver::bootstrap_token::ca_cert_hash(&der).map_err(anyhow::Error::msg)?;
                anyhow::ensure!(
                    hash == b.ca_cert_hash,
                    "the stored cluster CA ({}) does not have the hash given by --ca-cert-hash: refusing to continue",
                    ca.display()
                );
            }
            let deadline = agent::certificate::rotation_deadline(not_before, not_after);
            let config = cert_kubeconfig(server, &ca, &key, &cert);
            if now >= deadline {
                tracing::info!("the node's client certificate is due for renewal");
                let client = client_of(config.clone()).await?;
                if let Err(e) = request_certificate(&client, &pki, node_name).await {
                    tracing::warn!(error = %e, "renewing the node's client certificate failed; using the current one");
                }
            }
            Ok(Some(config))
        }
        (_, Some(b)) => {
            let ca_pem = discover_ca(server, &b.ca_cert_hash).await?;
            write_private(&pki, CA_FILE, ca_pem.as_bytes()).await?;
            let mut config = cert_kubeconfig(server, &ca, &key, &cert);
            if let Some(user) = config
                .auth_infos
                .first_mut()
                .and_then(|a| a.auth_info.as_mut())
            {
                *user = kube::config::AuthInfo {
                    token: Some(secrecy::SecretString::from(b.token.clone())),
                    ..Default::default()
                };
            }
            let client = client_of(config).await?;
            request_certificate(&client, &pki, node_name)
                .await
                .context("joining the cluster")?;
            tracing::info!(
                node = node_name,
                "joined: the node has its client certificate"
            );
            Ok(Some(cert_kubeconfig(server, &ca, &key, &cert)))
        }
        (Some(_), None) => bail!(
            "the node's client certificate {} has expired: join again with --token-file and --ca-cert-hash",
            cert.display()
        ),
        (None, None) => Ok(None),
    }
}

/// `notBefore`/`notAfter` of the stored certificate, if it is readable.
async fn read_validity(path: &Path) -> Option<(std::time::SystemTime, std::time::SystemTime)> {
    let pem = tokio::fs::read(path).await.ok()?;
    let der = CertificateDer::from_pem_slice(&pem).ok()?;
    let (nb, na) = apiserver::tls::validity(&der).ok()?;
    let to_sys = |t: time::OffsetDateTime| {
        std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_timestamp()).unwrap_or(0))
    };
    Some((to_sys(nb), to_sys(na)))
}

async fn client_of(config: kube::config::Kubeconfig) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .context("building the client configuration")?;
    kube::Client::try_from(config).context("building the client")
}

/// A kubeconfig naming the server, the stored CA and the node's key and certificate files.
fn cert_kubeconfig(server: &str, ca: &Path, key: &Path, cert: &Path) -> kube::config::Kubeconfig {
    use kube::config::{AuthInfo, Cluster, Context, NamedAuthInfo, NamedCluster, NamedContext};
    kube::config::Kubeconfig {
        clusters: vec![NamedCluster {
            name: "paddock".into(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority: Some(ca.display().to_string()),
                ..Cluster::default()
            }),
            ..NamedCluster::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: "node".into(),
            auth_info: Some(AuthInfo {
                client_certificate: Some(cert.display().to_string()),
                client_key: Some(key.display().to_string()),
                ..AuthInfo::default()
            }),
            ..NamedAuthInfo::default()
        }],
        contexts: vec![NamedContext {
            name: "paddock".into(),
            context: Some(Context {
                cluster: "paddock".into(),
                user: Some("node".into()),
                ..Context::default()
            }),
            ..NamedContext::default()
        }],
        current_context: Some("paddock".into()),
        ..kube::config::Kubeconfig::default()
    }
}

/// Writes `dir/name` (dir made 0700) with mode 0600, through a temporary file.
async fn write_private(dir: &Path, name: &str, contents: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = dir.to_path_buf();
    let name = name.to_string();
    let contents = contents.to_vec();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        use std::io::Write;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(&name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&contents)
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("writing {}", path.display()))
    })
    .await?
}

/// `host:port` of an `https://` URL, and the host alone (the TLS server name).
fn host_port(server: &str) -> anyhow::Result<(String, String)> {
    let rest = server
        .strip_prefix("https://")
        .with_context(|| format!("the server URL {server} is not https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p))
            if !h.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && !authority.ends_with(']') =>
        {
            (h.to_string(), p.to_string())
        }
        _ => (authority.to_string(), "443".to_string()),
    };
    anyhow::ensure!(!host.is_empty(), "the server URL {server} names no host");
    let bare = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((format!("{host}:{port}"), bare))
}

/// kubeadm's token discovery, by the server's TLS chain: connects without trusting the
/// server, takes the certificate of its chain whose public key has `ca_cert_hash` (it must be
/// a CA) and returns it as PEM; no such certificate is an error, and nothing was sent.
async fn discover_ca(server: &str, ca_cert_hash: &str) -> anyhow::Result<String> {
    let (addr, host) = host_port(server)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_no_client_auth();
    let tcp = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .with_context(|| format!("connecting to {addr}: timed out"))?
    .with_context(|| format!("connecting to {addr}"))?;
    let name = ServerName::try_from(host.clone()).with_context(|| format!("server name {host}"))?;
    let tls = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp),
    )
    .await
    .with_context(|| format!("TLS handshake with {addr}: timed out"))?
    .with_context(|| format!("TLS handshake with {addr}"))?;
    let chain: Vec<CertificateDer<'static>> = tls
        .get_ref()
        .1
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .take(MAX_CHAIN)
        .map(|c| c.clone().into_owned())
        .collect();
    drop(tls);
    for der in &chain {
        let Ok(hash) = apiserver::bootstrap_token::ca_cert_hash(der) else {
            continue;
        };
        if hash != ca_cert_hash {
            continue;
        }
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| anyhow::anyhow!("the cluster CA: {e}"))?;
        anyhow::ensure!(
            cert.is_ca(),
            "the certificate with hash {ca_cert_hash} is not a CA"
        );
        return Ok(apiserver::x509::pem_encode("CERTIFICATE", der));
    }
    bail!(
        "the server at {addr} offered no CA whose public key has the hash {ca_cert_hash}: refusing to join (wrong --ca-cert-hash, or not the cluster's server)"
    )
}

/// Accepts any server certificate (the chain is judged by its hash afterwards), still checking
/// the handshake signatures.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Makes a key, sends a CSR for `system:node:<name>` in `system:nodes` to the kubelet client
/// signer, waits for the certificate and stores key and certificate in `pki`.
async fn request_certificate(
    client: &kube::Client,
    pki: &Path,
    node_name: &str,
) -> anyhow::Result<()> {
    let key = rcgen::KeyPair::generate().context("making the node's key")?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("system:node:{node_name}"),
    );
    let pem = params
        .serialize_request(&key)
        .and_then(|r| r.pem())
        .context("making the certificate request")?;
    let csrs: Api<CertificateSigningRequest> = Api::all(client.clone());
    let csr = CertificateSigningRequest {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            generate_name: Some("node-csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: k8s_openapi::ByteString(pem.into_bytes()),
            signer_name: CLIENT_SIGNER.into(),
            // An ECDSA key: no key encipherment (the kubelet asks for it with RSA keys only).
            usages: Some(vec!["digital signature".into(), "client auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    let created = csrs
        .create(&PostParams::default(), &csr)
        .await
        .context("creating the node's certificate request")?;
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(csr = %name, "waiting for the node's client certificate");
    let end = tokio::time::Instant::now() + WAIT_TIMEOUT;
    let mut pause = Duration::from_millis(100);
    let cert = loop {
        let csr = csrs
            .get(&name)
            .await
            .with_context(|| format!("reading {name}"))?;
        if let Some(c) = csr.status.as_ref().and_then(|s| s.certificate.as_ref())
            && !c.0.is_empty()
        {
            break c.0.clone();
        }
        let conds = csr.status.as_ref().and_then(|s| s.conditions.as_ref());
        if let Some(c) = conds
            .into_iter()
            .flatten()
            .find(|c| (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True")
        {
            bail!(
                "certificate request {name} {}: {}: {}",
                c.type_.to_lowercase(),
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            );
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < end,
            "certificate request {name} was not signed within {WAIT_TIMEOUT:?}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    };
    // The certificate must be for this key.
    let der = CertificateDer::from_pem_slice(&cert).context("the issued certificate")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow::anyhow!("the issued certificate: {e}"))?;
    anyhow::ensure!(
        parsed.public_key().raw == rcgen::PublicKeyData::subject_public_key_info(&key).as_slice(),
        "the issued certificate is not for the node's key"
    );
    write_private(pki, KEY_FILE, key.serialize_pem().as_bytes()).await?;
    write_private(pki, CERT_FILE, &cert).await?;
    tracing::info!(csr = %name, "the node's client certificate is issued");
    Ok(())
}
