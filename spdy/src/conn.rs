//! The server side of a SPDY/3.1 connection as Kubernetes' streaming protocols use it
//! (client-go's `httpstream/spdy` over `moby/spdystream`): the client opens streams with
//! SYN_STREAM, the server accepts each with SYN_REPLY (or refuses it with RST_STREAM), both
//! send data frames, and either ends its side with FIN. Client pings are answered. There is no
//! flow control (spdystream does none): the bounded per-stream queues push back instead, by
//! pausing the whole connection's reader while a stream's consumer is behind.
//!
//! Start at [`serve`].

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::Error;
use crate::frame::{self, FLAG_FIN, Frame, status};
use crate::headers::{self, Codec, Headers};

/// Limits of one connection.
#[derive(Debug, Clone)]
pub struct Config {
    /// Streams the peer may have open at once; more are refused (RST_STREAM REFUSED_STREAM).
    pub max_streams: usize,
    /// The largest frame payload accepted (a larger one ends the connection).
    pub max_frame: usize,
    /// The connection ends when the peer sends nothing (not even a ping) for this long.
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_streams: 256,
            max_frame: 1 << 20,
            // The kubelet's default streamingConnectionIdleTimeout.
            idle_timeout: Duration::from_secs(4 * 3600),
        }
    }
}

/// Data frames sent are at most this long.
const CHUNK: usize = 64 * 1024;
/// Received data chunks queued per stream before the connection's reader waits.
const STREAM_QUEUE: usize = 16;
/// Frames queued for the writer.
const OUT_QUEUE: usize = 64;

#[derive(Debug)]
enum Out {
    Reply(u32),
    Data(u32, Bytes, bool),
    Rst(u32, u32),
    Ping(u32),
    GoAway(u32),
}

/// A stream the peer opened (and the server accepted).
#[derive(Debug)]
pub struct Stream {
    id: u32,
    headers: Headers,
    rx: mpsc::Receiver<Bytes>,
    writer: StreamWriter,
}

impl Stream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The headers of its SYN_STREAM (lowercase names).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::get(&self.headers, name)
    }

    /// The next data the peer sent; `None` once it closed its side (FIN), reset the stream
    /// or the connection ended.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// A handle to send on this stream.
    pub fn writer(&self) -> StreamWriter {
        self.writer.clone()
    }

    /// The receiving half and the sending half, to use from two tasks.
    pub fn into_parts(self) -> (mpsc::Receiver<Bytes>, StreamWriter) {
        (self.rx, self.writer)
    }
}

/// The sending half of a [`Stream`].
#[derive(Debug, Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
}

impl StreamWriter {
    /// Sends `data` (split into frames of at most 64 KiB).
    pub async fn write(&self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(CHUNK));
            self.send(Out::Data(self.id, chunk, false)).await?;
        }
        Ok(())
    }

    /// Ends this side of the stream (an empty data frame with FIN).
    pub async fn close(&self) -> Result<(), Error> {
        self.send(Out::Data(self.id, Bytes::new(), true)).await
    }

    /// Abandons the stream (RST_STREAM CANCEL).
    pub async fn reset(&self) -> Result<(), Error> {
        self.send(Out::Rst(self.id, status::CANCEL)).await
    }

    async fn send(&self, o: Out) -> Result<(), Error> {
        self.out.send(o).await.map_err(|_| Error::Closed)
    }
}

/// Serves one connection until the peer goes away, sends GOAWAY, breaks the protocol or is
/// idle for [`Config::idle_timeout`]. Every stream the peer opens is checked by `accept`
/// (an `Err` refuses it with RST_STREAM, as client-go's server does when its stream handler
/// fails), answered with SYN_REPLY and handed to `streams`; when `streams` is closed the
/// connection ends. Streams still held after the return see their receivers end and their
/// writes fail once the queued frames are written.
pub async fn serve<IO, F>(
    io: IO,
    cfg: Config,
    accept: F,
    streams: mpsc::Sender<Stream>,
) -> Result<(), Error>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    F: Fn(&Headers) -> Result<(), String>,
{
    let (r, w) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(write_loop(w, out_rx));
    let mut last_id = 0u32;
    let result = read_loop(r, &cfg, &accept, &streams, &out_tx, &mut last_id).await;
    // Let what is queued go out, then stop the writer: its channel closes once the last
    // stream writer is gone too, but a dead peer must not keep the task alive. GOAWAY
    // names the last stream the peer opened that this side saw (SPDY/3.1 §2.6.6).
    let _ = out_tx.send(Out::GoAway(last_id)).await;
    drop(out_tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    result
}

async fn read_loop<R, F>(
    r: R,
    cfg: &Config,
    accept: &F,
    streams: &mpsc::Sender<Stream>,
    out: &mpsc::Sender<Out>,
    last_id: &mut u32,
) -> Result<(), Error>
where
    R: AsyncRead + Unpin,
    F: Fn(&Headers) -> Result<(), String>,
{
    let mut r = BufReader::new(r);
    let mut codec = Codec::new()?;
    let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    loop {
        let frame = match tokio::time::timeout(cfg.idle_timeout, frame::read(&mut r, cfg.max_frame))
            .await
        {
            Err(_) => return Err(Error::Idle),
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => return Err(e),
        };
        match frame {
            Frame::SynStream {
                stream,
                flags,
                block,
            } => {
                // The header stream must be decoded even for a refused stream: the
                // compression context spans every block.
                let hs = codec.decode(&block)?;
                if stream % 2 == 0 || stream <= *last_id {
                    return Err(Error::Protocol(format!(
                        "stream id {stream} is not a new client stream"
                    )));
                }
                *last_id = stream;
                open.retain(|_, tx| !tx.is_closed());
                if open.len() >= cfg.max_streams {
                    send(out, Out::Rst(stream, status::REFUSED_STREAM)).await?;
                    continue;
                }
                if let Err(why) = accept(&hs) {
                    tracing::debug!(stream, %why, "stream rejected");
                    send(out, Out::Rst(stream, status::CANCEL)).await?;
                    continue;
                }
                let (tx, rx) = mpsc::channel(STREAM_QUEUE);
                if flags & FLAG_FIN == 0 {
                    open.insert(stream, tx);
                }
                send(out, Out::Reply(stream)).await?;
                let s = Stream {
                    id: stream,
                    headers: hs,
                    rx,
                    writer: StreamWriter {
                        id: stream,
                        out: out.clone(),
                    },
                };
                if streams.send(s).await.is_err() {
                    return Ok(());
                }
            }
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                if let Some(tx) = open.get(&stream) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        // The consumer is gone: drop what it no longer reads.
                        open.remove(&stream);
                    }
                    if flags & FLAG_FIN != 0 {
                        open.remove(&stream);
                    }
                }
            }
            Frame::RstStream { stream, .. } => {
                open.remove(&stream);
            }
            Frame::SynReply { block, .. } | Frame::Headers { block, .. } => {
                // Keep the compression context in step; the content is of no use here.
                codec.decode(&block)?;
            }
            Frame::Ping(id) => {
                // Odd ids are the client's; an even one would be an answer to us.
                if id % 2 == 1 {
                    send(out, Out::Ping(id)).await?;
                }
            }
            Frame::GoAway { .. } => return Ok(()),
            Frame::Settings | Frame::WindowUpdate => {}
        }
    }
}

async fn send(out: &mpsc::Sender<Out>, o: Out) -> Result<(), Error> {
    out.send(o).await.map_err(|_| Error::Closed)
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Out>) {
    let Ok(mut codec) = Codec::new() else {
        return;
    };
    let mut buf = BytesMut::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut stop = false;
        // Batch what is already queued into one write.
        while let Some(o) = next.take() {
            let frame = match o {
                Out::Reply(stream) => match codec.encode(&[]) {
                    Ok(block) => Frame::SynReply {
                        stream,
                        flags: 0,
                        block,
                    },
                    Err(_) => return,
                },
                Out::Data(stream, data, fin) => Frame::Data {
                    stream,
                    flags: if fin { FLAG_FIN } else { 0 },
                    data,
                },
                Out::Rst(stream, status) => Frame::RstStream { stream, status },
                Out::Ping(id) => Frame::Ping(id),
                Out::GoAway(last_stream) => {
                    stop = true;
                    Frame::GoAway {
                        last_stream,
                        status: 0,
                    }
                }
            };
            frame::write(&frame, &mut buf);
            if stop || buf.len() >= CHUNK {
                break;
            }
            next = rx.try_recv().ok();
        }
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            return;
        }
        buf.clear();
        if stop {
            let _ = w.shutdown().await;
            return;
        }
    }
}
