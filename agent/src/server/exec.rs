//! `kubectl exec` over WebSocket with the `channel.k8s.io` framing (v4 and v5) [k8s
//! remotecommand; kubelet cri/streaming/remotecommand/websocket.go]. See the protocol in the
//! [`super`] docs.
//!
//! On connect an empty frame goes to the lowest writable channel (as the kubelet does, to tell
//! the client the streams are up); output is forwarded as it comes; once the command exited
//! and its output is drained, one status frame is sent on channel 3 and the socket is closed.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{ServerState, bad_request, find_container};
use crate::runtime::ExecSession;

/// A close frame with status 1000: gorilla/websocket (kubectl) reports a close without a
/// status code (1005) as an error instead of the end of the streams.
pub(crate) fn normal_close() -> Message {
    Message::Close(Some(axum::extract::ws::CloseFrame {
        code: axum::extract::ws::close_code::NORMAL,
        reason: "".into(),
    }))
}

/// Channel numbers.
pub const STDIN: u8 = 0;
/// Standard output.
pub const STDOUT: u8 = 1;
/// Standard error.
pub const STDERR: u8 = 2;
/// The status (error) channel.
pub const STATUS: u8 = 3;
/// Terminal resize.
pub const RESIZE: u8 = 4;
/// v5 close signal.
pub const CLOSE: u8 = 255;

/// Subprotocols served, preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// The status JSON for an exit code.
pub fn status_json(code: i32, argv: &[String]) -> String {
    if code == 0 {
        return r#"{"metadata":{},"status":"Success"}"#.to_string();
    }
    serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: command '{}' exited with {code}: ",
            argv.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
    .to_string()
}

/// The status JSON when the command could not be run.
pub fn error_json(message: &str) -> String {
    serde_json::json!({
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "code": 500,
    })
    .to_string()
}

pub(crate) fn frame(ch: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(ch);
    v.extend_from_slice(data);
    Message::Binary(Bytes::from(v))
}

pub(crate) async fn handler(
    State(s): State<ServerState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let argv: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let (ws, f) = match StreamFlags::check("exec", &q, ws) {
        Ok(v) => v,
        Err(r) => return r,
    };
    if argv.is_empty() {
        return bad_request("you must specify at least 1 command");
    }
    let id = match running_container(&s, &ns, &pod, &container) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let runtime = s.runtime.clone();
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let flags = f.on(&socket);
            let session = runtime.exec(&id, &argv, f.tty, f.stdin).await;
            run(socket, session, argv, flags).await;
        })
}

/// The `stdin`/`stdout`/`stderr`/`tty` query flags of exec and attach.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamFlags {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) tty: bool,
}

impl StreamFlags {
    /// The flags of `q` and the upgrade, or the kubelet's 400 for a request that is no
    /// WebSocket upgrade or asks for no stream.
    pub(crate) fn check(
        what: &str,
        q: &[(String, String)],
        ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
    ) -> Result<(WebSocketUpgrade, StreamFlags), Response> {
        let flag = |k: &str| q.iter().any(|(n, v)| n == k && (v == "true" || v == "1"));
        let f = StreamFlags {
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            stderr: flag("stderr"),
            tty: flag("tty"),
        };
        let Ok(ws) = ws else {
            return Err(bad_request(&format!(
                "{what} needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)"
            )));
        };
        if !f.stdin && !f.stdout && !f.stderr {
            return Err(bad_request(
                "you must specify at least 1 of stdin, stdout, stderr",
            ));
        }
        Ok((ws, f))
    }

    /// The session's flags once the socket is up: a terminal merges stderr into stdout.
    pub(crate) fn on(self, socket: &WebSocket) -> Flags {
        Flags {
            stdin: self.stdin,
            stdout: self.stdout,
            stderr: self.stderr && !self.tty,
            v5: socket
                .protocol()
                .and_then(|p| p.to_str().ok())
                .is_some_and(|p| p == PROTOCOLS[0]),
        }
    }
}

/// The id of `container` of pod `ns/pod` if it is running.
pub(crate) fn running_container(
    s: &ServerState,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<crate::runtime::ContainerId, Response> {
    let (_, c) = find_container(&s.directory, ns, pod, container)?;
    match c.current {
        Some((id, _, true)) => Ok(id),
        _ => Err(bad_request(&format!(
            "container {container:?} in pod {pod:?} is not running"
        ))),
    }
}

/// A resize message: `{"Width":W,"Height":H}`.
pub(crate) fn parse_resize(data: &[u8]) -> Option<(u16, u16)> {
    let v = serde_json::from_slice::<serde_json::Value>(data).ok()?;
    let w = v["Width"].as_u64().and_then(|w| u16::try_from(w).ok())?;
    let h = v["Height"].as_u64().and_then(|h| u16::try_from(h).ok())?;
    Some((w, h))
}

/// Sends the status frame and a normal close, then waits briefly for the client's close.
pub(crate) async fn end_with_status(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    source: &mut futures::stream::SplitStream<WebSocket>,
    status: &str,
) {
    let _ = sink.send(frame(STATUS, status.as_bytes())).await;
    let _ = sink.send(normal_close()).await;
    let _ = tokio::time::timeout(super::CLOSE_GRACE, async {
        while let Some(Ok(m)) = source.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// What a session serves: the streams asked for, and whether v5 (with its close frame) was
/// negotiated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flags {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) v5: bool,
}

/// Splits the socket and tells the client the streams are up (an empty frame on the lowest
/// writable channel, as the kubelet does); a session that could not start ends with its error
/// on the status channel.
pub(crate) async fn open_streams<T>(
    socket: WebSocket,
    session: Result<T, crate::runtime::RuntimeError>,
    flags: Flags,
) -> Option<(
    futures::stream::SplitSink<WebSocket, Message>,
    futures::stream::SplitStream<WebSocket>,
    T,
)> {
    let (mut sink, source) = socket.split();
    let first = if flags.stdout {
        STDOUT
    } else if flags.stderr {
        STDERR
    } else {
        STATUS
    };
    if sink.send(frame(first, &[])).await.is_err() {
        return None;
    }
    match session {
        Ok(s) => Some((sink, source, s)),
        Err(e) => {
            let _ = sink
                .send(frame(STATUS, error_json(&e.to_string()).as_bytes()))
                .await;
            let _ = sink.send(normal_close()).await;
            None
        }
    }
}

async fn pump(mut r: impl AsyncRead + Unpin, ch: u8, tx: mpsc::Sender<(u8, Vec<u8>)>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send((ch, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn run(
    socket: WebSocket,
    session: Result<ExecSession, crate::runtime::RuntimeError>,
    argv: Vec<String>,
    flags: Flags,
) {
    let Some((mut sink, mut source, mut session)) = open_streams(socket, session, flags).await
    else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<(u8, Vec<u8>)>(16);
    let mut pumps = Vec::new();
    if let Some(out) = session.stdout.take()
        && flags.stdout
    {
        pumps.push(tokio::spawn(pump(out, STDOUT, tx.clone())));
    }
    if let Some(err) = session.stderr.take() {
        if flags.stderr {
            pumps.push(tokio::spawn(pump(err, STDERR, tx.clone())));
        } else {
            // Nobody reads it: drain so the process does not block.
            pumps.push(tokio::spawn(async move {
                let _ =
                    tokio::io::copy(&mut tokio::io::BufReader::new(err), &mut tokio::io::sink())
                        .await;
            }));
        }
    }
    drop(tx);
    let mut stdin = if flags.stdin {
        session.stdin.take()
    } else {
        None
    };
    let resize = session.resizer();
    // The process has exited: our end of its stdin is closed (a child it left may hold it).
    let (exited_tx, mut exited_rx) = tokio::sync::watch::channel(false);
    let mut code: Option<i32> = None;
    let mut output_done = false;
    let client_gone = {
        // The client's input runs beside the output: a command that does not read its stdin
        // blocks only this side (as the kubelet's copy goroutines do), never its output or
        // the wait for its exit. Ends when the client does.
        let input = async {
            loop {
                let msg = tokio::select! {
                    msg = source.next() => msg,
                    _ = exited_rx.changed(), if stdin.is_some() => {
                        stdin = None;
                        continue;
                    }
                };
                match msg {
                    Some(Ok(Message::Binary(b))) => {
                        let Some((&ch, data)) = b.split_first() else {
                            continue;
                        };
                        match ch {
                            STDIN => {
                                if let Some(w) = stdin.as_mut()
                                    && w.write_all(data).await.is_err()
                                {
                                    stdin = None;
                                }
                            }
                            RESIZE => {
                                if let Some((w, h)) = parse_resize(data) {
                                    let _ = resize.resize(w, h);
                                }
                            }
                            CLOSE if flags.v5 => {
                                if data.first() == Some(&STDIN)
                                    && let Some(mut w) = stdin.take()
                                {
                                    let _ = w.shutdown().await;
                                }
                            }
                            _ => {}
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::pin!(input);
        let wait = session.wait();
        tokio::pin!(wait);
        loop {
            if code.is_some() && output_done {
                break false;
            }
            tokio::select! {
                () = &mut input => break code.is_none(),
                out = rx.recv(), if !output_done => match out {
                    Some((ch, data)) => {
                        if sink.send(frame(ch, &data)).await.is_err() {
                            break code.is_none();
                        }
                    }
                    None => output_done = true,
                },
                c = &mut wait, if code.is_none() => {
                    code = Some(c);
                    let _ = exited_tx.send(true);
                }
            }
        }
    };
    if client_gone {
        // The client went away: stop the command and everything it started.
        session.kill();
        for p in pumps {
            p.abort();
        }
        return;
    }
    let status = status_json(code.unwrap_or(0), &argv);
    end_with_status(&mut sink, &mut source, &status).await;
    for p in pumps {
        p.abort();
    }
}
