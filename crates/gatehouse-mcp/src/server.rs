//! Gatehouse as an MCP server: the tools of `tools.rs`, answered by a
//! [`Gate`] — in process for the `/mcp` endpoint, over HTTP for stdio.

use std::sync::Arc;

use gatehouse_app::{App, Caller};
use gatehouse_core::Role;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Map, Value};

use crate::gate::{Call, Gate, ToolError};
use crate::local::LocalGate;
use crate::remote::{object, RemoteGate};
use crate::tools::{
    catalogue, DecisionRef, ExecutionInput, Op, OutcomeInput, PendingInput, ReviewInput, WaitInput,
};

const INSTRUCTIONS: &str = "Gatehouse decides whether an action may run. Before a side effect \
(sending email, refunds, access, deploys), call request_approval with the action and its exact \
arguments. Run the action only when may_proceed is true: redeem_token with the approval_token \
and the approved arguments, run it with exactly those arguments, then report_execution and \
report_outcome. While a request is pending_review, wait_for_decision or try again later; \
never run a rejected action.";

#[derive(Clone)]
enum Backend {
    Remote(RemoteGate),
    Local(Arc<App>),
}

/// The MCP server handler.
#[derive(Clone)]
pub struct GatehouseServer {
    backend: Backend,
}

impl GatehouseServer {
    /// Answers through a Gatehouse server's HTTP API, as one key.
    pub fn remote(gate: RemoteGate) -> Self {
        GatehouseServer {
            backend: Backend::Remote(gate),
        }
    }

    /// Answers in process, as the caller the HTTP layer authenticated
    /// (a [`Caller`] in the request's extensions).
    pub fn local(app: Arc<App>) -> Self {
        GatehouseServer {
            backend: Backend::Local(app),
        }
    }

    fn gate(&self, context: &RequestContext<RoleServer>) -> Result<Box<dyn Gate>, ToolError> {
        match &self.backend {
            Backend::Remote(gate) => Ok(Box::new(gate.clone())),
            Backend::Local(app) => {
                let caller = context
                    .extensions
                    .get::<axum::http::request::Parts>()
                    .and_then(|parts| parts.extensions.get::<Caller>())
                    .cloned()
                    // The endpoint authenticates before any request gets
                    // here; without a caller nothing is answered.
                    .ok_or_else(|| ToolError::new("unauthorized", "missing or invalid API key"))?;
                Ok(Box::new(LocalGate {
                    app: app.clone(),
                    caller,
                }))
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(args: &Map<String, Value>) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args.clone())).map_err(ToolError::arguments)
}

/// The tool call as a [`Call`], its arguments checked against the input
/// schema's type where both backends need them.
fn to_call(op: Op, args: Map<String, Value>) -> Result<Call, ToolError> {
    Ok(match op {
        Op::RequestApproval => Call::RequestApproval(args),
        Op::GetDecision => Call::GetDecision {
            id: parse::<DecisionRef>(&args)?.id,
        },
        Op::WaitForDecision => {
            let input: WaitInput = parse(&args)?;
            Call::WaitForDecision {
                seconds: input.seconds(),
                id: input.id,
            }
        }
        Op::RedeemToken => Call::RedeemToken(args),
        Op::ReportExecution => {
            let input: ExecutionInput = parse(&args)?;
            Call::ReportExecution {
                id: input.decision_id,
                receipt: input.receipt,
            }
        }
        Op::ReportOutcome => {
            let input: OutcomeInput = parse(&args)?;
            Call::ReportOutcome {
                id: input.decision_id,
                outcome: input.outcome,
            }
        }
        Op::ListPending => {
            let input: PendingInput = parse(&args)?;
            Call::ListPending {
                limit: input.limit(),
                before: input.before,
            }
        }
        Op::Review => {
            let input: ReviewInput = parse(&args)?;
            let mut body = args;
            body.remove("decision_id");
            Call::Review {
                id: input.decision_id,
                body,
            }
        }
    })
}

/// A failed call as the caller's model should see it: a tool result with
/// `isError` and the API's error body, never a protocol error it cannot read.
pub fn error_result(e: &ToolError) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(e.body().to_string())])
}

impl ServerHandler for GatehouseServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("gatehouse", env!("CARGO_PKG_VERSION")).with_title("Gatehouse"),
            )
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let gate = self
            .gate(&context)
            .map_err(|e| McpError::invalid_request(e.to_string(), None))?;
        // Only reviewers review (admins and auditors may not, by the same
        // rule as the API). A key whose role cannot be read is offered the
        // agent's tools; the server refuses whatever a key may not do anyway.
        let reviewer = matches!(gate.role().await, Ok(Role::Reviewer));
        Ok(ListToolsResult::with_all_items(catalogue(reviewer)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let Some(op) = Op::from_name(&request.name) else {
            return Err(McpError::invalid_params(
                format!("no tool named {:?}", request.name),
                None,
            ));
        };
        let result = async {
            let args = object(Value::Object(request.arguments.unwrap_or_default()))?;
            let call = to_call(op, args)?;
            self.gate(&context)?.call(call).await
        }
        .await;
        Ok(match result {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => error_result(&e),
        }
        .into())
    }
}
