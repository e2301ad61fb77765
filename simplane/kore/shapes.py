"""Representations in KORE's shape, made from Twilio's by KORE's spec: what a handler answers
is walked along the schema KORE documents for it. A field renamed by KORE (`e_id` → `eid`)
takes its new name; every field of KORE's schema is present, null where nothing is known and
the schema allows null; a null where it does not is left out; and what KORE requires of a list's
`meta` (`list_key`, `direct_token`) is added."""

from __future__ import annotations

from typing import Any

from simplane.core.spec import load_file

RENAMED = {"e_id": "eid"}


def response_schema(spec_name: str, path: str, method: str, status: int) -> dict[str, Any]:
    op = load_file(spec_name)["paths"][path][method.lower()]
    content = op["responses"].get(str(status), {}).get("content", {}).get("application/json")
    return content["schema"] if content else {}


class Shaper:
    def __init__(self, spec_name: str) -> None:
        self.spec = load_file(spec_name)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def properties(self, schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        props = dict(schema.get("properties", {}))
        required = list(schema.get("required", []))
        for part in schema.get("allOf", []):
            more, needed = self.properties(self.resolve(part))
            props.update(more)
            required += needed
        return props, required

    def conform(self, value: Any, schema: dict[str, Any]) -> Any:
        schema = self.resolve(schema)
        if isinstance(value, list):
            items = schema.get("items")
            return [self.conform(v, items) for v in value] if items else value
        if not isinstance(value, dict):
            return value
        props, required = self.properties(schema)
        if not props:
            return value
        for old, new in RENAMED.items():
            if old in value and new in props and old not in props:
                value[new] = value.pop(old)
        for name, sub in props.items():
            sub = self.resolve(sub)
            if name in value:
                if value[name] is None and not sub.get("nullable"):
                    del value[name]
                else:
                    value[name] = self.conform(value[name], sub)
            elif sub.get("nullable"):
                value[name] = None
        for name in required:
            if name not in value:
                if name == "list_key":
                    value[name] = value.get("key")
                elif name == "direct_token":
                    value[name] = True
        return value
