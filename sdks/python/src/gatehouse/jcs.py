"""RFC 8785 (JSON Canonicalization Scheme) canonical JSON, as Gatehouse writes it.

Every hash Gatehouse publishes (record hashes, action hashes, log leaves,
receipts, outcomes, packet checksums) is SHA-256 over these bytes, so this
module must agree with the server byte for byte. It is written here rather
than taken from a package because the server writes integers that fit in a
64-bit integer exactly as their decimal text (as ``serde_json`` holds them),
while general RFC 8785 libraries refuse integers beyond 2**53; the RFC's own
test vectors (``testdata/jcs``) check the rest.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["canonical_json", "canonical_sha256_hex", "sha256_hex"]

# serde_json keeps integers in this range as integers; anything wider is
# parsed as a 64-bit float, and so formatted as one.
_I64_MIN = -(2**63)
_U64_MAX = 2**64 - 1

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of a JSON value.

    ``value`` is made of ``dict`` (string keys), ``list``/``tuple``, ``str``,
    ``int``, ``float``, ``bool`` and ``None``. Raises ``ValueError`` for
    anything else, for NaN and infinities, and for strings that are not valid
    Unicode (lone surrogates).
    """
    out: list[str] = []
    _write(out, value)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"a string is not valid Unicode: {e}") from None


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def canonical_sha256_hex(value: Any) -> str:
    """Lower-case hex SHA-256 of the canonical JSON of ``value``."""
    return sha256_hex(canonical_json(value))


def _write(out: list[str], value: Any) -> None:
    # bool is a subclass of int: test it first.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if _I64_MIN <= value <= _U64_MAX:
            out.append(str(int(value)))
        else:
            try:
                as_float = float(value)
            except OverflowError:
                raise ValueError(f"the integer {value} is outside the range of JSON numbers") from None
            out.append(_number(as_float))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, Mapping):
        members: list[tuple[bytes, str, Any]] = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"object keys must be strings, not {type(key).__name__}")
            members.append((_utf16_key(key), key, item))
        members.sort(key=lambda m: m[0])
        out.append("{")
        for i, (_, key, item) in enumerate(members):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(out, item)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(out, item)
        out.append("]")
    else:
        raise ValueError(f"{type(value).__name__} is not a JSON value")


def _utf16_key(key: str) -> bytes:
    # RFC 8785 section 3.2.3: members are sorted by the UTF-16 code units of
    # their names; big-endian UTF-16 bytes compare in exactly that order.
    try:
        return key.encode("utf-16-be")
    except UnicodeEncodeError as e:
        raise ValueError(f"an object key is not valid Unicode: {e}") from None


def _string(s: str) -> str:
    parts = ['"']
    for ch in s:
        escaped = _SHORT_ESCAPES.get(ch)
        if escaped is not None:
            parts.append(escaped)
        elif ch < " ":
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(ch)
    parts.append('"')
    return "".join(parts)


def _number(v: float) -> str:
    """ECMAScript's Number.prototype.toString, as RFC 8785 section 3.2.2.3 requires."""
    if not math.isfinite(v):
        raise ValueError("RFC 8785 has no NaN or infinite numbers")
    if v == 0:
        return "0"  # also -0
    sign = "-" if v < 0 else ""
    # repr gives the shortest digits that read back as the same double,
    # which is the digit string ECMAScript specifies; only the layout differs.
    text = repr(abs(v))
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    # The decimal point sits after len(whole) digits, shifted by the exponent.
    point = len(whole) + exponent
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        exp = f"e{'+' if e >= 0 else '-'}{abs(e)}"
        body = (digits if k == 1 else digits[0] + "." + digits[1:]) + exp
    return sign + body
