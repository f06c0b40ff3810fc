//! Request bodies besides the three decision requests: reviews, task
//! events, receipts, outcomes, token redemption and keys.

use gatehouse_app::executions::{ExecutionReport, OutcomeReport, TokenRef};
use gatehouse_app::tokens::PresentedAction;
use gatehouse_core::execution::OutcomeStatus;
use gatehouse_core::{ReviewChoice, Role, ValidationError};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// `POST /api/gate/requests/{id}/review` and `/api/decision/{id}/review`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    pub decision: ReviewChoice,
    #[serde(default)]
    pub comment: Option<String>,
    /// Approve with changes: the payload approved instead of the proposed
    /// one (e.g. a lower amount). The decision's policies evaluate it
    /// first; if they would reject it the review is refused (422
    /// `amendment_rejected`). The approval token then binds this payload.
    #[serde(default)]
    pub amended_payload: Option<Map<String, Value>>,
}

/// `POST /api/agent/tasks/{task_id}/events`: what happened around a task.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// What kind of event (also accepted as `event` or `type`).
    #[serde(alias = "event", alias = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: Option<String>,
    /// A decision of the same task the event is about.
    #[serde(default)]
    pub decision_id: Option<String>,
    #[serde(default)]
    pub data: Option<Value>,
}

/// An action as an object: what is about to run, or what ran.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// The tool name (Gate API) or requested action (Decide API); also
    /// accepted as `action`.
    #[serde(alias = "action")]
    pub tool_name: String,
    pub subject: String,
    #[serde(default)]
    pub payload: Option<Map<String, Value>>,
}

impl From<ActionBody> for PresentedAction {
    fn from(a: ActionBody) -> Self {
        PresentedAction {
            action: a.tool_name,
            subject: a.subject,
            payload: a.payload.unwrap_or_default(),
        }
    }
}

/// `POST /api/tokens/redeem`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    /// The approval token (a JWT).
    pub token: String,
    /// The action about to run; it must be the approved one.
    pub action: ActionBody,
}

/// The executed action in a receipt: an action object (the redeem shape),
/// or, in the older flattened form, just the tool name beside `subject`
/// and `payload`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ActionField {
    Object(ActionBody),
    Name(String),
}

/// `POST /api/decision/{id}/executions`: what an executor did. The action
/// is given either as an object under `action` (as for redemption) or as
/// the flattened fields `tool_name` (or `action`), `subject`, `payload`;
/// the token either by id (`token_jti`) or whole (`token`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionBody {
    pub target_system: String,
    pub target_object: String,
    pub mutation: String,
    pub executor: String,
    #[serde(default)]
    pub state_before_hash: Option<String>,
    #[serde(default)]
    pub state_after_hash: Option<String>,
    /// The id (`jti`) of the approval token the executor redeemed.
    #[serde(default)]
    pub token_jti: Option<String>,
    /// The approval token itself, instead of its id.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub action: Option<ActionField>,
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub payload: Option<Map<String, Value>>,
}

impl ExecutionBody {
    /// The report, with the action and the token each given one way only.
    pub fn into_report(self) -> Result<ExecutionReport, ValidationError> {
        let flattened =
            self.tool_name.is_some() || self.subject.is_some() || self.payload.is_some();
        let action = match self.action {
            Some(ActionField::Object(object)) => {
                if flattened {
                    return Err(ValidationError::new(
                        "action",
                        "give the action either as an object under action or as the fields \
                         tool_name, subject and payload, not both",
                    ));
                }
                object.into()
            }
            name => {
                let tool =
                    match (name, self.tool_name) {
                        (Some(ActionField::Name(_)), Some(_)) => {
                            return Err(ValidationError::new(
                                "tool_name",
                                "give the tool name once, as tool_name or as action",
                            ))
                        }
                        (Some(ActionField::Name(n)), None) | (None, Some(n)) => n,
                        _ => return Err(ValidationError::new(
                            "action",
                            "is required: an object {tool_name, subject, payload}, or tool_name \
                             with subject and payload",
                        )),
                    };
                let subject = self
                    .subject
                    .ok_or_else(|| ValidationError::new("subject", "is required"))?;
                PresentedAction {
                    action: tool,
                    subject,
                    payload: self.payload.unwrap_or_default(),
                }
            }
        };
        let token = match (self.token_jti, self.token) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "token",
                    "give either token_jti or token, not both",
                ))
            }
            (Some(jti), None) => Some(TokenRef::Jti(jti)),
            (None, Some(token)) => Some(TokenRef::Token(token)),
            (None, None) => None,
        };
        Ok(ExecutionReport {
            target_system: self.target_system,
            target_object: self.target_object,
            mutation: self.mutation,
            executor: self.executor,
            state_before_hash: self.state_before_hash,
            state_after_hash: self.state_after_hash,
            token,
            action,
        })
    }
}

/// `POST /api/decision/{id}/outcomes`: what came of the action.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    /// Report `review` or `pending` rather than inventing success.
    pub status: OutcomeStatus,
    pub action_taken: String,
    #[serde(default)]
    pub observed_metrics: Value,
    #[serde(default)]
    pub target_system: Option<String>,
}

impl From<OutcomeBody> for OutcomeReport {
    fn from(b: OutcomeBody) -> Self {
        OutcomeReport {
            status: b.status,
            action_taken: b.action_taken,
            observed_metrics: b.observed_metrics,
            target_system: b.target_system,
        }
    }
}

/// `POST /api/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    pub role: Role,
    /// Defaults to the person's name with `user`, otherwise the role's.
    #[serde(default)]
    pub name: Option<String>,
    /// The person the key belongs to (an active user): reviews made with
    /// it are theirs. Without it the key's name is its identity.
    #[serde(default)]
    pub user: Option<String>,
}

/// `POST /api/users`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// 1 to 64 letters, digits, `.`, `_`, `-` or `@`.
    pub name: String,
    /// `reviewer` (default), `auditor` or `admin`.
    #[serde(default = "reviewer")]
    pub role: Role,
    /// Groups route reviews (`@reviewers("finance")`): 1 to 64 letters,
    /// digits, `.`, `_` or `-` each.
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// 8 to 1024 characters; stored only as an Argon2id hash.
    pub password: String,
    /// The person's Slack user id (e.g. `U012AB3CD`): their clicks on
    /// Slack approval messages are their reviews.
    #[serde(default)]
    pub slack_user_id: Option<String>,
}

fn reviewer() -> Role {
    Role::Reviewer
}

/// `PUT /api/users/{name}/groups`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupsBody {
    /// The whole new membership (replaces the old one).
    pub groups: Vec<String>,
}

/// `PUT /api/users/{name}/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub password: String,
}

impl From<NewUserBody> for gatehouse_app::users::NewUser {
    fn from(b: NewUserBody) -> Self {
        gatehouse_app::users::NewUser {
            name: b.name,
            role: b.role,
            groups: b.groups,
            email: b.email,
            password: b.password,
            slack_user_id: b.slack_user_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(body: Value) -> Result<ExecutionReport, ValidationError> {
        serde_json::from_value::<ExecutionBody>(body)
            .expect("deserialises")
            .into_report()
    }

    fn base() -> Value {
        json!({"target_system": "stripe", "target_object": "re_1", "mutation": "create_refund",
               "executor": "worker"})
    }

    fn with(extra: Value) -> Value {
        let mut b = base();
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    }

    #[test]
    fn the_action_object_and_the_flattened_fields_give_the_same_action() {
        let object = report(with(
            json!({"action": {"tool_name": "issue_refund", "subject": "cus_1",
            "payload": {"amount": 5}}, "token": "a.b.c"}),
        ))
        .unwrap();
        let flat = report(with(
            json!({"tool_name": "issue_refund", "subject": "cus_1",
            "payload": {"amount": 5}, "token_jti": "tok_1"}),
        ))
        .unwrap();
        let alias = report(with(json!({"action": "issue_refund", "subject": "cus_1",
            "payload": {"amount": 5}})))
        .unwrap();
        assert_eq!(object.action, flat.action);
        assert_eq!(object.action, alias.action);
        assert_eq!(object.token, Some(TokenRef::Token("a.b.c".into())));
        assert_eq!(flat.token, Some(TokenRef::Jti("tok_1".into())));
        assert_eq!(alias.token, None);
    }

    #[test]
    fn an_action_given_twice_or_not_at_all_is_refused_with_the_field() {
        let both = with(json!({"action": {"tool_name": "t", "subject": "s"}, "subject": "s"}));
        assert_eq!(report(both).unwrap_err().field, "action");
        let twice = with(json!({"action": "t", "tool_name": "t", "subject": "s"}));
        assert_eq!(report(twice).unwrap_err().field, "tool_name");
        assert_eq!(report(base()).unwrap_err().field, "action");
        let no_subject = with(json!({"tool_name": "t"}));
        assert_eq!(report(no_subject).unwrap_err().field, "subject");
        let two_tokens =
            with(json!({"tool_name": "t", "subject": "s", "token": "x", "token_jti": "y"}));
        assert_eq!(report(two_tokens).unwrap_err().field, "token");
    }
}
