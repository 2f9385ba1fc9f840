//! Moving bytes both ways between a client and its endpoint: what
//! `tokio::io::copy_bidirectional` does (each direction copies until end of file, then shuts
//! down the write side of the other socket; the first error ends both), with the copy buffers
//! taken only while data is in flight and reused from a small per-thread pool.
//!
//! Why not `copy_bidirectional_with_sizes`: it allocates and zeroes both buffers for every
//! connection up front; for short connections that memset and the page faults behind it were
//! the largest user-space cost of the proxy (`perf`, `benches/haproxy.rs`), and an idle
//! connection kept 128 KiB of committed memory. Here an idle connection holds no buffer, a
//! buffer is never zeroed (reads go into a `Vec`'s spare capacity), and a drained buffer goes
//! back to the pool before the next wait.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

/// Capacity of one copy buffer: 64 KiB moves bulk data in a quarter of the system calls of
/// tokio's 8 KiB default (measured by `benches/proxy.rs`).
pub(crate) const COPY_BUF: usize = 64 * 1024;
/// Buffers kept per thread for reuse; beyond this, drained buffers are freed.
const POOL_MAX: usize = 32;

thread_local! {
    static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

fn take_buffer() -> Vec<u8> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| Vec::with_capacity(COPY_BUF))
}

fn give_back(mut buf: Vec<u8>) {
    buf.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_MAX {
            p.push(buf);
        }
    });
}

/// One direction: bytes read from one socket and not yet written to the other.
#[derive(Default)]
struct Pipe {
    /// Present only while it holds unwritten bytes (or a read is under way).
    buf: Option<Vec<u8>>,
    /// How much of `buf` is written.
    pos: usize,
    /// The reader reached end of file: shut down the writer once `buf` is out.
    eof: bool,
    done: bool,
}

impl Drop for Pipe {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            give_back(b);
        }
    }
}

impl Pipe {
    fn poll_copy(
        &mut self,
        cx: &mut Context<'_>,
        from: &TcpStream,
        to: &mut TcpStream,
        last: bool,
    ) -> Poll<io::Result<()>> {
        loop {
            if let Some(buf) = &self.buf
                && self.pos < buf.len()
            {
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &buf[self.pos..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                continue;
            }
            if self.eof {
                // When the other direction is already done, both sockets are closed as soon
                // as this returns, and the close sends the same FIN (nothing is left unread:
                // the other direction read `to` to its end): no separate shutdown call.
                if !last {
                    ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                }
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            if from.poll_read_ready(cx)?.is_pending() {
                // Nothing in flight: an idle connection holds no buffer.
                if let Some(b) = self.buf.take() {
                    give_back(b);
                }
                return Poll::Pending;
            }
            let buf = self.buf.get_or_insert_with(take_buffer);
            buf.clear();
            self.pos = 0;
            let space = buf.capacity();
            let read = from.try_io(Interest::READABLE, || match from.try_read_buf(buf) {
                // A read that did not fill the buffer drained the socket (epoll is
                // edge-triggered, so later data raises a new event): readiness is cleared
                // here, with the readiness tick taken before the read as tokio's own
                // `poll_read` does, instead of by one more read that returns WouldBlock.
                Ok(n) if n > 0 && n < space => Err(io::ErrorKind::WouldBlock.into()),
                r => r,
            });
            match read {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                // Data read (now in `buf`), or a spurious wake-up; either way readiness is
                // cleared and the next poll registers again once the buffer is out.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Copies both ways between `a` and `b` until both directions reached end of file (each
/// shutting down the other side's write half, the last one by the caller dropping the
/// sockets), or either failed. Drop both sockets when this returns.
pub(crate) fn copy_bidirectional<'a>(
    a: &'a mut TcpStream,
    b: &'a mut TcpStream,
) -> impl Future<Output = io::Result<()>> + 'a {
    let mut a_to_b = Pipe::default();
    let mut b_to_a = Pipe::default();
    std::future::poll_fn(move |cx| {
        if !a_to_b.done {
            // Ready(Ok) marks the pipe done; an error ends both directions.
            if let Poll::Ready(Err(e)) = a_to_b.poll_copy(cx, a, b, b_to_a.done) {
                return Poll::Ready(Err(e));
            }
        }
        if !b_to_a.done
            && let Poll::Ready(Err(e)) = b_to_a.poll_copy(cx, b, a, a_to_b.done)
        {
            return Poll::Ready(Err(e));
        }
        if a_to_b.done && b_to_a.done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    /// client <-> (a | relay | b) <-> server; returns the relay's result.
    async fn relayed() -> (
        TcpStream,
        TcpStream,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ) {
        let (client, mut a) = pair().await;
        let (mut b, server) = pair().await;
        let relay = tokio::spawn(async move { super::copy_bidirectional(&mut a, &mut b).await });
        (client, server, relay)
    }

    /// Sends `data` then half-closes, while reading everything the other side sends.
    async fn exchange(s: &mut TcpStream, data: &[u8]) -> Vec<u8> {
        let (mut r, mut w) = s.split();
        let (got, ()) = tokio::join!(
            async {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            },
            async {
                w.write_all(data).await.unwrap();
                // Half-close: the other side still sends after seeing end of file.
                w.shutdown().await.unwrap();
            }
        );
        got
    }

    /// Runs `f`, failing the test instead of hanging when a relay loses a wake-up.
    async fn within<F: std::future::Future<Output = ()>>(f: F) {
        tokio::time::timeout(std::time::Duration::from_secs(20), f)
            .await
            .expect("relay stalled");
    }

    #[tokio::test]
    async fn copies_both_ways_intact_with_half_close() {
        within(copies_both_ways()).await;
    }

    async fn copies_both_ways() {
        let (mut client, mut server, relay) = relayed().await;
        // More than several buffers' worth, with a pattern that shows reordering or loss.
        let up: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let down: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let srv = tokio::spawn(async move { exchange(&mut server, &down2).await });
        let got = exchange(&mut client, &up2).await;
        assert!(
            got == down,
            "client got {} of {} bytes, or altered",
            got.len(),
            down.len()
        );
        let at_server = srv.await.unwrap();
        assert!(
            at_server == up,
            "server got {} of {} bytes",
            at_server.len(),
            up.len()
        );
        relay.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn one_side_closing_early_lets_the_other_direction_finish() {
        // Many rounds: data and FIN often arrive together, and a short read that drains
        // the data must not lose the end of file behind it.
        within(async {
            for _ in 0..200 {
                small_exchange().await;
            }
        })
        .await;
    }

    async fn small_exchange() {
        let (mut client, mut server, relay) = relayed().await;
        client.write_all(b"ping").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        server.write_all(b"pong").await.unwrap();
        drop(server);
        let mut back = Vec::new();
        client.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pong");
        relay.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_reset_ends_the_relay_with_an_error() {
        let (client, _server, relay) = relayed().await;
        client.set_zero_linger().unwrap();
        drop(client);
        let r = tokio::time::timeout(std::time::Duration::from_secs(10), relay)
            .await
            .expect("relay must end")
            .unwrap();
        assert!(r.is_err(), "{r:?}");
    }
}
