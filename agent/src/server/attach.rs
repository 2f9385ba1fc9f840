//! `kubectl attach` and `kubectl run -i`: `GET /attach/{namespace}/{pod}/{container}?stdin=…
//! &stdout=…&stderr=…&tty=…` as a WebSocket with the `channel.k8s.io` framing of exec (v5 and
//! v4) [kubelet cri/streaming/remotecommand/attach.go]. The session carries the running
//! container's output from now on and, when the container has `stdin: true`, the client's input
//! to it; it ends with a `Success` status when the container's output ends (it exited), or
//! when the client leaves. With `stdinOnce` the container's stdin is closed once the first
//! session's input ends, so a program reading to end of input finishes, as CRI runtimes do.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::ServerState;
use super::exec::{
    CLOSE, Flags, PROTOCOLS, RESIZE, STDERR, STDIN, STDOUT, StreamFlags, end_with_status, frame,
    open_streams, parse_resize, running_container,
};
use crate::runtime::logs::Stream;
use crate::runtime::{AttachSession, RuntimeError};

pub(crate) async fn handler(
    State(s): State<ServerState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let (ws, f) = match StreamFlags::check("attach", &q, ws) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let id = match running_container(&s, &ns, &pod, &container) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let runtime = s.runtime.clone();
    ws.protocols(PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let flags = f.on(&socket);
            run(socket, runtime.attach(&id).await, flags).await;
        })
}

async fn run(socket: WebSocket, session: Result<AttachSession, RuntimeError>, flags: Flags) {
    let Some((mut sink, mut source, mut session)) = open_streams(socket, session, flags).await
    else {
        return;
    };
    let stdin = if flags.stdin {
        session.stdin.take()
    } else {
        None
    };
    // Input and output run side by side: a container that does not read its stdin blocks
    // only the input side (as the kubelet's copy goroutines do), never its output.
    let resizer = session.resizer;
    let mut output = session.output;
    let input = async {
        let mut stdin_open = stdin.is_some();
        while let Some(msg) = source.next().await {
            let Ok(Message::Binary(b)) = msg else {
                match msg {
                    Ok(Message::Close(_)) | Err(_) => break,
                    _ => continue,
                }
            };
            let Some((&ch, data)) = b.split_first() else {
                continue;
            };
            match ch {
                STDIN if stdin_open => {
                    if let Some(w) = &stdin
                        && !w.write(data).await
                    {
                        stdin_open = false;
                    }
                }
                RESIZE => {
                    if let Some((w, h)) = parse_resize(data) {
                        let _ = resizer.resize(w, h);
                    }
                }
                CLOSE if flags.v5 && data.first() == Some(&STDIN) => {
                    if let Some(w) = &stdin
                        && stdin_open
                    {
                        w.close().await;
                    }
                    stdin_open = false;
                }
                _ => {}
            }
        }
    };
    let copy_output = async {
        loop {
            match output.recv().await {
                Ok((stream, data)) => {
                    let ch = match stream {
                        Stream::Stdout if flags.stdout => STDOUT,
                        Stream::Stderr if flags.stderr => STDERR,
                        _ => continue,
                    };
                    if sink.send(frame(ch, &data)).await.is_err() {
                        return false;
                    }
                }
                // A slow client missed some output; the log has it.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return true,
            }
        }
    };
    let ended = tokio::select! {
        () = input => false,
        ended = copy_output => ended,
    };
    // The client's input is over either way (an input side still blocked in a write was
    // dropped with its lock above).
    if let Some(w) = &stdin {
        w.close().await;
    }
    if !ended {
        return;
    }
    end_with_status(
        &mut sink,
        &mut source,
        r#"{"metadata":{},"status":"Success"}"#,
    )
    .await;
}
