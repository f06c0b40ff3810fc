//! The proxy's message loop: MCP messages pass between the client and the
//! upstream server untouched, except `tools/call`, which waits for
//! Gatehouse, and the few answers the proxy reads on the way (the upstream's
//! name and its tool annotations).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolResult, ClientJsonRpcMessage, ClientNotification, ClientRequest, ContentBlock,
    JsonRpcMessage, RequestId, ServerJsonRpcMessage, ServerResult, ToolAnnotations,
};
use rmcp::service::{RoleClient, RoleServer};
use rmcp::transport::Transport;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::gating::{Approved, CallInfo, Gated, Gating};
use super::messages::failed_closed;

/// What a finished gating or reporting task hands back to the loop.
enum Event {
    /// Forward this (possibly amended) call upstream.
    Forward(Box<ClientJsonRpcMessage>, Box<Approved>, String),
    /// Answer the client directly (a refusal, or a reported result).
    Answer(Box<ServerJsonRpcMessage>),
}

struct Executing {
    approved: Approved,
    tool: String,
    started: Instant,
}

#[derive(Default)]
struct Seen {
    client: Option<String>,
    upstream_name: Option<String>,
    tools: HashMap<String, ToolAnnotations>,
}

/// A tool result that tells the model why the call did not run.
pub fn refusal(id: RequestId, message: String) -> ServerJsonRpcMessage {
    let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
    // Absent means "complete" in every protocol version; older clients do
    // not know the field.
    result.result_type = None;
    ServerJsonRpcMessage::response(ServerResult::CallToolResult(result), id)
}

/// Relay between `down` (the client) and `up` (the upstream server) until
/// either side closes.
pub async fn relay<D, U>(mut down: D, mut up: U, gating: Arc<Gating>)
where
    D: Transport<RoleServer>,
    U: Transport<RoleClient>,
{
    let (events, mut inbox) = mpsc::unbounded_channel::<Event>();
    let mut seen = Seen::default();
    // Ids of our client's requests whose answers we read on the way back.
    let mut initialize_ids: HashSet<RequestId> = HashSet::new();
    let mut list_ids: HashSet<RequestId> = HashSet::new();
    let mut hiding: HashSet<RequestId> = HashSet::new();
    let mut held: HashMap<RequestId, AbortHandle> = HashMap::new();
    let mut executing: HashMap<RequestId, Executing> = HashMap::new();
    loop {
        tokio::select! {
            message = down.receive() => {
                let Some(message) = message else { break };
                match message {
                    JsonRpcMessage::Request(mut request) => {
                        let id = request.id.clone();
                        match &mut request.request {
                            ClientRequest::CallToolRequest(call) => {
                                let tool = call.params.name.to_string();
                                let info = CallInfo {
                                    hints: seen.tools.get(&tool).cloned(),
                                    tool,
                                    arguments: call.params.arguments.clone().unwrap_or_default(),
                                    client: seen.client.clone(),
                                    upstream_name: seen.upstream_name.clone(),
                                };
                                let task = tokio::spawn(gate_call(
                                    gating.clone(),
                                    info,
                                    JsonRpcMessage::Request(request),
                                    id.clone(),
                                    events.clone(),
                                ));
                                held.insert(id, task.abort_handle());
                                continue;
                            }
                            ClientRequest::InitializeRequest(init) => {
                                let info = &init.params.client_info;
                                seen.client = Some(format!("{} {}", info.name, info.version));
                                initialize_ids.insert(id);
                            }
                            ClientRequest::ListToolsRequest(_) => {
                                list_ids.insert(id.clone());
                                if gating.config.hide_rejected {
                                    hiding.insert(id);
                                }
                            }
                            _ => {}
                        }
                        if send_up(&mut up, JsonRpcMessage::Request(request)).await.is_err() {
                            break;
                        }
                    }
                    JsonRpcMessage::Notification(n) => {
                        // A cancelled call that is still held was never sent
                        // upstream: stop holding it, and answer nothing.
                        if let ClientNotification::CancelledNotification(c) = &n.notification {
                            if let Some(handle) = c.params.request_id.as_ref().and_then(|id| held.remove(id)) {
                                handle.abort();
                                continue;
                            }
                        }
                        if send_up(&mut up, JsonRpcMessage::Notification(n)).await.is_err() {
                            break;
                        }
                    }
                    other => {
                        if send_up(&mut up, other).await.is_err() {
                            break;
                        }
                    }
                }
            }
            message = up.receive() => {
                let Some(message) = message else { break };
                let id = match &message {
                    JsonRpcMessage::Response(r) => Some(r.id.clone()),
                    JsonRpcMessage::Error(e) => e.id.clone(),
                    _ => None,
                };
                if let Some(id) = id {
                    if let JsonRpcMessage::Response(r) = &message {
                        if initialize_ids.remove(&id) {
                            if let ServerResult::InitializeResult(init) = &r.result {
                                seen.upstream_name = Some(init.server_info.name.clone());
                            }
                        }
                        if list_ids.remove(&id) {
                            if let ServerResult::ListToolsResult(list) = &r.result {
                                // The latest list is what the server says now.
                                for tool in &list.tools {
                                    match &tool.annotations {
                                        Some(a) => seen.tools.insert(tool.name.to_string(), a.clone()),
                                        None => seen.tools.remove(tool.name.as_ref()),
                                    };
                                }
                            }
                        }
                    }
                    if let JsonRpcMessage::Response(r) = &message {
                        if hiding.remove(&id) {
                            if let ServerResult::ListToolsResult(_) = &r.result {
                                tokio::spawn(hide_rejected(gating.clone(), message, events.clone()));
                                continue;
                            }
                        }
                    }
                    if let Some(run) = executing.remove(&id) {
                        // The call ran: record it before the client hears.
                        tokio::spawn(report(gating.clone(), run, message, seen.upstream_name.clone(), events.clone()));
                        continue;
                    }
                }
                if down.send(message).await.is_err() {
                    break;
                }
            }
            Some(event) = inbox.recv() => match event {
                Event::Forward(request, approved, tool) => {
                    let JsonRpcMessage::Request(r) = request.as_ref() else { continue };
                    let id = r.id.clone();
                    if held.remove(&id).is_none() {
                        // Cancelled meanwhile: never forwarded.
                        continue;
                    }
                    executing.insert(id, Executing { approved: *approved, tool, started: Instant::now() });
                    if send_up(&mut up, *request).await.is_err() {
                        break;
                    }
                }
                Event::Answer(message) => {
                    if let JsonRpcMessage::Response(r) = message.as_ref() {
                        held.remove(&r.id);
                    }
                    if down.send(*message).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    for handle in held.values() {
        handle.abort();
    }
    let _ = up.close().await;
    let _ = down.close().await;
}

async fn send_up<U: Transport<RoleClient>>(
    up: &mut U,
    message: ClientJsonRpcMessage,
) -> Result<(), U::Error> {
    let result = up.send(message).await;
    if let Err(e) = &result {
        tracing::error!(error = %e, "the upstream MCP server cannot be reached");
    }
    result
}

/// Decide one call and hand the loop what to do with it.
async fn gate_call(
    gating: Arc<Gating>,
    info: CallInfo,
    mut request: ClientJsonRpcMessage,
    id: RequestId,
    events: mpsc::UnboundedSender<Event>,
) {
    let event = match gating.decide(&info).await {
        Ok(Gated::Proceed(approved)) => {
            // Exactly the approved arguments run, amended or not.
            if let JsonRpcMessage::Request(r) = &mut request {
                if let ClientRequest::CallToolRequest(call) = &mut r.request {
                    call.params.arguments = Some(approved.arguments.clone());
                }
            }
            Event::Forward(Box::new(request), Box::new(approved), info.tool)
        }
        Ok(Gated::Refuse(message)) => Event::Answer(Box::new(refusal(id, message))),
        Err(e) => {
            tracing::warn!(tool = %info.tool, code = %e.code, "call refused: Gatehouse could not decide it");
            Event::Answer(Box::new(refusal(id, failed_closed(&e))))
        }
    };
    let _ = events.send(event);
}

/// Pass a tool list on without the tools the policies always reject. The
/// list is only what the client is shown: if Gatehouse cannot screen it,
/// it goes on whole, and every call is still decided when it is made.
async fn hide_rejected(
    gating: Arc<Gating>,
    mut message: ServerJsonRpcMessage,
    events: mpsc::UnboundedSender<Event>,
) {
    if let JsonRpcMessage::Response(r) = &mut message {
        if let ServerResult::ListToolsResult(list) = &mut r.result {
            let names: Vec<String> = list.tools.iter().map(|t| t.name.to_string()).collect();
            match gating.always_rejected(&names).await {
                Ok(hidden) => list
                    .tools
                    .retain(|t| !hidden.iter().any(|h| h == t.name.as_ref())),
                Err(e) => tracing::warn!(code = %e.code, message = %e.message,
                    "cannot screen the tool list; passing it on whole"),
            }
        }
    }
    let _ = events.send(Event::Answer(Box::new(message)));
}

/// Report an executed call's receipt and outcome, then pass its result on
/// unchanged. A failed report cannot undo the call, so the result still
/// goes to the client; the failure is logged.
async fn report(
    gating: Arc<Gating>,
    run: Executing,
    message: ServerJsonRpcMessage,
    upstream_name: Option<String>,
    events: mpsc::UnboundedSender<Event>,
) {
    let result: Value = match &message {
        JsonRpcMessage::Response(r) => serde_json::to_value(&r.result).unwrap_or(Value::Null),
        JsonRpcMessage::Error(e) => serde_json::json!({"error": e.error}),
        _ => Value::Null,
    };
    let server = gating
        .config
        .server_name
        .clone()
        .or(upstream_name)
        .unwrap_or_else(|| "mcp".to_string());
    let took: Duration = run.started.elapsed();
    if let Err(e) = gating
        .report(&run.approved, &run.tool, &server, &result, took)
        .await
    {
        tracing::error!(decision = %run.approved.decision_id, code = %e.code, message = %e.message,
            "the call ran but its receipt or outcome could not be recorded");
    }
    let _ = events.send(Event::Answer(Box::new(message)));
}
