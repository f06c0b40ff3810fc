//! Response bodies about what follows a decision (receipts, outcomes,
//! redemptions), keys, the log and the service itself.

use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// `201` of `POST /api/decision/{id}/executions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptCreated {
    pub receipt: ExecutionReceipt,
    /// SHA-256 of the receipt's canonical JSON.
    pub execution_hash: String,
    pub log_index: u64,
}

/// `201` of `POST /api/decision/{id}/outcomes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutcomeCreated {
    pub outcome: OutcomeRecord,
    /// SHA-256 of the outcome's canonical JSON.
    pub outcome_hash: String,
    pub log_index: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptItem {
    pub execution_hash: String,
    pub receipt: ExecutionReceipt,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutcomeItem {
    pub outcome_hash: String,
    pub outcome: OutcomeRecord,
}

/// `GET /api/decision/{id}/executions`: receipts and outcomes in the
/// order they were recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExecutionsView {
    pub executions: Vec<ReceiptItem>,
    pub outcomes: Vec<OutcomeItem>,
}

impl ExecutionsView {
    pub fn new(executions: Vec<ExecutionReceipt>, outcomes: Vec<OutcomeRecord>) -> Self {
        ExecutionsView {
            executions: executions
                .into_iter()
                .map(|r| ReceiptItem {
                    execution_hash: r.hash(),
                    receipt: r,
                })
                .collect(),
            outcomes: outcomes
                .into_iter()
                .map(|o| OutcomeItem {
                    outcome_hash: o.hash(),
                    outcome: o,
                })
                .collect(),
        }
    }
}

/// `200` of `POST /api/tokens/redeem`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Redeemed {
    pub redeemed: bool,
    pub decision_id: String,
    pub jti: String,
    pub action_hash: String,
    /// The index of the redemption's entry in the log.
    pub log_index: u64,
}

/// An API key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// The key that created this one through the API: the principal it
    /// acts for in separation of duties. Absent for keys made with the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<String>,
    /// The person the key belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

impl From<&gatehouse_app::access::ApiKey> for KeyView {
    fn from(k: &gatehouse_app::access::ApiKey) -> Self {
        use gatehouse_core::decision::rfc3339;
        KeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            role: k.role,
            created_at: rfc3339(k.created_at),
            revoked_at: k.revoked_at.map(rfc3339),
            minted_by: k.minted_by.clone(),
            user: k.user.clone(),
        }
    }
}

/// A user as shown to admins (never the password or its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub created_at: String,
    /// When the user was disabled; absent while active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
}

impl From<&gatehouse_app::users::User> for UserView {
    fn from(u: &gatehouse_app::users::User) -> Self {
        use gatehouse_core::decision::rfc3339;
        UserView {
            name: u.name.clone(),
            role: u.role,
            email: u.email.clone(),
            groups: u.groups.clone(),
            created_at: rfc3339(u.created_at),
            disabled_at: u.disabled_at.map(rfc3339),
        }
    }
}

/// `200` of `GET /api/users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
}

/// `201` of `POST /api/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyCreated {
    pub key: KeyView,
    /// The key to send as `Authorization: Bearer …`; shown only once.
    pub secret: String,
    pub note: String,
}

/// `GET /api/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyView>,
}

/// `GET /api/whoami`: who the key belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub key_id: String,
    pub name: String,
    pub role: Role,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    pub policy_version: String,
    /// How many policies the set in force holds.
    pub policies: usize,
}

/// `GET /api/log/proof/inclusion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofView {
    pub index: u64,
    pub size: u64,
    /// The leaf's exact bytes, base64.
    pub leaf: String,
    /// SHA-256(0x00 ‖ leaf), base64.
    pub leaf_hash: String,
    /// The RFC 6962 audit path, base64 hashes.
    pub proof: Vec<String>,
}

/// `GET /api/log/proof/consistency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofView {
    pub from: u64,
    pub to: u64,
    /// The RFC 6962 consistency proof, base64 hashes.
    pub proof: Vec<String>,
}

/// `GET /.well-known/jwks.json`: RFC 7517 public keys (Ed25519, `OKP`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    /// JWKs with `kty`, `crv`, `x`, `kid` (RFC 7638 thumbprint), `alg`, `use`.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<Value>,
}
