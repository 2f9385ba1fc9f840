//! Runs the API server alone: `cargo run -p apiserver --example serve -- DATA_DIR [HOST:PORT]`.
//! Prints the kubeconfig path; stops on Ctrl-C / SIGTERM.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().unwrap_or_else(|| "paddock-data".into());
    let listen = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or_else(apiserver::Config::default_listen);
    let server = apiserver::start(apiserver::Config {
        listen,
        data_dir: data_dir.into(),
        memory_store: false,
        advertise_host: None,
        extra_sans: Vec::new(),
        max_connections: None,
    })
    .await?;
    println!("{}", server.kubeconfig_path().display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}
