//! Cedar policies with three outcomes.
//!
//! Cedar answers allow or deny; Gatehouse needs allow, reject and review.
//! Policies annotated `@tier("review")` form a review set evaluated after
//! the decide set: a deny from the decide set rejects, a matching forbid in
//! the review set sends the request to a reviewer, anything else allows.
//! Every evaluation error rejects, so a broken policy can never approve.

mod annotations;
pub mod cases;
mod compile;
mod context;
mod engine;
mod error;
mod load;
mod schema_shape;
mod screen;

pub use annotations::{parse_duration, valid_group, ReviewRoute};
pub use engine::{Engine, EngineOptions, Evaluation, UnknownActionMode};
pub use error::{InputError, PolicyError};
pub use load::{read_policy_dir, starter_files, PolicyFile};

/// Calendar facts Cedar cannot compute itself (it has no clock): derived from
/// the request time by the caller and stored with the record, so replay sees
/// exactly what the original evaluation saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub local_hour: u8,
    pub weekday: &'static str,
}

impl Clock {
    pub fn from_datetime(t: time::OffsetDateTime) -> Self {
        let weekday = match t.weekday() {
            time::Weekday::Monday => "monday",
            time::Weekday::Tuesday => "tuesday",
            time::Weekday::Wednesday => "wednesday",
            time::Weekday::Thursday => "thursday",
            time::Weekday::Friday => "friday",
            time::Weekday::Saturday => "saturday",
            time::Weekday::Sunday => "sunday",
        };
        Clock {
            local_hour: t.hour(),
            weekday,
        }
    }
}
