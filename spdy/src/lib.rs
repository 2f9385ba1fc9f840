//! SPDY/3.1, the server side, as Kubernetes' streaming protocols still use it: `kubectl
//! port-forward` speaks `portforward.k8s.io` over SPDY streams, either on a connection
//! upgraded with `Upgrade: SPDY/3.1` or tunnelled inside a WebSocket
//! (`SPDY/3.1+portforward.k8s.io`, kubectl ≥ 1.31's default).
//!
//! - [`frame`]: the frame layout, reading and writing;
//! - [`headers`]: header blocks and their dictionary-primed zlib compression;
//! - [`conn`]: a connection — start at [`serve`] (or [`serve_transport`] for a message
//!   transport), which hands out accepted [`Stream`]s.
//!
//! Only what the Kubernetes client (moby/spdystream) uses is implemented: no server push,
//! no flow control (spdystream sends and ignores WINDOW_UPDATE), no priorities.

pub mod conn;
pub mod frame;
pub mod headers;

pub use conn::{Config, HEADROOM, Stream, StreamWriter, Transport, serve, serve_transport};
pub use headers::Headers;

/// Why a connection or a stream operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the connection failed.
    #[error("spdy connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol.
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    /// The peer sent nothing for the idle timeout.
    #[error("spdy connection idle for too long")]
    Idle,
    /// The connection is gone.
    #[error("spdy connection closed")]
    Closed,
}

#[cfg(test)]
mod tests;
