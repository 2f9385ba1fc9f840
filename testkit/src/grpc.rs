//! gRPC test servers: the standard health service with a settable status per service name,
//! and a gRPC server that does not implement the health protocol.

use std::convert::Infallible;
use std::net::SocketAddr;

use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::{AbortOnDrop, Error};

/// A running `grpc.health.v1.Health` server (tonic-health); the empty service name starts
/// `SERVING`, named services are unknown until set.
#[derive(Debug)]
pub struct GrpcHealthServer {
    addr: SocketAddr,
    reporter: HealthReporter,
    _task: AbortOnDrop,
}

impl GrpcHealthServer {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (reporter, service) = tonic_health::server::health_reporter();
        let incoming = TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await;
        });
        Ok(Self {
            addr,
            reporter,
            _task: AbortOnDrop(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Sets the status reported for `service` (`""` is the whole server).
    pub async fn set_status(&self, service: &str, status: ServingStatus) {
        self.reporter.set_service_status(service, status).await;
    }
}

/// A gRPC (HTTP/2) server that answers every call with `UNIMPLEMENTED`
/// (`unknown service grpc.health.v1.Health`, as grpc-go servers do).
#[derive(Debug)]
pub struct GrpcWithoutHealth {
    addr: SocketAddr,
    _task: AbortOnDrop,
}

impl GrpcWithoutHealth {
    /// Starts the server on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(|req: hyper::Request<_>| async move {
                        let svc = req.uri().path().trim_start_matches('/');
                        let svc = svc.split('/').next().unwrap_or_default().to_string();
                        let status = tonic::Status::unimplemented(format!("unknown service {svc}"));
                        Ok::<_, Infallible>(status.into_http::<tonic::body::Body>())
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Ok(Self {
            addr,
            _task: AbortOnDrop(task),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Re-exported so tests can name statuses without depending on tonic-health.
pub use tonic_health::ServingStatus as HealthStatus;
