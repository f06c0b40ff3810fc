//! RFC 7493 (I-JSON): an object's member names must be unique. serde
//! keeps the last of two equal keys inside free-form values (a payload, a
//! Decide context), so a policy and an executor could read different
//! values from the same bytes. Every body is walked once, before it is
//! parsed for use, and the first repeated key is named by its path.

use std::collections::HashSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// The path (`payload.items[2].amount`) of the first key repeated within
/// one object, or `None`. Text that is not JSON gives `None`: the parser
/// that follows reports it.
pub fn first_duplicate(json: &[u8]) -> Option<String> {
    let mut found = None;
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de);
    found
}

struct Walk<'a> {
    path: String,
    found: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let walk = Walk {
                path: format!("{}[{i}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(walk)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) && self.found.is_none() {
                *self.found = Some(path.clone());
            }
            map.next_value_seed(Walk {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::first_duplicate;

    #[test]
    fn repeated_keys_are_named_at_any_depth() {
        assert_eq!(first_duplicate(br#"{"a":1,"a":2}"#).as_deref(), Some("a"));
        assert_eq!(
            first_duplicate(br#"{"payload":{"amount":5,"amount":500}}"#).as_deref(),
            Some("payload.amount")
        );
        assert_eq!(
            first_duplicate(br#"{"x":[{"k":1},{"k":1,"k":2}]}"#).as_deref(),
            Some("x[1].k")
        );
        // The same key in different objects is fine; escapes are compared
        // by what they mean.
        assert_eq!(first_duplicate(br#"{"a":{"k":1},"b":{"k":1}}"#), None);
        assert_eq!(
            first_duplicate(br#"{"risk":"high","ris\u006b":"low"}"#).as_deref(),
            Some("risk")
        );
        assert_eq!(first_duplicate(b"not json"), None);
    }
}
