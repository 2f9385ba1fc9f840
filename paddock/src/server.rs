//! `paddock server`: resolve the data dir, start the API server and the in-process
//! controllers, print where the kubeconfig is, and stop cleanly on SIGTERM/SIGINT.

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

/// `--data-dir` or the default, created if missing.
pub(crate) fn resolve_data_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let data_dir = match arg {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
    Ok(data_dir)
}

/// Starts the API server the flags describe (shared by `server` and `up`); returns it with
/// its data dir.
pub(crate) async fn start(
    args: &ServerArgs,
) -> anyhow::Result<(apiserver::RunningServer, PathBuf)> {
    let data_dir = resolve_data_dir(args.data_dir.clone())?;
    let config = apiserver::Config {
        listen: args.listen,
        data_dir: data_dir.clone(),
        memory_store: args.memory,
        advertise_host: None,
        max_connections: args.max_connections.map(|n| n as usize),
    };
    let server = apiserver::start(config).await.with_context(|| {
        format!(
            "cannot start the API server (data dir {})",
            data_dir.display()
        )
    })?;
    Ok((server, data_dir))
}

pub(crate) async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let (server, _) = start(&args).await?;
    let controllers = controllers::start(server.registry());
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
