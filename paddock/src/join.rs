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
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

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
