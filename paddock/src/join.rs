//! Nodes joining with a bootstrap token, kubeadm's way. `paddock token create` writes the
//! token's Secret ([`create_token`]). `paddock agent --server URL --token T --ca-cert-hash
//! sha256:…` ([`node_credentials`]): fetches the server's certificate chain without trusting
//! it, keeps the CA only when its public key has the given hash (and refuses to go on
//! otherwise), then over a verified connection authenticates with the token, makes a key and
//! sends a CertificateSigningRequest for `system:node:<name>` in `system:nodes` to the signer
//! `kubernetes.io/kube-apiserver-client-kubelet` (approved by the server's CSR approver,
//! signed by its signer), waits for the certificate and stores key (0600), certificate and CA
//! in the node's `pki/` directory. From then on the node authenticates with that
//! certificate; a restarted agent finds it there and needs no token. While the node runs,
//! [`ClientCertificate`] renews it at its rotation deadline (70–90 % of its life, the
//! kubelet's) with a request authenticated by the certificate itself, and switches the node's
//! client to the new one.

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
/// The node's client credentials and the cluster CA, under its data dir (the kubelet's `pki/`
/// layout and client-go's certificate file store): `kubelet-client-current.pem` is a symlink
/// to `kubelet-client-<YYYY-MM-DD-HH-MM-SS>.pem` (mode 0600, certificate then key), replaced
/// atomically by each renewal; `kubelet-client.crt` with `kubelet-client.key` (what older
/// versions wrote, the kubelet's `--cert-dir` pair) is read when there is no current pair.
const PKI_DIR: &str = "pki";
const PAIR_PREFIX: &str = "kubelet-client";
const CURRENT_PEM: &str = "kubelet-client-current.pem";
const KEY_FILE: &str = "kubelet-client.key";
const CERT_FILE: &str = "kubelet-client.crt";
const CA_FILE: &str = "ca.crt";
/// How long a join waits for its certificate (the kubelet's bootstrap wait).
const WAIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// The largest certificate chain read from the server while discovering it.
const MAX_CHAIN: usize = 8;
/// The largest credentials file read.
const MAX_PEM: u64 = 64 * 1024;

/// How a node may join: a bootstrap token and the CA hash it pins.
#[derive(Clone)]
pub(crate) struct Bootstrap {
    /// The bootstrap token (`<id>.<secret>`); never printed.
    pub(crate) token: String,
    /// `sha256:<hex>` of the cluster CA's SubjectPublicKeyInfo.
    pub(crate) ca_cert_hash: String,
}

/// The node's client certificate and key (PEM) and the certificate's validity.
#[derive(Clone)]
struct Pair {
    cert_pem: String,
    key_pem: String,
    validity: agent::rotation::Validity,
}

/// The node's client credentials in `data_dir`, obtained with `bootstrap` when there are none
/// (or when they have expired), with the manager that renews them while the node runs
/// ([`ClientCertificate::rotate`]). `None` when the node has no certificate and no bootstrap
/// token was given.
pub(crate) async fn node_credentials(
    server: &str,
    data_dir: &Path,
    node_name: &str,
    bootstrap: Option<Bootstrap>,
) -> anyhow::Result<Option<(kube::config::Kubeconfig, Arc<ClientCertificate>)>> {
    let pki = data_dir.join(PKI_DIR);
    let ca = pki.join(CA_FILE);
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
    let stored = match load_pair(&pki).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = %e, "the node's stored client certificate is unusable");
            None
        }
    };
    let now = std::time::SystemTime::now();
    // Off the runtime's workers (a metadata lookup).
    let have_ca = tokio::fs::try_exists(&ca).await.unwrap_or(false);
    let pair = match (stored, &bootstrap) {
        // A certificate that still works: use it (the manager renews it when due).
        (Some(pair), _) if pair.validity.1 > now && have_ca => {
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
            pair
        }
        (_, Some(b)) => {
            let ca_pem = discover_ca(server, &b.ca_cert_hash).await?;
            write_private(&pki, CA_FILE, ca_pem.as_bytes()).await?;
            let client = client_of(token_kubeconfig(server, &ca, &b.token)).await?;
            let pair = request_certificate(&client, node_name)
                .await
                .context("joining the cluster")?;
            store_pair(&pki, &pair).await?;
            tracing::info!(
                node = node_name,
                "joined: the node has its client certificate"
            );
            pair
        }
        (Some(_), None) => bail!(
            "the node's client certificate in {} has expired: join again with --token-file and --ca-cert-hash",
            pki.display()
        ),
        (None, None) => return Ok(None),
    };
    let kubeconfig = cert_kubeconfig(server, &ca, &pair);
    let manager = Arc::new(ClientCertificate {
        server: server.to_string(),
        pki,
        node_name: node_name.to_string(),
        bootstrap,
        current: parking_lot::RwLock::new(pair),
        credentials: std::sync::OnceLock::new(),
    });
    Ok(Some((kubeconfig, manager)))
}

/// The node's client certificate while the node runs: the kubelet's client certificate
/// manager. At each rotation deadline ([`agent::rotation`]) it makes a new key, requests a
/// certificate for it authenticated with the current one (the approver's `selfnodeclient`),
/// stores the pair atomically and switches the node's client to it. Once the current
/// certificate has expired, a node given a bootstrap token requests with that instead (the
/// kubelet exits so that its bootstrap credentials can start it afresh; the agent does the
/// same without exiting); without one, it keeps trying and says how to rejoin.
pub(crate) struct ClientCertificate {
    server: String,
    pki: std::path::PathBuf,
    node_name: String,
    bootstrap: Option<Bootstrap>,
    current: parking_lot::RwLock<Pair>,
    /// The node's client, whose credentials a renewal replaces.
    credentials: std::sync::OnceLock<agent::client::Credentials>,
}

impl ClientCertificate {
    /// The node's client, built on the current certificate (see [`agent::client::rotating`]),
    /// which later renewals switch to the new certificate.
    pub(crate) fn client(&self, config: kube::Config) -> anyhow::Result<kube::Client> {
        let (client, credentials) =
            agent::client::rotating(config).context("building the client")?;
        self.credentials
            .set(credentials)
            .map_err(|_| anyhow::anyhow!("the node's client is already built"))?;
        Ok(client)
    }

    /// Renews the certificate at its rotation deadlines until `stop`.
    pub(crate) async fn rotate(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        agent::rotation::run(
            &*self,
            "kubelet client certificate",
            &agent::rotation::WallClock,
            &stop,
        )
        .await;
    }

    async fn renew_once(&self) -> anyhow::Result<()> {
        let ca = self.pki.join(CA_FILE);
        let current = self.current.read().clone();
        let expired = current.validity.1 <= std::time::SystemTime::now();
        let (kubeconfig, how) = match (&self.bootstrap, expired) {
            (_, false) => (
                cert_kubeconfig(&self.server, &ca, &current),
                "its current certificate",
            ),
            (Some(b), true) => (
                token_kubeconfig(&self.server, &ca, &b.token),
                "the bootstrap token (the current certificate has expired)",
            ),
            (None, true) => bail!(
                "the node's client certificate has expired: restart the agent with --token-file and --ca-cert-hash to join again"
            ),
        };
        tracing::info!(node = %self.node_name, "renewing the node's client certificate with {how}");
        let client = client_of(kubeconfig).await?;
        let pair = request_certificate(&client, &self.node_name).await?;
        store_pair(&self.pki, &pair).await?;
        if let Some(credentials) = self.credentials.get() {
            let config = kube::Config::from_custom_kubeconfig(
                cert_kubeconfig(&self.server, &ca, &pair),
                &Default::default(),
            )
            .await
            .context("building the client configuration")?;
            credentials
                .replace(config)
                .context("switching the node's client to the new certificate")?;
        }
        *self.current.write() = pair;
        tracing::info!(node = %self.node_name, "the node's client certificate is renewed");
        Ok(())
    }
}

impl agent::rotation::Rotate for ClientCertificate {
    fn current(&self) -> Option<agent::rotation::Validity> {
        Some(self.current.read().validity)
    }

    async fn renew(&self) -> Result<(), String> {
        self.renew_once().await.map_err(|e| format!("{e:#}"))
    }
}

/// `notBefore`/`notAfter` of a PEM certificate.
fn validity_of(cert_pem: &[u8]) -> anyhow::Result<agent::rotation::Validity> {
    let der = CertificateDer::from_pem_slice(cert_pem).context("the client certificate")?;
    let (nb, na) = apiserver::tls::validity(&der).map_err(|e| anyhow::anyhow!("{e}"))?;
    let to_sys = |t: time::OffsetDateTime| {
        std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix_timestamp()).unwrap_or(0))
    };
    Ok((to_sys(nb), to_sys(na)))
}

/// Reads a file of at most [`MAX_PEM`] bytes; `None` when it does not exist.
async fn read_small(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let f = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut bytes = Vec::new();
    f.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .await
        .with_context(|| format!("reading {}", path.display()))?;
    anyhow::ensure!(
        bytes.len() as u64 <= MAX_PEM,
        "{} is too large",
        path.display()
    );
    Ok(Some(bytes))
}

/// The stored pair: `kubelet-client-current.pem`, else the older two files; `None` when
/// there is neither.
async fn load_pair(pki: &Path) -> anyhow::Result<Option<Pair>> {
    let (cert, key) = match read_small(&pki.join(CURRENT_PEM)).await? {
        Some(both) => (both.clone(), both),
        None => match (
            read_small(&pki.join(CERT_FILE)).await?,
            read_small(&pki.join(KEY_FILE)).await?,
        ) {
            (Some(c), Some(k)) => (c, k),
            _ => return Ok(None),
        },
    };
    let pem = |data: &[u8], want_key: bool| -> String {
        api::certificates::pem_blocks(data)
            .into_iter()
            .filter(|b| b.label.ends_with("PRIVATE KEY") == want_key)
            .filter(|b| want_key || b.label == "CERTIFICATE")
            .map(|b| apiserver::x509::pem_encode(&b.label, &b.der))
            .collect()
    };
    let (cert_pem, key_pem) = (pem(&cert, false), pem(&key, true));
    anyhow::ensure!(
        !cert_pem.is_empty() && !key_pem.is_empty(),
        "no certificate and key in {}",
        pki.display()
    );
    let validity = validity_of(cert_pem.as_bytes())?;
    Ok(Some(Pair {
        cert_pem,
        key_pem,
        validity,
    }))
}

/// client-go's `fileStore.Update`: the pair into a new `kubelet-client-<time>.pem` (0600),
/// then `kubelet-client-current.pem` pointed at it by renaming a new symlink over it (so a
/// reader sees the old pair or the new one, never half of either); the pairs before the
/// previous one are removed.
async fn store_pair(pki: &Path, pair: &Pair) -> anyhow::Result<()> {
    let t = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let name = format!("{PAIR_PREFIX}-{stamp}.pem");
    let contents = format!("{}{}", pair.cert_pem, pair.key_pem);
    write_private(pki, &name, contents.as_bytes()).await?;
    let pki = pki.to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let link = pki.join(CURRENT_PEM);
        let previous = std::fs::read_link(&link).ok();
        let tmp = pki.join(format!(".{CURRENT_PEM}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp)
            .and_then(|()| std::fs::rename(&tmp, &link))
            .with_context(|| format!("pointing {} at {name}", link.display()))?;
        // Keep the new pair and the one before it.
        let keep = |f: &str| f == name || previous.as_deref() == Some(Path::new(f));
        for entry in std::fs::read_dir(&pki)
            .with_context(|| format!("listing {}", pki.display()))?
            .flatten()
        {
            let file = entry.file_name();
            let Some(f) = file.to_str() else { continue };
            let stamped = f.starts_with(&format!("{PAIR_PREFIX}-"))
                && f.ends_with(".pem")
                && f != CURRENT_PEM;
            if stamped && !keep(f) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    })
    .await?
}

async fn client_of(config: kube::config::Kubeconfig) -> anyhow::Result<kube::Client> {
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default())
        .await
        .context("building the client configuration")?;
    kube::Client::try_from(config).context("building the client")
}

/// A kubeconfig naming the server and the stored CA, for `user`.
fn kubeconfig_for(
    server: &str,
    ca: &Path,
    user: kube::config::AuthInfo,
) -> kube::config::Kubeconfig {
    use kube::config::{Cluster, Context, NamedAuthInfo, NamedCluster, NamedContext};
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
            auth_info: Some(user),
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

/// A kubeconfig authenticating with the node's certificate and key (held in memory).
fn cert_kubeconfig(server: &str, ca: &Path, pair: &Pair) -> kube::config::Kubeconfig {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    kubeconfig_for(
        server,
        ca,
        kube::config::AuthInfo {
            client_certificate_data: Some(b64(&pair.cert_pem)),
            client_key_data: Some(secrecy::SecretString::from(b64(&pair.key_pem))),
            ..Default::default()
        },
    )
}

/// A kubeconfig authenticating with a bootstrap token.
fn token_kubeconfig(server: &str, ca: &Path, token: &str) -> kube::config::Kubeconfig {
    kubeconfig_for(
        server,
        ca,
        kube::config::AuthInfo {
            token: Some(secrecy::SecretString::from(token.to_string())),
            ..Default::default()
        },
    )
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
/// signer and waits for the certificate (client-go's `csr.RequestCertificate` and
/// `WaitForCertificate`).
async fn request_certificate(client: &kube::Client, node_name: &str) -> anyhow::Result<Pair> {
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
    tracing::info!(csr = %name, "the node's client certificate is issued");
    let cert_pem = String::from_utf8(cert).context("the issued certificate is not PEM")?;
    let validity = validity_of(cert_pem.as_bytes())?;
    Ok(Pair {
        cert_pem,
        key_pem: key.serialize_pem(),
        validity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed pair valid for `days` (PEM certificate, PEM key).
    fn self_signed(days: i64) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["n".into()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + time::Duration::days(days);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[tokio::test]
    async fn the_older_pair_is_read_and_renewals_replace_the_current_pair_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        assert!(load_pair(&pki).await.unwrap().is_none());
        // What older versions wrote.
        let (cert, key) = self_signed(1);
        write_private(&pki, CERT_FILE, cert.as_bytes())
            .await
            .unwrap();
        write_private(&pki, KEY_FILE, key.as_bytes()).await.unwrap();
        let old = load_pair(&pki).await.unwrap().unwrap();
        assert_eq!(
            (old.cert_pem.as_str(), old.key_pem.as_str()),
            (cert.as_str(), key.as_str())
        );
        // Renewals: the current pair wins over the older files, and only the last two
        // stamped pairs stay.
        let mut names = Vec::new();
        for days in [10, 20, 30] {
            let (cert_pem, key_pem) = self_signed(days);
            let validity = validity_of(cert_pem.as_bytes()).unwrap();
            let pair = Pair {
                cert_pem,
                key_pem,
                validity,
            };
            // Distinct stamps (they have one-second resolution).
            tokio::time::sleep(Duration::from_millis(1100)).await;
            store_pair(&pki, &pair).await.unwrap();
            let loaded = load_pair(&pki).await.unwrap().unwrap();
            assert_eq!(loaded.cert_pem, pair.cert_pem);
            assert_eq!(loaded.key_pem, pair.key_pem);
            names.push(std::fs::read_link(pki.join(CURRENT_PEM)).unwrap());
        }
        let mut stamped: Vec<_> = std::fs::read_dir(&pki)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("kubelet-client-") && n != CURRENT_PEM)
            .collect();
        stamped.sort();
        let mut want: Vec<String> = names[1..].iter().map(|p| p.display().to_string()).collect();
        want.sort();
        assert_eq!(stamped, want);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pki.join(CURRENT_PEM))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
