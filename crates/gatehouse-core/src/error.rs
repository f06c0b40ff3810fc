use thiserror::Error;

/// Input that cannot become an [`crate::ActionRequest`]. The message is shown
/// to the caller, so it names the field and never includes internal detail.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The longest name (agent, action, subject, task id), in characters.
pub const MAX_NAME_LEN: usize = 200;

/// A name: not blank, at most [`MAX_NAME_LEN`] characters as sent, no
/// control characters; stored without surrounding whitespace.
pub fn name(field: &str, value: String) -> Result<String, ValidationError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_string())
}
