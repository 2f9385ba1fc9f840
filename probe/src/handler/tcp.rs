//! `tcpSocket`: connect, close, nothing sent [pkg/probe/tcp/tcp.go].
//!
//! Success has empty output; a dial error is a failure whose output is Go's error text
//! (`dial tcp 10.1.2.3:8080: connect: connection refused`, `... i/o timeout`).

use std::time::Duration;

use tokio::time::Instant;

use super::{HandlerOutput, dial};
use crate::types::HandlerResult;

/// Probes `host:port` with a connect that must finish within `timeout`.
pub async fn probe(host: &str, port: u16, timeout: Duration) -> HandlerOutput {
    match dial(host, port, Instant::now() + timeout).await {
        Ok(stream) => {
            drop(stream);
            HandlerOutput::new(HandlerResult::Success, "")
        }
        Err(e) => HandlerOutput::new(HandlerResult::Failure, e.to_string()),
    }
}
