//! What an API key may do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Reviewer,
    Admin,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "agent" => Role::Agent,
            "reviewer" => Role::Reviewer,
            "admin" => Role::Admin,
            "auditor" => Role::Auditor,
            _ => return None,
        })
    }
}
