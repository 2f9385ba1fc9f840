//! A connection driven by a minimal client built from the crate's own frames and codec.

use bytes::{Bytes, BytesMut};
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
