//! Port forwarding over a WebSocket with channels, as the kubelet serves it to clients that do
//! not speak SPDY (the Python client's `portforward`, browsers) [kubelet
//! cri/streaming/portforward/websocket.go]: subprotocol `v4.channel.k8s.io` (binary messages,
//! first byte the channel), `v4.base64.channel.k8s.io` (text messages, the channel as an ASCII
//! digit, then base64) or none (binary). The ports are the `port` query parameters (one each,
//! or comma-separated); port `i` has data channel `2i` (both ways) and error channel `2i+1`,
//! and the first message on each carries the port, little-endian. Each port is one connection
//! to `localhost:<port>` in the pod, made at once; the socket closes when every one has ended.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;

use super::bad_request;
use super::portforward::{Target, relay};

/// The binary channel protocol.
pub const V4_BINARY: &str = "v4.channel.k8s.io";
/// The base64 (text) channel protocol.
pub const V4_BASE64: &str = "v4.base64.channel.k8s.io";
/// At most this many ports per connection.
const MAX_PORTS: usize = 64;

/// The ports of a request's `port` parameters, with the kubelet's messages.
pub(crate) fn ports(q: &[(String, String)]) -> Result<Vec<u16>, String> {
    let values: Vec<&str> = q
        .iter()
        .filter(|(k, _)| k == "port")
        .map(|(_, v)| v.as_str())
        .collect();
    if values.is_empty() {
        return Err("query parameter \"port\" is required".into());
    }
    let mut out = Vec::new();
    for v in values {
        if v.is_empty() {
            return Err("query parameter \"port\" cannot be empty".into());
        }
        for p in v.split(',') {
            match p.parse::<u16>() {
                Err(e) => return Err(format!("unable to parse {v:?} as a port: {e}")),
                Ok(0) => return Err(format!("port {v:?} must be > 0")),
                Ok(n) => out.push(n),
            }
        }
    }
    if out.len() > MAX_PORTS {
        return Err(format!(
            "at most {MAX_PORTS} ports may be forwarded at once"
        ));
    }
    Ok(out)
}

/// Upgrades `ws` for `ports`, choosing the client's v4 protocol (binary when it offers none).
pub(crate) fn upgrade(
    ws: WebSocketUpgrade,
    offered: &[String],
    q: &[(String, String)],
    target: Target,
) -> Response {
    let ports = match ports(q) {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    let base64 = !offered.iter().any(|p| p == V4_BINARY) && offered.iter().any(|p| p == V4_BASE64);
    ws.protocols([V4_BINARY, V4_BASE64])
        .on_upgrade(move |socket| serve(socket, ports, base64, target))
}

fn message(base64: bool, ch: u8, data: &[u8]) -> Message {
    if base64 {
        let mut s = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        s.push(char::from(b'0' + ch));
        s.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
        Message::Text(s.into())
    } else {
        let mut v = Vec::with_capacity(data.len() + 1);
        v.push(ch);
        v.extend_from_slice(data);
        Message::Binary(Bytes::from(v))
    }
}

/// A client message as (channel, data); `None` for one that is not on a channel.
fn decode(base64: bool, m: Message) -> Option<(u8, Vec<u8>)> {
    match m {
        Message::Binary(b) if !base64 => {
            let (&ch, data) = b.split_first()?;
            Some((ch, data.to_vec()))
        }
        Message::Text(t) if base64 => {
            let t = t.as_str();
            let ch = t.as_bytes().first()?.checked_sub(b'0')?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(&t[1..])
                .ok()?;
            Some((ch, data))
        }
        _ => None,
    }
}

async fn serve(socket: WebSocket, ports: Vec<u16>, base64: bool, target: Target) {
    let (mut sink, mut source) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(64);
    // Every channel starts with its port.
    for (i, port) in ports.iter().enumerate() {
        let le = port.to_le_bytes();
        for ch in [2 * i, 2 * i + 1] {
            if sink.send(message(base64, ch as u8, &le)).await.is_err() {
                return;
            }
        }
    }
    let mut to_pods = Vec::with_capacity(ports.len());
    let mut forwards = Vec::with_capacity(ports.len());
    for (i, port) in ports.iter().copied().enumerate() {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
        to_pods.push(tx);
        forwards.push(tokio::spawn(forward(
            i as u8,
            port,
            rx,
            out_tx.clone(),
            base64,
            target.clone(),
        )));
    }
    drop(out_tx);
    let aborts: Vec<tokio::task::AbortHandle> = forwards
        .iter()
        .map(tokio::task::JoinHandle::abort_handle)
        .collect();
    let all_done = futures::future::join_all(forwards);
    tokio::pin!(all_done);
    loop {
        tokio::select! {
            m = source.next() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(m)) => {
                    if let Some((ch, data)) = decode(base64, m)
                        && ch % 2 == 0
                        && let Some(tx) = to_pods.get(usize::from(ch / 2))
                    {
                        // A gone forward drops what is sent to it.
                        let _ = tx.send(data).await;
                    }
                }
            },
            Some(m) = out_rx.recv() => {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
            _ = &mut all_done => {
                // Drain what the forwards left, then close.
                while let Ok(m) = out_rx.try_recv() {
                    let _ = sink.send(m).await;
                }
                let _ = sink.send(super::exec::normal_close()).await;
                return;
            }
        }
    }
    // The client left: its connections in the pod go with it.
    drop(to_pods);
    for a in aborts {
        a.abort();
    }
}

/// One port: its connection in the pod, both ways, until either side ends.
async fn forward(
    i: u8,
    port: u16,
    from_client: mpsc::Receiver<Vec<u8>>,
    out: mpsc::Sender<Message>,
    base64: bool,
    target: Target,
) {
    let (data_ch, error_ch) = (2 * i, 2 * i + 1);
    match target.runtime.port_forward(&target.uid, port).await {
        Err(e) => {
            let msg = target.error_message(port, &e);
            let _ = out.send(message(base64, error_ch, msg.as_bytes())).await;
        }
        Ok(conn) => {
            // The one byte of headroom becomes the channel of a binary message.
            relay(conn, from_client, 1, |mut b| {
                let out = out.clone();
                let m = if base64 {
                    message(true, data_ch, &b[1..])
                } else {
                    b[0] = data_ch;
                    Message::Binary(b.freeze())
                };
                async move { out.send(m).await.is_ok() }
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn ports_are_parsed_as_the_kubelet_does() {
        assert_eq!(
            ports(&q(&[("port", "80"), ("port", "8080,9090")])).unwrap(),
            [80, 8080, 9090]
        );
        assert_eq!(
            ports(&q(&[])).unwrap_err(),
            "query parameter \"port\" is required"
        );
        assert_eq!(
            ports(&q(&[("port", "")])).unwrap_err(),
            "query parameter \"port\" cannot be empty"
        );
        assert_eq!(
            ports(&q(&[("port", "0")])).unwrap_err(),
            "port \"0\" must be > 0"
        );
        assert!(
            ports(&q(&[("port", "80,x")]))
                .unwrap_err()
                .starts_with("unable to parse \"80,x\" as a port")
        );
    }

    #[test]
    fn channel_messages_roundtrip_in_both_encodings() {
        for base64 in [false, true] {
            let m = message(base64, 3, b"\x50\x00hello");
            assert_eq!(decode(base64, m), Some((3, b"\x50\x00hello".to_vec())));
        }
        assert_eq!(decode(false, Message::Text("0aGk=".into())), None);
        assert_eq!(
            decode(true, Message::Text("0aGk=".into())),
            Some((0, b"hi".to_vec()))
        );
        assert_eq!(decode(true, Message::Text("0!!".into())), None);
    }
}
