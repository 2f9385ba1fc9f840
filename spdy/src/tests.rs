//! A connection driven by a minimal client built from the crate's own frames and codec.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::frame::{self, FLAG_FIN, Frame, MAX_LENGTH, status};
use crate::headers::{self, Codec};
use crate::{Config, Stream, serve};

struct Client {
    io: DuplexStream,
    codec: Codec,
}

impl Client {
    async fn send(&mut self, f: Frame) {
        let mut b = BytesMut::new();
        frame::write(&f, &mut b);
        self.io.write_all(&b).await.unwrap();
    }

    async fn open(&mut self, id: u32, hs: &[(&str, &str)], flags: u8) {
        let block = self.codec.encode(hs).unwrap();
        self.send(Frame::SynStream {
            stream: id,
            flags,
            block,
        })
        .await;
    }

    async fn next(&mut self) -> Option<Frame> {
        frame::read(&mut self.io, MAX_LENGTH).await.unwrap()
    }
}

/// A server whose accepted streams echo what they receive, then close.
fn start(cfg: Config) -> (Client, tokio::task::JoinHandle<Result<(), crate::Error>>) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let (tx, mut rx) = mpsc::channel::<Stream>(8);
    let server = tokio::spawn(serve(
        b,
        cfg,
        |h| match headers::get(h, "streamtype") {
            Some("bad") => Err("bad stream".into()),
            _ => Ok(()),
        },
        tx,
    ));
    tokio::spawn(async move {
        while let Some(mut s) = rx.recv().await {
            tokio::spawn(async move {
                let w = s.writer();
                while let Some(d) = s.recv().await {
                    w.write(d).await.unwrap();
                }
                w.close().await.unwrap();
            });
        }
    });
    (
        Client {
            io: a,
            codec: Codec::new().unwrap(),
        },
        server,
    )
}

#[tokio::test]
async fn streams_are_accepted_echoed_and_closed() {
    let (mut c, server) = start(Config::default());
    c.open(1, &[("streamType", "data"), ("port", "80")], 0)
        .await;
    let Some(Frame::SynReply { stream: 1, .. }) = c.next().await else {
        panic!("no reply")
    };
    c.send(Frame::Data {
        stream: 1,
        flags: 0,
        data: Bytes::from_static(b"ping"),
    })
    .await;
    assert_eq!(
        c.next().await,
        Some(Frame::Data {
            stream: 1,
            flags: 0,
            data: Bytes::from_static(b"ping")
        })
    );
    c.send(Frame::Ping(1)).await;
    assert_eq!(c.next().await, Some(Frame::Ping(1)));
    c.send(Frame::Data {
        stream: 1,
        flags: FLAG_FIN,
        data: Bytes::new(),
    })
    .await;
    assert_eq!(
        c.next().await,
        Some(Frame::Data {
            stream: 1,
            flags: FLAG_FIN,
            data: Bytes::new()
        })
    );
    c.send(Frame::GoAway {
        last_stream: 0,
        status: 0,
    })
    .await;
    server.await.unwrap().unwrap();
    // The server's own GOAWAY names the last stream the client opened.
    assert!(matches!(
        c.next().await,
        Some(Frame::GoAway { last_stream: 1, .. })
    ));
}

#[tokio::test]
async fn rejected_and_excess_streams_are_reset() {
    let (mut c, _server) = start(Config {
        max_streams: 1,
        ..Config::default()
    });
    c.open(1, &[("streamType", "bad")], 0).await;
    assert_eq!(
        c.next().await,
        Some(Frame::RstStream {
            stream: 1,
            status: status::CANCEL
        })
    );
    c.open(3, &[("streamType", "data")], 0).await;
    assert!(matches!(
        c.next().await,
        Some(Frame::SynReply { stream: 3, .. })
    ));
    // The header context stays in step after a refusal: this one decodes too.
    c.open(5, &[("streamType", "data")], 0).await;
    assert_eq!(
        c.next().await,
        Some(Frame::RstStream {
            stream: 5,
            status: status::REFUSED_STREAM
        })
    );
}

#[tokio::test]
async fn protocol_errors_end_the_connection() {
    let (mut c, server) = start(Config::default());
    c.open(3, &[("a", "b")], 0).await;
    assert!(matches!(c.next().await, Some(Frame::SynReply { .. })));
    // A stream id going backwards.
    c.open(1, &[("a", "b")], 0).await;
    assert!(server.await.unwrap().is_err());

    let (mut c, server) = start(Config::default());
    // Garbage where a header block should be.
    c.send(Frame::SynStream {
        stream: 1,
        flags: 0,
        block: Bytes::from_static(b"garbage"),
    })
    .await;
    assert!(server.await.unwrap().is_err());
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_ends() {
    let (_c, server) = start(Config {
        idle_timeout: std::time::Duration::from_secs(60),
        ..Config::default()
    });
    let e = server.await.unwrap().unwrap_err();
    assert!(matches!(e, crate::Error::Idle), "{e}");
}

/// What a message transport saw: each frame sent, each flush, the close.
#[derive(Debug, PartialEq)]
enum Event {
    Frame(Frame),
    Flush,
    Close,
}

/// A message transport recording what it is given, and where each message's bytes are.
struct Messages(
    mpsc::UnboundedSender<Event>,
    std::sync::Arc<std::sync::Mutex<Vec<usize>>>,
);

impl crate::Transport for Messages {
    async fn send(&mut self, f: Bytes) -> std::io::Result<()> {
        self.1.lock().unwrap().push(f.as_ptr() as usize);
        // Every message must hold exactly one whole frame.
        let mut r = &f[..];
        let frame = frame::read(&mut r, MAX_LENGTH)
            .await
            .map_err(std::io::Error::other)?
            .ok_or_else(|| std::io::Error::other("empty message"))?;
        assert!(r.is_empty(), "a message holds more than one frame");
        let _ = self.0.send(Event::Frame(frame));
        Ok(())
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let _ = self.0.send(Event::Flush);
        Ok(())
    }

    async fn close(&mut self) {
        let _ = self.0.send(Event::Close);
    }
}

#[tokio::test]
async fn a_message_transport_gets_one_frame_per_message_and_framed_writes_are_not_copied() {
    let (mut client, server_io) = tokio::io::duplex(1 << 16);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let at = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (tx, mut rx) = mpsc::channel::<Stream>(8);
    let server = tokio::spawn(crate::serve_transport(
        server_io,
        Messages(events_tx, at.clone()),
        Config::default(),
        |_| Ok(()),
        tx,
    ));
    let mut codec = Codec::new().unwrap();
    let mut b = BytesMut::new();
    frame::write(
        &Frame::SynStream {
            stream: 1,
            flags: 0,
            block: codec.encode(&[("streamType", "data")]).unwrap(),
        },
        &mut b,
    );
    client.write_all(&b).await.unwrap();
    let s = rx.recv().await.unwrap();
    assert!(matches!(
        events.recv().await,
        Some(Event::Frame(Frame::SynReply { stream: 1, .. }))
    ));
    assert_eq!(events.recv().await, Some(Event::Flush));

    // A buffer with headroom becomes one frame; the header lands in the headroom, in place.
    let w = s.writer();
    let mut buf = BytesMut::with_capacity(crate::HEADROOM + 5);
    buf.put_bytes(0xff, crate::HEADROOM);
    buf.put_slice(b"hello");
    let payload_at = buf[crate::HEADROOM..].as_ptr();
    w.write_framed(buf).await.unwrap();
    let Some(Event::Frame(Frame::Data {
        stream: 1,
        flags: 0,
        data,
    })) = events.recv().await
    else {
        panic!("no data frame")
    };
    assert_eq!(&data[..], b"hello");
    assert_eq!(events.recv().await, Some(Event::Flush));
    // The message is the caller's buffer itself, header in its headroom.
    assert_eq!(
        at.lock().unwrap().last().copied(),
        Some(payload_at as usize - crate::HEADROOM)
    );

    // Nothing to send, and a buffer without room for the header, are not frames.
    let mut empty = BytesMut::new();
    empty.put_bytes(0, crate::HEADROOM);
    w.write_framed(empty).await.unwrap();
    assert!(w.write_framed(BytesMut::from(&b"abc"[..])).await.is_err());

    // Longer writes are split into 64 KiB frames; FIN comes last; a flush follows the last.
    w.write(Bytes::from(vec![7u8; (64 << 10) + 1]))
        .await
        .unwrap();
    w.close().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match events.recv().await.unwrap() {
            Event::Flush => {}
            Event::Frame(Frame::Data { data, flags, .. }) => seen.push((data.len(), flags)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, [(64 << 10, 0), (1, 0), (0, FLAG_FIN)]);
    assert_eq!(events.recv().await, Some(Event::Flush));

    // The client goes away: GOAWAY is the last frame, then the transport is closed.
    drop(client);
    server.await.unwrap().unwrap();
    let mut rest = Vec::new();
    while let Some(e) = events.recv().await {
        rest.push(e);
    }
    assert_eq!(
        rest.last(),
        Some(&Event::Close),
        "the transport is closed last: {rest:?}"
    );
    assert!(rest.contains(&Event::Frame(Frame::GoAway {
        last_stream: 1,
        status: 0
    })));
}
