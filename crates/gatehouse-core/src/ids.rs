//! Identifiers are ULIDs with a type prefix, so they sort by creation time
//! and a misplaced id (a request id where a decision id belongs) is obvious.

use std::sync::Mutex;

/// Plain ULIDs are random within one millisecond; lists are ordered and
/// paged by id, so ids from this process must also be strictly increasing.
static GENERATOR: Mutex<ulid::Generator> = Mutex::new(ulid::Generator::new());

fn next() -> String {
    let id = GENERATOR
        .lock()
        .ok()
        .and_then(|mut g| g.generate().ok())
        // Overflow of 2^80 ids in one millisecond (or a poisoned lock) falls
        // back to a random ULID rather than failing a request.
        .unwrap_or_else(|| ulid::Ulid::from_datetime(std::time::SystemTime::now()));
    id.to_string().to_lowercase()
}

pub fn decision_id() -> String {
    format!("dec_{}", next())
}

pub fn request_id() -> String {
    format!("req_{}", next())
}

pub fn event_id() -> String {
    format!("evt_{}", next())
}

pub fn execution_id() -> String {
    format!("exe_{}", next())
}

pub fn outcome_id() -> String {
    format!("out_{}", next())
}

pub fn token_id() -> String {
    format!("tok_{}", next())
}

pub fn key_id() -> String {
    // Key ids are embedded in the secret, so keep them free of the `_`
    // separator used in the secret format.
    next()
}

/// A notification's id, the same for every attempt to deliver it (the
/// Standard Webhooks `webhook-id`).
pub fn delivery_id() -> String {
    format!("msg_{}", next())
}

/// A private hook for a no-code tool: its id is in the hook's URL.
pub fn hook_id() -> String {
    format!("hook_{}", next())
}

pub fn webhook_id() -> String {
    format!("wh_{}", next())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_strictly_increase() {
        let ids: Vec<String> = (0..1000).map(|_| super::decision_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }
}
