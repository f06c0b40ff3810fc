//! `POST /api/policies/always-rejected`: which actions the current policies
//! reject for an agent whatever the request says (the MCP proxy's
//! `--hide-rejected` leaves them out of a tool list).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most actions one screen may name.
pub const MAX_SCREENED_ACTIONS: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScreenBody {
    /// The agent that would ask (the principal).
    pub agent: String,
    /// Action names to check, at most 500.
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScreenView {
    /// The policy version the answer holds for.
    pub policy_version: String,
    /// The named actions a decide-tier policy rejects for every subject and
    /// payload, or that no policy could permit, in the order named. Any
    /// other action is decided when it is asked.
    pub always_rejected: Vec<String>,
}
