//! An RFC 8785 (JCS) serializer that writes canonical JSON straight from
//! `Serialize` types.
//!
//! Why hand-written: canonical JSON sits on the decide path several times
//! (the record hash, the action hash, every log leaf), and `canon-json`,
//! which works as a `serde_json` formatter, has to re-collect every object
//! key and value through formatter callbacks before it can sort them. It
//! cost about a quarter of the decide handler's instructions. This writer
//! serialises each object's members straight into the output, remembers
//! where each member starts and ends, and reorders the bytes once when the
//! object closes and only if its members were not already in order. The
//! RFC's vectors and a differential test against `canon-json` (which stays
//! the oracle in tests, and still formats floats here) decide whether it is
//! right.

use std::cmp::Ordering;

use serde::ser::{Error as _, Serialize};
use serde_json::Error;

/// Canonical JSON bytes of `value`, appended to `out`.
pub(crate) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), Error> {
    let mut ser = Jcs {
        out,
        members: Vec::new(),
        scratch: Vec::new(),
    };
    value.serialize(&mut ser)
}

/// One member of an object being written: `"key":value` at
/// `out[start..end]`, its quoted key at `out[start..key_end]`.
struct Member {
    start: usize,
    key_end: usize,
    end: usize,
    /// The key is ASCII with nothing escaped, so its written bytes order
    /// it (almost every key is).
    plain: bool,
}

struct Jcs<'o> {
    out: &'o mut Vec<u8>,
    /// Members of every object still open, innermost last.
    members: Vec<Member>,
    /// Where an object's members are copied while they are reordered.
    scratch: Vec<u8>,
}

impl Jcs<'_> {
    /// Writes a JSON string; true when it is ASCII and needed no escape.
    fn string(&mut self, s: &str) -> bool {
        write_escaped(self.out, s)
    }

    /// A variant with content is the one-member object `{"variant":...}`;
    /// this writes its opening, up to the content.
    fn open_variant(&mut self, variant: &str) {
        self.out.push(b'{');
        self.string(variant);
        self.out.push(b':');
    }

    /// Sorts the members of the object whose body starts at `body` and
    /// whose members begin at `self.members[first..]`, then closes it.
    fn close_object(&mut self, body: usize, first: usize) -> Result<(), Error> {
        let out = &mut *self.out;
        let members = &mut self.members[first..];
        if members.len() > 1 {
            let order = |a: &Member, b: &Member| {
                let (ka, kb) = (&out[key(a)], &out[key(b)]);
                if a.plain && b.plain {
                    ka.cmp(kb)
                } else {
                    key_order(ka, kb)
                }
            };
            let in_order = members
                .windows(2)
                .all(|w| order(&w[0], &w[1]) == Ordering::Less);
            if !in_order {
                members.sort_unstable_by(order);
                if let Some(w) = members
                    .windows(2)
                    .find(|w| order(&w[0], &w[1]) == Ordering::Equal)
                {
                    let name = String::from_utf8_lossy(&out[key(&w[0])]).into_owned();
                    return Err(Error::custom(format!("duplicate object key \"{name}\"")));
                }
                self.scratch.clear();
                self.scratch.extend_from_slice(&out[body..]);
                out.truncate(body);
                for (i, m) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&self.scratch[m.start - body..m.end - body]);
                }
            }
        }
        self.members.truncate(first);
        self.out.push(b'}');
        Ok(())
    }
}

/// Where a member's key is, without its quotes.
fn key(m: &Member) -> std::ops::Range<usize> {
    m.start + 1..m.key_end - 1
}

/// RFC 8785 §3.2.3: keys are ordered by their UTF-16 code units. `a` and
/// `b` are keys as written (escaped, without quotes).
fn key_order(a: &[u8], b: &[u8]) -> Ordering {
    if a.contains(&b'\\') || b.contains(&b'\\') {
        // Only control characters, quotes and backslashes are escaped, so
        // this path is rare; unescape and compare the real keys.
        let unescape = |k: &[u8]| -> String {
            let mut quoted = Vec::with_capacity(k.len() + 2);
            quoted.push(b'"');
            quoted.extend_from_slice(k);
            quoted.push(b'"');
            serde_json::from_slice(&quoted).unwrap_or_default()
        };
        return utf16_order(&unescape(a), &unescape(b));
    }
    // The writer only ever writes valid UTF-8.
    let (a, b) = (
        std::str::from_utf8(a).unwrap_or_default(),
        std::str::from_utf8(b).unwrap_or_default(),
    );
    utf16_order(a, b)
}

fn utf16_order(a: &str, b: &str) -> Ordering {
    // UTF-8 byte order is code point order, which agrees with UTF-16 order
    // except for characters outside the Basic Multilingual Plane.
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// JSON string escaping as RFC 8785 §3.2.2.2 requires (the same as
/// ECMAScript's `JSON.stringify`): `"` and `\`, the short forms for
/// \b \t \n \f \r, `\u00xx` (lower-case hex) for other controls, and
/// everything else as it is.
fn write_escaped(out: &mut Vec<u8>, s: &str) -> bool {
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most strings need no escape and are ASCII: find that out with a loop
    // the compiler vectorises (no early exit), then copy them whole.
    let special = bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\') | (b >= 0x80)
    });
    if !special {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return true;
    }
    let mut from = 0;
    let mut plain = true;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => b'u',
            0x80.. => {
                plain = false;
                continue;
            }
            _ => continue,
        };
        plain = false;
        out.extend_from_slice(&bytes[from..i]);
        from = i + 1;
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]);
        }
    }
    out.extend_from_slice(&bytes[from..]);
    out.push(b'"');
    plain
}

fn float(out: &mut Vec<u8>, v: f64) -> Result<(), Error> {
    if !v.is_finite() {
        return Err(Error::custom("RFC 8785 has no NaN or infinite numbers"));
    }
    // ECMAScript number formatting has subtle rules; canon-json implements
    // them and passes the RFC's vectors, so floats (rare here: log entries
    // carry none) go through it.
    let mut ser =
        serde_json::Serializer::with_formatter(&mut *out, canon_json::CanonicalFormatter::new());
    v.serialize(&mut ser)
}

fn integer(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// An array or object being written.
#[doc(hidden)]
pub struct Compound<'a, 'o> {
    ser: &'a mut Jcs<'o>,
    /// Elements written so far.
    count: usize,
    /// For objects: where the body starts and the first member's index.
    object: Option<(usize, usize)>,
    /// Closing bytes after the array or object (a variant wrapper adds `}`).
    wrapped: bool,
    /// Start of the member being written (objects only).
    member: Option<(usize, usize, bool)>,
}

impl<'a, 'o> Compound<'a, 'o> {
    fn array(ser: &'a mut Jcs<'o>, wrapped: bool) -> Self {
        ser.out.push(b'[');
        Compound {
            ser,
            count: 0,
            object: None,
            wrapped,
            member: None,
        }
    }

    fn object(ser: &'a mut Jcs<'o>, wrapped: bool) -> Self {
        ser.out.push(b'{');
        let body = ser.out.len();
        let first = ser.members.len();
        Compound {
            ser,
            count: 0,
            object: Some((body, first)),
            wrapped,
            member: None,
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.count > 0 {
            self.ser.out.push(b',');
        }
        self.count += 1;
        value.serialize(&mut *self.ser)
    }

    fn key_with(
        &mut self,
        write_key: impl FnOnce(&mut Jcs<'o>) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        if self.count > 0 {
            self.ser.out.push(b',');
        }
        self.count += 1;
        let start = self.ser.out.len();
        let plain = write_key(self.ser)?;
        let key_end = self.ser.out.len();
        self.ser.out.push(b':');
        self.member = Some((start, key_end, plain));
        Ok(())
    }

    fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let (start, key_end, plain) = self
            .member
            .take()
            .ok_or_else(|| Error::custom("object value without a key"))?;
        value.serialize(&mut *self.ser)?;
        let end = self.ser.out.len();
        self.ser.members.push(Member {
            start,
            key_end,
            end,
            plain,
        });
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Error> {
        self.key_with(|ser| Ok(ser.string(name)))?;
        self.value(value)
    }

    fn finish(self) -> Result<(), Error> {
        match self.object {
            Some((body, first)) => self.ser.close_object(body, first)?,
            None => self.ser.out.push(b']'),
        }
        if self.wrapped {
            self.ser.out.push(b'}');
        }
        Ok(())
    }
}

/// Integers are written as their decimal text (JSON numbers).
macro_rules! integers {
    ($($method:ident: $t:ty),*) => {$(
        fn $method(self, v: $t) -> Result<(), Error> {
            integer(self.out, v);
            Ok(())
        }
    )*};
}

mod serializer;
