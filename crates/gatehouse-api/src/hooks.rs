//! Private hooks for no-code tools: the admin API's bodies and views, and
//! the route instruction a hook answers with.

use gatehouse_core::Decision;
use gatehouse_store::hooks::HookRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn at(ms: i64) -> String {
    gatehouse_core::decision::rfc3339(gatehouse_core::decision::from_unix_millis(ms))
}

/// `POST /api/hooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHookBody {
    /// 1 to 64 letters, digits, `-`, `_` or `.`; unique.
    #[schema(example = "n8n-discounts")]
    pub name: String,
    /// The only workflow (`context.workflow`) the hook may ask for.
    #[schema(example = "billing_discount_gate")]
    pub workflow: String,
    /// The only actions (`context.requested_action`) it may ask for.
    #[schema(example = json!(["apply_discount", "issue_credit"]))]
    pub actions: Vec<String>,
}

/// A hook (never its secret after creation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HookView {
    pub id: String,
    pub name: String,
    pub workflow: String,
    pub actions: Vec<String>,
    /// Where the tool posts: `/hooks/{id}` on this server.
    pub path: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<&HookRecord> for HookView {
    fn from(h: &HookRecord) -> Self {
        HookView {
            id: h.id.clone(),
            name: h.name.clone(),
            workflow: h.workflow.clone(),
            actions: h.actions.clone(),
            path: format!("/hooks/{}", h.id),
            created_at: at(h.created_at_ms),
            revoked_at: h.revoked_at_ms.map(at),
        }
    }
}

/// `201` of `POST /api/hooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HookCreated {
    pub hook: HookView,
    /// `ghh_…`: sent by the tool in `X-Gatehouse-Hook-Secret`, or used to
    /// sign bodies (`X-Gatehouse-Signature: sha256=<hex HMAC-SHA256>`);
    /// shown only once.
    pub secret: String,
}

/// `200` of `GET /api/hooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HookList {
    pub items: Vec<HookView>,
}

/// What the tool should do: `proceed` (allowed, or approved), `block`
/// (rejected, or expired) or `review` (a person decides; do not proceed
/// now; the same request with the same `Idempotency-Key` later answers
/// the outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteName {
    Proceed,
    Block,
    Review,
}

impl From<gatehouse_app::hooks::Route> for RouteName {
    fn from(r: gatehouse_app::hooks::Route) -> Self {
        match r {
            gatehouse_app::hooks::Route::Proceed => RouteName::Proceed,
            gatehouse_app::hooks::Route::Block => RouteName::Block,
            gatehouse_app::hooks::Route::Review => RouteName::Review,
        }
    }
}

/// `200` of `POST /hooks/{hook_id}`: the route instruction, with the
/// handles to store beside the source record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RouteInstruction {
    pub route: RouteName,
    pub decision_id: String,
    pub request_id: String,
    /// SHA-256 of the Decision Record's canonical body (see the Decide API).
    pub record_hash: String,
    pub verify_url: String,
    pub replay_url: String,
    /// Why, in words.
    pub reasons: Vec<String>,
}

impl RouteInstruction {
    pub fn new(d: &Decision) -> Self {
        RouteInstruction {
            route: gatehouse_app::hooks::Route::of(d.status).into(),
            decision_id: d.id.clone(),
            request_id: d.request_id.clone(),
            record_hash: d.record_hash.clone(),
            verify_url: format!("/api/decision/{}/verify", d.id),
            replay_url: format!("/api/decision/{}/replay", d.id),
            reasons: d.reasons.iter().map(|r| r.message.clone()).collect(),
        }
    }
}
