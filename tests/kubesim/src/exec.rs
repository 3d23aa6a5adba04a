//! `pods/exec` over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`).
//!
//! Frames are `[channel][payload]`: 0 stdin, 1 stdout, 2 stderr, 3 the final
//! Status, 4 resize, and 255 close (v5 only). Output is forwarded as it is
//! read, never buffered whole. WebSocket (GET) requests need `get` on
//! `pods/exec` from the filter plus a second `create` check, as on 1.35+.

use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::admission::{Attributes, Operation};
use crate::http::Body;
use crate::rbac::{self, User};
use crate::resources::{Query, RequestInfo};
use crate::state::State;
use crate::status::ApiError;

/// Status sent on channel 3 for an exit code.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        json!({"metadata": {}, "status": "Success"})
    } else {
        json!({"metadata": {}, "status": "Failure",
               "message": format!("command terminated with non-zero exit code: error executing command [{code}], exit code {code}"),
               "reason": "NonZeroExitCode",
               "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
    }
}

fn internal_status(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure",
           "message": format!("Internal error occurred: error executing command in container: {message}"),
           "reason": "InternalError",
           "details": {"causes": [{"message": format!("error executing command in container: {message}")}]},
           "code": 500})
}

/// Resolves the `container` parameter as upstream does: any regular, init or
/// ephemeral container by name, or the only regular container when omitted.
pub fn pick_container(
    pod: &Value,
    pod_name: &str,
    wanted: Option<&str>,
) -> Result<String, ApiError> {
    let names: Vec<String> = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| pod["spec"][f].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let container = match wanted.filter(|c| !c.is_empty()) {
        Some(c) => c.to_string(),
        None => {
            let regular: Vec<String> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect();
            if regular.len() != 1 {
                return Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                    regular.join(" ")
                )));
            }
            regular[0].clone()
        }
    };
    if !names.contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {pod_name}"
        )));
    }
    Ok(container)
}

/// Validating admission of the CONNECT, on the PodExecOptions the query
/// describes (fields left out when empty, as upstream's conversion does).
fn admit(state: &State, info: &RequestInfo, query: &Query, user: &User) -> Result<(), ApiError> {
    let mut options = json!({"kind": "PodExecOptions", "apiVersion": "v1",
                             "command": query.all("command")});
    for flag in ["stdin", "stdout", "stderr", "tty"] {
        if query.flag(flag) {
            options[flag] = json!(true);
        }
    }
    if let Some(c) = query.get("container").filter(|c| !c.is_empty()) {
        options["container"] = json!(c);
    }
    let pods = crate::resources::find("", "pods")
        .ok_or_else(|| ApiError::internal("pods are not served"))?;
    let attrs = Attributes::new(Operation::Connect, pods, &info.namespace, &info.name, user)
        .on_subresource("exec", ("", "v1", "PodExecOptions"));
    crate::admission::check(state, attrs, Some(&options), None)
}

/// Handles an exec request up to the upgrade, then streams in a task.
pub async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
    info: &RequestInfo,
    query: &Query,
    user: &User,
) -> Result<Response<Body>, ApiError> {
    if info.verb != "create" {
        // AuthorizePodWebsocketUpgradeCreatePermission: re-check with create.
        let mut create = info.clone();
        create.verb = "create".into();
        let d = rbac::authorize(state.as_ref(), user, &create);
        if !d.allowed {
            return Err(ApiError::forbidden("", "pods", &info.name, &d.reason));
        }
    }
    admit(&state, info, query, user)?;
    let pod = state
        .store
        .get("pods", &info.namespace, &info.name)
        .ok_or_else(|| ApiError::not_found("", "pods", &info.name))?;
    let command = query.all("command");
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let container = pick_container(&pod, &info.name, query.get("container"))?;
    if info.verb == "create" {
        return Err(ApiError::bad_request(
            "kubesim serves exec over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io); SPDY is not supported",
        ));
    }
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("").to_string();
    let target = state
        .runtime
        .container(&uid, &container)
        .filter(|c| c.running)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to upgrade connection: container not found (\"{container}\")"
            ))
        })?;
    let headers = req.headers();
    let is_ws = headers
        .get("upgrade")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.eq_ignore_ascii_case("websocket"));
    let key = headers
        .get("sec-websocket-key")
        .map(|k| k.as_bytes().to_vec());
    let offered: Vec<String> = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(','))
        .map(|s| s.trim().to_string())
        .collect();
    let (Some(key), true) = (key, is_ws) else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let protocol = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "none of the offered subprotocols {offered:?} is supported; use v5.channel.k8s.io or v4.channel.k8s.io"
            ))
        })?;
    let stdin = query.flag("stdin");
    let stdout = query.flag("stdout");
    let stderr = query.flag("stderr");
    let on_upgrade = hyper::upgrade::on(&mut req);
    let v5 = protocol.starts_with("v5");
    let mut shutdown = state.shutdown.clone();
    let pgid = state.runtime.process_group();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        tokio::select! {
            _ = stream(ws, target, command, stdin, stdout, stderr, v5, pgid) => {}
            _ = shutdown.changed() => {}
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(&key);
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", protocol)
        .body(http_body_util::BodyExt::boxed_unsync(
            http_body_util::Empty::<Bytes>::new(),
        ))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(resp)
}

/// Close with 1000: client-go treats anything else (even 1005, "no
/// status") as a failed stream.
fn normal_close() -> Message {
    Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "".into(),
    }))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut v = Vec::with_capacity(data.len() + 1);
    v.push(channel);
    v.extend_from_slice(data);
    Message::Binary(v.into())
}

/// Sends the failure Status and closes, while still reading what the
/// client sends: a client busy writing stdin into a full socket would never
/// read our Status otherwise, and both sides would wait forever (the real
/// API server reads and writes concurrently).
async fn fail<S>(
    mut sink: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    mut source: futures::stream::SplitStream<WebSocketStream<S>>,
    status: Message,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let drain = async move { while let Some(Ok(_)) = source.next().await {} };
    let send = async move {
        let _ = sink.send(status).await;
        let _ = sink.send(normal_close()).await;
    };
    tokio::select! {
        () = async { tokio::join!(drain, send); } => {}
        () = tokio::time::sleep(std::time::Duration::from_secs(30)) => {}
    }
}

#[allow(clippy::too_many_arguments)]
async fn stream<S>(
    ws: WebSocketStream<S>,
    target: crate::runtime::Container,
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    v5: bool,
    pgid: i32,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, source) = ws.split();
    let mut source = source;
    let first = if stdout {
        1
    } else if stderr {
        2
    } else {
        3
    };
    if sink.send(frame(first, &[])).await.is_err() {
        return;
    }
    let finish = |status: Value| frame(3, status.to_string().as_bytes());
    if !crate::runtime::find_binary(&target.image.root, &command[0]) {
        let msg = format!(
            "failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: \"{}\": executable file not found in $PATH: unknown",
            command[0]
        );
        fail(sink, source, finish(internal_status(&msg))).await;
        return;
    }
    let mut cmd = crate::runtime::exec_command(&target, &command, pgid);
    cmd.stdin(if stdin {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    })
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            fail(sink, source, finish(internal_status(&e.to_string()))).await;
            return;
        }
    };
    let (tx, mut rx) = mpsc::channel::<Message>(64);
    let mut pumps = Vec::new();
    for (channel, pipe, wanted) in [
        (
            1u8,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            stdout,
        ),
        (
            2u8,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            stderr,
        ),
    ] {
        let Some(mut pipe) = pipe else { continue };
        let tx = tx.clone();
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match pipe.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if wanted && tx.send(frame(channel, &buf[..n])).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }));
    }
    drop(tx);
    let mut child_stdin = child.stdin.take();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return None;
            }
        }
        Some(sink)
    });
    let reader = async {
        while let Some(Ok(msg)) = source.next().await {
            let Message::Binary(data) = msg else {
                if matches!(msg, Message::Close(_)) {
                    return true;
                }
                continue;
            };
            match data.first() {
                Some(0) => {
                    if let Some(s) = child_stdin.as_mut()
                        && s.write_all(&data[1..]).await.is_err()
                    {
                        child_stdin = None;
                    }
                }
                Some(255) if v5 => {
                    if data.len() != 2 {
                        return true;
                    }
                    if data[1] == 0 {
                        child_stdin = None;
                    }
                }
                _ => {}
            }
        }
        true
    };
    let waited = tokio::select! {
        st = child.wait() => Some(st),
        _ = reader => None,
    };
    let status = match waited {
        Some(st) => st,
        None => {
            // The client went away: stop the command.
            let _ = child.start_kill();
            let _ = child.wait().await;
            return;
        }
    };
    for p in pumps {
        let _ = p.await;
    }
    let Ok(Some(mut sink)) = writer.await else {
        return;
    };
    let code = status.ok().and_then(|s| s.code()).unwrap_or(137);
    let _ = sink.send(finish(exit_status(code))).await;
    let _ = sink.send(normal_close()).await;
}
