//! Plain TCP test endpoints: a port that refuses, a blackhole whose connects never complete, and
//! a listener that counts connections and the bytes clients sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::{AbortOnDrop, Error};

/// Returns a loopback address on which nothing listens, so a connect is refused at once.
///
/// The port was just bound and released; another test could grab it in between, which on a
/// test machine is rare enough to accept.
pub async fn refused_addr() -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    drop(listener);
    Ok(addr)
}

/// A loopback listener whose accept queue is full, so new connects hang (the kernel drops their
/// SYNs) until the client gives up: a connect timeout without leaving loopback.
#[derive(Debug)]
pub struct Blackhole {
    addr: SocketAddr,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    /// Binds with a backlog of 0 and never accepts, then fills the queue with connections
    /// until one no longer completes.
    pub async fn start() -> Result<Self, Error> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(0)?;
        let addr = listener.local_addr()?;
        let mut fillers = Vec::new();
        for _ in 0..16 {
            match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => fillers.push(s),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => break, // this connect hung: the queue is full
            }
        }
        Ok(Self {
            addr,
            _listener: listener,
            _fillers: fillers,
        })
    }

    /// The address whose connects hang.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[derive(Debug, Default)]
struct Counts {
    connections: AtomicUsize,
    bytes: AtomicUsize,
}

/// A listener that accepts connections, reads whatever clients send until they close, and
/// counts both. Used to prove a TCP probe connects and sends nothing.
#[derive(Debug)]
pub struct CountingListener {
    addr: SocketAddr,
    counts: Arc<Counts>,
    _task: AbortOnDrop,
}

impl CountingListener {
    /// Starts the listener on `127.0.0.1:0`.
    pub async fn start() -> Result<Self, Error> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                c.connections.fetch_add(1, Ordering::SeqCst);
                let c = c.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        c.bytes.fetch_add(n, Ordering::SeqCst);
                    }
                });
            }
        });
        Ok(Self {
            addr,
            counts,
            _task: AbortOnDrop(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counts.connections.load(Ordering::SeqCst)
    }

    /// Bytes received from all clients so far.
    pub fn bytes_received(&self) -> usize {
        self.counts.bytes.load(Ordering::SeqCst)
    }
}
