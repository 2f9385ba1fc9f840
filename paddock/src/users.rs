//! `paddock user add` (a client certificate of the cluster CA and a kubeconfig for it) and
//! `paddock token create` (a bootstrap token nodes join with, kubeadm's `token create`). Both
//! run on the server's machine, next to its data dir: `user add` signs with the CA key there;
//! `token create` writes the token's Secret through the API with the admin kubeconfig there.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::{TokenArgs, TokenCommand, UserArgs, UserCommand};
use crate::server::default_data_dir;

/// The server's data dir (which must exist: these commands never make one).
fn server_data_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match arg {
        Some(d) => d,
        None => default_data_dir()?,
    };
    anyhow::ensure!(
        dir.join("ca.crt").exists(),
        "{} holds no cluster CA: pass the server's --data-dir",
        dir.display()
    );
    Ok(dir)
}

/// The server URL of the admin kubeconfig in `data_dir`.
fn server_url(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("kubeconfig");
    let kc = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading {}: pass --server", path.display()))?;
    kc.clusters
        .iter()
        .find_map(|c| c.cluster.as_ref()?.server.clone())
        .with_context(|| format!("{} names no server: pass --server", path.display()))
}

/// A file name for `user` (`system:node:x` → `system_node_x.kubeconfig`).
fn default_out(user: &str) -> PathBuf {
    let safe: String = user
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!("{safe}.kubeconfig"))
}

/// Writes `contents` to a new file `path` with mode 0600 (an existing file is an error).
fn write_new_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

pub(crate) async fn run_user(args: UserArgs) -> anyhow::Result<()> {
    match args.command {
        UserCommand::Add {
            name,
            groups,
            server,
            out,
            ttl,
        } => {
            anyhow::ensure!(!name.is_empty(), "the user name must not be empty");
            anyhow::ensure!(
                groups.iter().all(|g| !g.is_empty()),
                "a group must not be empty"
            );
            let data_dir = server_data_dir(args.data_dir)?;
            let server = match server {
                Some(s) => s,
                None => server_url(&data_dir)?,
            };
            let out = out.unwrap_or_else(|| default_out(&name));
            let ttl = ttl.unwrap_or(apiserver::tls::LEAF_VALIDITY);
            let user = name.clone();
            let text = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
                let ca = apiserver::tls::ClusterCa::load(&data_dir)
                    .with_context(|| format!("reading the cluster CA in {}", data_dir.display()))?
                    .with_context(|| format!("{} holds no CA key", data_dir.display()))?;
                let (key, cert) =
                    apiserver::x509::issue_client_certificate(&ca, &user, &groups, ttl)
                        .context("signing the certificate")?;
                Ok(apiserver::kubeconfig::render_client_cert(
                    &server,
                    ca.cert_pem(),
                    &user,
                    &cert,
                    &key,
                ))
            })
            .await??;
            write_new_private(&out, text.as_bytes())?;
            println!("wrote {} for user {name}", out.display());
            Ok(())
        }
    }
}

pub(crate) async fn run_token(args: TokenArgs) -> anyhow::Result<()> {
    let data_dir = server_data_dir(args.data_dir)?;
    match args.command {
        TokenCommand::Create { ttl, description } => {
            crate::join::create_token(&data_dir, ttl, description).await
        }
    }
}
