use thiserror::Error;

/// A policy set that must not be served. Each message names file and line.
#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("cannot read policy directory {path}: {message}")]
    Io { path: String, message: String },
    /// The set has its schema (named) but no `.cedar` file. The set may not
    /// come from a directory, so the caller names where it was read from.
    #[error("the policy set has a schema ({0}) but no .cedar policy file")]
    NoPolicies(String),
    #[error("policy directory must contain exactly one .cedarschema file (found {0})")]
    SchemaCount(usize),
    #[error("invalid policies:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// A request that does not fit the policy schema: the caller's fault, so a
/// 400 with this message, and never an allow.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{0}")]
pub struct InputError(pub String);
