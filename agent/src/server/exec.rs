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
fn normal_close() -> Message {
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

fn frame(ch: u8, data: &[u8]) -> Message {
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
    let flag = |k: &str| q.iter().any(|(n, v)| n == k && (v == "true" || v == "1"));
    let (stdin, stdout, stderr, tty) = (flag("stdin"), flag("stdout"), flag("stderr"), flag("tty"));
    let Ok(ws) = ws else {
        return bad_request(
            "exec needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)",
        );
    };
    if argv.is_empty() {
        return bad_request("you must specify at least 1 command");
    }
    if !stdin && !stdout && !stderr {
        return bad_request("you must specify at least 1 of stdin, stdout, stderr");
    }
    let (_, c) = match find_container(&s.directory, &ns, &pod, &container) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = match c.current {
        Some((id, _, true)) => id,
        _ => {
            return bad_request(&format!(
                "container {container:?} in pod {pod:?} is not running"
            ));
        }
    };
    let runtime = s.runtime.clone();
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let v5 = socket
                .protocol()
                .and_then(|p| p.to_str().ok())
                .is_some_and(|p| p == PROTOCOLS[0]);
            let session = runtime.exec(&id, &argv, tty, stdin).await;
            run(
                socket,
                session,
                argv,
                Flags {
                    stdin,
                    stdout,
                    stderr: stderr && !tty,
                    v5,
                },
            )
            .await;
        })
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    v5: bool,
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
    let (mut sink, mut source) = socket.split();
    let first = if flags.stdout {
        STDOUT
    } else if flags.stderr {
        STDERR
    } else {
        STATUS
    };
    if sink.send(frame(first, &[])).await.is_err() {
        return;
    }
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            let _ = sink
                .send(frame(STATUS, error_json(&e.to_string()).as_bytes()))
                .await;
            let _ = sink.send(normal_close()).await;
            return;
        }
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
    let mut code: Option<i32> = None;
    let mut output_done = false;
    let client_gone = {
        let wait = session.wait();
        tokio::pin!(wait);
        loop {
            if code.is_some() && output_done {
                break false;
            }
            tokio::select! {
                msg = source.next() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        let Some((&ch, data)) = b.split_first() else { continue };
                        match ch {
                            STDIN => {
                                if let Some(w) = stdin.as_mut()
                                    && w.write_all(data).await.is_err()
                                {
                                    stdin = None;
                                }
                            }
                            RESIZE => {
                                if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
                                    let w = v["Width"].as_u64().and_then(|w| u16::try_from(w).ok());
                                    let h = v["Height"].as_u64().and_then(|h| u16::try_from(h).ok());
                                    if let (Some(w), Some(h)) = (w, h) {
                                        let _ = resize.resize(w, h);
                                    }
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
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break code.is_none(),
                    Some(Ok(_)) => {}
                },
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
                    drop(stdin.take());
                }
            }
        }
    };
    if client_gone {
        // The client went away: stop the command and everything it started.
        drop(stdin.take());
        session.kill();
        for p in pumps {
            p.abort();
        }
        return;
    }
    let status = status_json(code.unwrap_or(0), &argv);
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
    for p in pumps {
        p.abort();
    }
}
