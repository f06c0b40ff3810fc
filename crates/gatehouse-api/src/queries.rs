//! Query strings, typed. Unknown parameters are refused, so a misspelt
//! filter is an error rather than silently ignored.

use gatehouse_core::Status;
use serde::Deserialize;
use utoipa::IntoParams;

/// `GET /api/gate/requests/{id}?wait=N`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Seconds to wait while the decision is `pending_review`; values above
    /// 60 (or the server's `--max-wait`) wait that long. Without it the
    /// current state is returned at once. At most a day.
    #[param(maximum = 86400)]
    pub wait: Option<u64>,
}

/// `GET /api/decisions`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<Status>,
    pub task_id: Option<String>,
    /// Only decisions older than this decision id (the previous page's
    /// `next_before`).
    pub before: Option<String>,
    /// 1 to 500; 50 by default.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// Which policies `GET /api/decision/{id}/replay` evaluates under.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PoliciesParam {
    /// The exact policy version that made the decision.
    #[default]
    Recorded,
    /// The policies in force now.
    Current,
}

/// `GET /api/decision/{id}/replay`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReplayQuery {
    pub policies: Option<PoliciesParam>,
}

/// `GET /api/log/proof/inclusion`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The leaf's index, below `size`.
    pub index: u64,
    /// The size of the tree to prove inclusion in, at most the log's size.
    pub size: u64,
}

/// `GET /api/log/proof/consistency`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size, at least 1.
    pub from: u64,
    /// The newer tree size, at most the log's size.
    pub to: u64,
}
