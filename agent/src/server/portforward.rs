//! `kubectl port-forward`: `GET|POST /portForward/{namespace}/{pod}`, the kubelet's
//! `portforward.k8s.io` protocol over SPDY/3.1 streams [kubelet
//! cri/streaming/portforward/httpstream.go], reached in either of the two ways kubectl uses:
//! - a WebSocket upgrade with subprotocol `SPDY/3.1+portforward.k8s.io` whose binary messages
//!   carry the SPDY connection (kubectl ≥ 1.31's default, tunnelled by the API server);
//! - `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io` (older kubectl,
//!   and newer ones when the WebSocket upgrade is refused);
//! - a WebSocket with the `v4.channel.k8s.io` channels and `port` query parameters, for clients
//!   without SPDY ([`super::portforward_ws`]).
//!
//! Each forwarded connection is a pair of streams with the same `requestID` header: `error`
//! (the server writes a failure's text there) and `data` (the bytes, both ways), each naming
//! the `port`. The pod end is `localhost:<port>` in the pod's network namespace
//! ([`crate::runtime::Runtime::port_forward`]). A pair not complete within 30 s is dropped
//! with `timed out waiting for streams`, as the kubelet's streamCreationTimeout does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{ServerState, bad_request, status_error};
use crate::runtime::Runtime;

/// The WebSocket subprotocol of the SPDY tunnel.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// The stream protocol (the `X-Stream-Protocol-Version` of a SPDY upgrade).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The kubelet's default stream creation timeout.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Pending (incomplete) stream pairs one connection may hold.
const MAX_PENDING: usize = 128;

pub(crate) async fn handler(
    State(s): State<ServerState>,
    Path((ns, pod)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(entry) = s.directory.get(&ns, &pod) else {
        return status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pod {pod:?} not found"),
        );
    };
    let target = Target {
        runtime: s.runtime.clone(),
        uid: entry.uid,
    };
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if upgrade == "websocket" {
        let (mut parts, _) = req.into_parts();
        let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(ws) => ws,
            Err(e) => return bad_request(&format!("unable to upgrade: {e}")),
        };
        let offered: Vec<String> = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|p| p.trim().to_string())
            .collect();
        if offered.iter().any(|p| p == TUNNEL_PROTOCOL) {
            return ws
                .protocols([TUNNEL_PROTOCOL])
                .on_upgrade(move |socket| tunnel(socket, target));
        }
        // Channels in the WebSocket itself (the Python client, browsers).
        let q = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(q)| q)
            .unwrap_or_default();
        return super::portforward_ws::upgrade(ws, &offered, &q, target);
    }
    if upgrade == "spdy/3.1" {
        let offered = req
            .headers()
            .get_all("x-stream-protocol-version")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == PROTOCOL);
        if !offered {
            return status_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!(
                    "unable to upgrade: unable to negotiate protocol: client supports no protocol this server supports ({PROTOCOL})"
                ),
            );
        }
        let on = hyper::upgrade::on(req);
        tokio::spawn(async move {
            match on.await {
                Ok(io) => {
                    let io = TokioIo::new(io);
                    session(
                        move |cfg, streams| spdy::serve(io, cfg, check_headers, streams),
                        target,
                    )
                    .await
                }
                Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
            }
        });
        let mut r = Response::new(axum::body::Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = r.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        h.insert(
            "x-stream-protocol-version",
            HeaderValue::from_static(PROTOCOL),
        );
        return r;
    }
    bad_request("unable to upgrade: missing upgrade headers in request")
}

/// The pod a connection forwards to.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) uid: String,
}

impl Target {
    /// What the kubelet writes on a port's error stream when the runtime could not connect.
    pub(crate) fn error_message(&self, port: u16, e: &str) -> String {
        format!(
            "error forwarding port {port} to pod {}, uid : {e}",
            self.uid
        )
    }
}

/// Bytes read from the pod at once: one data frame (or channel message) each.
pub(crate) const RELAY_READ: usize = 64 * 1024;

/// Relays one forwarded connection: what the client sends goes to the pod until the client
/// ends its side (then the pod's socket is shut down for writing and its answer still flows);
/// what the pod sends goes to the client (`send` says whether it could) until the pod ends
/// its side. Each buffer given to `send` starts with `headroom` bytes of room for the
/// transport's own header, then up to [`RELAY_READ`] bytes read from the pod, so the transport
/// frames them without copying.
pub(crate) async fn relay<T, F, Fut>(
    conn: tokio::net::TcpStream,
    mut from_client: mpsc::Receiver<T>,
    headroom: usize,
    mut send: F,
) where
    T: AsRef<[u8]>,
    F: FnMut(BytesMut) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (mut r, mut w) = conn.into_split();
    let to_pod = async {
        while let Some(b) = from_client.recv().await {
            if w.write_all(b.as_ref()).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    let from_pod = async {
        loop {
            let mut buf = BytesMut::with_capacity(headroom + RELAY_READ);
            buf.put_bytes(0, headroom);
            // `read_buf` fills at most the spare capacity: the buffer never grows.
            let mut limited = (&mut buf).limit(RELAY_READ);
            match r.read_buf(&mut limited).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if !send(buf).await {
                        break;
                    }
                }
            }
        }
    };
    tokio::pin!(to_pod, from_pod);
    tokio::select! {
        _ = &mut to_pod => from_pod.await,
        _ = &mut from_pod => {}
    }
}

/// The client's side of a SPDY connection tunnelled in a WebSocket: the binary messages'
/// payloads, read as one byte stream (other messages are skipped; a close or an error ends
/// it).
struct WsReader {
    source: futures::stream::SplitStream<WebSocket>,
    chunk: Bytes,
    done: bool,
}

impl AsyncRead for WsReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        loop {
            if !self.chunk.is_empty() {
                let n = self.chunk.len().min(out.remaining());
                let part = self.chunk.split_to(n);
                out.put_slice(&part);
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match futures::ready!(self.source.poll_next_unpin(cx)) {
                Some(Ok(Message::Binary(b))) => self.chunk = b,
                Some(Ok(Message::Close(_))) | None => self.done = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
            }
        }
    }
}

/// The server's side of a tunnelled SPDY connection: each frame is one binary message,
/// flushed when the connection has nothing more queued; a normal close at the end.
struct WsTransport(futures::stream::SplitSink<WebSocket, Message>);

impl spdy::Transport for WsTransport {
    async fn send(&mut self, frame: Bytes) -> std::io::Result<()> {
        self.0
            .feed(Message::Binary(frame))
            .await
            .map_err(std::io::Error::other)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().await.map_err(std::io::Error::other)
    }

    async fn close(&mut self) {
        let close = Message::Close(Some(axum::extract::ws::CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: "".into(),
        }));
        let _ = tokio::time::timeout(super::CLOSE_GRACE, self.0.send(close)).await;
    }
}

/// Carries the SPDY connection inside the WebSocket's binary messages: frames go out as
/// messages of their own, the client's messages are read as the connection's bytes.
async fn tunnel(socket: WebSocket, target: Target) {
    let (sink, source) = socket.split();
    let reader = WsReader {
        source,
        chunk: Bytes::new(),
        done: false,
    };
    session(
        move |cfg, streams| {
            spdy::serve_transport(reader, WsTransport(sink), cfg, check_headers, streams)
        },
        target,
    )
    .await;
}

/// What the kubelet checks before it accepts a stream (`httpStreamReceived`).
fn check_headers(h: &spdy::Headers) -> Result<(), String> {
    let port = spdy::headers::get(h, "port").unwrap_or("");
    if port.is_empty() {
        return Err("\"port\" header is required".into());
    }
    match port.parse::<u16>() {
        Err(e) => return Err(format!("unable to parse {port:?} as a port: {e}")),
        Ok(0) => return Err(format!("port {port:?} must be > 0")),
        Ok(_) => {}
    }
    match spdy::headers::get(h, "streamtype").unwrap_or("") {
        "" => Err("\"streamType\" header is required".into()),
        "error" | "data" => Ok(()),
        other => Err(format!("invalid stream type {other:?}")),
    }
}

/// The request a stream belongs to: its `requestID`, or for clients too old to send one,
/// the kubelet's guess from the stream id (an error stream and its data stream are two
/// consecutive odd ids).
fn request_id(s: &spdy::Stream) -> String {
    if let Some(id) = s.header("requestid").filter(|v| !v.is_empty()) {
        return id.to_string();
    }
    match s.header("streamtype") {
        Some("data") => s.id().saturating_sub(2).to_string(),
        _ => s.id().to_string(),
    }
}

#[derive(Default)]
struct Pair {
    error: Option<spdy::Stream>,
    data: Option<spdy::Stream>,
    since: Option<tokio::time::Instant>,
}

/// Serves one SPDY connection (`serve` runs it, handing out its streams): pairs the streams
/// and forwards each complete pair.
async fn session<S, Fut>(serve: S, target: Target)
where
    S: FnOnce(spdy::Config, mpsc::Sender<spdy::Stream>) -> Fut,
    Fut: std::future::Future<Output = Result<(), spdy::Error>> + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<spdy::Stream>(16);
    let conn = tokio::spawn(serve(spdy::Config::default(), tx));
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    // The forwarded connections: they end with the SPDY connection, even when the pod's end
    // stays open (a pod that never closes must not hold the agent's socket and task).
    let mut forwards = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = forwards.join_next() => {}
            s = rx.recv() => {
                let Some(s) = s else { break };
                let id = request_id(&s);
                if !pairs.contains_key(&id) && pairs.len() >= MAX_PENDING {
                    let _ = s.writer().reset().await;
                    continue;
                }
                let pair = pairs.entry(id.clone()).or_insert_with(|| Pair {
                    since: Some(tokio::time::Instant::now()),
                    ..Pair::default()
                });
                let slot = if s.header("streamtype") == Some("error") {
                    &mut pair.error
                } else {
                    &mut pair.data
                };
                if slot.is_some() {
                    let kind = s.header("streamtype").unwrap_or("").to_string();
                    let msg = format!(
                        "error processing stream for request {id}: {kind} stream already assigned"
                    );
                    tracing::debug!(%msg);
                    if let Some(e) = &pair.error {
                        let _ = e.writer().write(Bytes::from(msg)).await;
                    }
                    let _ = s.writer().reset().await;
                    continue;
                }
                *slot = Some(s);
                if pair.error.is_some() && pair.data.is_some()
                    && let Some(Pair { error: Some(error), data: Some(data), .. }) = pairs.remove(&id)
                {
                    forwards.spawn(forward(error, data, target.clone()));
                }
            }
            _ = sweep.tick() => {
                let now = tokio::time::Instant::now();
                let expired: Vec<String> = pairs
                    .iter()
                    .filter(|(_, p)| p.since.is_some_and(|t| now.duration_since(t) >= STREAM_CREATION_TIMEOUT))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in expired {
                    if let Some(p) = pairs.remove(&k) {
                        if let Some(e) = p.error {
                            let w = e.writer();
                            let _ = w.write(Bytes::from(format!("request {k}: timed out waiting for streams"))).await;
                            let _ = w.close().await;
                        }
                        if let Some(d) = p.data {
                            let _ = d.writer().reset().await;
                        }
                    }
                }
            }
        }
    }
    if let Ok(Err(e)) = conn.await {
        tracing::debug!(error = %e, "port-forward connection ended");
    }
    forwards.abort_all();
}

/// Forwards one connection: the data stream to `localhost:<port>` in the pod and back. When
/// the client ends its side the pod's socket is shut down for writing and the pod's answer
/// still flows; when the pod ends its side the data stream is closed.
async fn forward(error: spdy::Stream, data: spdy::Stream, target: Target) {
    let port: u16 = data
        .header("port")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let (_, err_w) = error.into_parts();
    let (data_rx, data_w) = data.into_parts();
    match target.runtime.port_forward(&target.uid, port).await {
        Err(e) => {
            let msg = target.error_message(port, &e);
            tracing::debug!(%msg);
            let _ = err_w.write(Bytes::from(msg)).await;
        }
        Ok(conn) => {
            relay(conn, data_rx, spdy::HEADROOM, |b| {
                let w = data_w.clone();
                async move { w.write_framed(b).await.is_ok() }
            })
            .await;
        }
    }
    let _ = data_w.close().await;
    let _ = err_w.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(pairs: &[(&str, &str)]) -> spdy::Headers {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// A pod end on loopback: reads the request until EOF, answers `answer` and closes
    /// (or stays open when `hold`); returns the request.
    async fn pod(answer: Vec<u8>, hold: bool) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let t = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(&answer).await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            if hold {
                std::future::pending::<()>().await;
            }
            got
        });
        (port, t)
    }

    #[tokio::test]
    async fn relay_hands_out_the_pods_bytes_behind_the_transports_headroom() {
        let answer: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (port, pod) = pod(answer.clone(), false).await;
        let conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
        tx.send(b"request".to_vec()).await.unwrap();
        drop(tx);
        let mut got = Vec::new();
        relay(conn, rx, 3, |b| {
            assert!(b.len() > 3 && b.len() <= 3 + RELAY_READ, "{}", b.len());
            assert_eq!(b[..3], [0, 0, 0]);
            got.extend_from_slice(&b[3..]);
            std::future::ready(true)
        })
        .await;
        assert_eq!(got, answer);
        assert_eq!(pod.await.unwrap(), b"request");
    }

    #[tokio::test]
    async fn relay_ends_when_the_client_side_cannot_take_more() {
        // The pod keeps its socket open: the relay still ends once sending fails.
        let (port, _pod) = pod(vec![1; 1000], true).await;
        let conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
        drop(tx);
        relay(conn, rx, spdy::HEADROOM, |_| std::future::ready(false)).await;
    }

    #[test]
    fn stream_headers_are_checked_as_the_kubelet_does() {
        assert!(check_headers(&hs(&[("port", "80"), ("streamtype", "data")])).is_ok());
        assert!(check_headers(&hs(&[("port", "80"), ("streamtype", "error")])).is_ok());
        assert_eq!(
            check_headers(&hs(&[("streamtype", "data")])).unwrap_err(),
            "\"port\" header is required"
        );
        assert_eq!(
            check_headers(&hs(&[("port", "0"), ("streamtype", "data")])).unwrap_err(),
            "port \"0\" must be > 0"
        );
        assert!(
            check_headers(&hs(&[("port", "70000"), ("streamtype", "data")]))
                .unwrap_err()
                .starts_with("unable to parse \"70000\" as a port")
        );
        assert_eq!(
            check_headers(&hs(&[("port", "80")])).unwrap_err(),
            "\"streamType\" header is required"
        );
        assert_eq!(
            check_headers(&hs(&[("port", "80"), ("streamtype", "x")])).unwrap_err(),
            "invalid stream type \"x\""
        );
    }
}
