//! `paddock server`: resolve the data dir, start the API server and the in-process
//! controllers, print where the kubeconfig is, and stop cleanly on SIGTERM/SIGINT. A listen
//! address other than loopback is warned about; an unspecified one puts this machine's
//! addresses into the serving certificate.

use std::path::PathBuf;

use anyhow::Context;

use crate::cli::ServerArgs;

/// The data dir a user gets without `--data-dir`.
pub(crate) fn default_data_dir() -> anyhow::Result<PathBuf> {
    if nix::unistd::Uid::effective().is_root() {
        return Ok(PathBuf::from("/var/lib/paddock"));
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(xdg).join("paddock"));
    }
    let home = std::env::var_os("HOME")
        .context("neither XDG_DATA_HOME nor HOME is set; pass --data-dir")?;
    Ok(PathBuf::from(home).join(".local/share/paddock"))
}

/// `--data-dir` or the default, created if missing (mode 0700), and made private to its owner
/// (0700) if it was not: it holds the store with every Secret, the CA key and the node's state.
pub(crate) fn resolve_data_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let data_dir = match arg {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    let mode = std::fs::metadata(&data_dir)
        .with_context(|| format!("cannot read data dir {}", data_dir.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %data_dir.display(),
            mode = format!("{:o}", mode & 0o7777),
            "the data dir was readable by others: made it 0700"
        );
        std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make data dir {} private", data_dir.display()))?;
    }
    Ok(data_dir)
}

/// Starts the API server the flags describe (shared by `server` and `up`); returns it with
/// its data dir.
pub(crate) async fn start(
    args: &ServerArgs,
) -> anyhow::Result<(apiserver::RunningServer, PathBuf)> {
    let data_dir = resolve_data_dir(args.data_dir.clone())?;
    let mut extra_sans = args.tls_san.clone();
    let ip = args.listen.ip();
    if !ip.is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "the API server (a root shell on this machine for whoever holds its token) is reachable from the network"
        );
    }
    if ip.is_unspecified() {
        let mine = host_addresses();
        tracing::warn!(
            addresses = ?mine,
            "--listen {ip} serves every address of this machine: they go into the serving certificate; use --advertise-address and --tls-san to name how clients reach it"
        );
        extra_sans.extend(mine.iter().map(ToString::to_string));
    }
    let config = apiserver::Config {
        listen: args.listen,
        data_dir: data_dir.clone(),
        memory_store: args.memory,
        advertise_host: args.advertise_address.map(|a| a.to_string()),
        extra_sans,
        max_connections: args.max_connections.map(|n| n as usize),
    };
    let server = apiserver::start(config).await.with_context(|| {
        format!(
            "cannot start the API server (data dir {})",
            data_dir.display()
        )
    })?;
    server
        .registry()
        .set_default_toleration_seconds(args.default_toleration_seconds());
    server.start_resource_metrics(args.metric_resolution);
    Ok((server, data_dir))
}

/// This machine's addresses (IPv6 link-local ones excepted: they need a zone to be dialled).
fn host_addresses() -> Vec<std::net::IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<std::net::IpAddr> = addrs
        .filter_map(|a| {
            let addr = a.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                return Some(std::net::IpAddr::V4(v4.ip()));
            }
            let v6 = addr.as_sockaddr_in6()?.ip();
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            (!link_local).then_some(std::net::IpAddr::V6(v6))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let options = args.controller_options().map_err(anyhow::Error::msg)?;
    let (server, _) = start(&args).await?;
    let controllers = crate::control::start(&server, options);
    println!("export KUBECONFIG={}", server.kubeconfig_path().display());
    tracing::info!(addr = %server.local_addr(), "serving");

    wait_for_signal().await?;
    tracing::info!("shutting down");
    controllers.stop().await;
    server.shutdown().await;
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
pub(crate) async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
