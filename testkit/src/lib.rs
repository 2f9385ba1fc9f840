//! Test-only helpers for paddock: in-process servers that misbehave on purpose.
//!
//! Every server binds `127.0.0.1:0`, runs on the caller's tokio runtime and stops when its value
//! is dropped, so tests never leak sockets or tasks and never touch a non-loopback address.
//! Start reading at [`http::HttpServer`] (plain HTTP and HTTPS with a self-signed certificate,
//! with routes for slow headers, slow bodies, big bodies, redirects and switchable status codes),
//! then [`tcp`] (refused ports, a blackhole for connect timeouts, a connection counter),
//! [`grpc`] (a gRPC health server with settable status, and a server without the health service)
//! and [`fs`] (a small file system that runs out of space on demand).
//!
//! Later end-to-end tests (agent, proxy, cluster harness) reuse these servers.

pub mod fs;
pub mod grpc;
pub mod http;
pub mod tcp;

/// Errors from starting a test server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or configuring a loopback socket failed.
    #[error("test server socket: {0}")]
    Io(#[from] std::io::Error),
    /// Generating the self-signed certificate failed.
    #[error("self-signed certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// Building the TLS server configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Aborts a spawned task when dropped, so a server stops with its handle.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
