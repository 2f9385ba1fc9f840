//! The server side of a SPDY/3.1 connection as Kubernetes' streaming protocols use it
//! (client-go's `httpstream/spdy` over `moby/spdystream`): the client opens streams with
//! SYN_STREAM, the server accepts each with SYN_REPLY (or refuses it with RST_STREAM), both
//! send data frames, and either ends its side with FIN. Client pings are answered. There is no
//! flow control (spdystream does none): the bounded per-stream queues push back instead, by
//! pausing the whole connection's reader while a stream's consumer is behind.
//!
//! Outgoing frames go through a [`Transport`]: a byte stream ([`serve`]), or a message
//! transport such as a WebSocket's binary messages ([`serve_transport`]), which then carries
//! each frame as it is, without an intermediate pipe. Data the caller already read into a
//! buffer with [`HEADROOM`] in front ([`StreamWriter::write_framed`]) becomes a frame without
//! being copied.
//!
//! Start at [`serve`].

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::mpsc;

use crate::Error;
use crate::frame::{self, DATA_HEADER, FLAG_FIN, Frame, MAX_LENGTH, status};
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

/// Data frames [`StreamWriter::write`] sends are at most this long.
const CHUNK: usize = 64 * 1024;
/// Received data chunks queued per stream before the connection's reader waits.
const STREAM_QUEUE: usize = 16;
/// Frames queued for the writer.
const OUT_QUEUE: usize = 64;
/// Small frames on a byte stream are gathered in a buffer this large before they are written;
/// larger ones are written straight from their own buffer.
const SMALL_WRITES: usize = 8 * 1024;

/// The bytes a buffer given to [`StreamWriter::write_framed`] keeps in front of its payload:
/// the data frame's header is written there.
pub const HEADROOM: usize = DATA_HEADER;

#[derive(Debug)]
enum Out {
    Reply(u32),
    /// A whole data frame, header included.
    Data(Bytes),
    Rst(u32, u32),
    Ping(u32),
    GoAway(u32),
}

/// Where a connection's outgoing frames go. Each call to [`Transport::send`] carries one whole
/// frame; [`Transport::flush`] follows once no more frames are queued.
pub trait Transport: Send + 'static {
    /// Queues or writes one frame.
    fn send(&mut self, frame: Bytes) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Writes out whatever [`Transport::send`] queued.
    fn flush(&mut self) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Ends the transport after the last frame (GOAWAY) went out.
    fn close(&mut self) -> impl Future<Output = ()> + Send;
}

/// A byte stream as a [`Transport`]: small frames are gathered, large ones written as they
/// are.
struct ByteStream<W: AsyncWrite>(BufWriter<W>);

impl<W: AsyncWrite + Unpin + Send + 'static> Transport for ByteStream<W> {
    async fn send(&mut self, frame: Bytes) -> std::io::Result<()> {
        self.0.write_all(&frame).await
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().await
    }

    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
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
    /// Sends `data` (copied into frames of at most 64 KiB).
    pub async fn write(&self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(CHUNK));
            let mut f = BytesMut::with_capacity(DATA_HEADER + chunk.len());
            f.put_slice(&frame::data_header(self.id, 0, chunk.len()));
            f.put_slice(&chunk);
            self.send(Out::Data(f.freeze())).await?;
        }
        Ok(())
    }

    /// Sends the payload of `buf` — everything after its first [`HEADROOM`] bytes, which are
    /// overwritten with the frame header — as one data frame, without copying it. A buffer
    /// without payload sends nothing; one shorter than [`HEADROOM`] or with more than
    /// [`MAX_LENGTH`] bytes of payload is refused.
    pub async fn write_framed(&self, mut buf: BytesMut) -> Result<(), Error> {
        let Some(len) = buf.len().checked_sub(HEADROOM) else {
            return Err(Error::Protocol(format!(
                "a framed buffer needs {HEADROOM} bytes of headroom"
            )));
        };
        if len == 0 {
            return Ok(());
        }
        if len > MAX_LENGTH {
            return Err(Error::Protocol(format!(
                "a data frame of {len} bytes exceeds the limit of {MAX_LENGTH}"
            )));
        }
        buf[..HEADROOM].copy_from_slice(&frame::data_header(self.id, 0, len));
        self.send(Out::Data(buf.freeze())).await
    }

    /// Ends this side of the stream (an empty data frame with FIN).
    pub async fn close(&self) -> Result<(), Error> {
        let f = Bytes::copy_from_slice(&frame::data_header(self.id, FLAG_FIN, 0));
        self.send(Out::Data(f)).await
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
    let out = ByteStream(BufWriter::with_capacity(SMALL_WRITES, w));
    serve_transport(r, out, cfg, accept, streams).await
}

/// [`serve`] with the connection's bytes read from `r` and its frames sent through `out`
/// (a WebSocket carrying the connection in binary messages sends each frame as a message).
pub async fn serve_transport<R, T, F>(
    r: R,
    out: T,
    cfg: Config,
    accept: F,
    streams: mpsc::Sender<Stream>,
) -> Result<(), Error>
where
    R: AsyncRead + Unpin,
    T: Transport,
    F: Fn(&Headers) -> Result<(), String>,
{
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let writer = tokio::spawn(write_loop(out, out_rx));
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

async fn write_loop<T: Transport>(mut out: T, mut rx: mpsc::Receiver<Out>) {
    let Ok(mut codec) = Codec::new() else {
        return;
    };
    let mut control = BytesMut::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut stop = false;
        // Send what is already queued, then flush once.
        while let Some(o) = next.take() {
            let frame = match o {
                Out::Data(f) => f,
                Out::Reply(stream) => match codec.encode(&[]) {
                    Ok(block) => encode(
                        &mut control,
                        &Frame::SynReply {
                            stream,
                            flags: 0,
                            block,
                        },
                    ),
                    Err(_) => return,
                },
                Out::Rst(stream, status) => {
                    encode(&mut control, &Frame::RstStream { stream, status })
                }
                Out::Ping(id) => encode(&mut control, &Frame::Ping(id)),
                Out::GoAway(last_stream) => {
                    stop = true;
                    encode(
                        &mut control,
                        &Frame::GoAway {
                            last_stream,
                            status: 0,
                        },
                    )
                }
            };
            if out.send(frame).await.is_err() {
                return;
            }
            if stop {
                break;
            }
            next = rx.try_recv().ok();
        }
        if out.flush().await.is_err() {
            return;
        }
        if stop {
            out.close().await;
            return;
        }
    }
}

fn encode(buf: &mut BytesMut, f: &Frame) -> Bytes {
    frame::write(f, buf);
    buf.split().freeze()
}
