"""Small text helpers shared by the offline verifiers."""

from __future__ import annotations

import base64
import binascii


def rust_debug(s: str) -> str:
    """A string quoted as Rust's ``{:?}`` quotes it, so messages read exactly
    like those of ``gatehouse verify`` and ``gatehouse token verify``."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def b64decode_strict(text: str) -> bytes | None:
    """Standard base64 with canonical padding, or None: the server's decoder
    refuses what does not encode back to the same text, and so does this."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    if base64.b64encode(data).decode("ascii") != text:
        return None
    return data
