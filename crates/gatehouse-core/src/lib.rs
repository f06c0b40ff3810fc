//! Gatehouse's domain model. Nothing in this crate performs I/O: it turns
//! caller input into a validated [`ActionRequest`], describes decisions and
//! reviews, and computes the canonical hashes that make records checkable.

pub mod canonical;
pub mod decision;
pub mod error;
pub mod execution;
pub mod ids;
mod jcs;
pub mod request;
pub mod review;
pub mod review_rule;
pub mod role;

pub use decision::{
    Decision, DecisionRecord, Reason, Review, ReviewChoice, Status, SubmittedRequest, TaskEvent,
    Verdict,
};
pub use error::ValidationError;
pub use request::{action_hash, ActionRequest, Risk};
pub use role::Role;
