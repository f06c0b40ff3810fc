"""Models back to the JSON the server hashed.

The server hashes its own serialisation of a structure, which leaves some
empty optional fields out and writes others as null, and knows no fields
but its own. To recompute a hash from a parsed model, write exactly that:
the model's declared fields (never extra ones), each left out when its
``__serde_skip__`` rule says so.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..models import ApiModel


def serde_value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        skip = type(value).__serde_skip__ if isinstance(value, ApiModel) else {}
        out: dict[str, Any] = {}
        for name, info in type(value).model_fields.items():
            item = getattr(value, name)
            rule = skip.get(name)
            if rule == "none" and item is None:
                continue
            if rule == "empty" and (item == [] or item == ""):
                continue
            out[info.alias or name] = serde_value(item)
        return out
    if isinstance(value, list):
        return [serde_value(v) for v in value]
    if isinstance(value, dict):
        return {k: serde_value(v) for k, v in value.items()}
    return value
