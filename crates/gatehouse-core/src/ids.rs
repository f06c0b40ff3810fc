//! Identifiers are ULIDs with a type prefix, so they sort by creation time
//! and a misplaced id (a request id where a decision id belongs) is obvious.

pub fn decision_id() -> String {
    format!("dec_{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn request_id() -> String {
    format!("req_{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn event_id() -> String {
    format!("evt_{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn key_id() -> String {
    // Key ids are embedded in the secret, so keep them short and free of the
    // separator character used in the secret format.
    ulid::Ulid::new().to_string().to_lowercase()
}
