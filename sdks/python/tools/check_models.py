"""The model check: the SDK's Pydantic models and routes against the
committed OpenAPI document (``openapi/gatehouse.json``).

For every component schema the SDK models: the same fields, the same
required ones, the same types (nullable, arrays, maps, references, enum
values), and for request bodies the same constraints (lengths, patterns,
item counts) and the refusal of unknown fields. Every other schema must be
listed in ``OUT_OF_SCOPE`` with the reason, so a new schema fails the check
until someone decides. Every route the clients call must exist with the
same method, request body schema and answer schema.

Run: ``python tools/check_models.py [path/to/gatehouse.json]``; exits 1 and
lists every difference when there is one.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, JsonValue
from pydantic.fields import FieldInfo

from gatehouse._calls import ROUTES
from gatehouse.models import OPENAPI_ENUMS, OPENAPI_SCHEMAS, RequestModel

DOCUMENT = Path(__file__).resolve().parents[3] / "openapi" / "gatehouse.json"

OUT_OF_SCOPE = {
    # Administration: keys, users, webhooks and deliveries are managed with
    # the gatehouse CLI or by admins, not by the agents this SDK serves.
    "AttemptView": "deliveries (administration)",
    "DeliveryDetail": "deliveries (administration)",
    "DeliveryList": "deliveries (administration)",
    "DeliveryState": "deliveries (administration)",
    "DeliveryView": "deliveries (administration)",
    "GroupsBody": "users (administration)",
    "KeyCreated": "API keys (administration)",
    "KeyList": "API keys (administration)",
    "KeyView": "API keys (administration)",
    "NewKeyBody": "API keys (administration)",
    "NewUserBody": "users (administration)",
    "PasswordBody": "users (administration)",
    "UserList": "users (administration)",
    "UserView": "users (administration)",
    "WebhookBody": "webhooks (administration)",
    "WebhookCreated": "webhooks (administration)",
    "WebhookList": "webhooks (administration)",
    "WebhookView": "webhooks (administration)",
    # Hooks: made by admins for no-code tools, which post to /hooks/{id}
    # with a hook secret; an agent with this SDK holds an API key instead.
    "HookCreated": "hooks (administration; no-code tools)",
    "HookList": "hooks (administration; no-code tools)",
    "HookView": "hooks (administration; no-code tools)",
    "NewHookBody": "hooks (administration; no-code tools)",
    "RouteInstruction": "hooks (no-code tools)",
    "RouteName": "hooks (no-code tools)",
    # Screening a tool list: what the MCP proxy's --hide-rejected asks; an
    # agent with this SDK asks about the action it is about to run instead.
    "ScreenBody": "policy screening (the MCP proxy)",
    "ScreenView": "policy screening (the MCP proxy)",
}
"""Schemas the SDK deliberately does not model, with the reason."""

# Schemas that are types rather than objects, modelled as type aliases.
JSON_VALUE = "JsonValue"
ACTION_FIELD = "ActionField"

Desc = Any  # a comparable description of a type


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


class Document:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.schemas: dict[str, Any] = doc["components"]["schemas"]

    def describe(self, schema: dict[str, Any], constraints: bool) -> Desc:
        """A schema as a comparable value."""
        if "$ref" in schema:
            name = _ref_name(schema["$ref"])
            target = self.schemas[name]
            if name == JSON_VALUE:
                return "json"
            if name == ACTION_FIELD:
                return ("union", frozenset(self.describe(o, constraints) for o in target["oneOf"]))
            if "enum" in target:
                return ("enum", frozenset(target["enum"]))
            return ("model", name)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                options = [o for o in schema[key] if o.get("type") != "null"]
                nullable = len(options) < len(schema[key])
                inner = (
                    self.describe(options[0], constraints)
                    if len(options) == 1
                    else ("union", frozenset(self.describe(o, constraints) for o in options))
                )
                return ("nullable", inner) if nullable else inner
        if "enum" in schema:
            values = [v for v in schema["enum"] if v is not None]
            base = ("enum", frozenset(values))
            return ("nullable", base) if None in schema["enum"] else base
        kind = schema.get("type")
        if kind is None:
            if "properties" in schema:
                kind = "object"
            else:
                return "json"  # {}: any JSON value
        nullable = False
        if isinstance(kind, list):
            nullable = "null" in kind
            (kind,) = [k for k in kind if k != "null"]
        if kind == "array":
            base: Desc = ("array", self.describe(schema.get("items", {}), constraints))
            if constraints and "maxItems" in schema:
                base = (*base, ("maxItems", schema["maxItems"]))
        elif kind == "object":
            if "properties" in schema:
                base = ("inline", schema.get("additionalProperties") is not False)
            else:
                base = ("map", self.describe(schema.get("additionalProperties", {}), constraints))
        elif kind == "string":
            base = ("string", self._string_constraints(schema) if constraints else ())
        else:
            base = {"integer": "integer", "number": "number", "boolean": "boolean"}[kind]
        return ("nullable", base) if nullable else base

    @staticmethod
    def _string_constraints(schema: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            (k, schema[k]) for k in ("minLength", "maxLength", "pattern") if k in schema
        )

    def object_schema(self, schema: dict[str, Any]) -> tuple[dict[str, Any], set[str], bool]:
        """Properties, required names and whether unknown fields are allowed (allOf flattened)."""
        if "allOf" in schema:
            props: dict[str, Any] = {}
            required: set[str] = set()
            extra = True
            for part in schema["allOf"]:
                part = self.schemas[_ref_name(part["$ref"])] if "$ref" in part else part
                p, r, e = self.object_schema(part)
                props.update(p)
                required |= r
                extra = extra and e
            return props, required, extra
        return (
            dict(schema.get("properties", {})),
            set(schema.get("required", [])),
            schema.get("additionalProperties") is not False,
        )


def _model_names() -> dict[type[BaseModel], str]:
    return {m: n for n, m in OPENAPI_SCHEMAS.items()}


def describe_python(tp: Any, constraints: bool, meta: list[Any] | None = None) -> Desc:
    """A Python annotation as a comparable value."""
    meta = list(meta or [])
    while typing.get_origin(tp) is typing.Annotated:
        tp, *more = typing.get_args(tp)
        meta.extend(more)
    if tp is JsonValue:
        return "json"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        rest = [a for a in args if a is not type(None)]
        inner = (
            describe_python(rest[0], constraints, meta)
            if len(rest) == 1
            else ("union", frozenset(describe_python(a, constraints) for a in rest))
        )
        return ("nullable", inner) if len(rest) < len(args) else inner
    if origin is Literal:
        return ("enum", frozenset(typing.get_args(tp)))
    if origin is list:
        base: Desc = ("array", describe_python(typing.get_args(tp)[0], constraints))
        limit = _constraint(meta, "max_length")
        if constraints and limit is not None:
            base = (*base, ("maxItems", limit))
        return base
    if origin is dict:
        return ("map", describe_python(typing.get_args(tp)[1], constraints))
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        name = _model_names().get(tp)
        if name is None:  # an inline object (DecideContext)
            return ("inline", tp.model_config.get("extra") != "forbid")
        return ("model", name)
    if tp is str:
        if not constraints:
            return ("string", ())
        found = (
            ("minLength", _constraint(meta, "min_length")),
            ("maxLength", _constraint(meta, "max_length")),
            ("pattern", _constraint(meta, "pattern")),
        )
        return ("string", tuple((k, v) for k, v in found if v is not None))
    return {int: "integer", float: "number", bool: "boolean"}[tp]


def _constraint(meta: list[Any], name: str) -> Any:
    for m in meta:
        value = getattr(m, name, None)
        if value is not None:
            return value
        for inner in getattr(m, "metadata", []) or []:
            value = getattr(inner, name, None)
            if value is not None:
                return value
    return None


def compare_object(
    doc: Document, where: str, schema: dict[str, Any], model: type[BaseModel], constraints: bool
) -> list[str]:
    problems = []
    props, required, extra_ok = doc.object_schema(schema)
    fields: dict[str, FieldInfo] = {info.alias or name: info for name, info in model.model_fields.items()}
    for name in sorted(set(props) - set(fields)):
        problems.append(f"{where}: the document has a field {name!r} the model lacks")
    for name in sorted(set(fields) - set(props)):
        problems.append(f"{where}: the model has a field {name!r} the document lacks")
    for name in sorted(set(props) & set(fields)):
        info = fields[name]
        if (name in required) != info.is_required():
            problems.append(
                f"{where}.{name}: required in the {'document' if name in required else 'model'} only"
            )
        want = doc.describe(props[name], constraints)
        got = describe_python(info.annotation, constraints, list(info.metadata))
        if want != got:
            problems.append(f"{where}.{name}: the document says {want}, the model {got}")
        if want == ("inline", True) or want == ("inline", False):
            inner = typing.get_args(info.annotation) or (info.annotation,)
            (cls,) = [c for c in inner if isinstance(c, type) and issubclass(c, BaseModel)]
            problems += compare_object(doc, f"{where}.{name}", props[name], cls, constraints)
    forbids = model.model_config.get("extra") == "forbid"
    if constraints and forbids == extra_ok:
        problems.append(
            f"{where}: the document {'allows' if extra_ok else 'refuses'} unknown fields, the model "
            f"{'refuses' if forbids else 'allows'} them"
        )
    return problems


def compare_routes(doc: Document) -> list[str]:
    problems = []
    for name, route in ROUTES.items():
        op = doc.doc["paths"].get(route.path, {}).get(route.method.lower())
        if op is None:
            problems.append(f"route {name}: {route.method} {route.path} is not in the document")
            continue
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        want_body = None if body is None else _ref_name(body["$ref"])
        got_body = None if route.request is None else route.request.__name__
        if want_body != got_body:
            problems.append(f"route {name}: the document's body is {want_body}, the SDK sends {got_body}")
        ok = op["responses"].get("201") or op["responses"].get("200")
        content = (ok or {}).get("content", {})
        if route.response is str:
            if "text/plain" not in content:
                problems.append(f"route {name}: the document's answer is not text")
        else:
            answer = content.get("application/json", {}).get("schema", {}).get("$ref")
            if answer is None or _ref_name(answer) != route.response.__name__:
                problems.append(f"route {name}: the document answers {answer}, the SDK reads {route.response.__name__}")
    return problems


def check(document: dict[str, Any]) -> list[str]:
    """Every difference between the SDK and the document (empty when none)."""
    doc = Document(document)
    problems: list[str] = []
    for name, schema in doc.schemas.items():
        if name in OPENAPI_SCHEMAS:
            model = OPENAPI_SCHEMAS[name]
            problems += compare_object(doc, name, schema, model, issubclass(model, RequestModel))
        elif name in OPENAPI_ENUMS:
            want = frozenset(schema.get("enum", []))
            got = frozenset(typing.get_args(OPENAPI_ENUMS[name]))
            if want != got:
                problems.append(f"{name}: the document's values are {sorted(want)}, the SDK's {sorted(got)}")
        elif name == JSON_VALUE:
            kinds = sorted(json.dumps(o.get("type")) for o in schema.get("anyOf", []))
            if kinds != sorted(['"string"', '["number", "boolean", "null"]', '"array"', '"object"']):
                problems.append(f"{name}: no longer any JSON value: {kinds}")
        elif name == ACTION_FIELD:
            options = [o.get("$ref", o.get("type")) for o in schema.get("oneOf", [])]
            if options != ["#/components/schemas/ActionBody", "string"]:
                problems.append(f"{name}: no longer an action object or a tool name: {options}")
        elif name not in OUT_OF_SCOPE:
            problems.append(f"{name}: a schema the SDK neither models nor lists as out of scope")
    for name in sorted(set(OPENAPI_SCHEMAS) | set(OPENAPI_ENUMS)):
        if name not in doc.schemas:
            problems.append(f"{name}: modelled by the SDK but not in the document")
    for name in sorted(OUT_OF_SCOPE):
        if name not in doc.schemas:
            problems.append(f"{name}: listed as out of scope but not in the document")
    return problems + compare_routes(doc)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCUMENT
    problems = check(json.loads(path.read_text()))
    for p in problems:
        print(f"FAIL  {p}")
    count = len(OPENAPI_SCHEMAS) + len(OPENAPI_ENUMS)
    if problems:
        print(f"the SDK's models differ from {path} in {len(problems)} ways")
        return 1
    print(f"ok: {count} models and {len(ROUTES)} routes match {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
