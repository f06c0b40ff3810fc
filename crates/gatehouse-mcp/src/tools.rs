//! The tools Gatehouse offers over MCP: their names, descriptions,
//! annotations, and input and output schemas. The inputs are the API's own
//! bodies where one exists, so a tool accepts exactly what its route does.

use gatehouse_api::bodies::{ExecutionBody, OutcomeBody, RedeemBody};
use gatehouse_api::records::Redeemed;
use gatehouse_api::records::{OutcomeCreated, ReceiptCreated};
use gatehouse_api::requests::SdkGateBody;
use gatehouse_api::views::{DecisionList, GateView};
use gatehouse_core::ReviewChoice;
use rmcp::model::{Tool, ToolAnnotations};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::schema::object_schema;

/// The longest `wait_for_decision` holds: below the 60 s most MCP clients
/// allow a tool call, so a wait answers before the client gives up.
pub const MAX_WAIT_SECONDS: u64 = 50;
const DEFAULT_WAIT_SECONDS: u64 = 30;

/// `get_decision`'s input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRef {
    /// The decision id `request_approval` returned.
    pub id: String,
}

/// `wait_for_decision`'s input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitInput {
    /// The decision id `request_approval` returned.
    pub id: String,
    /// How long to wait for a review, in seconds (default 30, at most 50).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 50)]
    pub timeout_seconds: Option<u64>,
}

impl WaitInput {
    pub fn seconds(&self) -> u64 {
        self.timeout_seconds
            .unwrap_or(DEFAULT_WAIT_SECONDS)
            .min(MAX_WAIT_SECONDS)
    }
}

/// `report_execution`'s input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionInput {
    pub decision_id: String,
    /// The Action Execution Receipt: what ran, against which system.
    #[schema(value_type = ExecutionBody)]
    pub receipt: Map<String, Value>,
}

/// `report_outcome`'s input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    pub decision_id: String,
    /// What came of the action.
    #[schema(value_type = OutcomeBody)]
    pub outcome: Map<String, Value>,
}

/// `list_pending`'s input.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PendingInput {
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_before` of the previous page.
    #[serde(default)]
    pub before: Option<String>,
}

impl PendingInput {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(20).clamp(1, 100)
    }
}

/// `review`'s input.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    pub decision_id: String,
    pub decision: ReviewChoice,
    #[serde(default)]
    pub comment: Option<String>,
    /// Approve these arguments instead of the proposed ones (approve only).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub amended_payload: Option<Map<String, Value>>,
}

/// Which tool a call names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    RequestApproval,
    GetDecision,
    WaitForDecision,
    RedeemToken,
    ReportExecution,
    ReportOutcome,
    ListPending,
    Review,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::RequestApproval,
        Op::GetDecision,
        Op::WaitForDecision,
        Op::RedeemToken,
        Op::ReportExecution,
        Op::ReportOutcome,
        Op::ListPending,
        Op::Review,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Op::RequestApproval => "request_approval",
            Op::GetDecision => "get_decision",
            Op::WaitForDecision => "wait_for_decision",
            Op::RedeemToken => "redeem_token",
            Op::ReportExecution => "report_execution",
            Op::ReportOutcome => "report_outcome",
            Op::ListPending => "list_pending",
            Op::Review => "review",
        }
    }

    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Tools only reviewer keys are offered.
    pub fn for_reviewers(self) -> bool {
        matches!(self, Op::ListPending | Op::Review)
    }

    pub fn tool(self) -> Tool {
        let (title, description, input, output, annotations) = match self {
            Op::RequestApproval => (
                "Request approval",
                "Ask Gatehouse whether an action may run, before running it. Describe the action \
                 (agent, action, risk: low|medium|high, subject) and put its exact arguments in \
                 `context`. The answer's `status` is allow, reject or pending_review; run the \
                 action only when `may_proceed` is true, with the `approval_token` and the \
                 arguments in `approved_action`. Pass an `idempotency_key` to retry safely.",
                object_schema::<SdkGateBody>(),
                object_schema::<GateView>(),
                // It records a decision (not read-only), never destroys
                // anything, and the same idempotency key gives the same answer.
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(true)
                    .open_world(false),
            ),
            Op::GetDecision => (
                "Get a decision",
                "Read a decision now: its status, reasons, review progress and, once approved, \
                 the approval token and the approved arguments.",
                object_schema::<DecisionRef>(),
                object_schema::<GateView>(),
                read_only(),
            ),
            Op::WaitForDecision => (
                "Wait for a decision",
                "Wait up to `timeout_seconds` (at most 50) for a pending decision to be reviewed, \
                 then return it. Still pending_review after the wait means: ask again later.",
                object_schema::<WaitInput>(),
                object_schema::<GateView>(),
                read_only(),
            ),
            Op::RedeemToken => (
                "Redeem an approval token",
                "Redeem an approval token, once, for exactly the action about to run (tool_name, \
                 subject, payload). Refused if the action is not the approved one, the token \
                 expired, or it was already redeemed.",
                object_schema::<RedeemBody>(),
                object_schema::<Redeemed>(),
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(false)
                    .open_world(false),
            ),
            Op::ReportExecution => (
                "Report an execution",
                "Record an Action Execution Receipt after running an approved action: the target \
                 system and object, the mutation, the executor and the action that ran.",
                object_schema::<ExecutionInput>(),
                object_schema::<ReceiptCreated>(),
                append_only(),
            ),
            Op::ReportOutcome => (
                "Report an outcome",
                "Record what came of an action: status succeeded or failed, what was done, and \
                 any observed metrics.",
                object_schema::<OutcomeInput>(),
                object_schema::<OutcomeCreated>(),
                append_only(),
            ),
            Op::ListPending => (
                "List pending requests",
                "The requests waiting for review, newest first (reviewer keys).",
                object_schema::<PendingInput>(),
                object_schema::<DecisionList>(),
                read_only(),
            ),
            Op::Review => (
                "Review a request",
                "Approve or reject a pending request (reviewer keys). The same rules as the API \
                 apply: only eligible reviewers, never your own request, and quorum counts \
                 distinct people. `amended_payload` approves changed arguments instead.",
                object_schema::<ReviewInput>(),
                object_schema::<GateView>(),
                // A review settles a decision for good: it cannot be undone.
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(true)
                    .idempotent(false)
                    .open_world(false),
            ),
        };
        let mut tool = Tool::new_with_raw(self.name(), Some(description.into()), input)
            .with_title(title)
            .with_raw_output_schema(output);
        let mut annotations = annotations;
        annotations.title = Some(title.to_string());
        tool.annotations = Some(annotations);
        tool
    }
}

fn read_only() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

/// Appends a record to the log: changes state, destroys nothing.
fn append_only() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(false)
        .destructive(false)
        .idempotent(false)
        .open_world(false)
}

/// The tools a caller with `reviewer` access sees, in a stable order.
pub fn catalogue(reviewer: bool) -> Vec<Tool> {
    Op::ALL
        .into_iter()
        .filter(|op| reviewer || !op.for_reviewers())
        .map(Op::tool)
        .collect()
}
