//! Our RFC 8785 writer against `canon-json`, the crate it replaced on the
//! hot path: both must produce the same bytes for random JSON values and
//! for the shapes serde derives (structs, enums, flattened maps, options).

use std::collections::BTreeMap;

use gatehouse_core::canonical::to_canonical_vec;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Map, Number, Value};

fn oracle<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, canon_json::CanonicalFormatter::new());
    value.serialize(&mut ser).unwrap();
    out
}

fn assert_same<T: Serialize>(value: &T, what: &str) {
    let ours = to_canonical_vec(value).unwrap();
    let theirs = oracle(value);
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs),
        "{what}"
    );
}

/// Characters that stress escaping and UTF-16 key order: controls, quote
/// and backslash, DEL, Latin-1, BMP characters on both sides of the
/// surrogate range, and characters outside the BMP.
const PALETTE: &[char] = &[
    'a',
    'b',
    'z',
    'A',
    'Z',
    '0',
    '9',
    '_',
    ' ',
    '"',
    '\\',
    '/',
    '\u{0}',
    '\u{8}',
    '\t',
    '\n',
    '\u{b}',
    '\u{c}',
    '\r',
    '\u{1f}',
    '\u{7f}',
    '\u{80}',
    'é',
    'ö',
    '€',
    '\u{d7ff}',
    '\u{e000}',
    '\u{fb33}',
    '\u{ffff}',
    '\u{10000}',
    '😂',
    '\u{10ffff}',
];

fn text(rng: &mut StdRng, max: usize) -> String {
    (0..rng.gen_range(0..=max))
        .map(|_| PALETTE[rng.gen_range(0..PALETTE.len())])
        .collect()
}

fn float(rng: &mut StdRng) -> f64 {
    match rng.gen_range(0..5) {
        // Any finite double, from raw bits.
        0 => loop {
            let f = f64::from_bits(rng.gen());
            if f.is_finite() {
                break f;
            }
        },
        // Decimal fractions, as payloads carry them.
        1 => rng.gen_range(-100_000i64..100_000) as f64 / 100.0,
        // Around ECMAScript's switch to exponent notation (1e21, 1e-7).
        2 => 10f64.powi(rng.gen_range(-9..23)) * rng.gen_range(1.0..9.99),
        // Whole numbers held as doubles.
        3 => rng.gen_range(-1e15..1e15f64).trunc(),
        _ => rng.gen::<f64>() * 10f64.powi(rng.gen_range(-300..300)),
    }
}

fn value(rng: &mut StdRng, depth: u32) -> Value {
    let leaf_only = depth == 0;
    match rng.gen_range(0..if leaf_only { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.gen()),
        2 => json!(rng.gen::<i64>() >> rng.gen_range(0..63)),
        3 => json!(rng.gen::<u64>()),
        4 => Number::from_f64(float(rng)).map_or(Value::Null, Value::Number),
        5 => Value::String(text(rng, 12)),
        6 => Value::Array(
            (0..rng.gen_range(0..5))
                .map(|_| value(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.gen_range(0..7) {
                m.insert(text(rng, 4), value(rng, depth - 1));
            }
            Value::Object(m)
        }
    }
}

#[test]
fn random_values_canonicalize_as_canon_json_does() {
    let mut rng = StdRng::seed_from_u64(8785);
    for i in 0..20_000 {
        let v = value(&mut rng, 4);
        assert_same(&v, &format!("case {i}: {v}"));
    }
}

#[derive(Serialize)]
enum Kind {
    Plain,
    Wrapped(u32),
    Pair(String, i64),
    Shaped { zeta: bool, alpha: Option<String> },
}

#[derive(Serialize)]
struct Record {
    zebra: String,
    #[serde(rename = "type")]
    kind: Kind,
    apple: Vec<Kind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    none: Option<u8>,
    bytes: Vec<u8>,
    tuple: (u8, &'static str),
    numbers: BTreeMap<String, f64>,
    #[serde(flatten)]
    extra: Map<String, Value>,
    ch: char,
    big: u128,
}

#[test]
fn derived_shapes_canonicalize_as_canon_json_does() {
    let mut extra = Map::new();
    extra.insert("middle\u{e000}".into(), json!({"b": 1, "a": [2.5, "x"]}));
    extra.insert("middle😂".into(), json!(null));
    let record = Record {
        zebra: "z\"\\\n".into(),
        kind: Kind::Shaped {
            zeta: true,
            alpha: Some("a".into()),
        },
        apple: vec![Kind::Plain, Kind::Wrapped(7), Kind::Pair("p".into(), -3)],
        skipped: None,
        none: None,
        bytes: vec![0, 255],
        tuple: (1, "one"),
        numbers: [("10", 1e21), ("9", 0.000001), ("100", -0.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        extra,
        ch: '€',
        big: u128::MAX,
    };
    assert_same(&record, "derived record");
}

#[test]
fn integer_keys_are_written_as_strings() {
    // canon-json panics on these, so there is no oracle; serde_json writes
    // them as strings, and so do we, sorted as strings.
    let m: BTreeMap<u32, bool> = [(10, true), (9, false)].into_iter().collect();
    assert_eq!(to_canonical_vec(&m).unwrap(), br#"{"10":true,"9":false}"#);
}

#[test]
fn keys_that_differ_only_after_escaping_are_ordered_by_their_real_text() {
    // "\n" (U+000A) sorts before "\r" (U+000D) before "1", whatever their
    // escaped spellings say.
    let v = json!({"1": 0, "\r": 1, "\n": 2, "\"": 3, "\\": 4, "\u{1f}": 5});
    assert_same(&v, "escaped keys");
    assert_eq!(
        to_canonical_vec(&v).unwrap(),
        br#"{"\n":2,"\r":1,"\u001f":5,"\"":3,"1":0,"\\":4}"#
    );
}

#[test]
fn duplicate_keys_and_non_finite_numbers_are_refused() {
    #[derive(Serialize)]
    struct Clash {
        id: u8,
        #[serde(flatten)]
        more: Map<String, Value>,
    }
    let mut more = Map::new();
    more.insert("id".into(), json!(2));
    let err = to_canonical_vec(&Clash { id: 1, more }).unwrap_err();
    assert!(err.to_string().contains("duplicate object key"), "{err}");
    assert!(to_canonical_vec(&f64::NAN).is_err());
    assert!(to_canonical_vec(&[f64::INFINITY]).is_err());
}
