//! What an API key may do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Reviewer,
    Admin,
    Auditor,
    /// Runs approved actions for agents: may redeem the approval tokens
    /// whose audience (`aud`) is the key's name, and nothing else.
    Executor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Executor => "executor",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "agent" => Role::Agent,
            "reviewer" => Role::Reviewer,
            "admin" => Role::Admin,
            "auditor" => Role::Auditor,
            "executor" => Role::Executor,
            _ => return None,
        })
    }
}
