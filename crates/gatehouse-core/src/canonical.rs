//! RFC 8785 (JCS) canonical JSON and the SHA-256 digests built on it. Every
//! hash Gatehouse publishes is computed here so there is exactly one
//! definition of "the bytes of a record".

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Canonical JSON bytes of any serialisable value (see `crate::jcs` for why
/// the writer is our own; the RFC's vectors in `testdata/jcs` and a
/// differential test against `canon-json` check it).
pub fn to_canonical_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(512);
    crate::jcs::write(&mut out, value)?;
    Ok(out)
}

/// Lower-case hex SHA-256 of the canonical JSON of `value`.
pub fn canonical_sha256_hex<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    Ok(sha256_hex(&to_canonical_vec(value)?))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_sorted_and_whitespace_removed() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": 1, "a": [true, null] }"#).unwrap();
        assert_eq!(to_canonical_vec(&v).unwrap(), br#"{"a":[true,null],"b":1}"#);
    }

    #[test]
    fn equal_values_hash_equally_regardless_of_input_order() {
        let a: serde_json::Value = serde_json::from_str(r#"{"x":1,"y":"z"}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"y":"z","x":1}"#).unwrap();
        assert_eq!(
            canonical_sha256_hex(&a).unwrap(),
            canonical_sha256_hex(&b).unwrap()
        );
    }
}
